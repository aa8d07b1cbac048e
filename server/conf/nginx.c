/*
 * nginx's directives that porter does not have, so that a conf carried over from nginx is told
 * "not supported" rather than "unknown". docs/nginx.md is the same list with every directive of
 * those modules, and what porter does instead; a test keeps the two in step, and checks that no
 * name here is one of porter's own.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "server/conf/directives.h"

/* clang-format off */
static const char *const unsupported[] = {
    /* core (main context) */
    "daemon", "debug_points", "env", "load_module", "lock_file", "master_process", "pcre_jit",
    "ssl_engine", "thread_pool", "timer_resolution", "worker_cpu_affinity", "worker_priority",
    "worker_rlimit_core", "worker_rlimit_nofile", "worker_shutdown_timeout", "working_directory",
    /* events */
    "accept_mutex", "accept_mutex_delay", "debug_connection", "multi_accept", "use",
    "worker_aio_requests",
    /* http core */
    "absolute_redirect", "aio", "aio_write", "auth_delay", "chunked_transfer_encoding",
    "client_body_buffer_size", "client_body_in_file_only", "client_body_in_single_buffer",
    "client_body_temp_path", "client_header_buffer_size", "connection_pool_size", "directio",
    "directio_alignment", "disable_symlinks", "if_modified_since", "ignore_invalid_headers",
    "keepalive_disable", "keepalive_time", "large_client_header_buffers",
    "limit_except", "lingering_close", "lingering_time", "log_not_found", "log_subrequest",
    "merge_slashes", "msie_padding", "msie_refresh", "open_file_cache_errors",
    "open_file_cache_min_uses", "output_buffers", "port_in_redirect", "postpone_output",
    "read_ahead", "recursive_error_pages", "request_pool_size", "reset_timedout_connection",
    "resolver", "resolver_timeout", "send_lowat", "sendfile_max_chunk", "server_name_in_redirect",
    "server_names_hash_bucket_size", "server_names_hash_max_size",
    "subrequest_output_buffer_size", "tcp_nodelay", "tcp_nopush", "types_hash_bucket_size",
    "types_hash_max_size", "underscores_in_headers", "variables_hash_bucket_size",
    "variables_hash_max_size",
    /* log */
    "open_log_file_cache",
    /* headers */
    "add_trailer",
    /* proxy */
    "proxy_bind", "proxy_buffer_size", "proxy_buffering", "proxy_buffers",
    "proxy_busy_buffers_size", "proxy_cache", "proxy_cache_background_update",
    "proxy_cache_bypass", "proxy_cache_convert_head", "proxy_cache_key", "proxy_cache_lock",
    "proxy_cache_lock_age", "proxy_cache_lock_timeout", "proxy_cache_max_range_offset",
    "proxy_cache_methods", "proxy_cache_min_uses", "proxy_cache_path", "proxy_cache_purge",
    "proxy_cache_revalidate", "proxy_cache_use_stale", "proxy_cache_valid", "proxy_cookie_domain",
    "proxy_cookie_flags", "proxy_cookie_path", "proxy_force_ranges",
    "proxy_headers_hash_bucket_size", "proxy_headers_hash_max_size", "proxy_http_version",
    "proxy_ignore_client_abort", "proxy_ignore_headers", "proxy_intercept_errors",
    "proxy_limit_rate", "proxy_max_temp_file_size", "proxy_method", "proxy_no_cache",
    "proxy_pass_request_body", "proxy_pass_request_headers", "proxy_request_buffering",
    "proxy_send_lowat", "proxy_set_body", "proxy_socket_keepalive", "proxy_ssl_certificate",
    "proxy_ssl_certificate_key", "proxy_ssl_ciphers", "proxy_ssl_conf_command", "proxy_ssl_crl",
    "proxy_ssl_name", "proxy_ssl_password_file", "proxy_ssl_protocols", "proxy_ssl_session_reuse",
    "proxy_ssl_verify_depth", "proxy_store", "proxy_store_access", "proxy_temp_file_write_size",
    "proxy_temp_path",
    /* ssl */
    "ssl", "ssl_buffer_size", "ssl_certificate_cache", "ssl_client_certificate",
    "ssl_conf_command", "ssl_crl", "ssl_dhparam", "ssl_early_data", "ssl_ecdh_curve", "ssl_ocsp",
    "ssl_ocsp_cache", "ssl_ocsp_responder", "ssl_password_file", "ssl_reject_handshake",
    "ssl_session_ticket_key", "ssl_stapling", "ssl_stapling_file", "ssl_stapling_responder",
    "ssl_stapling_verify", "ssl_trusted_certificate", "ssl_verify_client", "ssl_verify_depth",
    /* gzip, gunzip */
    "gunzip", "gunzip_buffers",
    /* http2 */
    "http2_body_preread_size", "http2_chunk_size", "http2_idle_timeout",
    "http2_max_concurrent_pushes", "http2_max_field_size", "http2_max_header_size",
    "http2_max_requests", "http2_push", "http2_push_preload", "http2_recv_buffer_size",
    "http2_recv_timeout",
    /* http3, quic */
    "http3", "http3_hq", "http3_max_concurrent_streams", "http3_stream_buffer_size", "quic_bpf",
    "quic_gso", "quic_host_key", "quic_retry",
    /* rewrite */
    "uninitialized_variable_warn",
    /* map, split_clients, geo */
    "map_hash_bucket_size", "map_hash_max_size", "split_clients", "geo",
    /* other http modules */
    "addition_types", "add_before_body", "add_after_body", "auth_request", "auth_request_set",
    "charset", "charset_map", "charset_types", "override_charset", "source_charset", "dav_methods",
    "empty_gif", "fastcgi_pass", "fastcgi_param", "fastcgi_index", "grpc_pass", "memcached_pass",
    "mirror", "mirror_request_body", "random_index", "scgi_pass", "secure_link",
    "secure_link_md5", "secure_link_secret", "slice", "ssi", "ssi_types", "stub_status",
    "sub_filter", "sub_filter_once", "sub_filter_types", "userid", "uwsgi_pass", "valid_referers",
    /* other contexts */
    "mail", "stream",
};
/* clang-format on */

bool pt_conf_nginx_directive(const char *name)
{
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (strcmp(unsupported[i], name) == 0)
            return true;
    return false;
}

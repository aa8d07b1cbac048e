#include "connmgr/limits.h"

#include "listener/sized.h"

void pt_limits_init_sized(pt_limits *l, size_t size)
{
    pt_limits d = {
        .size = sizeof d,
        .max_waiting = 511,
        .max_concurrent = 10000,
        .request_read_timeout = 60,
        .max_request_line_length = 8 * 1024,
        .max_request_headers = 100,
        .max_request_header_length = 8 * 1024,
        .max_request_body_length = 1024 * 1024,
        .response_timeout = 60,
        .response_send_timeout = 60,
        .shutdown_grace_period = 10,
        .keepalive_timeout = 75,
        .keepalive_requests = 1000,
        .request_body_timeout = 60,
        .lingering_timeout = 5,
        .max_concurrent_per_client = PT_LIMIT_NONE,
    };
    pt_sized_init(l, size, &d, sizeof d);
}

void pt_limits_init_unlimited_sized(pt_limits *l, size_t size)
{
    pt_limits d = {
        .size = sizeof d,
        .max_waiting = 4096,
        .max_concurrent = PT_LIMIT_NONE,
        .request_read_timeout = PT_TIMEOUT_NONE,
        .max_request_line_length = PT_LIMIT_NONE,
        .max_request_headers = PT_LIMIT_NONE,
        .max_request_header_length = PT_LIMIT_NONE,
        .max_request_body_length = PT_LIMIT_NONE,
        .response_timeout = PT_TIMEOUT_NONE,
        .response_send_timeout = PT_TIMEOUT_NONE,
        .shutdown_grace_period = PT_TIMEOUT_NONE,
        .keepalive_timeout = PT_TIMEOUT_NONE,
        .keepalive_requests = PT_LIMIT_NONE,
        .request_body_timeout = PT_TIMEOUT_NONE,
        .lingering_timeout = 5,
        .max_concurrent_per_client = PT_LIMIT_NONE,
    };
    pt_sized_init(l, size, &d, sizeof d);
}

/*
 * The configuration of a server made from pt_server_options (include/porter.h) instead of a
 * conf file: built from the option structs through the functions the conf's directives call
 * (server/conf/conf.h), so it holds what a conf file's server block with the same values would
 * hold, every default included.
 *
 * Threading: any; no state.
 */
#ifndef PORTER_SERVER_OPTIONS_H
#define PORTER_SERVER_OPTIONS_H

#include <stddef.h>

#include "porter.h"
#include "server/conf/conf.h"

/* Builds the configuration of a server made from options (o->conf_path NULL): one server block
 * with o's root, logs, certificates and limits, and no listening address. Returns 0 or a
 * negative errno with a message in `err` that names the option at fault. */
int pt_options_conf(pt_conf **out, const pt_server_options *o, char *err, size_t errlen);

#endif

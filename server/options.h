/*
 * The configuration of a server made from pt_server_options (include/porter.h) instead of a
 * conf file.
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
 * negative errno with a message in `err`. */
int pt_options_conf(pt_conf **out, const pt_server_options *o, char *err, size_t errlen);

#endif

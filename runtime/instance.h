/* instance.h -- the name of this saltrelay-up instance: "<host name>/<instance>"
 * with the config key instance, else "<host name>/<pid>", so that any number
 * of instances, also two on one host with one config file, have different
 * names. It names the instance's heartbeat (upreport.h) and its consumer in
 * the request stream's group. */
#ifndef SALTRELAY_INSTANCE_H
#define SALTRELAY_INSTANCE_H

#include <stddef.h>

#include "config.h"

void instance_name(const struct config *cfg, char *buf, size_t len);

#endif

/* instance.h -- the name of this saltrelay-up instance. It names the
 * instance's heartbeat (upreport.h) and its consumer in the request stream's
 * group, so it must differ between instances that run at once, and should be
 * the same after a restart: a restarted instance reads what its consumer had
 * read and not sent (its own pending entries) at once, where another's are
 * claimed only after they were idle for 5 s.
 *
 * With the config key instance: "<host name>/<instance>" (the operator keeps
 * it unique). Without it: "<host name>/<slot>", the slot being the lowest
 * number 0, 1, ... whose lock this process can take: an abstract Unix socket
 * "@saltrelay-up/<cluster>/<slot>" bound for the process's life (the kernel
 * frees it when the process ends, however it ends; `ss -xlp` shows who holds
 * which). The one saltrelay-up of a host is "<host>/0" before and after any
 * restart; a second one running at the same time is "<host>/1". If no slot
 * up to INSTANCE_SLOTS can be taken: "<host>/pid<pid>", logged. */
#ifndef SALTRELAY_INSTANCE_H
#define SALTRELAY_INSTANCE_H

#include <stddef.h>

#include "config.h"

#define INSTANCE_SLOTS 64

/* This process's name into BUF; the first call takes the slot, later calls
 * (from any thread) give the same name. */
void instance_name(const struct config *cfg, char *buf, size_t len);

#endif

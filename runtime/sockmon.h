/* sockmon.h -- a ZeroMQ socket's monitor events, read by the owning part's
 * own loop (no thread): the events go to a PAIR socket this thread polls. */
#ifndef SALTRELAY_SOCKMON_H
#define SALTRELAY_SOCKMON_H

#include <czmq.h>

/* A PAIR receiving SOCK's EVENTS (ZMQ_EVENT_* bits), queueing at most
 * RCVHWM messages (0: no limit; two per event); NULL on failure (zmq_errno
 * says why). Destroy SOCK (or stop its monitor) before the PAIR. */
zsock_t *sockmon_new(zsock_t *sock, int events, int rcvhwm);
/* One event without waiting: 1 with *EVENT and *VALUE (a fd for
 * ACCEPTED/DISCONNECTED) set, 0 if none is queued. */
int sockmon_next(zsock_t *mon, unsigned *event, int *value);

#endif

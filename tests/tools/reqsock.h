/* reqsock.h -- the REQ socket of the test tools' request clients (zreqs,
 * campreq): no linger, so a client that gives up on a socket drops what it
 * queued, and a quick reconnect, as Salt's RequestClient. */
#ifndef SALTRELAY_TEST_REQSOCK_H
#define SALTRELAY_TEST_REQSOCK_H

#include <zmq.h>

static inline void *req_socket(void *ctx, const char *ep)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0, ivl = 100;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_connect(s, ep);
    return s;
}

#endif

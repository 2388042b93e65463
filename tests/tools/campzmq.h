/* campzmq.h -- ZeroMQ helpers of the campaign's tools (tests/campaign/). */
#ifndef SALTRELAY_TEST_CAMPZMQ_H
#define SALTRELAY_TEST_CAMPZMQ_H

#include <stdint.h>
#include <string.h>
#include <zmq.h>

/* Receive one message into F[0..MAX-1] (beyond MAX frames, the last slot
 * keeps the last one); returns its frame count. Close min(count, MAX). */
static inline size_t camp_recv(void *sock, zmq_msg_t *f, size_t max)
{
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t *cur = &f[n < max ? n : max - 1];
        if (n >= max)
            zmq_msg_close(cur);
        zmq_msg_init(cur);
        zmq_msg_recv(cur, sock, 0);
        more = zmq_msg_more(cur);
        n++;
    }
    return n;
}

static inline void camp_close(zmq_msg_t *f, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++)
        zmq_msg_close(&f[i]);
}

/* The next event queued on a socket monitor's PAIR: its id, 0 if none. */
static inline int camp_monitor_next(void *mon)
{
    zmq_msg_t f[2];
    zmq_msg_init(&f[0]);
    if (zmq_msg_recv(&f[0], mon, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&f[0]);
        return 0;
    }
    uint16_t what;
    memcpy(&what, zmq_msg_data(&f[0]), sizeof what);
    zmq_msg_close(&f[0]);
    zmq_msg_init(&f[1]);
    zmq_msg_recv(&f[1], mon, 0); /* the endpoint */
    zmq_msg_close(&f[1]);
    return what;
}

#endif

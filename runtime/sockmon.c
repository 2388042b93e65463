/* sockmon.c -- a socket's monitor events; see sockmon.h. */
#include "sockmon.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

zsock_t *sockmon_new(zsock_t *sock, int events, int rcvhwm)
{
    static atomic_ulong serial; /* one inproc endpoint per monitor in the process */
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://saltrelay-mon-%lu", atomic_fetch_add(&serial, 1));
    if (zmq_socket_monitor(zsock_resolve(sock), ep, events) < 0)
        return NULL;
    zsock_t *mon = zsock_new(ZMQ_PAIR);
    if (mon) {
        zsock_set_rcvhwm(mon, rcvhwm); /* before connecting: an inproc pipe's limit is fixed then */
        if (zsock_connect(mon, "%s", ep) == 0)
            return mon;
    }
    zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(&mon);
    return NULL;
}

int sockmon_next(zsock_t *mon, unsigned *event, int *value)
{
    void *s = zsock_resolve(mon);
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    uint16_t ev = 0;
    uint32_t val = 0;
    if (zmq_msg_size(&m) == sizeof ev + sizeof val) { /* libzmq 4.x: event, then value */
        memcpy(&ev, zmq_msg_data(&m), sizeof ev);
        memcpy(&val, (char *)zmq_msg_data(&m) + sizeof ev, sizeof val);
    }
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    for (int k = 0; more && k < 4; k++) { /* the endpoint frame */
        zmq_msg_init(&m);
        more = zmq_msg_recv(&m, s, 0) >= 0 && zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    *event = ev;
    *value = (int)val;
    return 1;
}

/* frames.c -- see frames.h. */
#include "frames.h"

#include <string.h>

size_t frames_recv(void *sock, zmq_msg_t *m, size_t max)
{
    size_t n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t extra, *cur = n < max ? &m[n] : &extra;
        zmq_msg_init(cur);
        if (zmq_msg_recv(cur, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(cur);
            return n; /* nothing waiting (or the context is ending) */
        }
        more = zmq_msg_more(cur);
        if (cur == &extra)
            zmq_msg_close(cur);
        else
            n++;
        if (cur == &extra && !more)
            return max + 1;
    }
    return n;
}

void frames_close(zmq_msg_t *m, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++)
        zmq_msg_close(&m[i]);
}

void frames_view(zmq_msg_t *m, size_t first, size_t n, const char **fv, size_t *fl)
{
    for (size_t i = 0; i < n; i++) {
        fv[i] = zmq_msg_data(&m[first + i]);
        fl[i] = zmq_msg_size(&m[first + i]);
    }
}

#define ZMQ_INLINE_MAX 33    /* libzmq keeps frames up to this size inside the zmq_msg_t */
#define ZMQ_RCVBUF_SIZE 8192 /* libzmq's receive buffer (in_batch_size) */

void frames_own(zmq_msg_t *m)
{
    size_t n = zmq_msg_size(m);
    zmq_msg_t copy;
    if (n <= ZMQ_INLINE_MAX || n >= ZMQ_RCVBUF_SIZE || zmq_msg_init_size(&copy, n) < 0)
        return;
    memcpy(zmq_msg_data(&copy), zmq_msg_data(m), n);
    zmq_msg_move(m, &copy); /* releases M's reference to the receive buffer */
    zmq_msg_close(&copy);
}

/* zsub -- test minion: connects a SUB socket and writes every message it
 * receives as a line (lines.h) to stdout, flushed per line.
 *   zsub ENDPOINT [--topic T ...] [--count N] [--idle-ms MS] [--max-ms MS]
 *        [--rcvhwm N] [--rcvbuf BYTES] [--delay-ms MS]
 * Stops after COUNT messages, after IDLE-MS without a message (once one came),
 * or after MAX-MS in all (default 60000). A slow minion: RCVHWM (default 0,
 * no limit) and RCVBUF bound what it queues, DELAY-MS is slept after each
 * message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "lines.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: zsub ENDPOINT [--topic T]... [--count N] [--idle-ms MS] [--max-ms MS]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    long count = -1, idle = -1, max = 60000, delay = 0;
    int topics = 0, hwm = 0, ivl = 100;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topic")) {
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, argv[i + 1], strlen(argv[i + 1]));
            topics++;
        } else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--idle-ms")) idle = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-ms")) max = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay-ms")) delay = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rcvhwm") || !strcmp(argv[i], "--rcvbuf")) {
            int v = atoi(argv[i + 1]);
            zmq_setsockopt(sub, !strcmp(argv[i], "--rcvhwm") ? ZMQ_RCVHWM : ZMQ_RCVBUF, &v, sizeof v);
        }
        else { fprintf(stderr, "zsub: unknown option %s\n", argv[i]); return 2; }
    }
    if (!topics)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(sub, argv[1]) < 0) {
        fprintf(stderr, "zsub: connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    fprintf(stderr, "zsub: connected\n");
    long long start = now_ms(), last = 0;
    long got = 0;
    zmq_msg_t frames[16];
    while (count < 0 || got < count) {
        long long now = now_ms();
        if (now - start > max || (idle > 0 && last && now - last > idle))
            break;
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        size_t n = 0;
        int more = 1;
        while (more && n < 16) {
            zmq_msg_init(&frames[n]);
            zmq_msg_recv(&frames[n], sub, 0);
            more = zmq_msg_more(&frames[n]);
            n++;
        }
        lines_write(stdout, frames, n);
        fflush(stdout);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
        got++;
        if (delay > 0) {
            struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        last = now_ms();
    }
    fprintf(stderr, "zsub: received %ld\n", got);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return 0;
}

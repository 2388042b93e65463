/* zpub -- test MoM publisher: binds a PUB socket and sends messages.
 *   zpub ENDPOINT --lines FILE [--rate N] [--wait-ms N]
 *   zpub ENDPOINT --gen COUNT [--size BYTES] [--topic T] [--rate N] [--wait-ms N]
 *   --subscribers N: wait for N subscribers (default 1), e.g. two saltrelay-ups
 * --gen payloads start with the 10-digit message number, then a nonce of this
 * run (as far as BYTES allows), padded to BYTES: like Salt's publications
 * (each encrypted with a fresh IV), two runs never send identical payloads,
 * which saltrelay-up would store once (relay-up/pub_intake.c, pubstore.h).
 * The socket is an XPUB: it waits for the first subscription (at most
 * --wait-ms, default 10000) before sending, since a PUB drops what it sends
 * before a subscriber joined. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "lines.h"

static void pace(long i, double rate, struct timespec *t0)
{
    if (rate <= 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double due = i / rate, el = (now.tv_sec - t0->tv_sec) + (now.tv_nsec - t0->tv_nsec) / 1e9;
    if (due > el) {
        struct timespec d = {(time_t)(due - el), (long)(((due - el) - (time_t)(due - el)) * 1e9)};
        nanosleep(&d, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zpub ENDPOINT (--lines FILE | --gen N) [--size B] [--topic T] [--rate R] [--wait-ms MS] [--subscribers N]\n");
        return 2;
    }
    const char *lines = NULL, *topic = NULL;
    long gen = -1, size = 100, wait_ms = 10000, subscribers = 1;
    double rate = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--lines")) lines = argv[i + 1];
        else if (!strcmp(argv[i], "--gen")) gen = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--topic")) topic = argv[i + 1];
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--wait-ms")) wait_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--subscribers")) subscribers = atol(argv[i + 1]);
        else { fprintf(stderr, "zpub: unknown option %s\n", argv[i]); return 2; }
    }
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_XPUB);
    int hwm = 0, linger = 5000;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pub, ZMQ_LINGER, &linger, sizeof linger);
    int verbose = 1; /* every subscriber's subscription, not only the first of each topic */
    zmq_setsockopt(pub, ZMQ_XPUB_VERBOSE, &verbose, sizeof verbose);
    if (zmq_bind(pub, argv[1]) < 0) {
        fprintf(stderr, "zpub: bind %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    zmq_pollitem_t it = {pub, 0, ZMQ_POLLIN, 0};
    long seen = 0;
    while (seen < subscribers && zmq_poll(&it, 1, wait_ms) == 1) {
        char sub[256];
        if (zmq_recv(pub, sub, sizeof sub, 0) > 0 && sub[0] == 1)
            seen++;
    }
    if (seen < subscribers)
        fprintf(stderr, "zpub: %ld of %ld subscribers after %ld ms; sending anyway\n", seen, subscribers, wait_ms);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sent = 0;
    if (lines) {
        FILE *f = fopen(lines, "r");
        if (!f) { perror(lines); return 1; }
        char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
            pace(sent, rate, &t0);
            if (lines_send(pub, line, 0) < 0) { fprintf(stderr, "zpub: bad line %ld\n", sent + 1); return 1; }
            sent++;
        }
        free(line);
        fclose(f);
    } else {
        char *buf = malloc((size_t)size + 16);
        char num[40];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        unsigned long long nonce = (unsigned long long)now.tv_nsec ^ ((unsigned long long)now.tv_sec << 30) ^
                                   ((unsigned long long)getpid() << 44);
        for (long i = 0; i < gen; i++) {
            pace(i, rate, &t0);
            memset(buf, 'x', (size_t)size);
            int nl = snprintf(num, sizeof num, "%010ld%016llx", i, nonce);
            memcpy(buf, num, (size_t)(nl < size ? nl : size));
            if (topic)
                zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE);
            zmq_send(pub, buf, (size_t)size, 0);
            sent++;
        }
        free(buf);
    }
    fprintf(stderr, "zpub: sent %ld\n", sent);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return 0;
}

/* zreqs -- test minions: N clients, each a REQ socket of its own (as a Salt
 * RequestClient), send their requests one at a time and check the replies.
 *   zreqs ENDPOINT --clients N --timeout-ms T [--max-ms M] [--abandon-ms A] < INPUT > OUTPUT
 * INPUT lines: "<client> <request hex> <expected reply hex, or ->".
 * OUTPUT, one line per request: "<client> <k> ok|mismatch|timeout <latency us>"
 * (k counts that client's requests from 0). A request unanswered after T ms
 * is given up and its socket closed and replaced, as Salt does; with
 * --abandon-ms, a request that expects no reply ("-") after A ms (a requester
 * that leaves early while the others still wait up to T). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "lines.h"
#include "reqsock.h"

struct req { char *hex, *expect; };
struct client {
    struct req *r;
    size_t n, next;
    void *sock;
    long long sent_us;
};

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int nibble(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

static int reply_matches(zmq_msg_t *m, const char *expect)
{
    size_t len = zmq_msg_size(m);
    const unsigned char *d = zmq_msg_data(m);
    if (strlen(expect) != 2 * len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (d[i] != (nibble(expect[2 * i]) << 4 | nibble(expect[2 * i + 1])))
            return 0;
    return 1;
}

static void send_next(struct client *c)
{
    lines_send(c->sock, c->r[c->next].hex, 0);
    c->sent_us = now_us();
}

static void read_input(struct client *cl, long nclients)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        char *a = strtok(line, " \n"), *hex = strtok(NULL, " \n"), *exp = strtok(NULL, " \n");
        long k = a ? atol(a) : -1;
        if (k < 0 || k >= nclients || !hex || !exp) { fprintf(stderr, "zreqs: bad input line\n"); exit(2); }
        struct client *c = &cl[k];
        c->r = realloc(c->r, (c->n + 1) * sizeof *c->r);
        c->r[c->n++] = (struct req){strdup(hex), strdup(exp)};
    }
    free(line);
}

int main(int argc, char **argv)
{
    long nclients = 1, timeout = 5000, max = 600000, abandon = -1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--clients")) nclients = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--timeout-ms")) timeout = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-ms")) max = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--abandon-ms")) abandon = atol(argv[i + 1]);
        else { fprintf(stderr, "zreqs: unknown option %s\n", argv[i]); return 2; }
    }
    if (argc < 2 || nclients < 1) { fprintf(stderr, "usage: zreqs ENDPOINT --clients N --timeout-ms T\n"); return 2; }
    struct client *cl = calloc((size_t)nclients, sizeof *cl);
    read_input(cl, nclients);
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, 4096);
    long long start = now_us();
    for (long k = 0; k < nclients; k++) {
        cl[k].sock = req_socket(ctx, argv[1]);
        if (cl[k].n) send_next(&cl[k]);
    }
    zmq_pollitem_t *items = calloc((size_t)nclients, sizeof *items);
    long *who = calloc((size_t)nclients, sizeof *who);
    long ok = 0, bad = 0, lost = 0;
    for (;;) {
        int n = 0;
        for (long k = 0; k < nclients; k++)
            if (cl[k].next < cl[k].n) {
                items[n] = (zmq_pollitem_t){cl[k].sock, 0, ZMQ_POLLIN, 0};
                who[n++] = k;
            }
        if (!n || now_us() - start > max * 1000LL)
            break;
        zmq_poll(items, n, 10);
        long long now = now_us();
        for (int i = 0; i < n; i++) {
            struct client *c = &cl[who[i]];
            const char *verdict = NULL;
            if (items[i].revents & ZMQ_POLLIN) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                zmq_msg_recv(&m, c->sock, 0);
                int match = !zmq_msg_more(&m) && reply_matches(&m, c->r[c->next].expect);
                zmq_msg_close(&m);
                verdict = match ? "ok" : "mismatch";
                match ? ok++ : bad++;
            } else if (now - c->sent_us > (abandon >= 0 && !strcmp(c->r[c->next].expect, "-") ? abandon : timeout) * 1000LL) {
                zmq_close(c->sock); /* a REQ socket without its reply is of no more use */
                c->sock = req_socket(ctx, argv[1]);
                verdict = "timeout";
                lost++;
            }
            if (!verdict)
                continue;
            printf("%ld %zu %s %lld\n", who[i], c->next, verdict, now - c->sent_us);
            if (++c->next < c->n)
                send_next(c);
        }
    }
    fflush(stdout);
    fprintf(stderr, "zreqs: ok %ld mismatch %ld timeout %ld in %.3f s\n", ok, bad, lost,
            (now_us() - start) / 1e6);
    for (long k = 0; k < nclients; k++) {
        zmq_close(cl[k].sock);
        for (size_t i = 0; i < cl[k].n; i++) {
            free(cl[k].r[i].hex);
            free(cl[k].r[i].expect);
        }
        free(cl[k].r);
    }
    free(cl);
    free(items);
    free(who);
    zmq_ctx_term(ctx);
    return 0;
}

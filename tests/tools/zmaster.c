/* zmaster -- test MoM request port: a ROUTER bound at ENDPOINT that answers
 * each [identity, "", request] the way MODE says:
 *   zmaster ENDPOINT map FILE    FILE lines "<request hex> <reply hex>": the
 *                                recorded reply of the request with exactly
 *                                these bytes (an unknown request: no reply)
 *   zmaster ENDPOINT echo        reply "rep:" + the request bytes
 *   zmaster ENDPOINT silent      never reply
 * Options (after MODE): --delay-ms D (hold each reply), --log FILE (one line
 * per request received: its bytes in hex), --max-ms M (default 600000).
 * Stops on SIGTERM/SIGINT; then prints "zmaster: received N answered M
 * unknown U" on stderr. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>


struct held {
    zmq_msg_t ident, reply;
    long long due;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char digits[] = "0123456789abcdef";

static char *to_hex(const unsigned char *d, size_t len)
{
    char *h = malloc(2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        h[2 * i] = digits[d[i] >> 4];
        h[2 * i + 1] = digits[d[i] & 15];
    }
    h[2 * len] = '\0';
    return h;
}

static int nibble(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* Decode HEX in place; returns the byte count. */
static size_t from_hex(char *hex)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++)
        hex[i] = (char)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return n;
}

/* The map: request bytes -> reply bytes, in FILE order. */
struct entry { char *req, *rep; size_t reqlen, replen; };
static struct entry *map;
static size_t map_n;

static void load_map(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *sp = strchr(line, ' ');
        if (!sp) continue;
        *sp = '\0';
        sp[1 + strcspn(sp + 1, "\n")] = '\0';
        map = realloc(map, (map_n + 1) * sizeof *map);
        struct entry *e = &map[map_n++];
        e->req = strdup(line);
        e->reqlen = from_hex(e->req);
        e->rep = strdup(sp + 1);
        e->replen = from_hex(e->rep);
    }
    free(line);
    fclose(f);
}

static const struct entry *lookup(zmq_msg_t *req)
{
    for (size_t i = 0; i < map_n; i++)
        if (map[i].reqlen == zmq_msg_size(req) && memcmp(map[i].req, zmq_msg_data(req), map[i].reqlen) == 0)
            return &map[i];
    return NULL;
}

static void send_held(void *sock, struct held *h)
{
    zmq_msg_send(&h->ident, sock, ZMQ_SNDMORE);
    zmq_send(sock, "", 0, ZMQ_SNDMORE);
    zmq_msg_send(&h->reply, sock, 0);
}

/* Build the reply to REQ (in H->reply); 0 if there is none to give. */
static int make_reply(const char *mode, zmq_msg_t *req, struct held *h)
{
    if (!strcmp(mode, "echo")) {
        zmq_msg_init_size(&h->reply, zmq_msg_size(req) + 4);
        memcpy(zmq_msg_data(&h->reply), "rep:", 4);
        memcpy((char *)zmq_msg_data(&h->reply) + 4, zmq_msg_data(req), zmq_msg_size(req));
        return 1;
    }
    const struct entry *e = !strcmp(mode, "map") ? lookup(req) : NULL;
    if (!e)
        return 0;
    zmq_msg_init_size(&h->reply, e->replen);
    memcpy(zmq_msg_data(&h->reply), e->rep, e->replen);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: zmaster ENDPOINT map FILE|echo|silent [--delay-ms D] [--log FILE] [--max-ms M]\n");
        return 2;
    }
    const char *mode = argv[2];
    int i = 3;
    if (!strcmp(mode, "map"))
        load_map(argv[i++]);
    long delay = 0, max = 600000;
    FILE *log = NULL;
    for (; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--delay-ms")) delay = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-ms")) max = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--log")) log = fopen(argv[i + 1], "w");
        else { fprintf(stderr, "zmaster: unknown option %s\n", argv[i]); return 2; }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 0;
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_bind(sock, argv[1]) < 0) {
        fprintf(stderr, "zmaster: bind %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    fprintf(stderr, "zmaster: bound\n");
    size_t qcap = 1 << 16, qhead = 0, qn = 0;
    struct held *q = calloc(qcap, sizeof *q);
    long received = 0, answered = 0, unknown = 0;
    long long start = now_ms();
    while (!stop && now_ms() - start < max) {
        while (qn && q[qhead].due <= now_ms()) {
            send_held(sock, &q[qhead]);
            qhead = (qhead + 1) % qcap;
            qn--;
            answered++;
        }
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, qn ? 1 : 100) <= 0)
            continue;
        zmq_msg_t m[3];
        size_t n = 0;
        int more = 1;
        while (more) {
            zmq_msg_t *cur = &m[n < 3 ? n : 2];
            if (n >= 3) zmq_msg_close(cur);
            zmq_msg_init(cur);
            zmq_msg_recv(cur, sock, 0);
            more = zmq_msg_more(cur);
            n++;
        }
        received++;
        if (log) {
            char *hex = to_hex(zmq_msg_data(&m[n >= 3 ? 2 : n - 1]), zmq_msg_size(&m[n >= 3 ? 2 : n - 1]));
            fprintf(log, "%s\n", hex);
            fflush(log);
            free(hex);
        }
        struct held *h = &q[(qhead + qn) % qcap];
        if (n == 3 && qn < qcap && make_reply(mode, &m[2], h)) {
            zmq_msg_init(&h->ident);
            zmq_msg_move(&h->ident, &m[0]);
            h->due = now_ms() + delay;
            qn++;
        } else if (strcmp(mode, "silent")) {
            unknown++;
        }
        for (size_t k = 0; k < n && k < 3; k++)
            zmq_msg_close(&m[k]);
    }
    fprintf(stderr, "zmaster: received %ld answered %ld unknown %ld\n", received, answered, unknown);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    for (; qn; qn--, qhead = (qhead + 1) % qcap) {
        zmq_msg_close(&q[qhead].ident);
        zmq_msg_close(&q[qhead].reply);
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    if (log) fclose(log);
    free(q);
    for (size_t k = 0; k < map_n; k++) {
        free(map[k].req);
        free(map[k].rep);
    }
    free(map);
    return 0;
}

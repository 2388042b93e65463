/* campreq -- the request clients of one DC in the random-fault campaign
 * (tests/campaign/): N minions, each a REQ socket of its own that sends one
 * Salt-shaped request at a time and, like Salt's RequestClient, gives up on a
 * request after its timeout, closes the socket and sends again on a new one
 * (a new attempt with a new id), at most TRIES attempts.
 *   campreq EP --dc DC --log FILE --minions ID,ID,... [--inc K] [--seed S]
 *           [--timeout-ms T] [--auth-timeout-ms A] [--tries K]
 *           [--pause-ms LO,HI] [--auth P]
 * With probability P a request is a clear _auth (its load a map with cmd,
 * id, pub, nonce), otherwise a version-3 aes request ({enc, load, id,
 * version}); either carries "CREQ <id> " where the MoM can read it, the id
 * being DC.client.K.request.attempt. An echo MoM answers "rep:" + request.
 * One history line (camplog.h) per attempt when it ends: {"k":"rq","r":id,
 * "c":client,"n":request,"a":attempt,"au":0|1,"ws":sent wall,"ms":sent mono,
 * "o":"ok"|"mismatch"|"timeout"}; "gaveup" after the last attempt failed.
 * SIGUSR1: start no new request, end once none is in flight; SIGTERM: end. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "camplog.h"
#include "reqsock.h"

#define MAX_CLIENTS 64

static volatile sig_atomic_t stop, draining;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; draining = 1; }

struct client {
    const char *minion;
    void *sock;
    long n;             /* request number */
    int attempt, auth, busy;
    char rid[96];
    struct mpw req;
    struct stamp sent;
    double deadline, next_start;
};

static const char *dc, *ep;
static void *ctx;
static FILE *logf;
static long inc, timeout_ms = 13000, auth_timeout_ms = 7000;
static int tries = 3;
static double auth_frac = 0.1, pause_lo = 0.2, pause_hi = 1.0;
static uint64_t rnd = 1;

static void build(struct client *c, int idx)
{
    snprintf(c->rid, sizeof c->rid, "%s.%d.%ld.%ld.%d", dc, idx, inc, c->n, c->attempt);
    char mark[128];
    int ml = snprintf(mark, sizeof mark, "CREQ %s ", c->rid);
    c->req.n = 0;
    if (c->auth) {
        char pub[200];
        int pl = snprintf(pub, sizeof pub, "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0B%016llx\n-----END PUBLIC KEY-----\n",
                          (unsigned long long)camp_rand(&rnd));
        (void)pl;
        mpw_map(&c->req, 2);
        mpw_str(&c->req, "enc");
        mpw_str(&c->req, "clear");
        mpw_str(&c->req, "load");
        mpw_map(&c->req, 4);
        mpw_str(&c->req, "cmd");
        mpw_str(&c->req, "_auth");
        mpw_str(&c->req, "id");
        mpw_str(&c->req, c->minion);
        mpw_str(&c->req, "pub");
        mpw_str(&c->req, pub);
        mpw_str(&c->req, "nonce");
        mpw_str(&c->req, mark);
    } else {
        size_t pad = 100 + camp_rand(&rnd) % 500;
        unsigned char *load = malloc((size_t)ml + pad);
        memcpy(load, mark, (size_t)ml);
        for (size_t i = 0; i < pad; i++)
            load[ml + i] = (unsigned char)camp_rand(&rnd);
        mpw_map(&c->req, 4);
        mpw_str(&c->req, "enc");
        mpw_str(&c->req, "aes");
        mpw_str(&c->req, "load");
        mpw_bin(&c->req, load, (size_t)ml + pad);
        mpw_str(&c->req, "id");
        mpw_str(&c->req, c->minion);
        mpw_str(&c->req, "version");
        mpw_int(&c->req, 3);
        free(load);
    }
}

static void send_attempt(struct client *c, int idx)
{
    build(c, idx);
    c->sent = stamp_now();
    c->deadline = c->sent.m + (c->auth ? auth_timeout_ms : timeout_ms) / 1000.0;
    zmq_send(c->sock, c->req.b, c->req.n, 0);
    c->busy = 1;
}

static void start_next(struct client *c, int idx)
{
    c->n++;
    c->attempt = 1;
    c->auth = camp_uniform(&rnd, 0, 1) < auth_frac;
    send_attempt(c, idx);
}

static void log_attempt(struct client *c, int idx, const char *outcome)
{
    camplog_begin(logf, "rq", stamp_now());
    fprintf(logf, ",\"r\":\"%s\",\"dc\":\"%s\",\"c\":%d,\"n\":%ld,\"a\":%d,\"au\":%d,\"ws\":%.6f,\"ms\":%.6f,\"o\":\"%s\"",
            c->rid, dc, idx, c->n, c->attempt, c->auth, c->sent.w, c->sent.m, outcome);
    camplog_end(logf);
}

static void finished(struct client *c, double now)
{
    c->busy = 0;
    c->next_start = now + camp_uniform(&rnd, pause_lo, pause_hi);
}

static void on_reply(struct client *c, int idx)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    zmq_msg_recv(&m, c->sock, 0);
    int ok = zmq_msg_size(&m) == c->req.n + 4 && !memcmp(zmq_msg_data(&m), "rep:", 4) &&
             !memcmp((char *)zmq_msg_data(&m) + 4, c->req.b, c->req.n);
    zmq_msg_close(&m);
    log_attempt(c, idx, ok ? "ok" : "mismatch");
    finished(c, stamp_now().m);
}

static void on_timeout(struct client *c, int idx, double now)
{
    log_attempt(c, idx, "timeout");
    zmq_close(c->sock);
    c->sock = req_socket(ctx, ep);
    if (c->attempt < tries && !stop) {
        c->attempt++;
        send_attempt(c, idx);
        return;
    }
    camplog_begin(logf, "gaveup", stamp_now());
    fprintf(logf, ",\"dc\":\"%s\",\"c\":%d,\"n\":%ld", dc, idx, c->n);
    camplog_end(logf);
    finished(c, now);
}

static int split(char *list, struct client *cl)
{
    int n = 0;
    for (char *t = strtok(list, ","); t && n < MAX_CLIENTS; t = strtok(NULL, ","))
        cl[n++].minion = t;
    return n;
}

int main(int argc, char **argv)
{
    static struct client cl[MAX_CLIENTS];
    int n = 0;
    const char *log_path = NULL;
    ep = argc > 1 ? argv[1] : NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dc")) dc = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) log_path = argv[i + 1];
        else if (!strcmp(argv[i], "--minions")) n = split(argv[i + 1], cl);
        else if (!strcmp(argv[i], "--inc")) inc = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) rnd = strtoull(argv[i + 1], NULL, 10) * 2654435761u + 7;
        else if (!strcmp(argv[i], "--timeout-ms")) timeout_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--auth-timeout-ms")) auth_timeout_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--tries")) tries = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--auth")) auth_frac = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--pause-ms")) {
            pause_lo = atof(argv[i + 1]) / 1000.0;
            const char *comma = strchr(argv[i + 1], ',');
            pause_hi = comma ? atof(comma + 1) / 1000.0 : pause_lo;
        } else { fprintf(stderr, "campreq: unknown option %s\n", argv[i]); return 2; }
    }
    if (!ep || !dc || !log_path || !n) {
        fprintf(stderr, "usage: campreq EP --dc DC --log FILE --minions ID,... [options]\n");
        return 2;
    }
    rnd ^= (uint64_t)inc << 32;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGUSR1, on_usr1);
    logf = camplog_open(log_path);
    ctx = zmq_ctx_new();
    double now = stamp_now().m;
    for (int i = 0; i < n; i++) {
        cl[i].sock = req_socket(ctx, ep);
        cl[i].next_start = now + camp_uniform(&rnd, 0, pause_hi);
    }
    while (!stop) {
        now = stamp_now().m;
        int busy = 0;
        double wake = now + 0.2;
        zmq_pollitem_t it[MAX_CLIENTS];
        for (int i = 0; i < n; i++) {
            struct client *c = &cl[i];
            if (c->busy && now >= c->deadline)
                on_timeout(c, i, now);
            else if (!c->busy && !draining && now >= c->next_start)
                start_next(c, i);
            busy += c->busy;
            double t = c->busy ? c->deadline : c->next_start;
            if (t < wake)
                wake = t;
            it[i] = (zmq_pollitem_t){c->sock, 0, c->busy ? ZMQ_POLLIN : 0, 0};
        }
        if (draining && !busy)
            break;
        long ms = (long)((wake - now) * 1000) + 1;
        if (zmq_poll(it, n, ms > 0 ? ms : 0) <= 0)
            continue;
        for (int i = 0; i < n; i++)
            if (cl[i].busy && (it[i].revents & ZMQ_POLLIN))
                on_reply(&cl[i], i);
    }
    for (int i = 0; i < n; i++) {
        zmq_close(cl[i].sock);
        free(cl[i].req.b);
    }
    zmq_ctx_term(ctx);
    fclose(logf);
    return 0;
}

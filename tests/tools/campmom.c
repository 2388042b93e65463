/* campmom -- the random-fault campaign's master of masters (tests/campaign/):
 * a Salt-shaped publisher and request server that writes each thing it does
 * as a history line (camplog.h).
 *   campmom --pub EP --ret EP --log FILE [--rate R] [--first N] [--seed S]
 *           [--topics HEX,HEX,...] [--targeted P] [--size B] [--delay-ms D]
 *           [--max-ms M]
 * Publications, R a second, numbered from N, as a MoM with zmq_filtering and
 * order_masters publishes (salt/transport/zeromq.py, publish_payload): with
 * probability P a job for 1-3 of the minion topics (sha1 hex of their ids),
 * one [topic, payload] per minion then [b"syndic", payload]; otherwise
 * [b"broadcast", payload]. The payload is an envelope like Salt's
 * {enc: aes, load: <bin>, sig: <bin>, sig_algo: ...} whose opaque load starts
 * "CPUB <number> " and is padded to B bytes with random bytes. Line
 * {"k":"pub","q":number,"tp":[topics, first 12 chars],"n":connected subscribers}.
 * The PUB socket's connections are logged ("mconn": accepted/disconnected).
 * SIGUSR1 stops publishing (the campaign's quiet end); SIGTERM ends.
 * Requests: every [identity, "", payload] is logged ("mreq" with the id after
 * "CREQ " in it) and answered "rep:" + payload after 0..D ms ("mrep"). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "camplog.h"
#include "campzmq.h"

static volatile sig_atomic_t stop, quiet;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; quiet = 1; }

#define MAX_TOPICS 64
#define QCAP 4096

struct held { zmq_msg_t ident, reply; double due; char rid[96]; };

static char *topics[MAX_TOPICS];
static int ntopics;

static void split_topics(char *list)
{
    for (char *t = strtok(list, ","); t && ntopics < MAX_TOPICS; t = strtok(NULL, ","))
        topics[ntopics++] = t;
}

static void send_frames(void *pub, const char *topic, const unsigned char *p, size_t n)
{
    zmq_send(pub, topic, strlen(topic), ZMQ_SNDMORE);
    zmq_send(pub, p, n, 0);
}

/* One job: pick its targets, build the payload, send every copy, log it. */
static void publish(void *pub, FILE *log, long seq, double targeted, size_t size, uint64_t *rnd, int nsub)
{
    char head[64];
    int hl = snprintf(head, sizeof head, "CPUB %ld ", seq);
    unsigned char *load = malloc(size > (size_t)hl ? size : (size_t)hl);
    memcpy(load, head, (size_t)hl);
    for (size_t i = (size_t)hl; i < size; i++)
        load[i] = (unsigned char)camp_rand(rnd);
    unsigned char sig[64];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (unsigned char)camp_rand(rnd);
    struct mpw w = {0};
    mpw_map(&w, 4);
    mpw_str(&w, "enc");
    mpw_str(&w, "aes");
    mpw_str(&w, "load");
    mpw_bin(&w, load, size > (size_t)hl ? size : (size_t)hl);
    mpw_str(&w, "sig");
    mpw_bin(&w, sig, sizeof sig);
    mpw_str(&w, "sig_algo");
    mpw_str(&w, "PKCS1v15-SHA224");
    free(load);

    int chosen[3], nchosen = 0;
    if (ntopics && camp_uniform(rnd, 0, 1) < targeted) {
        int want = 1 + (int)(camp_rand(rnd) % 3);
        for (int tries = 0; nchosen < want && tries < 20; tries++) {
            int t = (int)(camp_rand(rnd) % (uint64_t)ntopics), dup = 0;
            for (int k = 0; k < nchosen; k++)
                dup |= chosen[k] == t;
            if (!dup)
                chosen[nchosen++] = t;
        }
    }
    struct stamp s = stamp_now();
    if (nchosen) {
        for (int k = 0; k < nchosen; k++)
            send_frames(pub, topics[chosen[k]], w.b, w.n);
        send_frames(pub, "syndic", w.b, w.n);
    } else {
        send_frames(pub, "broadcast", w.b, w.n);
    }
    camplog_begin(log, "pub", s);
    fprintf(log, ",\"q\":%ld,\"n\":%d,\"tp\":[", seq, nsub);
    if (nchosen) {
        for (int k = 0; k < nchosen; k++)
            fprintf(log, "\"%.12s\",", topics[chosen[k]]);
        fputs("\"syndic\"]", log);
    } else {
        fputs("\"broadcast\"]", log);
    }
    camplog_end(log);
    free(w.b);
}

/* Connection events of the PUB socket; returns the change of the count. */
static int read_monitor(void *mon, FILE *log)
{
    int delta = 0;
    for (int what; (what = camp_monitor_next(mon));) {
        delta += what == ZMQ_EVENT_ACCEPTED ? 1 : -1;
        camplog_begin(log, "mconn", stamp_now());
        fprintf(log, ",\"e\":\"%s\"", what == ZMQ_EVENT_ACCEPTED ? "accepted" : "disconnected");
        camplog_end(log);
    }
    return delta;
}

static void answer_due(void *ret, FILE *log, struct held *q, size_t *head, size_t *n, double now)
{
    while (*n && q[*head].due <= now) {
        struct held *h = &q[*head];
        zmq_msg_send(&h->ident, ret, ZMQ_SNDMORE);
        zmq_send(ret, "", 0, ZMQ_SNDMORE);
        zmq_msg_send(&h->reply, ret, 0);
        camplog_begin(log, "mrep", stamp_now());
        fprintf(log, ",\"r\":\"%s\"", h->rid);
        camplog_end(log);
        *head = (*head + 1) % QCAP;
        (*n)--;
    }
}

/* One request from the ROUTER: log it, queue its answer. */
static void take_request(void *ret, FILE *log, struct held *q, size_t head, size_t *n, double delay_ms,
                         uint64_t *rnd)
{
    zmq_msg_t m[3];
    size_t k = camp_recv(ret, m, 3);
    struct stamp s = stamp_now();
    char rid[96] = "?";
    if (k == 3)
        camp_find_id(zmq_msg_data(&m[2]), zmq_msg_size(&m[2]), "CREQ ", rid, sizeof rid);
    camplog_begin(log, "mreq", s);
    fprintf(log, ",\"r\":\"%s\",\"f\":%zu", rid, k);
    camplog_end(log);
    if (k == 3 && *n < QCAP) {
        struct held *h = &q[(head + *n) % QCAP];
        zmq_msg_init(&h->ident);
        zmq_msg_move(&h->ident, &m[0]);
        zmq_msg_init_size(&h->reply, zmq_msg_size(&m[2]) + 4);
        memcpy(zmq_msg_data(&h->reply), "rep:", 4);
        memcpy((char *)zmq_msg_data(&h->reply) + 4, zmq_msg_data(&m[2]), zmq_msg_size(&m[2]));
        h->due = s.m + camp_uniform(rnd, 0, delay_ms) / 1000.0;
        snprintf(h->rid, sizeof h->rid, "%s", rid);
        (*n)++;
    }
    camp_close(m, k, 3);
}

int main(int argc, char **argv)
{
    const char *pub_ep = NULL, *ret_ep = NULL, *log_path = NULL;
    double rate = 20, targeted = 0.3, delay_ms = 20;
    long seq = 0, max_ms = 7200000, size = 300;
    uint64_t rnd = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pub")) pub_ep = argv[i + 1];
        else if (!strcmp(argv[i], "--ret")) ret_ep = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) log_path = argv[i + 1];
        else if (!strcmp(argv[i], "--rate")) rate = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--first")) seq = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) rnd = strtoull(argv[i + 1], NULL, 10) * 2654435761u + 1;
        else if (!strcmp(argv[i], "--topics")) split_topics(argv[i + 1]);
        else if (!strcmp(argv[i], "--targeted")) targeted = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--size")) size = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--delay-ms")) delay_ms = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-ms")) max_ms = atol(argv[i + 1]);
        else { fprintf(stderr, "campmom: unknown option %s\n", argv[i]); return 2; }
    }
    if (!pub_ep || !ret_ep || !log_path || rate <= 0) {
        fprintf(stderr, "usage: campmom --pub EP --ret EP --log FILE [--rate R] [--first N] ...\n");
        return 2;
    }
    rnd ^= (uint64_t)seq;
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGUSR1, on_usr1);
    FILE *log = camplog_open(log_path);
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB), *ret = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 1000, zero = 0; /* Salt's pub_hwm */
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(ret, ZMQ_LINGER, &zero, sizeof zero);
    zmq_socket_monitor(pub, "inproc://campmom-mon", ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_connect(mon, "inproc://campmom-mon");
    if (zmq_bind(pub, pub_ep) < 0 || zmq_bind(ret, ret_ep) < 0) {
        fprintf(stderr, "campmom: bind: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    fprintf(stderr, "campmom: bound\n");
    struct held *q = calloc(QCAP, sizeof *q);
    size_t qhead = 0, qn = 0;
    int nsub = 0;
    double t0 = stamp_now().m, next = t0;
    while (!stop && stamp_now().m - t0 < max_ms / 1000.0) {
        double now = stamp_now().m;
        answer_due(ret, log, q, &qhead, &qn, now);
        if (!quiet && now >= next) {
            nsub += read_monitor(mon, log);
            publish(pub, log, seq++, targeted, (size_t)size, &rnd, nsub);
            next += 1.0 / rate;
            if (next < now - 1) /* stopped for a while (SIGSTOP): no burst of catch-up */
                next = now;
            continue;
        }
        double wait = quiet ? 0.1 : next - now;
        if (qn && q[qhead].due - now < wait)
            wait = q[qhead].due - now;
        zmq_pollitem_t it[2] = {{ret, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 2, wait > 0 ? (long)(wait * 1000) + 1 : 0) <= 0)
            continue;
        if (it[1].revents)
            nsub += read_monitor(mon, log);
        if (it[0].revents)
            take_request(ret, log, q, qhead, &qn, delay_ms, &rnd);
    }
    for (; qn; qn--, qhead = (qhead + 1) % QCAP) {
        zmq_msg_close(&q[qhead].ident);
        zmq_msg_close(&q[qhead].reply);
    }
    free(q);
    zmq_socket_monitor(pub, NULL, 0);
    zmq_close(mon);
    zmq_close(pub);
    zmq_close(ret);
    zmq_ctx_term(ctx);
    fclose(log);
    return 0;
}

/* campsub -- a minion or syndic of the random-fault campaign (tests/campaign/):
 * a SUB socket connected to a saltrelay-down's publish port that writes a
 * history line (camplog.h) for every publication it receives and every
 * connection it makes or loses.
 *   campsub EP --name NAME --log FILE [--topic T]... [--rcvhwm N] [--rcvbuf B]
 *           [--slow-ms D]
 * Without --topic it subscribes to everything. Lines: {"k":"d","s":NAME,
 * "q":number after "CPUB " in the payload,"tp":topic (first 12 chars)} per
 * message; {"k":"sev","s":NAME,"e":"connected"|"disconnected"|"slow"|"fast"}.
 * SIGUSR1 makes it slow (D ms asleep after each message, default 50), SIGUSR2
 * fast again; SIGTERM ends it. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "camplog.h"
#include "campzmq.h"

static volatile sig_atomic_t stop, slow;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; slow = 1; }
static void on_usr2(int sig) { (void)sig; slow = 0; }

static void event(FILE *log, const char *name, const char *what)
{
    camplog_begin(log, "sev", stamp_now());
    fprintf(log, ",\"s\":\"%s\",\"e\":\"%s\"", name, what);
    camplog_end(log);
}

static void read_monitor(void *mon, FILE *log, const char *name)
{
    for (int what; (what = camp_monitor_next(mon));)
        event(log, name, what == ZMQ_EVENT_CONNECTED ? "connected" : "disconnected");
}

/* One message: its number and topic to the history. */
static void take(void *sub, FILE *log, const char *name)
{
    zmq_msg_t f[4];
    size_t n = camp_recv(sub, f, 4);
    struct stamp s = stamp_now();
    zmq_msg_t *payload = &f[n >= 2 ? 1 : 0];
    char seq[32] = "-1", topic[13] = "";
    camp_find_id(zmq_msg_data(payload), zmq_msg_size(payload), "CPUB ", seq, sizeof seq);
    if (n >= 2) {
        size_t tl = zmq_msg_size(&f[0]) < 12 ? zmq_msg_size(&f[0]) : 12;
        memcpy(topic, zmq_msg_data(&f[0]), tl);
        topic[tl] = '\0';
        for (size_t i = 0; i < tl; i++)
            if (topic[i] <= ' ' || topic[i] >= 127 || topic[i] == '"' || topic[i] == '\\')
                topic[i] = '?';
    }
    camplog_begin(log, "d", s);
    fprintf(log, ",\"s\":\"%s\",\"q\":%s,\"tp\":\"%s\",\"f\":%zu", name, seq, topic, n);
    camplog_end(log);
    camp_close(f, n, 4);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: campsub EP --name NAME --log FILE [--topic T]... [--rcvhwm N] [--rcvbuf B] [--slow-ms D]\n");
        return 2;
    }
    const char *name = "sub", *log_path = NULL;
    long slow_ms = 50;
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int topics = 0, hwm = 0, ivl = 100, zero = 0;
    zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sub, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(sub, ZMQ_LINGER, &zero, sizeof zero);
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topic")) {
            zmq_setsockopt(sub, ZMQ_SUBSCRIBE, argv[i + 1], strlen(argv[i + 1]));
            topics++;
        } else if (!strcmp(argv[i], "--name")) name = argv[i + 1];
        else if (!strcmp(argv[i], "--log")) log_path = argv[i + 1];
        else if (!strcmp(argv[i], "--slow-ms")) slow_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rcvhwm") || !strcmp(argv[i], "--rcvbuf")) {
            int v = atoi(argv[i + 1]);
            zmq_setsockopt(sub, !strcmp(argv[i], "--rcvhwm") ? ZMQ_RCVHWM : ZMQ_RCVBUF, &v, sizeof v);
        } else { fprintf(stderr, "campsub: unknown option %s\n", argv[i]); return 2; }
    }
    if (!log_path) {
        fprintf(stderr, "campsub: --log is required\n");
        return 2;
    }
    if (!topics)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    FILE *log = camplog_open(log_path);
    zmq_socket_monitor(sub, "inproc://campsub-mon", ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_connect(mon, "inproc://campsub-mon");
    if (zmq_connect(sub, argv[1]) < 0) {
        fprintf(stderr, "campsub: connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    event(log, name, "started");
    int was_slow = 0;
    while (!stop) {
        if (slow != was_slow) {
            was_slow = slow;
            event(log, name, slow ? "slow" : "fast");
        }
        zmq_pollitem_t it[2] = {{sub, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, 2, 200) <= 0)
            continue;
        if (it[1].revents)
            read_monitor(mon, log, name);
        if (it[0].revents) {
            take(sub, log, name);
            if (slow) {
                struct timespec d = {slow_ms / 1000, (slow_ms % 1000) * 1000000L};
                nanosleep(&d, NULL);
            }
        }
    }
    zmq_socket_monitor(sub, NULL, 0);
    zmq_close(mon);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    fclose(log);
    return 0;
}

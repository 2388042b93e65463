/* unit_rpipe.c -- the Redis pipeline (redis/rpipe.c) against real sockets:
 * a real redis-server for tagged replies, and a peer that answers the
 * connection's PING and then never reads, for the byte cap, the writes that
 * must not block and the timeout policy. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "rpipe.h"
#include "unit.h"

#define MAX_TAGS 64

struct got {
    uint64_t tag[MAX_TAGS];
    int type[MAX_TAGS]; /* reply type, or -1 for lost */
    int n;
};

static void record(void *arg, uint64_t tag, redisReply *r)
{
    struct got *g = arg;
    if (g->n < MAX_TAGS) {
        g->tag[g->n] = tag;
        g->type[g->n++] = r ? r->type : -1;
    }
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A peer that answers the first PING of each connection and then reads
 * nothing more (a Redis stalled behind a dead WAN link). */
static pid_t stalled_peer(int *port)
{
    int lfd = listen_any(port);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed check exits the test: ctest must not wait 60 s for this */
        for (int k = 0; k < 4; k++) {
            int c = accept(lfd, NULL, NULL);
            char buf[256];
            if (c >= 0 && read(c, buf, sizeof buf) > 0 && write(c, "+PONG\r\n", 7) == 7)
                continue; /* C stays open and unread */
        }
        sleep(60);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static struct rconn *conn_to(int port, int timeout_ms)
{
    struct redis_url url = {.port = port};
    snprintf(url.host, sizeof url.host, "127.0.0.1");
    return rconn_new(&url, "unit", timeout_ms);
}

/* A peer process (started by START), a connection to it and what came back. */
struct fixture {
    pid_t peer;
    struct rconn *rc;
    struct got g;
};

static void setup(struct fixture *f, pid_t (*start)(int *port))
{
    log_init("unit_rpipe", LOG_LVL_ERROR);
    int port;
    memset(f, 0, sizeof *f);
    f->peer = start(&port);
    f->rc = conn_to(port, 1000);
    for (int k = 0; k < 100 && !rconn_get(f->rc); k++) /* redis-server takes a moment to listen */
        usleep(50 * 1000);
}

static void teardown(struct fixture *f, struct rpipe **p)
{
    rpipe_destroy(p);
    rconn_destroy(&f->rc);
    kill(f->peer, SIGKILL);
    waitpid(f->peer, NULL, 0);
}

static int append_value(struct rpipe *p, uint64_t tag, size_t size)
{
    char *v = malloc(size);
    memset(v, 'v', size);
    const char *argv[] = {"SET", "k", v};
    size_t argvlen[] = {3, 1, size};
    int rc = rpipe_append_argv(p, tag, 3, argv, argvlen);
    free(v);
    return rc;
}

UNIT_TEST(byte_cap_per_batch)
{
    struct fixture f;
    setup(&f, stalled_peer);
    struct got *g = &f.g;
    struct rpipe *p = rpipe_new(f.rc, 64 * 1024, 100, 300, record, g);
    int taken = 0;
    while (taken < 20 && append_value(p, (uint64_t)taken + 1, 10000) == RPIPE_OK)
        taken++;
    /* each SET is 10,030 bytes formatted: six fit under 64 KiB, a seventh would not */
    CHECK_INT(taken, 6);
    CHECK_INT(rpipe_inflight(p), 6);
    CHECK(rpipe_inflight_bytes(p) <= 64 * 1024);
    CHECK_INT(append_value(p, 99, 100), RPIPE_OK); /* a small one still fits */
    CHECK_INT(append_value(p, 100, 10000), RPIPE_FULL);
    rpipe_destroy(&p);
    CHECK_INT(g->n, 7); /* handed back as lost, in order */
    for (int i = 0; i < 6; i++)
        CHECK(g->tag[i] == (uint64_t)i + 1 && g->type[i] == -1);
    teardown(&f, &p);
}

UNIT_TEST(large_command_alone_never_blocks_then_times_out)
{
    struct fixture f;
    setup(&f, stalled_peer);
    struct got *g = &f.g;
    struct rpipe *p = rpipe_new(f.rc, 1 << 20, 100, 400, record, g);
    /* far larger than the cap and than the socket buffers: taken alone */
    CHECK_INT(append_value(p, 7, 32u << 20), RPIPE_OK);
    CHECK_INT(append_value(p, 8, 10), RPIPE_FULL);
    long long t0 = clock_mono_ms();
    rpipe_io(p);
    CHECK(clock_mono_ms() - t0 < 200); /* a peer that does not read costs no wait */
    struct part_poll w = {.timeout_ms = 10000};
    rpipe_wait(p, &w);
    CHECK_INT(w.n, 1);
    CHECK(w.items[0].events & ZMQ_POLLOUT); /* the rest is written when the socket takes it */
    CHECK(w.timeout_ms <= 401);
    usleep(450 * 1000);
    rpipe_io(p); /* no reply within 400 ms: the connection is failed */
    CHECK_INT(rpipe_inflight(p), 0);
    CHECK_INT(g->n, 1);
    CHECK(g->tag[0] == 7 && g->type[0] == -1);
    free(w.items);
    teardown(&f, &p);
}

/* Wait for every reply (bounded: 200 waits of at most 100 ms). */
static void run_until_idle(struct rpipe *p)
{
    for (int k = 0; k < 200 && rpipe_inflight(p); k++) {
        struct part_poll w = {.timeout_ms = 100};
        rpipe_wait(p, &w);
        zmq_poll(w.items, w.n, w.timeout_ms);
        free(w.items);
        rpipe_io(p);
    }
}

static pid_t real_redis(int *port)
{
    int lfd = listen_any(port); /* a free port: closed right before redis-server takes it */
    close(lfd);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* kept across the exec */
        char p[16];
        snprintf(p, sizeof p, "%d", *port);
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--logfile", "/dev/null", (char *)NULL);
        _exit(127);
    }
    return pid;
}

UNIT_TEST(replies_come_back_with_their_tags)
{
    struct fixture f;
    setup(&f, real_redis);
    struct got *g = &f.g;
    struct rpipe *p = rpipe_new(f.rc, 1 << 20, 100, 2000, record, g);
    CHECK_INT(rpipe_append(p, 10, "SET %s %s", "a", "41"), RPIPE_OK);
    CHECK_INT(rpipe_append(p, 11, "INCR %s", "a"), RPIPE_OK);
    CHECK_INT(rpipe_append(p, 12, "NOSUCHCOMMAND"), RPIPE_OK);
    CHECK_INT(rpipe_append(p, 13, "GET %s", "a"), RPIPE_OK);
    run_until_idle(p);
    CHECK_INT(g->n, 4);
    CHECK(g->tag[0] == 10 && g->type[0] == REDIS_REPLY_STATUS);
    CHECK(g->tag[1] == 11 && g->type[1] == REDIS_REPLY_INTEGER);
    CHECK(g->tag[2] == 12 && g->type[2] == REDIS_REPLY_ERROR);
    CHECK(g->tag[3] == 13 && g->type[3] == REDIS_REPLY_STRING);
    redisReply *r = rconn_command(f.rc, "GET a"); /* idle: blocking commands work again */
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "42") == 0);
    freeReplyObject(r);
    teardown(&f, &p);
}

UNIT_TEST(readonly_reply_fails_the_connection)
{
    struct fixture f;
    setup(&f, real_redis);
    struct got *g = &f.g;
    redisReply *r = rconn_command(f.rc, "REPLICAOF 127.0.0.1 1"); /* a replica now: writes are refused */
    CHECK(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    struct rpipe *p = rpipe_new(f.rc, 1 << 20, 100, 2000, record, g);
    CHECK_INT(rpipe_append(p, 1, "SET %s %s", "a", "1"), RPIPE_OK);
    CHECK_INT(rpipe_append(p, 2, "GET %s", "a"), RPIPE_OK);
    run_until_idle(p);
    CHECK_INT(g->n, 2);
    CHECK(g->tag[0] == 1 && g->type[0] == REDIS_REPLY_ERROR); /* READONLY, handed back */
    CHECK(g->tag[1] == 2 && g->type[1] == -1);                /* then the connection was failed */
    CHECK(rconn_retry_in_ms(f.rc) > 0);
    teardown(&f, &p);
}

/* rpipe.c -- the Redis pipeline: tagged commands, non-blocking writes,
 * replies handed back as they come; see rpipe.h. */
#include "rpipe.h"

#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"

struct cmd {
    uint64_t tag;
    size_t bytes;
};

struct rpipe {
    struct rconn *rc;
    redisContext *c;     /* while commands are in flight: the context they went on */
    struct cmd *ring;    /* the commands in flight, oldest first (replies come in order) */
    size_t cap, head, count;
    size_t bytes;        /* formatted bytes of the commands in flight */
    size_t batch_bytes;
    int timeout_ms;
    long long waiting_since; /* monotonic: the last reply, or the first append into an idle pipeline */
    int unwritten;       /* hiredis's output buffer may hold bytes not yet written */
    int in_io;           /* replies are being handed back: a failure waits for the end */
    char fail_why[128];  /* rpipe_fail called meanwhile */
    rpipe_reply_fn *on_reply;
    void *arg;
};

struct rpipe *rpipe_new(struct rconn *rc, size_t batch_bytes, size_t batch_max, int timeout_ms,
                        rpipe_reply_fn *on_reply, void *arg)
{
    struct rpipe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ring = calloc(batch_max ? batch_max : 1, sizeof *p->ring);
    if (!p->ring) {
        free(p);
        return NULL;
    }
    p->rc = rc;
    p->cap = batch_max ? batch_max : 1;
    p->batch_bytes = batch_bytes;
    p->timeout_ms = timeout_ms;
    p->on_reply = on_reply;
    p->arg = arg;
    return p;
}

/* Hand back every command in flight as lost. */
static void lose_all(struct rpipe *p)
{
    while (p->count) {
        uint64_t tag = p->ring[p->head].tag;
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->on_reply(p->arg, tag, NULL);
    }
    p->bytes = 0;
    p->c = NULL;
    p->unwritten = 0;
}

static void fail(struct rpipe *p, const char *why)
{
    rconn_fail(p->rc, why);
    lose_all(p);
}

void rpipe_destroy(struct rpipe **pp)
{
    struct rpipe *p = *pp;
    if (!p)
        return;
    lose_all(p);
    free(p->ring);
    free(p);
    *pp = NULL;
}

static size_t digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/* The size of a command in Redis's protocol (what hiredis buffers). */
static size_t resp_size(int argc, const size_t *argvlen)
{
    size_t n = 1 + digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        n += 1 + digits(argvlen[i]) + 2 + argvlen[i] + 2;
    return n;
}

int rpipe_room(const struct rpipe *p, size_t ncmds, size_t bytes)
{
    return p->count + ncmds <= p->cap && (p->count == 0 || p->bytes + bytes <= p->batch_bytes);
}

/* The context to append to, or NULL (no connection). */
static redisContext *context(struct rpipe *p)
{
    return p->c ? p->c : rconn_get(p->rc);
}

static void appended(struct rpipe *p, redisContext *c, uint64_t tag, size_t bytes)
{
    if (!p->count)
        p->waiting_since = clock_mono_ms();
    p->ring[(p->head + p->count) % p->cap] = (struct cmd){tag, bytes};
    p->count++;
    p->bytes += bytes;
    p->c = c;
    p->unwritten = 1;
}

int rpipe_append_argv(struct rpipe *p, uint64_t tag, int argc, const char **argv, const size_t *argvlen)
{
    size_t bytes = resp_size(argc, argvlen);
    if (!rpipe_room(p, 1, bytes))
        return RPIPE_FULL;
    redisContext *c = context(p);
    if (!c)
        return RPIPE_DOWN;
    if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK) {
        fail(p, "out of memory formatting a command");
        return RPIPE_DOWN;
    }
    appended(p, c, tag, bytes);
    return RPIPE_OK;
}

int rpipe_append_formatted(struct rpipe *p, uint64_t tag, const char *cmd, size_t len)
{
    if (!rpipe_room(p, 1, len))
        return RPIPE_FULL;
    redisContext *c = context(p);
    if (!c)
        return RPIPE_DOWN;
    if (redisAppendFormattedCommand(c, cmd, len) != REDIS_OK) {
        fail(p, "out of memory appending a command");
        return RPIPE_DOWN;
    }
    appended(p, c, tag, len);
    return RPIPE_OK;
}

int rpipe_append(struct rpipe *p, uint64_t tag, const char *fmt, ...)
{
    char *cmd;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return RPIPE_DOWN;
    int rc = rpipe_append_formatted(p, tag, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return rc;
}

void rpipe_wait(struct rpipe *p, struct part_poll *w)
{
    if (!p->c)
        return;
    part_poll_fd(w, p->c->fd, (short)(ZMQ_POLLIN | (p->unwritten ? ZMQ_POLLOUT : 0)));
    part_poll_timeout(w, p->waiting_since + p->timeout_ms - clock_mono_ms() + 1);
}

/* hiredis takes EAGAIN as "try again later" only on a context without
 * REDIS_BLOCK; the connection is blocking again for its other users after. */
static void set_nonblocking(redisContext *c, int on)
{
    int fl = fcntl(c->fd, F_GETFL);
    if (fl >= 0)
        fcntl(c->fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    c->flags = on ? c->flags & ~REDIS_BLOCK : c->flags | REDIS_BLOCK;
}

/* Write (if WRITE) and read without waiting; -1 on an I/O or protocol error. */
static int exchange(struct rpipe *p, redisContext *c, int write)
{
    int done = 0;
    if (p->unwritten && write) {
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
        p->unwritten = !done;
    }
    if (redisBufferRead(c) != REDIS_OK)
        return -1;
    void *r = NULL;
    while (p->count && !p->fail_why[0] && redisGetReplyFromReader(c, &r) == REDIS_OK && r) {
        uint64_t tag = p->ring[p->head].tag;
        p->bytes -= p->ring[p->head].bytes;
        p->head = (p->head + 1) % p->cap;
        p->count--;
        p->waiting_since = clock_mono_ms();
        p->on_reply(p->arg, tag, r);
        /* a primary demoted by a failover: to the new one (rconn asks Sentinel again) */
        if (rconn_note_reply(p->rc, r) && !p->fail_why[0])
            snprintf(p->fail_why, sizeof p->fail_why, "the server is no longer the primary (READONLY)");
        freeReplyObject(r);
        r = NULL;
    }
    return c->err ? -1 : 0;
}

void rpipe_io(struct rpipe *p)
{
    redisContext *c = p->c;
    if (!c)
        return;
    /* the old primary may still answer: nothing more is written there (what
     * it answered already is read) */
    int moved = rconn_switched(p->rc);
    set_nonblocking(c, 1);
    p->in_io = 1;
    int rc = exchange(p, c, !moved);
    p->in_io = 0;
    set_nonblocking(c, 0);
    if (!p->fail_why[0] && (moved || rconn_switched(p->rc)))
        snprintf(p->fail_why, sizeof p->fail_why, "the sentinels switched the primary");
    if (p->fail_why[0]) {
        char why[128];
        snprintf(why, sizeof why, "%s", p->fail_why);
        p->fail_why[0] = '\0';
        fail(p, why);
    } else if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "%s", c->errstr[0] ? c->errstr : "I/O error");
        fail(p, why);
    } else if (p->count && clock_mono_ms() - p->waiting_since > p->timeout_ms) {
        char why[64];
        snprintf(why, sizeof why, "no reply within %d ms", p->timeout_ms);
        fail(p, why);
    } else if (!p->count) {
        p->c = NULL;
    }
}

void rpipe_fail(struct rpipe *p, const char *why)
{
    if (p->in_io)
        snprintf(p->fail_why, sizeof p->fail_why, "%s", why);
    else
        fail(p, why);
}

void rpipe_flush(struct rpipe *p, int timeout_ms)
{
    long long until = clock_mono_ms() + timeout_ms;
    rpipe_io(p);
    while (p->c && clock_mono_ms() < until) {
        struct pollfd pfd = {.fd = p->c->fd, .events = (short)(POLLIN | (p->unwritten ? POLLOUT : 0))};
        poll(&pfd, 1, (int)(until - clock_mono_ms()));
        rpipe_io(p);
    }
}

size_t rpipe_inflight(const struct rpipe *p)
{
    return p->count;
}

size_t rpipe_inflight_bytes(const struct rpipe *p)
{
    return p->bytes;
}

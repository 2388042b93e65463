/* stream_reader.c -- blocking stream reader in its own thread; see stream_reader.h. */
#include "stream_reader.h"

#include <string.h>

#include "clock.h"
#include "group_prune.h"
#include "log.h"
#include "rconn.h"
#include "streamid.h"

#define READ_BLOCK_MS 500
#define READ_COUNT_MAX 256
#define CLAIM_EVERY_MS 1000
#define PRUNE_EVERY_MS 5000
/* a consumer idle this many claim_idle_ms with nothing pending is of a dead
 * instance (a live one reads every READ_BLOCK_MS): removed (group_prune.h) */
#define PRUNE_IDLE_CLAIMS 2

struct stream_reader {
    struct stream_reader_cfg cfg;
    zsock_t *pipe;
    struct rconn *rc;
    long long credit;
    int group_ready;   /* XGROUP CREATE done on this connection */
    int pending_phase; /* group mode: still reading our own pending entries */
    char cursor[STREAMID_STRLEN];
    char claim_cursor[STREAMID_STRLEN]; /* XAUTOCLAIM's, "0-0" = from the start */
    long long claim_at;                 /* monotonic ms of the next XAUTOCLAIM */
    long long prune_at;                 /* monotonic ms of the next removal of dead consumers */
    int prune_refused;                  /* Redis refuses it (logged once) */
    int stop;
};

static void free_str(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Move R's string into MSG without copying (hiredis allocates with malloc). */
static void steal_into(zmq_msg_t *msg, redisReply *r)
{
    if (r->len == 0) {
        zmq_msg_init(msg);
        return;
    }
    zmq_msg_init_data(msg, r->str, (size_t)r->len, free_str, NULL);
    r->str = NULL;
}

static int entry_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= STREAMID_STRLEN)
        return 0;
    const redisReply *f = e->element[1];
    if (f->type == REDIS_REPLY_NIL)
        return 1;
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2)
        return 0;
    for (size_t i = 0; i < f->elements; i++)
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static void forward_entry(struct stream_reader *s, redisReply *e)
{
    void *pipe = zsock_resolve(s->pipe);
    redisReply *f = e->element[1];
    size_t nf = f->type == REDIS_REPLY_ARRAY ? f->elements : 0;
    memcpy(s->cursor, e->element[0]->str, (size_t)e->element[0]->len + 1);
    zmq_msg_t m;
    steal_into(&m, e->element[0]);
    zmq_msg_send(&m, pipe, nf ? ZMQ_SNDMORE : 0);
    for (size_t i = 0; i < nf; i++) {
        steal_into(&m, f->element[i]);
        zmq_msg_send(&m, pipe, i + 1 < nf ? ZMQ_SNDMORE : 0);
    }
    s->credit--;
}

static int create_group(struct stream_reader *s)
{
    redisReply *r = rconn_command(s->rc, "XGROUP CREATE %s %s 0 MKSTREAM", s->cfg.key, s->cfg.group);
    if (!r)
        return -1;
    int ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
    if (!ok) {
        log_error("cannot create consumer group %s on %s: %s", s->cfg.group, s->cfg.key, r->str);
        rconn_fail(s->rc, "XGROUP CREATE refused");
    }
    freeReplyObject(r);
    s->group_ready = ok;
    s->pending_phase = 1; /* after any (re)connect: what was delivered to us and not acknowledged */
    strcpy(s->cursor, "0");
    return ok ? 0 : -1;
}

static redisReply *read_batch(struct stream_reader *s, long long count)
{
    if (!s->cfg.group[0])
        return rconn_command(s->rc, "XREAD COUNT %lld BLOCK %d STREAMS %s %s", count, READ_BLOCK_MS,
                             s->cfg.key, s->cursor);
    if (s->pending_phase)
        return rconn_command(s->rc, "XREADGROUP GROUP %s %s COUNT %lld STREAMS %s %s", s->cfg.group,
                             s->cfg.consumer, count, s->cfg.key, s->cursor);
    return rconn_command(s->rc, "XREADGROUP GROUP %s %s COUNT %lld BLOCK %d STREAMS %s >", s->cfg.group,
                         s->cfg.consumer, count, READ_BLOCK_MS, s->cfg.key);
}

/* Forward the entries of one XREAD/XREADGROUP reply; -1 if it is unusable. */
static int handle_reply(struct stream_reader *s, redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_ERROR) {
        log_error("reading %s: %s; reconnecting", s->cfg.key, r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY) {
        log_error("reading %s: unexpected reply shape; reconnecting", s->cfg.key);
        return -1;
    }
    redisReply *entries = r->element[0]->element[1];
    if (s->pending_phase && entries->elements == 0)
        s->pending_phase = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        if (!entry_ok(entries->element[i])) {
            log_error("reading %s: malformed entry; reconnecting", s->cfg.key);
            return -1;
        }
        forward_entry(s, entries->element[i]);
    }
    return 0;
}

/* Group mode: take over what a dead consumer read and never acknowledged.
 * Reply: [next cursor, [entries], [deleted ids]]. */
static int claim_abandoned(struct stream_reader *s, long long count)
{
    long long now = clock_mono_ms();
    if (!s->cfg.claim_idle_ms || now < s->claim_at)
        return 0;
    s->claim_at = now + CLAIM_EVERY_MS;
    if (!s->claim_cursor[0])
        strcpy(s->claim_cursor, "0-0");
    redisReply *r = rconn_command(s->rc, "XAUTOCLAIM %s %s %s %lld %s COUNT %lld", s->cfg.key, s->cfg.group,
                                  s->cfg.consumer, s->cfg.claim_idle_ms, s->claim_cursor, count);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[0]->type == REDIS_REPLY_STRING &&
             r->element[0]->len < STREAMID_STRLEN && r->element[1]->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; ok && i < r->element[1]->elements; i++)
        ok = entry_ok(r->element[1]->element[i]);
    if (!ok) {
        log_error("claiming abandoned entries of %s: %s; reconnecting", s->cfg.key,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    memcpy(s->claim_cursor, r->element[0]->str, (size_t)r->element[0]->len + 1);
    char keep[STREAMID_STRLEN]; /* forward_entry moves the read cursor: claims do not */
    memcpy(keep, s->cursor, sizeof keep);
    for (size_t i = 0; i < r->element[1]->elements; i++)
        forward_entry(s, r->element[1]->element[i]);
    memcpy(s->cursor, keep, sizeof keep);
    freeReplyObject(r);
    return 0;
}

/* Group mode with claims: now and then, the consumers of dead instances
 * out of the group (group_prune.h); a refusal is logged once, never fatal. */
static void prune_dead(struct stream_reader *s)
{
    long long now = clock_mono_ms();
    if (!s->cfg.claim_idle_ms || now < s->prune_at)
        return;
    s->prune_at = now + PRUNE_EVERY_MS;
    char why[200];
    long long n = group_prune(s->rc, s->cfg.key, s->cfg.group, s->cfg.consumer,
                              (long long)PRUNE_IDLE_CLAIMS * s->cfg.claim_idle_ms, why, sizeof why);
    if (n < 0 && !s->prune_refused && rconn_get(s->rc))
        log_warn("removing dead consumers from group %s of %s: %s; going on without", s->cfg.group, s->cfg.key, why);
    else if (n >= 0 && s->prune_refused)
        log_info("removing dead consumers from group %s of %s works again", s->cfg.group, s->cfg.key);
    s->prune_refused = n < 0 && (s->prune_refused || rconn_get(s->rc));
}

/* The stream's end, for a reader without a group starting fresh. */
static void start_at_end(struct stream_reader *s)
{
    redisReply *r = rconn_command(s->rc, "XREVRANGE %s + - COUNT 1", s->cfg.key);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && entry_ok(r->element[0]))
        memcpy(s->cursor, r->element[0]->element[0]->str, (size_t)r->element[0]->element[0]->len + 1);
    else
        strcpy(s->cursor, "0-0");
    freeReplyObject(r);
}

static void read_once(struct stream_reader *s)
{
    redisContext *c = rconn_get(s->rc);
    if (!c) {
        s->group_ready = 0;
        return;
    }
    if (s->cfg.group[0] && !s->group_ready && create_group(s) < 0)
        return;
    if (!s->cfg.group[0] && !s->cursor[0])
        start_at_end(s);
    long long count = s->credit < READ_COUNT_MAX ? s->credit : READ_COUNT_MAX;
    if (s->cfg.group[0] && !s->pending_phase && claim_abandoned(s, count) < 0) {
        rconn_fail(s->rc, "unusable XAUTOCLAIM reply");
        s->group_ready = 0;
        return;
    }
    if (s->cfg.group[0] && !s->pending_phase)
        prune_dead(s);
    count = s->credit < READ_COUNT_MAX ? s->credit : READ_COUNT_MAX;
    if (count <= 0)
        return;
    redisReply *r = read_batch(s, count);
    if (!r)
        return;
    if (handle_reply(s, r) < 0) {
        rconn_fail(s->rc, "unusable stream reply");
        s->group_ready = 0;
    }
    freeReplyObject(r);
}

/* Commands from the parent; waits up to TIMEOUT for the first. */
static void poll_pipe(struct stream_reader *s, int timeout)
{
    zmq_pollitem_t it = {zsock_resolve(s->pipe), 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&it, 1, timeout) > 0) {
        timeout = 0;
        char *cmd = NULL, *arg = NULL;
        if (zstr_recvx(s->pipe, &cmd, &arg, NULL) < 0 || strcmp(cmd, "$TERM") == 0)
            s->stop = 1;
        else if (strcmp(cmd, "CREDIT") == 0 && arg)
            s->credit += atoll(arg);
        zstr_free(&cmd);
        zstr_free(&arg);
    }
}

struct start {                  /* stream_reader_new's, valid until the actor signals */
    const struct stream_reader_cfg *cfg;
    int failed;
};

static void stream_reader_actor(zsock_t *pipe, void *args)
{
    struct start *start = args;
    struct stream_reader s = {.cfg = *start->cfg, .pipe = pipe};
    s.credit = s.cfg.credit;
    if (!s.cfg.group[0])
        memcpy(s.cursor, s.cfg.start, sizeof s.cursor); /* "": the end, once connected */
    /* the socket timeout must outlast the BLOCK of a read */
    s.rc = rconn_new(&s.cfg.url, s.cfg.label, READ_BLOCK_MS + 2000);
    if (!s.rc) {
        log_error("%s: cannot create the redis connection", s.cfg.label);
        start->failed = 1;
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    while (!s.stop) {
        int wait = s.credit <= 0 ? READ_BLOCK_MS : rconn_retry_in_ms(s.rc);
        poll_pipe(&s, wait > READ_BLOCK_MS ? READ_BLOCK_MS : wait);
        if (!s.stop && s.credit > 0)
            read_once(&s);
    }
    rconn_destroy(&s.rc);
}

zactor_t *stream_reader_new(const struct stream_reader_cfg *cfg)
{
    struct start start = {.cfg = cfg};
    zactor_t *actor = zactor_new(stream_reader_actor, &start); /* returns once the actor signalled */
    if (actor && start.failed)
        zactor_destroy(&actor);
    return actor;
}

void stream_reader_credit(zactor_t *reader, long long n)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", n);
    zstr_sendx(reader, "CREDIT", num, NULL);
}

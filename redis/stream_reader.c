/* stream_reader.c -- blocking stream reader in its own thread; see stream_reader.h. */
#include "stream_reader.h"

#include <string.h>

#include "clock.h"
#include "log.h"
#include "rconn.h"
#include "stream_group.h"
#include "streamid.h"

#define READ_BLOCK_MS 500
#define READ_COUNT_MAX 256

struct stream_reader {
    struct stream_reader_cfg cfg;
    zsock_t *pipe;
    struct rconn *rc;
    struct stream_group *group; /* group mode */
    long long credit;
    char cursor[STREAMID_STRLEN]; /* without a group: the last entry read */
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

/* Hand entry E to the parent: [key (group mode),] id, fields. */
static void forward_entry(struct stream_reader *s, const char *key, redisReply *e)
{
    void *pipe = zsock_resolve(s->pipe);
    redisReply *f = e->element[1];
    size_t nf = f->type == REDIS_REPLY_ARRAY ? f->elements : 0;
    if (key)
        zmq_send(pipe, key, strlen(key), ZMQ_SNDMORE);
    else
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

static void forward_group_entry(void *arg, const char *key, redisReply *e)
{
    forward_entry(arg, key, e);
}

static redisReply *read_batch(struct stream_reader *s, long long count)
{
    return rconn_command(s->rc, "XREAD COUNT %lld BLOCK %d STREAMS %s %s", count, READ_BLOCK_MS, s->cfg.key,
                         s->cursor);
}

/* Forward the entries of one XREAD reply; -1 if it is unusable. */
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
    for (size_t i = 0; i < entries->elements; i++) {
        if (!stream_entry_ok(entries->element[i])) {
            log_error("reading %s: malformed entry; reconnecting", s->cfg.key);
            return -1;
        }
        forward_entry(s, NULL, entries->element[i]);
    }
    return 0;
}

/* The stream's end, for a reader without a group starting fresh. */
static void start_at_end(struct stream_reader *s)
{
    redisReply *r = rconn_command(s->rc, "XREVRANGE %s + - COUNT 1", s->cfg.key);
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && stream_entry_ok(r->element[0]))
        memcpy(s->cursor, r->element[0]->element[0]->str, (size_t)r->element[0]->element[0]->len + 1);
    else
        strcpy(s->cursor, "0-0");
    freeReplyObject(r);
}

/* One read; 1 if there was nothing to do (the caller waits a little). */
static int read_once(struct stream_reader *s)
{
    if (!rconn_get(s->rc))
        return 0;
    if (s->group) {
        int rv = stream_group_turn(s->group, s->rc, s->credit, READ_BLOCK_MS, forward_group_entry, s);
        if (rv < 0)
            rconn_fail(s->rc, "unusable stream reply");
        return rv > 0;
    }
    if (!s->cursor[0])
        start_at_end(s);
    long long count = s->credit < READ_COUNT_MAX ? s->credit : READ_COUNT_MAX;
    redisReply *r = read_batch(s, count);
    if (!r)
        return 0;
    if (handle_reply(s, r) < 0)
        rconn_fail(s->rc, "unusable stream reply");
    freeReplyObject(r);
    return 0;
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
    if (s.cfg.group[0] && !(s.group = stream_group_new(&s.cfg))) {
        rconn_destroy(&s.rc);
        start->failed = 1;
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    int idle = 0;
    while (!s.stop) {
        int wait = s.credit <= 0 || idle ? READ_BLOCK_MS : rconn_retry_in_ms(s.rc);
        poll_pipe(&s, wait > READ_BLOCK_MS ? READ_BLOCK_MS : wait);
        if (!s.stop && s.credit > 0)
            idle = read_once(&s);
    }
    stream_group_destroy(&s.group);
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

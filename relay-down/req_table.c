/* req_table.c -- request intake's table of pending requests; see
 * req_table.h. */
#include "req_table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "frames.h"
#include "log.h"
#include "metrics.h"
#include "reqrec.h"

#define GRACE_MS 1000

static uint64_t random_boot_id(void)
{
    uint64_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, sizeof v, 1, f) != 1)
            v = 0;
        fclose(f);
    }
    /* never 0; without /dev/urandom, time and pid still differ per start */
    return v ? v : ((uint64_t)clock_wall_ms() << 20) ^ (uint64_t)getpid() ^ 1;
}

/* The slot of a pending request of this incarnation named by RID, or -1. */
int req_table_lookup(const struct req_table *t, const char *rid, size_t len)
{
    char buf[REQREC_RID_MAX + 1];
    memcpy(buf, rid, len);
    buf[len] = '\0';
    char *end;
    if (len < 18 || buf[16] != '-' || strtoull(buf, &end, 16) != t->boot || end != buf + 16)
        return -1;
    uint64_t seq = strtoull(buf + 17, &end, 16);
    if (*end != '-')
        return -1;
    unsigned long i = strtoul(end + 1, &end, 16);
    if (*end || i >= t->cap || t->slot[i].seq != seq || seq == 0)
        return -1;
    return (int)i;
}

static void list_unlink(struct req_table *t, int i)
{
    struct req_pend *p = &t->slot[i];
    if (t->unstored == i)
        t->unstored = p->next;
    if (p->prev >= 0)
        t->slot[p->prev].next = p->next;
    else
        t->head = p->next;
    if (p->next >= 0)
        t->slot[p->next].prev = p->prev;
    else
        t->tail = p->prev;
}

/* Take slot I off its connection's list; it waits for its reply or deadline. */
void req_table_conn_unlink(struct req_table *t, int i)
{
    struct req_pend *p = &t->slot[i];
    if (p->cfd < 0)
        return;
    if (p->cprev >= 0)
        t->slot[p->cprev].cnext = p->cnext;
    else
        *req_conns_head(t->conns, p->cfd) = p->cnext;
    if (p->cnext >= 0)
        t->slot[p->cnext].cprev = p->cprev;
    p->cfd = -1;
}

static void conn_link(struct req_table *t, int i, int fd)
{
    struct req_pend *p = &t->slot[i];
    int *head = req_conns_head(t->conns, fd);
    p->cfd = fd;
    p->cprev = -1;
    p->cnext = *head;
    if (*head >= 0)
        t->slot[*head].cprev = i;
    *head = i;
}

void req_table_release(struct req_table *t, int i)
{
    struct req_pend *p = &t->slot[i];
    list_unlink(t, i);
    req_table_conn_unlink(t, i);
    if (!p->stored)
        t->unstored_bytes -= (long long)zmq_msg_size(&p->payload);
    if (p->stored < 2)
        zmq_msg_close(&p->payload);
    zmq_msg_close(&p->ident);
    p->seq = 0;
    t->free_list[t->nfree++] = i;
    metric_set(M_REQ_INFLIGHT, (int64_t)(t->cap - t->nfree));
}

/* Drop the FIFO's entries of auths already answered or given up, to make room. */
static void auth_fifo_compact(struct req_table *t)
{
    size_t n = 0;
    for (size_t k = 0; k < t->af_count; k++) {
        size_t from = (t->af_head + k) % t->cap, to = (t->af_head + n) % t->cap;
        if (t->slot[t->auth_fifo[from].slot].seq == t->auth_fifo[from].seq)
            t->auth_fifo[to] = t->auth_fifo[from], n++;
    }
    t->af_count = n;
}

static void auth_fifo_push(struct req_table *t, int i)
{
    if (t->af_count == t->cap)
        auth_fifo_compact(t); /* at most cap live auths: leaves room */
    size_t at = (t->af_head + t->af_count++) % t->cap;
    t->auth_fifo[at].slot = i;
    t->auth_fifo[at].seq = t->slot[i].seq;
}

/* Take a request from connection FD (or REQ_CONN_UNTRACKED) into the
 * table; returns 0, or -1 if the table is full. */
int req_table_add(struct req_table *t, zmq_msg_t *frames, const struct salt_envelope *env, int fd)
{
    long long size = (long long)zmq_msg_size(&frames[2]);
    if (!t->nfree || t->unstored_bytes + size > t->cfg->max_pending_bytes)
        return -1;
    int i = t->free_list[--t->nfree];
    struct req_pend *p = &t->slot[i];
    p->seq = ++t->seq;
    zmq_msg_init(&p->ident);
    zmq_msg_move(&p->ident, &frames[0]);
    zmq_msg_init(&p->payload);
    zmq_msg_move(&p->payload, &frames[2]);
    frames_own(&p->payload); /* what max_pending_bytes counts is what is held (frames.h) */
    t->unstored_bytes += size;
    long long timeout = env->is_auth && t->cfg->auth_timeout_ms < t->cfg->request_timeout_ms
                            ? t->cfg->auth_timeout_ms : t->cfg->request_timeout_ms;
    p->arrived = clock_mono_ms();
    p->give_up = p->arrived + timeout + GRACE_MS;
    p->dl_wall = clock_wall_ms() + timeout;
    p->stored = 0;
    p->stream = 0;
    p->auth = env->is_auth;
    if (p->auth)
        auth_fifo_push(t, i);
    memcpy(p->id, env->id, sizeof p->id);
    p->cfd = -1;
    if (fd >= 0)
        conn_link(t, i, fd);
    p->prev = t->tail;
    p->next = -1;
    if (t->tail >= 0)
        t->slot[t->tail].next = i;
    else
        t->head = i;
    t->tail = i;
    if (t->unstored < 0)
        t->unstored = i;
    metric_set(M_REQ_INFLIGHT, (int64_t)(t->cap - t->nfree));
    return 0;
}

static void give_up(struct req_table *t, int i)
{
    metric_add(t->slot[i].stored ? M_REQ_TIMEOUT : M_REQ_REDIS_ERR, 1);
    req_table_release(t, i);
}

/* Give up the requests whose deadline (plus grace) has passed: in arrival
 * order, and the _auth (shorter deadline) in theirs. */
void req_table_expire(struct req_table *t, long long now)
{
    while (t->head >= 0 && t->slot[t->head].give_up <= now)
        give_up(t, t->head);
    while (t->af_count) {
        int i = t->auth_fifo[t->af_head].slot;
        int live = t->slot[i].seq == t->auth_fifo[t->af_head].seq;
        if (live && t->slot[i].give_up > now)
            break;
        if (live)
            give_up(t, i);
        t->af_head = (t->af_head + 1) % t->cap;
        t->af_count--;
    }
}


int req_table_rid(const struct req_table *t, int i, char *buf, size_t len)
{
    return snprintf(buf, len, "%016" PRIx64 "-%" PRIx64 "-%x", t->boot, t->slot[i].seq, (unsigned)i);
}

int req_table_conn_first(struct req_table *t, int fd)
{
    return *req_conns_head(t->conns, fd);
}

void req_table_sent(struct req_table *t, int i)
{
    struct req_pend *p = &t->slot[i];
    t->unstored_bytes -= (long long)zmq_msg_size(&p->payload);
    p->stored = 1;
    t->unstored = p->next;
}

/* Lost ones come back oldest first; the store script skips one that had
 * arrived. */
void req_table_resend(struct req_table *t, int i)
{
    struct req_pend *p = &t->slot[i];
    if (p->stored != 1)
        return;
    p->stored = 0;
    t->unstored_bytes += (long long)zmq_msg_size(&p->payload);
    if (t->unstored < 0 || p->seq < t->slot[t->unstored].seq)
        t->unstored = i;
}

void req_table_stored(struct req_table *t, int i, const char *sid, size_t len)
{
    struct req_pend *p = &t->slot[i];
    zmq_msg_close(&p->payload);
    p->stored = 2;
    p->sid[0] = '\0';
    if (sid && len < STREAMID_STRLEN) {
        memcpy(p->sid, sid, len);
        p->sid[len] = '\0';
    }
}

/* The next deadline: the oldest request's, or the oldest _auth's (shorter
 * than the others'). */
long long req_table_wait_ms(const struct req_table *t, long long default_ms)
{
    long long d = default_ms;
    if (t->head >= 0)
        d = t->slot[t->head].give_up - clock_mono_ms();
    if (t->af_count) {
        const struct req_pend *a = &t->slot[t->auth_fifo[t->af_head].slot];
        long long da = a->seq == t->auth_fifo[t->af_head].seq ? a->give_up - clock_mono_ms() : 0;
        d = da < d ? da : d;
    }
    return d;
}

int req_table_init(struct req_table *t, const struct config *cfg)
{
    t->cfg = cfg;
    t->boot = random_boot_id();
    t->head = t->tail = t->unstored = -1;
    t->cap = (size_t)(cfg->max_pending > 0 ? cfg->max_pending : 1);
    t->slot = calloc(t->cap, sizeof *t->slot); /* untouched pages cost no memory */
    t->free_list = malloc(t->cap * sizeof *t->free_list);
    t->auth_fifo = malloc(t->cap * sizeof *t->auth_fifo);
    if (!t->slot || !t->free_list || !t->auth_fifo)
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        t->free_list[t->nfree++] = (int)(t->cap - 1 - i);
    return 0;
}

void req_table_fini(struct req_table *t)
{
    while (t->head >= 0)
        req_table_release(t, t->head);
    free(t->slot);
    free(t->free_list);
    free(t->auth_fifo);
}

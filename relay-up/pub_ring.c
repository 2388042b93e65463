/* pub_ring.c -- publication intake's ring (see pub_ring.h, and pub_intake.c
 * for the whole): each publication received whole into a slot (small frames
 * copied so that a held frame does not pin ZeroMQ's 8 KiB receive buffer,
 * frames.h), dropped and counted past pub_buffer or pub_buffer_bytes, and a
 * copy of the newest record's payload under a new topic folded into it (one
 * version-2 record, pubrec.h), held back up to pub_merge_window while its
 * run may still grow. */
#include "pub_ring.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "frames.h"
#include "log.h"
#include "metrics.h"
#include "pubrec.h"

#define DRAIN_MAX 1024      /* messages taken from the SUB socket per wakeup */
#define TRIM_AFTER 1000     /* buffered messages after which memory is given back */
#define MERGE_HOLD_MAX_MS 2000 /* a run still growing after that is cut into several entries */

int pub_ring_init(struct pub_ring *r, const struct config *cfg)
{
    r->cfg = cfg;
    r->cap = (size_t)(cfg->pub_buffer > 0 ? cfg->pub_buffer : 1);
    strset_init(&r->run_topics, TOPICLIST_MAX_COUNT);
    r->slot = calloc(r->cap, sizeof *r->slot);
    return r->slot ? 0 : -1;
}

void pub_ring_fini(struct pub_ring *r)
{
    while (r->count)
        pub_ring_pop(r);
    strset_free(&r->run_topics);
    free(r->slot);
}

static void slot_release(struct pub_slot *s)
{
    for (size_t i = 0; i < s->nframes; i++)
        zmq_msg_close(pub_slot_frame(s, i));
    free(s->more);
    s->more = NULL;
    if (s->topics) {
        topiclist_free(s->topics);
        free(s->topics);
        s->topics = NULL;
    }
    s->nframes = 0;
    s->serial = 0;
    s->written = 0;
    s->refused = 0;
}

size_t pub_slot_bytes(struct pub_slot *s)
{
    size_t n = s->topics ? s->topics->len : 0;
    for (size_t i = 0; i < s->nframes; i++)
        n += zmq_msg_size(pub_slot_frame(s, i));
    return n;
}

void pub_ring_pop(struct pub_ring *r)
{
    r->bytes -= pub_slot_bytes(pub_ring_at(r, 0));
    slot_release(pub_ring_at(r, 0));
    r->head = (r->head + 1) % r->cap;
    r->count--;
    metric_set(M_PUB_BUFFERED, (int64_t)r->count);
    if (!r->count && r->peak > TRIM_AFTER) {
        /* A burst's frames were allocated by ZeroMQ's I/O thread and freed
         * here; without a trim glibc keeps those pages for good. */
        malloc_trim(0);
        r->peak = 0;
    }
}

/* Where frame N of the message being received goes: a slot frame, or TRASH
 * past PUBREC_MAX_FRAMES (the message will be refused). NULL: out of memory. */
static zmq_msg_t *frame_for(struct pub_slot *s, size_t n, zmq_msg_t *trash)
{
    if (n >= PUBREC_MAX_FRAMES)
        return trash;
    if (n == PUB_INLINE_FRAMES && !s->more) /* only here: a later frame must not skip a failed one */
        s->more = malloc((PUBREC_MAX_FRAMES - PUB_INLINE_FRAMES) * sizeof *s->more);
    return n >= PUB_INLINE_FRAMES && !s->more ? trash : pub_slot_frame(s, n);
}

/* Receive one whole message into S. Returns 1, 0 if none is waiting, -1 if
 * it was refused (too many or too large frames) and discarded. */
static int receive_into(struct pub_ring *r, void *sock, struct pub_slot *s)
{
    size_t n = 0, bytes = 0;
    int more = 1;
    zmq_msg_t trash;
    while (more) {
        zmq_msg_t *m = frame_for(s, n, &trash);
        zmq_msg_init(m);
        int got = zmq_msg_recv(m, sock, n == 0 ? ZMQ_DONTWAIT : 0) >= 0;
        bytes += zmq_msg_size(m);
        more = got && zmq_msg_more(m);
        if (m == &trash || !got) {
            zmq_msg_close(m);
        } else {
            frames_own(m); /* counted is held (frames.h) */
            s->nframes = (unsigned char)(n + 1);
        }
        if (!got) {
            slot_release(s);
            return n == 0 ? 0 : -1;
        }
        n++;
    }
    if (n > s->nframes || bytes > (size_t)r->cfg->max_frame_size) {
        slot_release(s);
        metric_add(M_PUB_BAD, 1);
        log_warn("publication refused: %s (counted in pub_bad_frames_total)",
                 n > PUBREC_MAX_FRAMES ? "more than 8 frames"
                 : n > s->nframes      ? "out of memory"
                                       : "larger than max_frame_size");
        return -1;
    }
    metric_add(M_PUB_IN_MSGS, 1);
    metric_add(M_PUB_IN_BYTES, (int64_t)bytes);
    s->recv_ms = clock_wall_ms();
    return 1;
}

/* The newest buffered slot becomes the run that later copies may join. */
static void start_run(struct pub_ring *r, struct pub_slot *s)
{
    strset_clear(&r->run_topics);
    r->run_open = 0;
    if (s->nframes != 2)
        return;
    zmq_msg_t *t = &s->frame[0];
    if (strset_add(&r->run_topics, zmq_msg_data(t), zmq_msg_size(t)) < 0)
        return;
    r->run_open = topiclist_is_sha1hex(zmq_msg_data(t), zmq_msg_size(t));
    r->run_first_ms = r->run_last_ms = clock_mono_ms();
}

/* The newest slot if it can still take copies: buffered, not yet written
 * (the writer marks each slot it writes). */
static struct pub_slot *run_slot(const struct pub_ring *r)
{
    if (!r->count || !r->run_topics.count)
        return NULL;
    struct pub_slot *tail = &r->slot[(r->head + r->count - 1) % r->cap];
    return tail->written || tail->nframes != 2 ? NULL : tail;
}

/* Fold message S into the run if it is a copy of its payload under a topic
 * the run does not hold yet. 1 if merged (S is then released). */
static int merge_copy(struct pub_ring *r, struct pub_slot *s)
{
    struct pub_slot *run = run_slot(r);
    if (!run || s->nframes != 2)
        return 0;
    const char *topic = zmq_msg_data(&s->frame[0]);
    size_t tlen = zmq_msg_size(&s->frame[0]), plen = zmq_msg_size(&s->frame[1]);
    if (!topiclist_encodable(tlen) || plen != zmq_msg_size(&run->frame[1]) ||
        memcmp(zmq_msg_data(&s->frame[1]), zmq_msg_data(&run->frame[1]), plen) != 0 ||
        strset_has(&r->run_topics, topic, tlen))
        return 0;
    size_t before = pub_slot_bytes(run);
    if (!run->topics) {
        zmq_msg_t *first = &run->frame[0];
        run->topics = calloc(1, sizeof *run->topics);
        if (!run->topics || topiclist_append(run->topics, zmq_msg_data(first), zmq_msg_size(first)) < 0) {
            free(run->topics);
            run->topics = NULL;
            return 0;
        }
    }
    if (topiclist_append(run->topics, topic, tlen) < 0 || strset_add(&r->run_topics, topic, tlen) < 0)
        return 0; /* topic list full (or no memory): the next record starts here */
    r->bytes += pub_slot_bytes(run) - before;
    r->run_open = topiclist_is_sha1hex(topic, tlen);
    r->run_last_ms = clock_mono_ms();
    slot_release(s);
    metric_add(M_PUB_MERGED, 1);
    return 1;
}

void pub_ring_take(struct pub_ring *r, void *sock)
{
    for (int i = 0; i < DRAIN_MAX; i++) {
        int full = r->count == r->cap || r->bytes >= (size_t)r->cfg->pub_buffer_bytes;
        struct pub_slot *s = full ? &r->overflow : pub_ring_at(r, r->count);
        int got = receive_into(r, sock, s);
        if (got == 0)
            return;
        if (got < 0)
            continue;
        if (full) {
            slot_release(s);
            metric_add(M_PUB_DROPPED, 1);
            if (!r->dropping)
                log_error("publication buffer full (%zu messages, %zu bytes; Redis unreachable or slow): "
                          "dropping new publications (counted in pub_dropped_total)", r->count, r->bytes);
            r->dropping = 1;
            continue;
        }
        if (merge_copy(r, s))
            continue;
        r->count++;
        start_run(r, s);
        r->bytes += pub_slot_bytes(s);
        r->peak = r->count > r->peak ? r->count : r->peak;
        metric_set(M_PUB_BUFFERED, (int64_t)r->count);
        if (r->dropping && r->count < r->cap / 2 && r->bytes < (size_t)r->cfg->pub_buffer_bytes / 2) {
            log_info("publication buffer below half full again: no longer dropping");
            r->dropping = 0;
        }
    }
}

/* Milliseconds the newest record is still held for more copies; 0: not held. */
long long pub_ring_hold_ms(const struct pub_ring *r)
{
    if (r->stopping || !r->run_open || !run_slot(r))
        return 0;
    long long now = clock_mono_ms();
    long long until = r->run_last_ms + r->cfg->pub_merge_window_ms;
    if (until > r->run_first_ms + MERGE_HOLD_MAX_MS)
        until = r->run_first_ms + MERGE_HOLD_MAX_MS;
    return until > now ? until - now : 0;
}


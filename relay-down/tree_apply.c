/* tree_apply.c -- saltrelay-down's tree sync part (see tree_apply.h).
 *
 * Every POLL_MS it reads the head record from `redis` (its replica: Redis
 * replicates in order, so a head that arrived has its chunks before it). A
 * new head is built beside the current version (tree_build.c) from chunks
 * verified by SHA-1 and length (treefetch.c), then current is switched. A
 * record, manifest or chunk that is wrong refuses that head (counted, one
 * log line) and current stays; it is not tried again until the head
 * changes. A chunk that is missing means the head moved on while this DC
 * built: it simply tries the newest head next turn, keeping what it built. */
#include "tree_apply.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "statefile.h"
#include "streamid.h"
#include "tree_build.h"
#include "treefetch.h"

#define POLL_MS 500
#define SLICE_MS 100  /* of building per loop turn */
#define WRITE_STEP 16 /* chunks fetched at a time (4 MiB) */
#define REDIS_TIMEOUT_MS 5000
/* In state_dir: the version current holds and its head's creation time, so
 * that a restart still refuses a head older than current (went_back). */
#define HEAD_FILE "tree.head"

/* The version being built, over as many loop turns as it takes. */
struct attempt {
    int active;
    tree_id id; /* SHA-1 of its head record */
    struct tree_head h;
    char name[TREE_NAME_MAX];
    struct tree_manifest m;
    char *raw;
    struct tree_build *b;
    size_t next; /* the next file to put in place */
    int writing; /* it is being written (a large file takes several turns) */
    size_t chunk; /* then: its next chunk */
};

struct tree_apply {
    const struct config *cfg;
    struct rconn *rc;
    struct part_every every;
    char head_key[KEY_MAX];
    tree_id seen; /* SHA-1 of the last head record applied or refused */
    int have_seen;
    char cur_name[TREE_NAME_MAX];
    uint64_t cur_version, cur_created_ms; /* of current's head (0: unknown) */
    struct tree_manifest cur;
    char *cur_raw;
    size_t cur_len;
    char failing[200];   /* why the last attempt failed, "" if it did not (a retry; logged per change) */
    int err;             /* errno of the last local (disk) failure */
    uint64_t fetched;    /* bytes read from Redis for the version being built */
    struct attempt t;
};

static void show_version(const char *name)
{
    metric_set(M_TREE_VERSION, *name ? (int64_t)strtoull(name, NULL, 10) : 0);
}

/* The head time TEXT gives for version NAME under keys V and MS: 0 and
 * *CREATED, or -1 (another version, or not a plain number). */
static int head_time_of(const char *text, const char *v, const char *ms, const char *name, uint64_t *created)
{
    char got[TREE_NAME_MAX], num[24];
    return statefile_get(text, v, got, sizeof got) == 0 && strcmp(got, name) == 0 &&
                   statefile_get(text, ms, num, sizeof num) == 0 && decimal_parse(num, strlen(num), created) == 0 &&
                   *created <= (uint64_t)clock_wall_ms() + 86400000 /* not from a future a clock step explains */
               ? 0
               : -1;
}

/* Current's head time, kept in state_dir: 0, or -1 when the file names
 * neither current nor the version before it, or cannot be read. */
static int load_head_time(struct tree_apply *a)
{
    char text[512];
    uint64_t created;
    long n = statefile_read(a->cfg->state_dir, HEAD_FILE, text, sizeof text);
    if (n <= 0 || !*a->cur_name)
        return n == 0 ? 0 : -1;
    if (head_time_of(text, "version", "created_ms", a->cur_name, &created) < 0 &&
        head_time_of(text, "previous", "previous_created_ms", a->cur_name, &created) < 0)
        return -1;
    a->cur_version = strtoull(a->cur_name, NULL, 10);
    a->cur_created_ms = created;
    return 0;
}

/* Before current becomes the attempt's version: its head time, and
 * current's as the previous, so that whenever a kill comes (before or after
 * the switch) the file names what current holds. A file lost with the host
 * costs what it cost before: one older head applied. */
static void save_head_time(struct tree_apply *a)
{
    char text[512];
    snprintf(text, sizeof text, "version %s\ncreated_ms %llu\nprevious %s\nprevious_created_ms %llu\n",
             a->t.name, (unsigned long long)a->t.h.created_ms, *a->cur_name ? a->cur_name : "none",
             (unsigned long long)a->cur_created_ms);
    if (statefile_write(a->cfg->state_dir, HEAD_FILE, text, 0) < 0)
        log_warn("tree sync: cannot keep %s/%s (%s): a restart may apply an older head once",
                 a->cfg->state_dir, HEAD_FILE, strerror(errno));
}

static int tree_apply_open(void *self, const struct config *cfg)
{
    struct tree_apply *a = self;
    a->cfg = cfg;
    key_tree_head(a->head_key, cfg->cluster);
    part_every_start(&a->every, POLL_MS);
    a->rc = rconn_new(&cfg->redis_url, "tree sync", REDIS_TIMEOUT_MS);
    tree_dir_current(cfg->sync_target, (uint64_t)cfg->sync_max_bytes, a->cur_name, &a->cur, &a->cur_raw,
                     &a->cur_len);
    show_version(a->cur_name);
    metric_set(M_TREE_FILES, (int64_t)a->cur.nfiles);
    metric_set(M_TREE_BYTES, (int64_t)a->cur.bytes);
    metric_set(M_TREE_SYNC, 1);
    log_info("tree sync: keeping %s/current (now %s)", cfg->sync_target, *a->cur_name ? a->cur_name : "none");
    if (load_head_time(a) < 0)
        log_warn("tree sync: %s/%s does not name current's head; a head older than current may be applied once",
                 cfg->state_dir, HEAD_FILE);
    return a->rc ? 0 : -1;
}

/* Drop the attempt; what it built stays in its .tmp- directory for a resume. */
static void attempt_end(struct attempt *t)
{
    tree_build_free(&t->b);
    tree_manifest_free(&t->m);
    tree_head_free(&t->h);
    free(t->raw);
    memset(t, 0, sizeof *t);
}

static void tree_apply_close(void *self)
{
    struct tree_apply *a = self;
    attempt_end(&a->t);
    tree_manifest_free(&a->cur);
    free(a->cur_raw);
    rconn_destroy(&a->rc);
}

static void tree_apply_wait(void *self, struct part_poll *w, int stopping)
{
    struct tree_apply *a = self;
    (void)stopping;
    if (a->t.active)
        part_poll_timeout(w, 0);
    else
        part_every_wait(&a->every, w);
}

static int write_chunk(void *arg, size_t i, const char *data, size_t len)
{
    (void)i;
    struct tree_apply *a = arg;
    a->fetched += len;
    metric_add(M_TREE_FETCHED_BYTES, (int64_t)len);
    int rc = tree_build_write(a->t.b, data, len);
    if (rc < 0)
        a->err = errno;
    return rc;
}

/* Fetch the next few chunks of the file being written; finish it after
 * its last. */
static enum tree_fetch_result write_some(struct tree_apply *a, const char **why)
{
    struct attempt *t = &a->t;
    const struct tree_file *f = &t->m.file[t->next];
    size_t to = f->nchunks - t->chunk > WRITE_STEP ? t->chunk + WRITE_STEP : f->nchunks;
    enum tree_fetch_result res =
        tree_fetch_chunks(a->rc, a->cfg->cluster, f->chunk, t->chunk, to, f->size, write_chunk, a, why);
    if (res != TREE_FETCH_OK)
        return res;
    t->chunk = to;
    if (to < f->nchunks)
        return TREE_FETCH_OK;
    t->writing = 0;
    t->next++;
    if (tree_build_finish(t->b, t->next - 1) < 0) {
        a->err = errno;
        *why = "cannot write under sync_target";
        return TREE_FETCH_LOCAL;
    }
    return TREE_FETCH_OK;
}

/* Take file t.next from the current version or this build if it is there,
 * else start writing it. */
static enum tree_fetch_result place_next(struct tree_apply *a, const char **why)
{
    struct attempt *t = &a->t;
    int bad;
    int have = tree_build_have(t->b, t->next, &bad);
    if (have < 0) {
        a->err = errno;
        *why = bad ? "two paths collide (a file where a directory must be)" : "cannot write under sync_target";
        return bad ? TREE_FETCH_BAD : TREE_FETCH_LOCAL;
    }
    if (have) {
        t->next++;
        return TREE_FETCH_OK;
    }
    if (tree_build_open(t->b, t->next) < 0) {
        a->err = errno;
        *why = "cannot write under sync_target";
        return TREE_FETCH_LOCAL;
    }
    t->writing = 1;
    t->chunk = 0;
    return write_some(a, why);
}

/* Put files in place until UNTIL (monotonic ms); TREE_FETCH_OK with
 * t.next == nfiles when all are. */
static enum tree_fetch_result build_files(struct tree_apply *a, long long until, const char **why)
{
    struct attempt *t = &a->t;
    enum tree_fetch_result res = TREE_FETCH_OK;
    while (res == TREE_FETCH_OK && t->next < t->m.nfiles && clock_mono_ms() < until)
        res = t->writing ? write_some(a, why) : place_next(a, why);
    return res;
}

/* The version became current: keep its manifest for the next build. */
static void switched(struct tree_apply *a)
{
    struct attempt *t = &a->t;
    tree_manifest_free(&a->cur);
    free(a->cur_raw);
    a->cur = t->m;
    a->cur_raw = t->raw;
    a->cur_len = t->h.manifest_len;
    memset(&t->m, 0, sizeof t->m);
    t->raw = NULL;
    snprintf(a->cur_name, sizeof a->cur_name, "%s", t->name);
    a->cur_version = t->h.version;
    a->cur_created_ms = t->h.created_ms;
    memcpy(a->seen, t->id, TREE_ID_LEN);
    a->have_seen = 1;
    show_version(a->cur_name);
    metric_set(M_TREE_FILES, (int64_t)a->cur.nfiles);
    metric_set(M_TREE_BYTES, (int64_t)a->cur.bytes);
    metric_add(M_TREE_APPLIED, 1);
    metric_set(M_TREE_APPLIED_AT_MS, clock_wall_ms());
    log_info("tree sync: %s/current is version %s: %zu files, %llu bytes (%llu bytes read from Redis)",
             a->cfg->sync_target, a->cur_name, a->cur.nfiles, (unsigned long long)a->cur.bytes,
             (unsigned long long)a->fetched);
    tree_dir_prune(a->cfg->sync_target, a->cfg->sync_keep, a->cur_name);
}

static void refuse(struct tree_apply *a, const tree_id id, const char *what, const char *why)
{
    memcpy(a->seen, id, TREE_ID_LEN);
    a->have_seen = 1;
    metric_add(M_TREE_REFUSED, 1);
    log_error("tree sync: %s refused: %s; %s/current stays %s", what, why, a->cfg->sync_target,
              *a->cur_name ? a->cur_name : "absent");
}

/* WHY the attempt failed (NULL: it did not), with the system's reason of a
 * disk error (LOCAL); logged when it changes, not per retry. */
static void note_retry(struct tree_apply *a, const char *why, int local)
{
    char now[sizeof a->failing] = "";
    if (why)
        snprintf(now, sizeof now, "%s%s%s", why, local ? ": " : "", local ? strerror(a->err) : "");
    if (strcmp(now, a->failing))
        log_msg(*now ? LOG_LVL_WARN : LOG_LVL_INFO, "tree sync: %s%s",
                *now ? "version not applied yet: " : "applying works again", now);
    memcpy(a->failing, now, sizeof now);
}

/* How an attempt ended: OK (switched), BAD (refused), else retried later. */
static void attempt_over(struct tree_apply *a, enum tree_fetch_result res, const char *why)
{
    if (res == TREE_FETCH_OK)
        switched(a);
    else if (res == TREE_FETCH_BAD)
        refuse(a, a->t.id, "a version", why);
    note_retry(a, res == TREE_FETCH_OK || res == TREE_FETCH_BAD ? NULL : why, res == TREE_FETCH_LOCAL);
    attempt_end(&a->t);
}

/* One slice of the attempt: files, then the switch. */
static void build_slice(struct tree_apply *a)
{
    struct attempt *t = &a->t;
    const char *why = NULL;
    enum tree_fetch_result res =
        tree_build_complete(t->b) ? TREE_FETCH_OK : build_files(a, clock_mono_ms() + SLICE_MS, &why);
    if (res == TREE_FETCH_OK && t->next < t->m.nfiles && !tree_build_complete(t->b))
        return; /* more next turn */
    if (res == TREE_FETCH_OK)
        save_head_time(a);
    if (res == TREE_FETCH_OK && tree_build_commit(t->b) < 0) {
        a->err = errno;
        why = "cannot switch sync_target/current";
        res = TREE_FETCH_LOCAL;
    }
    attempt_over(a, res, why);
}

/* Start building head H (record id ID): fetch and check its manifest. */
static void attempt_start(struct tree_apply *a, struct tree_head *h, const tree_id id)
{
    struct attempt *t = &a->t;
    const char *why;
    t->h = *h;
    memset(h, 0, sizeof *h);
    memcpy(t->id, id, TREE_ID_LEN);
    tree_version_name(&t->h, t->name);
    t->active = 1;
    enum tree_fetch_result res =
        tree_fetch_manifest(a->rc, a->cfg->cluster, &t->h, (uint64_t)a->cfg->sync_max_bytes, &t->m, &t->raw, &why);
    a->fetched = t->h.manifest_len;
    if (res == TREE_FETCH_OK && !(t->b = tree_build_begin(a->cfg->sync_target, t->name, &t->m, t->raw,
                                                        t->h.manifest_len, &a->cur, a->cur_name, &why))) {
        a->err = errno;
        res = TREE_FETCH_LOCAL;
    }
    if (res != TREE_FETCH_OK)
        attempt_over(a, res, why);
}

/* H is older than current's head (applied by this run, or by one before:
 * HEAD_FILE), in number and in time: a
 * failover lost the newer head (the promoted replica had not received it),
 * so current stays until the publisher writes a new one. A lower number
 * made later is applied: Redis lost its keys and numbering began again. */
static int went_back(struct tree_apply *a, const struct tree_head *h, const tree_id id)
{
    if (!a->cur_created_ms || h->version >= a->cur_version || h->created_ms >= a->cur_created_ms)
        return 0;
    memcpy(a->seen, id, TREE_ID_LEN);
    a->have_seen = 1;
    metric_add(M_TREE_OLDER_HEADS, 1);
    log_warn("tree sync: the head names version %llu, older than %s/current (version %llu, made %llu ms "
             "later): a failover lost the newer head; current stays until a newer version is published",
             (unsigned long long)h->version, a->cfg->sync_target, (unsigned long long)a->cur_version,
             (unsigned long long)(a->cur_created_ms - h->created_ms));
    return 1;
}

/* The head record RAW (LEN bytes), whose SHA-1 is ID. */
static void handle_head(struct tree_apply *a, const char *raw, size_t len, const tree_id id)
{
    struct tree_head h;
    const char *why;
    char name[TREE_NAME_MAX];
    if (tree_head_decode(raw, len, &h, &why) < 0)
        refuse(a, id, "the head record", why);
    else if (went_back(a, &h, id))
        ;
    else if (!strcmp(tree_version_name(&h, name), a->cur_name) && a->cur_raw &&
             tree_head_names(&h, a->cur_raw, a->cur_len)) {
        memcpy(a->seen, id, TREE_ID_LEN);
        a->have_seen = 1;
    } else
        attempt_start(a, &h, id);
    tree_head_free(&h);
}

static void check_head(struct tree_apply *a)
{
    if (!rconn_get(a->rc))
        return;
    redisReply *r = rconn_command(a->rc, "GET %s", a->head_key);
    if (r && r->type == REDIS_REPLY_STRING) {
        tree_id id;
        tree_chunk_id(r->str, (size_t)r->len, id);
        if (!a->have_seen || memcmp(id, a->seen, TREE_ID_LEN))
            handle_head(a, r->str, (size_t)r->len, id);
    }
    freeReplyObject(r);
}

static void tree_apply_turn(void *self, const struct part_poll *w)
{
    struct tree_apply *a = self;
    (void)w;
    if (a->t.active)
        build_slice(a);
    else if (part_every_due(&a->every))
        check_head(a);
}

const struct part_def tree_apply_part = {
    .name = "tree sync",
    .size = sizeof(struct tree_apply),
    .open = tree_apply_open,
    .wait = tree_apply_wait,
    .turn = tree_apply_turn,
    .close = tree_apply_close,
};

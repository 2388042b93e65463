/* jobcache.c -- one job from Salt's local_cache (see jobcache.h).
 *
 * The files are written by Salt, read here as untrusted input: sizes are
 * capped, each msgpack document is first walked by mpwalk_plausible() (msgpack-c
 * allocates a container's declared length before reading it, so a 5-byte
 * file could otherwise ask for gigabytes), and every object's type is
 * checked. Salt's str may be any bytes: ids are only refused for NUL, a '/'
 * (they name directories) or excessive length, and printed escaped. */
#include "jobcache.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mpwalk.h"

#define FILE_MAX (64L << 20)
#define PATH_LEN 4096

int jid_valid(const char *jid)
{
    size_t n = strspn(jid, "0123456789");
    if (n != 20)
        return 0;
    if (jid[n] == '\0')
        return 1;
    return jid[n] == '_' && jid[n + 1] && strspn(jid + n + 1, "0123456789") == strlen(jid + n + 1) &&
           strlen(jid) < JID_MAX;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

long long jid_time_ms(const char *jid)
{
    if (!jid_valid(jid))
        return -1;
    struct tm tm = {.tm_year = digits(jid, 4) - 1900, .tm_mon = digits(jid + 4, 2) - 1,
                    .tm_mday = digits(jid + 6, 2), .tm_hour = digits(jid + 8, 2),
                    .tm_min = digits(jid + 10, 2), .tm_sec = digits(jid + 12, 2), .tm_isdst = -1};
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    return (long long)t * 1000 + digits(jid + 14, 6) / 1000;
}

/* ---- id sets */

int idset_add(struct idset *s, const char *id)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **ids = realloc(s->ids, cap * sizeof *ids);
        if (!ids)
            return -1;
        s->ids = ids;
        s->cap = cap;
    }
    if (!(s->ids[s->n] = strdup(id)))
        return -1;
    s->n++;
    return 0;
}

static int cmp_id(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void idset_finish(struct idset *s)
{
    if (!s->n)
        return;
    qsort(s->ids, s->n, sizeof *s->ids, cmp_id);
    size_t o = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->ids[i], s->ids[o - 1]) == 0)
            free(s->ids[i]);
        else
            s->ids[o++] = s->ids[i];
    }
    s->n = o;
}

int idset_has(const struct idset *s, const char *id)
{
    return s->n && bsearch(&id, s->ids, s->n, sizeof *s->ids, cmp_id) != NULL;
}

void idset_free(struct idset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ids[i]);
    free(s->ids);
    memset(s, 0, sizeof *s);
}

void job_free(struct job *job)
{
    idset_free(&job->expected);
    idset_free(&job->returned);
    for (size_t i = 0; i < job->ntiers; i++) {
        free(job->tiers[i].syndic);
        idset_free(&job->tiers[i].minions);
    }
    free(job->tiers);
    job->tiers = NULL;
    job->ntiers = job->tiers_cap = 0;
}

static int cmp_tier(const void *a, const void *b)
{
    return strcmp(((const struct tier *)a)->syndic, ((const struct tier *)b)->syndic);
}

long job_tier_named(const struct job *job, const char *id)
{
    const struct tier key = {.syndic = (char *)id};
    const struct tier *t = job->ntiers ? bsearch(&key, job->tiers, job->ntiers, sizeof key, cmp_tier) : NULL;
    return t ? t - job->tiers : -1;
}

long job_tier_of(const struct job *job, const char *id)
{
    for (size_t i = 0; i < job->ntiers; i++)
        if (idset_has(&job->tiers[i].minions, id))
            return (long)i;
    return -1;
}

/* Read PATH (at most FILE_MAX) into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char *buf = malloc(FILE_MAX);
    size_t n = buf ? fread(buf, 1, FILE_MAX, f) : 0;
    int bad = !buf || ferror(f) || n == FILE_MAX;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "cannot read %s: %s", path, buf ? "read error or larger than 64 MiB" : "out of memory");
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Unpack BUF into U (initialised here; the caller destroys it in every
 * case). -1 unless BUF is exactly one bounded msgpack document. */
static int unpack_bounded(const unsigned char *buf, size_t len, msgpack_unpacked *u)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    if (!mpwalk_plausible((const char *)buf, len))
        return -1;
    return msgpack_unpack_next(u, (const char *)buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len ? 0 : -1;
}

/* Whether LEN bytes at S can be a minion (or syndic) id. */
static int id_usable(const char *s, size_t len)
{
    return s && len > 0 && len < MINION_ID_MAX && !memchr(s, '\0', len) && !memchr(s, '/', len);
}

/* A minion id as a C string, or NULL if it cannot be one. */
static const char *obj_id(const msgpack_object *o, char *buf)
{
    size_t len = 0; /* unset when O is no string; GCC -O2 cannot tell id_usable never reads it then */
    const char *s = mpwalk_bytes(o, &len);
    if (!id_usable(s, len))
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* Salt str or bin into a printable field: other bytes become '?'. */
static void obj_text(const msgpack_object *o, char *out, size_t outlen)
{
    size_t len, i;
    const char *s = mpwalk_bytes(o, &len);
    if (!s) {
        snprintf(out, outlen, o->type == MSGPACK_OBJECT_ARRAY ? "(list of %u)" : "?",
                 o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0);
        return;
    }
    for (i = 0; i < len && i + 1 < outlen; i++)
        out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
    out[i] = '\0';
}

int jobcache_parse_minions(const unsigned char *buf, size_t len, struct idset *set, size_t *bad)
{
    msgpack_unpacked u;
    int rc = unpack_bounded(buf, len, &u) == 0 && u.data.type == MSGPACK_OBJECT_ARRAY ? 0 : -1;
    char id[MINION_ID_MAX];
    *bad = 0;
    for (uint32_t i = 0; rc == 0 && i < u.data.via.array.size; i++) {
        if (!obj_id(&u.data.via.array.ptr[i], id))
            ++*bad;
        else if (idset_add(set, id) < 0)
            rc = -1;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int read_minions(const char *path, struct idset *set, char *err, size_t errlen)
{
    size_t len, bad = 0;
    unsigned char *buf = slurp(path, &len, err, errlen);
    if (!buf)
        return -1;
    int rc = jobcache_parse_minions(buf, len, set, &bad);
    if (rc < 0)
        snprintf(err, errlen, "%s: not a valid msgpack list of minion ids", path);
    if (bad)
        fprintf(stderr, "saltrelay-status: %s: %zu entries are not usable minion ids; ignored\n", path, bad);
    free(buf);
    return rc;
}

static void read_load(const char *path, struct job *job)
{
    msgpack_unpacked u;
    unsigned char *buf;
    char err[PATH_LEN + 100];
    size_t len;
    msgpack_unpacked_init(&u);
    int rc = (buf = slurp(path, &len, err, sizeof err)) ? 0 : -1;
    if (rc == 0 && (unpack_bounded(buf, len, &u) < 0 || u.data.type != MSGPACK_OBJECT_MAP)) {
        snprintf(err, sizeof err, "%s: not a valid msgpack map", path);
        rc = -1;
    }
    if (rc < 0) {
        fprintf(stderr, "saltrelay-status: %s; job function and target unknown\n", err);
    } else {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
            size_t klen;
            const char *k = mpwalk_bytes(&kv->key, &klen);
            if (k && klen == 3 && !memcmp(k, "fun", 3))
                obj_text(&kv->val, job->fun, sizeof job->fun);
            else if (k && klen == 3 && !memcmp(k, "tgt", 3))
                obj_text(&kv->val, job->tgt, sizeof job->tgt);
        }
    }
    msgpack_unpacked_destroy(&u);
    free(buf);
}

/* ---- the job directory */

/* Whether DIR/jid holds exactly JID (Salt writes it without a newline). */
static int jid_file_matches(const char *dir, const char *jid)
{
    char path[PATH_LEN + 8], buf[JID_MAX + 2];
    snprintf(path, sizeof path, "%s/jid", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    return n == strlen(jid) && memcmp(buf, jid, n) == 0;
}

/* Search JOBS/<xx>/<rest>/jid for JID; fills OUT with the directory. */
static int find_job_dir(const char *jobs, const char *jid, char *out, char *err, size_t errlen)
{
    DIR *top = opendir(jobs);
    if (!top) {
        snprintf(err, errlen, "cannot read the job cache %s: %s", jobs, strerror(errno));
        return -1;
    }
    int found = 0;
    struct dirent *a, *b;
    while (!found && (a = readdir(top))) {
        char sub[PATH_LEN];
        if (a->d_name[0] == '.' || snprintf(sub, sizeof sub, "%s/%s", jobs, a->d_name) >= (int)sizeof sub)
            continue;
        DIR *d = opendir(sub);
        while (d && !found && (b = readdir(d)))
            if (b->d_name[0] != '.' && snprintf(out, PATH_LEN, "%s/%s", sub, b->d_name) < PATH_LEN)
                found = jid_file_matches(out, jid);
        if (d)
            closedir(d);
    }
    closedir(top);
    if (!found)
        snprintf(err, errlen, "job %s is not in the job cache %s (too old, or another cachedir?)", jid, jobs);
    return found ? 0 : -1;
}

static int is_file(const char *dir, const char *name, const char *name2)
{
    char path[PATH_LEN];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s%s%s", dir, name, name2 ? "/" : "", name2 ? name2 : "") >= (int)sizeof path)
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A new tier for syndic ID (LEN bytes), or NULL when out of memory. */
static struct tier *add_tier(struct job *job, const char *id, size_t len)
{
    if (job->ntiers == job->tiers_cap) {
        size_t cap = job->tiers_cap ? job->tiers_cap * 2 : 4;
        struct tier *t = realloc(job->tiers, cap * sizeof *t);
        if (!t)
            return NULL;
        job->tiers = t;
        job->tiers_cap = cap;
    }
    struct tier *t = &job->tiers[job->ntiers];
    memset(t, 0, sizeof *t);
    if (!(t->syndic = strndup(id, len)))
        return NULL;
    job->ntiers++;
    return t;
}

/* The list of expected ids to fill from file NAME (N bytes): the MoM's own
 * (.minions.p) or a new tier's (.minions.<syndic>.p). NULL when out of memory. */
static struct idset *list_for(struct job *job, const char *dir, const char *name, size_t n)
{
    if (n == 10)
        return &job->expected;
    if (!id_usable(name + 9, n - 11)) {
        fprintf(stderr, "saltrelay-status: %s/%s: no usable syndic id in the name; its minions are counted "
                "without a syndic\n", dir, name);
        return &job->expected;
    }
    struct tier *t = add_tier(job, name + 9, n - 11);
    return t ? &t->minions : NULL;
}

/* Read DIR/NAME, a .minions*.p file: 1 read, 0 unreadable (named on stderr), -1 out of memory. */
static int read_list(const char *dir, const char *name, size_t n, struct job *job)
{
    char path[PATH_LEN + 260], why[sizeof path + 100];
    struct idset *set = list_for(job, dir, name, n);
    if (!set)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (read_minions(path, set, why, sizeof why) < 0) {
        fprintf(stderr, "saltrelay-status: %s; its minions are not counted\n", why);
        return 0;
    }
    for (size_t i = 0; set != &job->expected && i < set->n; i++)
        if (idset_add(&job->expected, set->ids[i]) < 0)
            return -1;
    return 1;
}

/* Expected ids from .minions.p and .minions.<syndic>.p; returned ones from <id>/return.p. */
static int scan_job_dir(const char *dir, struct job *job, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0, lists = 0;
    while (rc == 0 && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (!strncmp(e->d_name, ".minions.", 9) && n >= 10 && !strcmp(e->d_name + n - 2, ".p")) {
            int got = read_list(dir, e->d_name, n, job);
            lists += got > 0;
            if (got < 0) {
                snprintf(err, errlen, "%s: out of memory", dir);
                rc = -1;
            }
        } else if (e->d_name[0] != '.' && n < MINION_ID_MAX && is_file(dir, e->d_name, "return.p")) {
            rc = idset_add(&job->returned, e->d_name);
        }
    }
    closedir(d);
    if (rc == 0 && !lists) {
        snprintf(err, errlen, "%s: no readable list of expected minions (.minions.p)", dir);
        rc = -1;
    }
    return rc;
}

int jobcache_load(const char *jobs_dir, const char *jid, struct job *job, char *err, size_t errlen)
{
    memset(job, 0, sizeof *job);
    if (!jid_valid(jid)) {
        snprintf(err, errlen, "'%.*s' is not a Salt jid (20 digits, YYYYMMDDhhmmssffffff)", 40, jid);
        return -1;
    }
    snprintf(job->jid, sizeof job->jid, "%s", jid);
    char dir[PATH_LEN], path[PATH_LEN + 16];
    if (find_job_dir(jobs_dir, jid, dir, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof path, "%s/.load.p", dir);
    read_load(path, job);
    job->nocache = is_file(dir, "nocache", NULL);
    if (scan_job_dir(dir, job, err, errlen) < 0)
        return -1;
    idset_finish(&job->expected);
    idset_finish(&job->returned);
    for (size_t i = 0; i < job->ntiers; i++)
        idset_finish(&job->tiers[i].minions);
    if (job->ntiers)
        qsort(job->tiers, job->ntiers, sizeof *job->tiers, cmp_tier);
    return 0;
}

/* tree_scan.c -- walk sync_source into a manifest (see tree_scan.h).
 *
 * The walk uses openat/fstatat from directory descriptors and never follows
 * a symlink: a symlink in the source is skipped (counted), so every path in
 * a manifest names a regular file inside the tree. Files are hashed chunk by
 * chunk with one reused TREE_CHUNK buffer, so memory does not grow with file
 * size. */
#include "tree_scan.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "warnrate.h"

#define WATCH_MASK                                                                                 \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | \
     IN_MOVE_SELF | IN_ONLYDIR)

/* What the last scan knew of a file, by relative path. */
struct cached {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    int exec;
    size_t nchunks;
    tree_id *chunk;
};

#define DEPTH_MAX (TREE_PATH_MAX / 2) /* each level adds at least "x/" */

/* One open directory of the walk and the length of its path in rel. */
struct frame {
    DIR *d;
    size_t rl;
};

struct tree_scan {
    char *root;
    int inotify_fd;
    zhashx_t *cache, *next; /* path -> struct cached: last scan's, this scan's */
    unsigned char *buf;     /* one chunk */
    struct warnrate skip_warn;
    int watch_failed;       /* inotify_add_watch failed (logged once) */
    /* the walk under way */
    struct frame stack[DEPTH_MAX];
    int depth;              /* 0: no walk */
    struct tree_manifest m;
    size_t cap;
    uint64_t max_bytes;
    const char *why;
    char rel[TREE_PATH_MAX + 2];
};

static void walk_end(struct tree_scan *w);

static void free_cached(struct cached *c)
{
    if (c)
        free(c->chunk);
    free(c);
}

/* The cache has no destructor: an entry moves from one scan's table to the
 * next without being freed, and zhashx_delete would free it. */
static void destroy_cache(zhashx_t **h)
{
    for (struct cached *c = *h ? zhashx_first(*h) : NULL; c; c = zhashx_next(*h))
        free_cached(c);
    zhashx_destroy(h);
}

struct tree_scan *tree_scan_new(const char *root, int inotify_fd)
{
    struct tree_scan *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->root = strdup(root);
    s->inotify_fd = inotify_fd;
    s->cache = zhashx_new();
    s->buf = malloc(TREE_CHUNK);
    if (!s->root || !s->cache || !s->buf)
        tree_scan_destroy(&s);
    return s;
}

void tree_scan_destroy(struct tree_scan **sp)
{
    struct tree_scan *s = *sp;
    if (!s)
        return;
    walk_end(s);
    destroy_cache(&s->cache);
    destroy_cache(&s->next);
    free(s->buf);
    free(s->root);
    free(s);
    *sp = NULL;
}

static void skip(struct tree_scan *w, const char *what)
{
    metric_add(M_TREE_SKIPPED, 1);
    warn_throttled(&w->skip_warn, "tree sync: %s/%s not carried: %s", w->root, w->rel, what);
}

static void watch_dir(struct tree_scan *s, const char *rel)
{
    if (s->inotify_fd < 0)
        return;
    char path[TREE_PATH_MAX + 4096];
    snprintf(path, sizeof path, "%s%s%s", s->root, *rel ? "/" : "", rel);
    int failed = inotify_add_watch(s->inotify_fd, path, WATCH_MASK) < 0;
    if (failed && !s->watch_failed)
        log_warn("tree sync: cannot watch %s (%s); changes there are seen by the periodic scan only",
                 path, strerror(errno));
    s->watch_failed |= failed;
}

/* Hash the open file FD into C's chunk list; C->size is what was read. */
static int hash_file(struct tree_scan *s, int fd, struct cached *c)
{
    size_t cap = tree_nchunks((uint64_t)c->size) + 1;
    c->chunk = malloc(cap * sizeof *c->chunk);
    if (!c->chunk)
        return -1;
    uint64_t total = 0;
    for (c->nchunks = 0;; c->nchunks++) {
        size_t got = 0;
        while (got < TREE_CHUNK) {
            ssize_t n = read(fd, s->buf + got, TREE_CHUNK - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            got += (size_t)n;
        }
        if (got == 0)
            break;
        if (c->nchunks == cap) /* grew while read: the next scan sees it settled */
            return -1;
        tree_chunk_id(s->buf, got, c->chunk[c->nchunks]);
        total += got;
        if (got < TREE_CHUNK) {
            c->nchunks++;
            break;
        }
    }
    c->size = (off_t)total;
    return 0;
}

static int same_stat(const struct cached *c, const struct stat *st)
{
    return c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size &&
           c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           c->ctime.tv_sec == st->st_ctim.tv_sec && c->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* The cache entry for a file: last scan's if unchanged, else a new hash. */
static struct cached *file_entry(struct tree_scan *w, int dfd, const char *name, const struct stat *st)
{
    struct cached *c = zhashx_lookup(w->cache, w->rel);
    if (c && same_stat(c, st)) {
        zhashx_delete(w->cache, w->rel);
        return c;
    }
    c = calloc(1, sizeof *c);
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (!c || fd < 0) {
        if (fd >= 0)
            close(fd);
        free(c);
        return NULL;
    }
    *c = (struct cached){.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size, .mtime = st->st_mtim,
                         .ctime = st->st_ctim, .exec = (st->st_mode & S_IXUSR) != 0};
    int rc = hash_file(w, fd, c);
    close(fd);
    if (rc == 0 && c->size != st->st_size)
        c->mtime.tv_sec = -1; /* changed while read: hashed again next time */
    if (rc < 0) {
        free_cached(c);
        return NULL;
    }
    return c;
}

static int add_file(struct tree_scan *w, const struct cached *c)
{
    struct tree_manifest *m = &w->m;
    if (m->nfiles == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 256;
        struct tree_file *f = cap <= TREE_FILES_MAX ? realloc(m->file, cap * sizeof *f) : NULL;
        if (!f)
            return -1;
        m->file = f;
        w->cap = cap;
    }
    struct tree_file *f = &m->file[m->nfiles];
    *f = (struct tree_file){.path = strdup(w->rel), .exec = c->exec, .size = (uint64_t)c->size,
                            .nchunks = c->nchunks, .chunk = malloc((c->nchunks + 1) * sizeof *f->chunk)};
    if (!f->path || !f->chunk) {
        free(f->path);
        free(f->chunk);
        return -1;
    }
    memcpy(f->chunk, c->chunk, c->nchunks * sizeof *f->chunk);
    m->nfiles++;
    m->bytes += f->size;
    return 0;
}

static int visit_file(struct tree_scan *w, int dfd, const char *name, const struct stat *st)
{
    struct cached *c = file_entry(w, dfd, name, st);
    if (!c) {
        skip(w, "unreadable or changed while read");
        return 0;
    }
    if (zhashx_insert(w->next, w->rel, c) < 0) {
        free_cached(c);
        w->why = "out of memory";
        return -1;
    }
    if (add_file(w, c) < 0) {
        w->why = "out of memory";
        return -1;
    }
    if (w->m.bytes > w->max_bytes) {
        w->why = "the tree is larger than sync_max_bytes";
        return -1;
    }
    return 0;
}

/* Enter directory DFD (closed here, or kept on the stack), whose path is
 * w->rel (RL bytes). */
static void push_dir(struct tree_scan *w, int dfd, size_t rl)
{
    DIR *d = w->depth < DEPTH_MAX ? fdopendir(dfd) : NULL;
    if (!d) {
        close(dfd);
        skip(w, "directory unreadable or too deep");
        return;
    }
    watch_dir(w, w->rel);
    w->stack[w->depth++] = (struct frame){d, rl};
}

/* One directory entry NAME of DFD; w->rel is its parent's path (RL bytes). */
static int visit(struct tree_scan *w, int dfd, const char *name, size_t rl)
{
    size_t nl = strlen(name), l = rl + (rl ? 1 : 0) + nl;
    if (l > TREE_PATH_MAX) {
        skip(w, "path too long");
        return 0;
    }
    if (rl)
        w->rel[rl] = '/';
    memcpy(w->rel + rl + (rl ? 1 : 0), name, nl + 1);
    struct stat st;
    int rc = 0;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        skip(w, "vanished");
    else if (S_ISDIR(st.st_mode)) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            skip(w, "directory unreadable");
        else
            push_dir(w, fd, l);
    } else if (S_ISREG(st.st_mode))
        rc = visit_file(w, dfd, name, &st);
    else
        skip(w, S_ISLNK(st.st_mode) ? "a symlink" : "not a regular file");
    return rc;
}

/* Close the walk's directories and drop its manifest. */
static void walk_end(struct tree_scan *w)
{
    while (w->depth > 0)
        closedir(w->stack[--w->depth].d);
    tree_manifest_free(&w->m);
    w->cap = 0;
    destroy_cache(&w->next);
}

int tree_scan_begin(struct tree_scan *s, uint64_t max_bytes, const char **why)
{
    walk_end(s);
    s->max_bytes = max_bytes;
    s->rel[0] = '\0';
    int fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || !(s->next = zhashx_new())) {
        if (fd >= 0)
            close(fd);
        *why = fd < 0 ? "sync_source cannot be opened" : "out of memory";
        return -1;
    }
    push_dir(s, fd, 0);
    return 0;
}

int tree_scan_busy(const struct tree_scan *s) { return s->depth > 0; }

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct tree_file *)a)->path, ((const struct tree_file *)b)->path);
}

/* The walk is complete: hand the manifest over; the cache becomes this walk's
 * (what it did not see, deleted files, is forgotten). */
static void walk_done(struct tree_scan *s, struct tree_manifest *m)
{
    destroy_cache(&s->cache);
    s->cache = s->next;
    s->next = NULL;
    qsort(s->m.file, s->m.nfiles, sizeof *s->m.file, by_path);
    *m = s->m;
    memset(&s->m, 0, sizeof s->m);
    s->cap = 0;
}

int tree_scan_step(struct tree_scan *s, long long until_ms, struct tree_manifest *m, const char **why)
{
    if (!s->next) {
        *why = "no walk under way";
        return -1;
    }
    while (s->depth > 0) {
        struct frame *f = &s->stack[s->depth - 1];
        s->rel[f->rl] = '\0';
        struct dirent *e = readdir(f->d);
        if (!e) {
            closedir(f->d);
            s->depth--;
            continue;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (visit(s, dirfd(f->d), e->d_name, f->rl) < 0) {
            *why = s->why;
            walk_end(s);
            return -1;
        }
        if (clock_mono_ms() >= until_ms)
            return 0;
    }
    walk_done(s, m);
    return 1;
}

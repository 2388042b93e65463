/* tree_build.c -- build a tree version on disk and switch to it (see
 * tree_build.h).
 *
 * Paths come from Redis and are untrusted. treerec.c already refused
 * absolute paths and "." / ".." / empty components; here every directory is
 * opened with O_NOFOLLOW relative to the version's own directory descriptor,
 * and nothing but directories and regular files is ever created, so no path
 * can lead out of the target. A path that collides with another (a file
 * where a directory is needed) makes the manifest refused. */
#include "tree_build.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

#define PART ".part"
#define NEXT_LINK ".current.new"
#define VERSIONS_MAX 4096 /* entries of DIR/v looked at when pruning */

/* Where a content can be linked from. */
struct source {
    int in_new; /* in the version being built, else in the previous one */
    char path[];
};

struct tree_build {
    const struct tree_manifest *m;
    const char *mraw;
    size_t mlen;
    char name[TREE_NAME_MAX], tmpname[TREE_NAME_MAX + 8];
    int dir_fd, vdir_fd, tmp_fd, prev_fd, part_fd;
    int complete;
    int pdir_fd;                   /* parent directory of the last file (in tmp) */
    char pdir[TREE_PATH_MAX + 1];  /* its path, "" for the version's root */
    zhashx_t *index;               /* content key -> struct source */
    unsigned char *buf;
};

char *tree_version_name(const struct tree_head *h, char *name)
{
    char hex[TREE_HEX_LEN];
    snprintf(name, TREE_NAME_MAX, "%" PRIu64 "-%.8s", h->version, tree_id_hex(h->chunk[0], hex));
    return name;
}

/* Read a whole small file at DIRFD/NAME (at most MAX bytes). */
static char *read_all(int dirfd, const char *name, uint64_t max, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max &&
        (buf = malloc((size_t)st.st_size + 1)) &&
        pread(fd, buf, (size_t)st.st_size, 0) == st.st_size) {
        *len = (size_t)st.st_size;
    } else {
        free(buf);
        buf = NULL;
    }
    if (fd >= 0)
        close(fd);
    return buf;
}

static int valid_name(const char *s)
{
    const char *dash = strchr(s, '-');
    return dash && dash > s && strspn(s, "0123456789") == (size_t)(dash - s) && strlen(dash + 1) == 8 &&
           strspn(dash + 1, "0123456789abcdef") == 8;
}

int tree_dir_current(const char *dir, uint64_t max_bytes, char *name, struct tree_manifest *m, char **raw,
                     size_t *rawlen)
{
    char link[TREE_NAME_MAX + 8], path[4096 + 8], mname[TREE_NAME_MAX + 16];
    memset(m, 0, sizeof *m);
    *raw = NULL;
    name[0] = '\0';
    snprintf(path, sizeof path, "%s/current", dir);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n <= 2)
        return -1;
    link[n] = '\0';
    if (strncmp(link, "v/", 2) || !valid_name(link + 2) || strlen(link + 2) >= TREE_NAME_MAX)
        return -1;
    snprintf(path, sizeof path, "%s/v", dir);
    snprintf(mname, sizeof mname, "%s.manifest", link + 2);
    int vfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *raw = vfd < 0 ? NULL : read_all(vfd, mname, TREE_MANIFEST_MAX, rawlen);
    if (vfd >= 0)
        close(vfd);
    const char *why;
    if (!*raw || tree_manifest_decode(*raw, *rawlen, max_bytes, m, &why) < 0) {
        tree_manifest_free(m);
        free(*raw);
        *raw = NULL;
        return -1;
    }
    snprintf(name, TREE_NAME_MAX, "%s", link + 2);
    return 0;
}

/* The content key of F: SHA-1 of its chunk ids, size and exec bit, in hex. */
static char *content_key(const struct tree_file *f, char *hex)
{
    size_t n = f->nchunks * TREE_ID_LEN;
    unsigned char *b = malloc(n + 9);
    tree_id id = {0};
    if (b) {
        if (n) /* an empty file has no chunk list */
            memcpy(b, f->chunk, n);
        memcpy(b + n, &f->size, 8);
        b[n + 8] = (unsigned char)f->exec;
        tree_chunk_id(b, n + 9, id);
        free(b);
    }
    return tree_id_hex(id, hex);
}

static void index_add(struct tree_build *b, const struct tree_file *f, int in_new)
{
    char hex[TREE_HEX_LEN];
    size_t pl = strlen(f->path);
    struct source *s = malloc(sizeof *s + pl + 1);
    if (!s)
        return;
    s->in_new = in_new;
    memcpy(s->path, f->path, pl + 1);
    if (zhashx_insert(b->index, content_key(f, hex), s) < 0)
        free(s);
}

static void free_source(void **item)
{
    free(*item);
    *item = NULL;
}

/* Directories are made 0755 whatever the umask (the unit's is 0027): the
 * lower master's user must read the tree. */
static int open_dir_at(int fd, const char *name, int create)
{
    int made = create && mkdirat(fd, name, 0755) == 0;
    if (create && !made && errno != EEXIST)
        return -1;
    int dfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (made && dfd >= 0)
        fchmod(dfd, 0755);
    return dfd;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Remove DIR/v/NAME and everything under it. */
static void remove_tree(const char *dir, const char *name)
{
    char path[4096 + 64];
    snprintf(path, sizeof path, "%s/v/%s", dir, name);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove what unfinished builds left in DIR/v (open as VDIR): the file
 * being written and every .tmp- directory but KEEP's (the build of the
 * version now wanted, resumed; NULL: none). Else a version that failed for
 * lack of space would keep the space a later, smaller one needs. */
static void remove_leftovers(const char *dir, int vdir, const char *keep)
{
    unlinkat(vdir, PART, 0);
    int fd = dup(vdir);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    for (int i = 0; i < VERSIONS_MAX && (e = readdir(d)); i++)
        if (!strncmp(e->d_name, ".tmp-", 5) && (!keep || strcmp(e->d_name, keep)))
            remove_tree(dir, e->d_name);
    closedir(d);
}

/* 1 if DIR/v/NAME is complete: its manifest file holds MRAW. */
static int already_built(struct tree_build *b)
{
    char mname[TREE_NAME_MAX + 16];
    size_t len = 0;
    snprintf(mname, sizeof mname, "%s.manifest", b->name);
    char *raw = read_all(b->vdir_fd, mname, TREE_MANIFEST_MAX, &len);
    int same = raw && len == b->mlen && memcmp(raw, b->mraw, len) == 0;
    free(raw);
    struct stat st;
    return same && fstatat(b->vdir_fd, b->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int open_dirs(struct tree_build *b, const char *dir, const char *prev_name, const char **why)
{
    if (mkdir(dir, 0755) == 0)
        chmod(dir, 0755);
    if ((b->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        (b->vdir_fd = open_dir_at(b->dir_fd, "v", 1)) < 0) {
        *why = "sync_target cannot be created or opened";
        return -1;
    }
    remove_leftovers(dir, b->vdir_fd, b->tmpname);
    b->complete = already_built(b);
    if (!b->complete && strcmp(b->name, prev_name) == 0) {
        *why = "a version of that name is current with other content";
        return -1;
    }
    if (!b->complete)
        remove_tree(dir, b->name); /* an incomplete or other leftover of that name */
    if (!b->complete && (b->tmp_fd = open_dir_at(b->vdir_fd, b->tmpname, 1)) < 0) {
        *why = "cannot create the build directory";
        return -1;
    }
    if (*prev_name)
        b->prev_fd = open_dir_at(b->vdir_fd, prev_name, 0);
    return 0;
}

struct tree_build *tree_build_begin(const char *dir, const char *name, const struct tree_manifest *new_m,
                                    const char *mraw, size_t mlen, const struct tree_manifest *prev,
                                    const char *prev_name, const char **why)
{
    struct tree_build *b = calloc(1, sizeof *b);
    if (!b || !(b->index = zhashx_new()) || !(b->buf = malloc(TREE_CHUNK))) {
        *why = "out of memory";
        tree_build_free(&b);
        return NULL;
    }
    zhashx_set_destructor(b->index, free_source);
    *b = (struct tree_build){.m = new_m, .mraw = mraw, .mlen = mlen, .dir_fd = -1, .vdir_fd = -1, .tmp_fd = -1,
                             .prev_fd = -1, .part_fd = -1, .pdir_fd = -1, .index = b->index, .buf = b->buf};
    snprintf(b->name, sizeof b->name, "%s", name);
    snprintf(b->tmpname, sizeof b->tmpname, ".tmp-%s", name);
    if (open_dirs(b, dir, prev_name, why) < 0) {
        tree_build_free(&b);
        return NULL;
    }
    for (size_t i = 0; b->prev_fd >= 0 && i < prev->nfiles; i++)
        index_add(b, &prev->file[i], 0);
    return b;
}

int tree_build_complete(const struct tree_build *b) { return b->complete; }

void tree_build_free(struct tree_build **bp)
{
    struct tree_build *b = *bp;
    if (!b)
        return;
    if (b->vdir_fd >= 0)
        unlinkat(b->vdir_fd, PART, 0); /* a file cut short: a resumed build fetches it again anyway */
    int fds[] = {b->dir_fd, b->vdir_fd, b->tmp_fd, b->prev_fd, b->part_fd, b->pdir_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0 && (i < 5 || fds[i] != b->tmp_fd))
            close(fds[i]);
    zhashx_destroy(&b->index);
    free(b->buf);
    free(b);
    *bp = NULL;
}

/* The directory (in tmp) that holds PATH, created as needed; *NAME is the
 * last component. -1 with errno on a collision or disk error. */
static int parent_of(struct tree_build *b, const char *path, const char **name)
{
    const char *slash = strrchr(path, '/');
    size_t pl = slash ? (size_t)(slash - path) : 0;
    *name = slash ? slash + 1 : path;
    if (b->pdir_fd >= 0 && strlen(b->pdir) == pl && memcmp(b->pdir, path, pl) == 0)
        return b->pdir_fd;
    if (b->pdir_fd >= 0 && b->pdir_fd != b->tmp_fd)
        close(b->pdir_fd);
    b->pdir_fd = -1;
    int fd = b->tmp_fd;
    char comp[256];
    for (size_t at = 0; at < pl;) {
        size_t cl = strcspn(path + at, "/");
        if (cl > pl - at)
            cl = pl - at;
        memcpy(comp, path + at, cl); /* tree_path_ok: a component has 1-255 bytes */
        comp[cl] = '\0';
        int next = open_dir_at(fd, comp, 1);
        if (fd != b->tmp_fd)
            close(fd);
        if (next < 0)
            return -1;
        fd = next;
        at += cl + 1;
    }
    memcpy(b->pdir, path, pl);
    b->pdir[pl] = '\0';
    return b->pdir_fd = fd;
}

/* 1 if the file NAME in PDIR holds F's content. */
static int holds(struct tree_build *b, int pdir, const char *name, const struct tree_file *f)
{
    int fd = openat(pdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int ok = fd >= 0;
    for (size_t i = 0; ok && i < f->nchunks; i++) {
        size_t len = tree_chunk_len(f->size, i);
        tree_id id;
        ok = pread(fd, b->buf, len, (off_t)i * TREE_CHUNK) == (ssize_t)len;
        if (ok)
            tree_chunk_id(b->buf, len, id);
        ok = ok && memcmp(id, f->chunk[i], TREE_ID_LEN) == 0;
    }
    if (fd >= 0)
        close(fd);
    return ok;
}

static int is_collision(void) { return errno == ENOTDIR || errno == ELOOP || errno == EEXIST || errno == EISDIR; }

/* A file from an earlier build of this version, if it is right. */
static int resumed(struct tree_build *b, int pdir, const char *name, const struct tree_file *f, int *bad)
{
    struct stat st;
    if (fstatat(pdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        *bad = 1; /* a directory made for another path is where this file goes */
        return -1;
    }
    if ((uint64_t)st.st_size == f->size && holds(b, pdir, name, f) &&
        fchmodat(pdir, name, f->exec ? 0755 : 0644, 0) == 0)
        return 1;
    unlinkat(pdir, name, 0);
    return 0;
}

int tree_build_have(struct tree_build *b, size_t i, int *bad)
{
    const struct tree_file *f = &b->m->file[i];
    const char *name;
    char hex[TREE_HEX_LEN];
    *bad = 0;
    int pdir = parent_of(b, f->path, &name);
    if (pdir < 0) {
        *bad = is_collision();
        return -1;
    }
    int rc = resumed(b, pdir, name, f, bad);
    if (rc != 0) {
        if (rc > 0)
            index_add(b, f, 1);
        return rc;
    }
    const struct source *s = zhashx_lookup(b->index, content_key(f, hex));
    if (s && linkat(s->in_new ? b->tmp_fd : b->prev_fd, s->path, pdir, name, 0) == 0) {
        metric_add(M_TREE_LINKED_FILES, 1);
        return 1;
    }
    return 0;
}

int tree_build_open(struct tree_build *b, size_t i)
{
    (void)i;
    b->part_fd = openat(b->vdir_fd, PART, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    return b->part_fd < 0 ? -1 : 0;
}

int tree_build_write(struct tree_build *b, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(b->part_fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int tree_build_finish(struct tree_build *b, size_t i)
{
    const struct tree_file *f = &b->m->file[i];
    const char *name;
    int rc = fchmod(b->part_fd, f->exec ? 0755 : 0644);
    close(b->part_fd);
    b->part_fd = -1;
    int pdir = parent_of(b, f->path, &name);
    if (rc < 0 || pdir < 0 || renameat(b->vdir_fd, PART, pdir, name) < 0)
        return -1;
    index_add(b, f, 1);
    return 0;
}

/* Write the manifest beside the version, durably. */
static int write_manifest(struct tree_build *b)
{
    char mname[TREE_NAME_MAX + 16];
    snprintf(mname, sizeof mname, "%s.manifest", b->name);
    b->part_fd = openat(b->vdir_fd, PART, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = b->part_fd >= 0 && tree_build_write(b, b->mraw, b->mlen) == 0 && fsync(b->part_fd) == 0 ? 0 : -1;
    if (b->part_fd >= 0)
        close(b->part_fd);
    b->part_fd = -1;
    return rc == 0 && renameat(b->vdir_fd, PART, b->vdir_fd, mname) == 0 ? 0 : -1;
}

int tree_build_commit(struct tree_build *b)
{
    char target[TREE_NAME_MAX + 8];
    if (!b->complete) {
        /* the files' data reach the disk before any name points at them */
        if (syncfs(b->tmp_fd) < 0 || write_manifest(b) < 0 ||
            renameat(b->vdir_fd, b->tmpname, b->vdir_fd, b->name) < 0 || fsync(b->vdir_fd) < 0)
            return -1;
        b->complete = 1;
    }
    snprintf(target, sizeof target, "v/%s", b->name);
    unlinkat(b->dir_fd, NEXT_LINK, 0);
    if (symlinkat(target, b->dir_fd, NEXT_LINK) < 0 || renameat(b->dir_fd, NEXT_LINK, b->dir_fd, "current") < 0)
        return -1;
    return fsync(b->dir_fd);
}

static int by_version_desc(const void *a, const void *b)
{
    unsigned long long x = strtoull(*(char *const *)a, NULL, 10), y = strtoull(*(char *const *)b, NULL, 10);
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Names of the versions in DIR/v (malloc'd), newest first. */
static size_t list_versions(DIR *d, char **names, size_t max)
{
    size_t n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d)))
        if (valid_name(e->d_name))
            names[n++] = strdup(e->d_name);
    qsort(names, n, sizeof *names, by_version_desc);
    return n;
}

void tree_dir_prune(const char *dir, long long keep, const char *current)
{
    char path[4096 + 8], mname[TREE_NAME_MAX + 16];
    snprintf(path, sizeof path, "%s/v", dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    char **names = calloc(VERSIONS_MAX, sizeof *names);
    size_t n = names ? list_versions(d, names, VERSIONS_MAX) : 0;
    long long kept = 1; /* current */
    for (size_t i = 0; i < n; i++) {
        if (names[i] && strcmp(names[i], current) && kept++ >= keep) {
            remove_tree(dir, names[i]);
            snprintf(mname, sizeof mname, "%s.manifest", names[i]);
            unlinkat(dirfd(d), mname, 0);
        }
        free(names[i]);
    }
    free(names);
    remove_leftovers(dir, dirfd(d), NULL);
    closedir(d);
}

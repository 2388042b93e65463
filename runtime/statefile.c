/* statefile.c -- see statefile.h. */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int join(char *path, size_t len, const char *dir, const char *name)
{
    return snprintf(path, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int statefile_write(const char *dir, const char *name, const char *text, int sync)
{
    char path[4096], tmp[4100];
    if (join(path, sizeof path, dir, name) < 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write_all(fd, text, strlen(text)) < 0 || (sync && fsync(fd) < 0)) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(tmp, path) < 0)
        return -1;
    if (sync) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

long statefile_read(const char *dir, const char *name, char *buf, size_t len)
{
    char path[4096];
    if (join(path, sizeof path, dir, name) < 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, len - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            if (r < 0)
                return -1;
            break;
        }
        got += (size_t)r;
        if (got == len - 1) {
            close(fd);
            return -1;
        }
    }
    buf[got] = '\0';
    return (long)got;
}

int statefile_get(const char *text, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            const char *v = line + kl + 1;
            size_t vl = strcspn(v, "\n");
            if (vl >= outlen)
                return -1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
    }
    return -1;
}

/* FNV-1a: enough to tell a torn or hand-damaged slot from a written one. */
static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    while (n--)
        h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

/* "seq N\n" TEXT "check XXXXXXXX\n", padded with spaces to a full slot. */
static int format_slot(char *out, unsigned long long seq, const char *text)
{
    size_t tl = strlen(text);
    if (tl > STATEFILE_TEXT_MAX)
        return -1;
    int n = snprintf(out, STATEFILE_SLOT, "seq %llu\n%s%s", seq, text, tl && text[tl - 1] != '\n' ? "\n" : "");
    n += snprintf(out + n, STATEFILE_SLOT - (size_t)n, "check %08x\n", (unsigned)fnv1a(out, (size_t)n));
    memset(out + n, ' ', STATEFILE_SLOT - 1 - (size_t)n);
    out[STATEFILE_SLOT - 1] = '\n';
    return 0;
}

/* If SLOT is valid: its seq, and its text (without seq and check) in TEXT. */
static int parse_slot(const char *slot, unsigned long long *seq, char *text, size_t len)
{
    char s[STATEFILE_SLOT + 1], want[32];
    memcpy(s, slot, STATEFILE_SLOT);
    s[STATEFILE_SLOT] = '\0';
    char *check = strstr(s, "\ncheck ");
    if (strncmp(s, "seq ", 4) != 0 || !check)
        return -1;
    check++;
    snprintf(want, sizeof want, "check %08x\n", (unsigned)fnv1a(s, (size_t)(check - s)));
    char *body = strchr(s, '\n') + 1, *end;
    *seq = strtoull(s + 4, &end, 10);
    size_t bl = (size_t)(check - body);
    if (strncmp(check, want, strlen(want)) != 0 || end != body - 1 || bl >= len)
        return -1;
    memcpy(text, body, bl);
    text[bl] = '\0';
    return 0;
}

/* Take the newest valid slot among those at offsets 0 and STRIDE of BUF;
 * each slot is parsed on its own, so damage to one never hides the other. */
static int pick_slot(struct statefile *sf, const char *buf, size_t stride, char *text, size_t len)
{
    char got[STATEFILE_SLOT];
    unsigned long long seq;
    sf->newest = -1;
    for (int i = 0; i < 2; i++) {
        if (parse_slot(buf + (size_t)i * stride, &seq, got, len < sizeof got ? len : sizeof got) < 0 ||
            (sf->newest >= 0 && seq <= sf->seq))
            continue;
        sf->newest = i;
        sf->seq = seq;
        memcpy(text, got, strlen(got) + 1);
    }
    if (sf->newest < 0)
        errno = EINVAL;
    return sf->newest < 0 ? -1 : 0;
}

/* Write a file holding TEXT in both slots (seq 1 at 0, seq 0 in the next
 * block), atomically; the gap between them is spaces. */
static int create_slots(struct statefile *sf, const char *dir, const char *name, const char *text)
{
    char file[STATEFILE_FILE_SIZE + 1];
    memset(file, ' ', STATEFILE_FILE_SIZE);
    file[STATEFILE_BLOCK - 1] = '\n';
    if (format_slot(file, 1, text) < 0 || format_slot(file + STATEFILE_BLOCK, 0, text) < 0) {
        errno = EINVAL;
        return -1;
    }
    file[STATEFILE_FILE_SIZE] = '\0';
    sf->newest = 0;
    sf->seq = 1;
    return statefile_write(dir, name, file, 1);
}

/* The state in the N bytes of BUF, by the file's size: the current layout
 * (slots in two blocks), the earlier one (two adjacent slots, carried over
 * into the current layout), or the oldest whole-text format (carried over). */
static int load_any(struct statefile *sf, const char *dir, const char *name, const char *buf, long n,
                    char *text, size_t len)
{
    if (n == STATEFILE_FILE_SIZE)
        return pick_slot(sf, buf, STATEFILE_BLOCK, text, len);
    if (n == 2 * STATEFILE_SLOT) {
        if (pick_slot(sf, buf, STATEFILE_SLOT, text, len) < 0)
            return -1;
    } else if (strncmp(buf, "seq ", 4) == 0 || (size_t)n >= len || (size_t)n > STATEFILE_TEXT_MAX) {
        errno = EINVAL; /* damaged, or an older-format file too large to carry over */
        return -1;
    } else {
        memcpy(text, buf, (size_t)n + 1);
    }
    return create_slots(sf, dir, name, text);
}

int statefile_open(struct statefile *sf, const char *dir, const char *name, char *text, size_t len)
{
    char buf[STATEFILE_FILE_SIZE + 2] = ""; /* + 1: statefile_read wants room to spare */
    char path[4096];
    sf->fd = -1;
    long n = statefile_read(dir, name, buf, sizeof buf);
    if (n < 0 || join(path, sizeof path, dir, name) < 0)
        return -1;
    if (load_any(sf, dir, name, buf, n, text, len) < 0)
        return -1;
    sf->fd = open(path, O_RDWR | O_CLOEXEC);
    return sf->fd < 0 ? -1 : 0;
}

int statefile_save(struct statefile *sf, const char *text, int sync)
{
    char slot[STATEFILE_SLOT];
    int older = !sf->newest;
    if (format_slot(slot, sf->seq + 1, text) < 0) {
        errno = EINVAL;
        return -1;
    }
    ssize_t w = pwrite(sf->fd, slot, sizeof slot, (off_t)older * STATEFILE_BLOCK);
    if (w != (ssize_t)sizeof slot) {
        if (w >= 0)
            errno = EIO; /* the newest slot is intact; the next save rewrites this one */
        return -1;
    }
    sf->newest = older;
    sf->seq++;
    return sync ? statefile_sync(sf) : 0;
}

int statefile_sync(struct statefile *sf)
{
    return fdatasync(sf->fd);
}

void statefile_close(struct statefile *sf)
{
    if (sf->fd >= 0)
        close(sf->fd);
    sf->fd = -1;
}

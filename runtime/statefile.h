/* statefile.h -- small durable state files in a daemon's state_dir.
 *
 * Two ways to keep one:
 *  - statefile_write: replace the whole file atomically (temporary file +
 *    rename), for files written rarely;
 *  - struct statefile: a file written after every delivered batch, kept open
 *    and made of two fixed-size text slots overwritten in place, in turn,
 *    with one pwrite each. Every slot holds "seq N", the caller's "key value"
 *    lines and "check XXXXXXXX" (FNV-1a of what precedes it); the loader parses
 *    each slot on its own and takes the valid one with the highest seq (the
 *    file is bad only when neither is valid). A pwrite of one slot either happened
 *    or not when the process is killed, so the file always holds the old or
 *    the new state, never a torn one, at the cost of a page-cache copy instead
 *    of an open/write/close/rename. Slots are 512 bytes, one at offset 0 and one
 *    at offset 4096, so they never share a 4 KiB block (a disk or a file
 *    system tears at most the block being written at a power loss, and that
 *    holds only the slot being written). The file stays readable with cat: each slot is text padded with
 *    spaces. */
#ifndef SALTRELAY_STATEFILE_H
#define SALTRELAY_STATEFILE_H

#include <stddef.h>

/* Replace DIR/NAME with TEXT. With SYNC, fsync the file and the directory
 * (needed to survive power loss; a process kill only needs the rename). */
int statefile_write(const char *dir, const char *name, const char *text, int sync);
/* Read DIR/NAME into BUF (NUL-terminated). Returns bytes read, 0 if the file
 * does not exist, -1 on error or if it does not fit. */
long statefile_read(const char *dir, const char *name, char *buf, size_t len);
/* Find "KEY value" on its own line in TEXT; copies value into OUT. */
int statefile_get(const char *text, const char *key, char *out, size_t outlen);

#define STATEFILE_SLOT 512
#define STATEFILE_BLOCK 4096 /* the second slot's offset */
#define STATEFILE_FILE_SIZE (STATEFILE_BLOCK + STATEFILE_SLOT)
/* The caller's text must leave room for the seq and check lines. */
#define STATEFILE_TEXT_MAX (STATEFILE_SLOT - 64)

struct statefile {
    int fd;
    int newest;              /* slot holding the newest state; the next write takes the other */
    unsigned long long seq;  /* of the newest slot */
};

/* Open DIR/NAME and copy its newest valid state into TEXT (LEN >=
 * STATEFILE_TEXT_MAX + 1): "" for a new file. A file in an older format
 * (whole text, or two adjacent slots) is taken as is. A missing or
 * older-format file is replaced atomically (and durably) by a two-slot file
 * holding that state. Returns 0,
 * or -1 with errno set (EINVAL: neither slot is valid). */
int statefile_open(struct statefile *sf, const char *dir, const char *name, char *text, size_t len);
/* Overwrite the older slot with TEXT (at most STATEFILE_TEXT_MAX bytes of
 * "key value" lines); with SYNC, fdatasync afterwards (power loss). */
int statefile_save(struct statefile *sf, const char *text, int sync);
/* Make the last save durable (power loss). */
int statefile_sync(struct statefile *sf);
void statefile_close(struct statefile *sf);

#endif

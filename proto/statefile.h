/* statefile.h -- small durable state files in a daemon's state_dir, written
 * atomically (temporary file + rename), so a crash at any instant leaves
 * either the old or the new content, never a torn one. */
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

#endif

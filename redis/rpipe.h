/* rpipe.h -- the one Redis pipeline: what every part that writes to Redis
 * uses on its own connection (rconn.h).
 *
 * Commands are appended with a tag (the caller's, e.g. a slot number), written
 * without blocking when the socket takes them (the part waits for POLLOUT
 * through rpipe_wait), and each reply is handed back with its tag as soon as
 * it has come, in order. The part's thread therefore never waits for a round
 * trip: it keeps serving its ZeroMQ sockets meanwhile.
 *
 * Bounds: at most BATCH_BYTES of formatted commands (a command larger than
 * that goes alone) and BATCH_MAX commands await their replies at once; an
 * append past either is refused (RPIPE_FULL) and is tried again by the part
 * later, so what is not yet in the pipeline stays with the part, under the
 * part's own bounds.
 *
 * One timeout policy: when commands await replies and nothing came for
 * TIMEOUT_MS since the last reply (or since the pipeline was idle), the
 * connection is failed (rconn_fail) and every command in flight is handed
 * back with a NULL reply: it may or may not have been executed. A READONLY
 * reply (the primary was demoted) is handed back, then fails the connection
 * the same way, so that the next command goes to the new primary.
 *
 * While commands are in flight the connection is the pipeline's: no blocking
 * command (rconn_command) may be sent on it until rpipe_inflight() is 0. */
#ifndef SALTRELAY_RPIPE_H
#define SALTRELAY_RPIPE_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "part.h"
#include "rconn.h"

enum { RPIPE_OK = 0, RPIPE_FULL = -1, RPIPE_DOWN = -2 };

/* Called once per command appended: REPLY is its reply (freed after the
 * call), or NULL if it was lost with the connection. It must not append. */
typedef void rpipe_reply_fn(void *arg, uint64_t tag, redisReply *reply);

struct rpipe;

struct rpipe *rpipe_new(struct rconn *rc, size_t batch_bytes, size_t batch_max, int timeout_ms,
                        rpipe_reply_fn *on_reply, void *arg);
/* Commands still in flight are handed back as lost. */
void rpipe_destroy(struct rpipe **pp);

/* Append one command. RPIPE_OK, RPIPE_FULL (the batch is at its bounds) or
 * RPIPE_DOWN (no connection; rconn_retry_in_ms says when to try again). */
int rpipe_append_argv(struct rpipe *p, uint64_t tag, int argc, const char **argv, const size_t *argvlen);
int rpipe_append(struct rpipe *p, uint64_t tag, const char *fmt, ...);
/* A command already in Redis's protocol (LEN bytes, copied). */
int rpipe_append_formatted(struct rpipe *p, uint64_t tag, const char *cmd, size_t len);
/* Would NCMDS commands of BYTES in all be taken now? (To append a group of
 * commands whole, or none of it.) */
int rpipe_room(const struct rpipe *p, size_t ncmds, size_t bytes);

/* What the part waits for: the socket (readable; writable while something
 * is left to write) and the timeout. */
void rpipe_wait(struct rpipe *p, struct part_poll *w);
/* After the wait (or right after appending): write what the socket takes,
 * read what came, hand back every complete reply, apply the timeout. Never
 * waits. */
void rpipe_io(struct rpipe *p);

/* Fail the connection (a reply showed it unusable, e.g. READONLY after a
 * failover): every command in flight is handed back as lost. From inside
 * the reply callback it takes effect once the callback returned. */
void rpipe_fail(struct rpipe *p, const char *why);

/* At a part's close: write and wait for the replies of what is in flight,
 * for at most TIMEOUT_MS (the only call that waits). */
void rpipe_flush(struct rpipe *p, int timeout_ms);

size_t rpipe_inflight(const struct rpipe *p);
size_t rpipe_inflight_bytes(const struct rpipe *p);

#endif

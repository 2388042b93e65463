/* hostproc.h -- whether a process of this host has ended, from what it wrote
 * about itself: its pid and its mark (the kernel's boot id and its pid
 * namespace). A saltrelay-down killed on this host leaves its DC's lease
 * behind (redis/dclease.h); the one restarted in its place sees that the
 * holder has ended and takes over at once instead of after the lease ran
 * out. A process of another host or namespace is never judged. */
#ifndef SALTRELAY_HOSTPROC_H
#define SALTRELAY_HOSTPROC_H

#include <stddef.h>

#define HOSTPROC_MARK_MAX 64

/* This process's name, "<host name>/<pid>", as hostproc_gone's PID wants it
 * back (instance.h names saltrelay-up's slots, not processes). */
void hostproc_name(char *buf, size_t len);
/* This process's mark, "<boot id>.<pid namespace inode>" ("" if unknown). */
void hostproc_mark(char *buf, size_t len);
/* 1 if the process PID that wrote MARK has provably ended: MARK is this
 * process's own (same boot, same pid namespace) and PID is no process, a
 * zombie, this process or a program of another name than this one (the
 * pid was reused); 0 if it may still run. */
int hostproc_gone(const char *mark, long pid);

#endif

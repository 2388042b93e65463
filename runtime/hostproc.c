/* hostproc.c -- see hostproc.h. */
#include "hostproc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void hostproc_name(char *buf, size_t len)
{
    char host[72] = "";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    snprintf(buf, len, "%s/%ld", host, (long)getpid());
}

void hostproc_mark(char *buf, size_t len)
{
    char boot[64] = "";
    struct stat ns;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f && fgets(boot, sizeof boot, f))
        boot[strcspn(boot, "\n")] = '\0';
    if (f)
        fclose(f);
    if (!boot[0] || stat("/proc/self/ns/pid", &ns) < 0)
        snprintf(buf, len, "%s", "");
    else
        snprintf(buf, len, "%s.%lu", boot, (unsigned long)ns.st_ino);
}

/* The name and state of process PID from /proc/PID/stat ("pid (comm) S ...");
 * -1 if unreadable. */
static int proc_stat(long pid, char *comm, size_t len, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open || close[1] != ' ' || !close[2])
        return -1;
    snprintf(comm, len, "%.*s", (int)(close - open - 1), open + 1);
    *state = close[2];
    return 0;
}

int hostproc_gone(const char *mark, long pid)
{
    char mine[HOSTPROC_MARK_MAX], comm[64], own[64], state, own_state;
    hostproc_mark(mine, sizeof mine);
    if (!mine[0] || strcmp(mark, mine) != 0 || pid <= 0)
        return 0;
    if (pid == (long)getpid())
        return 1; /* an earlier process that had this pid */
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return 1;
    if (proc_stat(pid, comm, sizeof comm, &state) < 0 || proc_stat((long)getpid(), own, sizeof own, &own_state) < 0)
        return 0; /* hidden (another user's, hidepid): it may be ours */
    return state == 'Z' || state == 'X' || strcmp(comm, own) != 0;
}

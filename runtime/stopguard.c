/* stopguard.c -- the bound on a daemon's stop; see stopguard.h. */
#include "stopguard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define TICK_MS 50 /* how often the guard looks at its deadline, which may come nearer */

static _Atomic(const char *) waiting_for;
static atomic_int status_at_bound;
static _Atomic long long deadline_ms; /* monotonic */
static atomic_int limited;            /* the deadline is stopguard_limit's, not stop_timeout's */
static long long bound_ms;
static char dir[4096];

/* Make the state directory's files durable: the stuck part's own sync may
 * never come. syncfs covers every file of that file system, the state file
 * included, without touching the stuck part's descriptors. */
static void sync_state(void)
{
    if (!dir[0])
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) < 0)
        log_error("stop: cannot sync %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void log_end(const char *what, int status)
{
    if (status)
        log_error("%s did not stop within stop_timeout (%.0f s): exiting without it; what it saved so far "
                  "stands (saltrelay-down: the restart resumes from the saved cursor, may repeat, never skips)",
                  what, bound_ms / 1000.0);
    else if (atomic_load(&limited))
        log_warn("%s still going %d s after every part stopped (libzmq removing many subscribers, "
                 "docs/performance-history.md): exiting without waiting for it, every socket's linger has passed",
                 what, STOPGUARD_CLOSE_MS / 1000);
    else
        log_warn("%s did not end within stop_timeout (%.0f s) after every part stopped: exiting without "
                 "waiting for it", what, bound_ms / 1000.0);
}

static void *guard(void *arg)
{
    (void)arg;
    long long left;
    while ((left = atomic_load(&deadline_ms) - clock_mono_ms()) > 0) {
        struct timespec ts = {0, (left < TICK_MS ? left : TICK_MS) * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_end(atomic_load(&waiting_for), atomic_load(&status_at_bound));
    sync_state();
    _exit(atomic_load(&status_at_bound));
    return NULL;
}

int stopguard_start(long long timeout_ms, const char *state_dir)
{
    bound_ms = timeout_ms;
    atomic_store(&deadline_ms, clock_mono_ms() + timeout_ms);
    if (state_dir && strlen(state_dir) < sizeof dir)
        strcpy(dir, state_dir);
    if (!atomic_load(&waiting_for))
        atomic_store(&waiting_for, "the stop");
    pthread_t t;
    if (pthread_create(&t, NULL, guard, NULL) != 0) {
        log_error("stop: cannot start the stop_timeout guard: the stop is not bounded");
        return -1;
    }
    pthread_detach(t);
    return 0;
}

void stopguard_waiting_for(const char *what, int exit_status)
{
    atomic_store(&status_at_bound, exit_status);
    atomic_store(&waiting_for, what);
}

void stopguard_limit(long long ms)
{
    long long at = clock_mono_ms() + ms;
    if (at < atomic_load(&deadline_ms)) {
        atomic_store(&limited, 1);
        atomic_store(&deadline_ms, at);
    }
}

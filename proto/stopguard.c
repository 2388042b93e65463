/* stopguard.c -- the bound on a daemon's stop; see stopguard.h. */
#include "stopguard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static _Atomic(const char *) waiting_for;
static atomic_int status_at_bound;
static struct timespec deadline; /* CLOCK_MONOTONIC; written before the thread starts */
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

static void *guard(void *arg)
{
    (void)arg;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
        ;
    const char *what = atomic_load(&waiting_for);
    int status = atomic_load(&status_at_bound);
    if (status)
        log_error("%s did not stop within stop_timeout (%.0f s): exiting without it; what it saved so far "
                  "stands (saltrelay-down: the restart resumes from the saved cursor, may repeat, never skips)",
                  what, bound_ms / 1000.0);
    else
        log_warn("%s did not end within stop_timeout (%.0f s) after every part stopped: exiting without "
                 "waiting for it", what, bound_ms / 1000.0);
    sync_state();
    _exit(status);
    return NULL;
}

int stopguard_start(long long timeout_ms, const char *state_dir)
{
    bound_ms = timeout_ms;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
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

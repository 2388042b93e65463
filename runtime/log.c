/* log.c -- timestamped one-line logging shared by every saltrelay program.
 * A mutex keeps lines from different threads whole. */
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "saltrelay";
static _Atomic int log_min = LOG_LVL_INFO; /* changed on SIGHUP while threads log */
static FILE *log_out;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warning", "error"};

void log_init(const char *progname, enum log_level min_level)
{
    log_prog = progname;
    log_min = min_level;
}

void log_set_level(enum log_level min_level)
{
    log_min = min_level;
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int log_open_file(const char *path)
{
    FILE *f = NULL;
    if (path && *path) {
        f = fopen(path, "a");
        if (!f)
            return -1;
        setvbuf(f, NULL, _IOLBF, 0);
    }
    pthread_mutex_lock(&log_lock);
    if (log_out)
        fclose(log_out);
    log_out = f;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    if ((int)lvl < log_min)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char stamp[40];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    FILE *out = log_out ? log_out : stderr;
    fprintf(out, "%s.%03ldZ %s[%d] %s: ", stamp, (long)tv.tv_usec / 1000, log_prog, (int)getpid(),
            level_names[lvl]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

/* clock.h -- wall-clock and monotonic milliseconds. Wall time is what stream
 * IDs and Salt jids carry; monotonic time drives deadlines and backoff. */
#ifndef SALTRELAY_CLOCK_H
#define SALTRELAY_CLOCK_H

#include <time.h>

static inline long long clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline long long clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif

/* unit_metrics.c -- the delivery cursor is read as one unit (runtime/metrics.c):
 * a reader racing a writer never sees the ms of one cursor with the seq,
 * serial or delivery time of another (issue 10 item 10). */
#include <pthread.h>

#include "metrics.h"
#include "unit.h"

#define ROUNDS 200000

static void *writer(void *arg)
{
    (void)arg;
    for (int64_t i = 1; i <= ROUNDS; i++)
        metric_cursor_set(i, i, i, i);
    return NULL;
}

UNIT_TEST(cursor_read_whole)
{
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    long torn = 0;
    for (int k = 0; k < ROUNDS; k++) {
        struct metric_cursor c;
        metric_cursor_get(&c);
        torn += c.seq != c.ms || c.serial != c.ms || c.delivered_at_ms != c.ms;
    }
    pthread_join(t, NULL);
    CHECK_INT(torn, 0);
    struct metric_cursor c;
    metric_cursor_set(7, 8, 9, 0); /* 0: the delivery time stays */
    metric_cursor_get(&c);
    CHECK(c.ms == 7 && c.seq == 8 && c.serial == 9 && c.delivered_at_ms == ROUNDS);
}

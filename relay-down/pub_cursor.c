/* pub_cursor.c -- publication output's delivered cursor (see pub_output.c):
 * kept in state_dir/pub.state (statefile.h: two slots, one pwrite when the
 * cursor known to have left ZeroMQ moves, fdatasync at most once a second) and exported in the cursor metrics for
 * the DC report. */
#include "pub_output_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

static void note_state_result(struct pub_output *p, int rc)
{
    if ((rc < 0) != p->state_error)
        log_msg(rc < 0 ? LOG_LVL_ERROR : LOG_LVL_INFO, "saving the cursor in %s/%s %s",
                p->cfg->state_dir, STATE_FILE, rc < 0 ? "fails; a restart would resend" : "works again");
    p->state_error = rc < 0;
}

/* Overwrite the state file's older slot (a pwrite, see statefile.h); with
 * SYNC also make it durable. Called once per batch, and when the number of
 * subscribers or of their subscriptions changes. */
void cursor_save(struct pub_output *p, int sync)
{
    char text[200], id[STREAMID_STRLEN];
    int subscribers = p->holding && p->expected > p->subscribers ? p->expected : p->subscribers;
    unsigned long subs = p->holding && p->expected_subs > p->subs.live ? p->expected_subs : p->subs.live;
    snprintf(text, sizeof text, "cursor %s\nserial %llu\nsubscribers %d\nsubscriptions %lu\n",
             p->have_saved ? streamid_format(p->saved, id) : "none", (unsigned long long)p->saved_serial,
             subscribers, subs);
    p->saved_subs = p->subs.live;
    note_state_result(p, statefile_save(&p->sf, text, sync));
    p->unsynced = !sync;
    if (sync)
        p->synced_at = clock_mono_ms();
}

/* The cursor is known to have left (loaded, or a new start). */
void cursor_sent(struct pub_output *p)
{
    p->have_saved = p->have_cursor;
    p->saved = p->cursor;
    p->saved_serial = p->serial;
    if (p->have_cursor)
        pub_flow_set_left(&p->flow, p->cursor, p->serial);
}

void cursor_save_left(struct pub_output *p)
{
    const struct pub_flow_rec *l = &p->flow.left;
    if (!p->flow.have_left || (p->have_saved && streamid_cmp(l->id, p->saved) == 0 && l->serial == p->saved_serial))
        return;
    p->have_saved = 1;
    p->saved = l->id;
    p->saved_serial = l->serial;
    cursor_save(p, 0);
}

void cursor_save_subs(struct pub_output *p)
{
    if (p->subs.live != p->saved_subs)
        cursor_save(p, 0);
}

/* Once a second: make the last save durable against power loss. */
void cursor_sync(struct pub_output *p)
{
    if (p->unsynced)
        note_state_result(p, statefile_sync(&p->sf));
    p->unsynced = 0;
    p->synced_at = clock_mono_ms();
}

/* Export the cursor for the DC report; NOW_WALL 0 when nothing was delivered. */
void cursor_publish(struct pub_output *p, long long now_wall)
{
    metric_cursor_set((int64_t)p->cursor.ms, (int64_t)p->cursor.seq, (int64_t)p->serial, now_wall);
}

/* Open the state file; in stream mode take the cursor and subscriber count. */
int cursor_load(struct pub_output *p)
{
    char text[STATEFILE_TEXT_MAX + 1], v[64];
    if (statefile_open(&p->sf, p->cfg->state_dir, STATE_FILE, text, sizeof text) < 0) {
        log_error("cannot open %s/%s: %s", p->cfg->state_dir, STATE_FILE,
                  errno == EINVAL ? "neither slot is valid; write one line 'cursor <last delivered ID>' into it "
                                    "to resume after that ID, or remove it to start at the stream's end (skips the backlog)"
                                  : strerror(errno));
        return -1;
    }
    if (p->channel_mode)
        return 0; /* no cursor, and nothing to hold: PUBLISH has no backlog */
    if (statefile_get(text, "cursor", v, sizeof v) == 0 && strcmp(v, "none") != 0) {
        if (streamid_parse(v, strlen(v), &p->cursor) < 0) {
            log_error("%s/%s: bad cursor '%s'; write one line 'cursor <last delivered ID>' into it, or remove it "
                      "to start at the stream's end (skips the backlog)",
                      p->cfg->state_dir, STATE_FILE, v);
            return -1;
        }
        p->have_cursor = 1;
    }
    uint64_t n;
    if (statefile_get(text, "serial", v, sizeof v) == 0 && decimal_parse(v, strlen(v), &n) == 0)
        p->serial = n;
    if (statefile_get(text, "subscribers", v, sizeof v) == 0 && decimal_parse(v, strlen(v), &n) == 0)
        p->expected = n > 1000000 ? 1000000 : (int)n;
    p->expected_subs = (unsigned long)p->expected; /* a state file without the line: one each at least */
    if (statefile_get(text, "subscriptions", v, sizeof v) == 0 && decimal_parse(v, strlen(v), &n) == 0)
        p->expected_subs = n > PUB_SUBS_MAX ? PUB_SUBS_MAX : (unsigned long)n;
    p->holding = p->expected > 0;
    cursor_publish(p, 0);
    return 0;
}


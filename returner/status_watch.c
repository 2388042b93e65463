/* status_watch.c -- saltrelay-status --watch: the DC table redrawn every
 * second on the terminal's alternate screen, with per-DC rates (publications
 * sent, requests received per second, from the counters of two successive
 * reads), until SIGINT or SIGTERM; then the terminal is given back as it was
 * (main screen, cursor shown) and the exit status is 0.
 *
 * Each frame is rendered into memory first and written at once, so the
 * screen never shows half a table. A Redis that fails shows its one-line
 * verdict and the view keeps trying. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "outfmt.h"
#include "overview.h"
#include "status.h"

#define ENTER_SCREEN "\033[?1049h\033[?25l" /* alternate screen, cursor hidden */
#define LEAVE_SCREEN "\033[?25h\033[?1049l" /* cursor shown, main screen */
#define CLEAR "\033[H\033[2J"
#define FRAME_MS 1000

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

/* The previous read's counters, by DC name, for the rates. */
struct sample {
    char name[DC_NAME_MAX];
    long long pub, req;
};

static double rate(long long now, long long before, double secs)
{
    return now >= 0 && before >= 0 && now >= before && secs > 0 ? (double)(now - before) / secs : -1;
}

/* Rates of OV's DCs against PREV (N_PREV samples taken PREV_MS), then PREV
 * becomes OV's samples. */
static void rates_update(const struct overview *ov, struct dc_rates *rates, struct sample *prev, int *n_prev,
                         long long *prev_ms)
{
    double secs = *prev_ms ? (double)(ov->at_ms - *prev_ms) / 1000.0 : 0;
    for (int i = 0; i < ov->n; i++) {
        const struct dc_state *dc = &ov->dcs[i];
        rates[i] = (struct dc_rates){-1, -1};
        for (int j = 0; j < *n_prev; j++)
            if (!strcmp(prev[j].name, dc->name))
                rates[i] = (struct dc_rates){rate(dc->counter[DCF_PUB_OUT_MSGS], prev[j].pub, secs),
                                             rate(dc->counter[DCF_REQ_IN], prev[j].req, secs)};
    }
    for (int i = 0; i < ov->n; i++) {
        memcpy(prev[i].name, ov->dcs[i].name, DC_NAME_MAX);
        prev[i].pub = ov->dcs[i].counter[DCF_PUB_OUT_MSGS];
        prev[i].req = ov->dcs[i].counter[DCF_REQ_IN];
    }
    *n_prev = ov->n;
    *prev_ms = ov->at_ms;
}

/* One frame into a memory buffer (a failed read leaves its verdict line). */
static char *render(const struct status_opts *o, struct sample *prev, int *n_prev, long long *prev_ms, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    fputs(CLEAR, f);
    struct overview ov;
    static struct dc_rates rates[DC_LIST_MAX];
    if (overview_load(o->rc, o->cfg, &ov) == 0) {
        rates_update(&ov, rates, prev, n_prev, prev_ms);
        overview_print_text(&ov, rates, o->colour, f);
        overview_free(&ov);
    } else {
        fprintf(f, "%s\n", ov.error);
    }
    time_t t = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%H:%M:%S", localtime(&t));
    fprintf(f, "\n%s  cluster %s  every %d s  Ctrl-C quits\n", stamp, o->cfg->cluster, FRAME_MS / 1000);
    fclose(f);
    return buf;
}

/* Sleep up to MS, returning early on a signal. */
static void pause_ms(long long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR on SIGINT/SIGTERM: the loop checks stop */
}

int status_watch(const struct status_opts *o)
{
    struct sigaction sa = {.sa_handler = on_stop}; /* no SA_RESTART: a signal ends the sleep */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    static struct sample prev[DC_LIST_MAX];
    int n_prev = 0;
    long long prev_ms = 0;
    fputs(ENTER_SCREEN, stdout);
    while (!stop) {
        long long start = clock_mono_ms();
        size_t len = 0;
        char *frame = render(o, prev, &n_prev, &prev_ms, &len);
        if (frame && !stop)
            fwrite(frame, 1, len, stdout);
        fflush(stdout);
        free(frame);
        long long left = FRAME_MS - (clock_mono_ms() - start);
        if (left > 0 && !stop)
            pause_ms(left);
    }
    fputs(LEAVE_SCREEN, stdout);
    fflush(stdout);
    return 0;
}

/* stub.c -- TEMPORARY placeholders until the return path lands. */
#include <string.h>

#include "clock.h"
#include "daemon.h"
#include "reqin.h"
#include "reqout.h"

static void idle(zsock_t *pipe, struct part_ctx *ctx)
{
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zpoller_set_nonstop(poller, true);
    for (;;) {
        void *w = zpoller_wait(poller, 500);
        part_alive(ctx, clock_mono_ms());
        if (w) {
            char *cmd = zstr_recv(pipe);
            int term = !cmd || strcmp(cmd, "$TERM") == 0;
            free(cmd);
            if (term)
                break;
        }
    }
    zpoller_destroy(&poller);
}

void reqout_actor(zsock_t *pipe, void *args) { idle(pipe, args); }
void reqin_actor(zsock_t *pipe, void *args) { idle(pipe, args); }

/* stopguard.h -- the bound on a daemon's stop (stop_timeout).
 *
 * A part's drain is bounded, but a part's thread can be stuck where no bound
 * of ours reaches: inside libzmq (an XPUB removing the subscriptions of
 * thousands of subscribers that left at once walks its whole subscription
 * trie once per subscriber, docs/performance.md) or in a blocking call. And
 * after the parts ended, exit() waits in zmq_ctx_term until ZeroMQ closed
 * every socket, which for the same XPUB is the same walk. So once the stop
 * begins, a thread of its own waits until stop_timeout after it; if the
 * process is still there it logs one line naming what the stop was waiting
 * for, flushes the state directory to disk, and ends the process with
 * _exit: nothing of the stuck thread runs after that, and what it saved
 * before (the delivered cursor is saved every loop turn) stands. Once every
 * part has stopped, the rest (ZeroMQ closing its sockets) gets at most
 * STOPGUARD_CLOSE_MS. */
#ifndef SALTRELAY_STOPGUARD_H
#define SALTRELAY_STOPGUARD_H

/* Start the guard: the process ends at the latest TIMEOUT_MS from now.
 * STATE_DIR ("" if none) is synced before that end. 0, or -1 if the thread
 * could not start (logged; the stop then is unbounded, as before). */
int stopguard_start(long long timeout_ms, const char *state_dir);

/* Once every part stopped, ZeroMQ's closing of the sockets is given this
 * long: more than any socket's linger (2 s, the publish socket's), after
 * which closing sends nothing more; what is left is libzmq's bookkeeping,
 * e.g. the trie walk for every subscriber still connected. */
#define STOPGUARD_CLOSE_MS 3000

/* End the process at the latest MS from now (never later than the bound). */
void stopguard_limit(long long ms);

/* Name what the stop waits for from now on (a part's name, in a string that
 * outlives the process) and the exit status if the bound ends it there. */
void stopguard_waiting_for(const char *what, int exit_status);

#endif

/* dcsock.c -- see dcsock.h. Why each option:
 * - backlog (zmq_backlog): after a relay restart or a network blip every
 *   minion reconnects at once; libzmq's default listen backlog of 100 makes
 *   the kernel drop SYNs and thousands of minions retry for tens of seconds.
 * - ZMTP heartbeats (zmq_heartbeat_ivl/_timeout, Salt 3008's names and
 *   defaults): a minion that vanished without a FIN (reboot, firewall) is
 *   noticed in seconds, not after the kernel's 2 h 15 min, so its queue is
 *   freed and it stops counting as a subscriber.
 * - TCP keepalive (tcp_keepalive_idle; 15 s interval, 3 probes, as Salt's
 *   request server): the same for a peer too old to answer heartbeats. */
#include "dcsock.h"

void dcsock_setup(zsock_t *sock, const struct config *cfg)
{
    zsock_set_backlog(sock, (int)cfg->zmq_backlog);
    zsock_set_heartbeat_ivl(sock, (int)cfg->zmq_heartbeat_ivl);
    zsock_set_heartbeat_timeout(sock, (int)cfg->zmq_heartbeat_timeout);
    if (cfg->tcp_keepalive_idle_ms > 0) {
        zsock_set_tcp_keepalive(sock, 1);
        zsock_set_tcp_keepalive_idle(sock, (int)((cfg->tcp_keepalive_idle_ms + 999) / 1000));
        zsock_set_tcp_keepalive_intvl(sock, 15);
        zsock_set_tcp_keepalive_cnt(sock, 3);
    }
}

/* instance.c -- this saltrelay-up instance's name; see instance.h. */
#include "instance.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;
static char name[192]; /* "" until the first call */

/* Take slot SLOT of CLUSTER on this host: the socket stays open (and the
 * slot taken) until the process ends. 1 taken, 0 held by another process,
 * else -errno. */
static int take_slot(const char *cluster, int slot)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    /* sun_path[0] = '\0': the abstract namespace, no file to leave behind */
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "saltrelay-up/%s/%d", cluster, slot);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0)
        return 1; /* fd left open on purpose: it is the lock */
    int err = errno;
    close(fd);
    return err == EADDRINUSE ? 0 : -err;
}

/* "<host>/<slot>", or "<host>/pid<pid>" if no slot can be taken. */
static void choose_slot(const char *host, const char *cluster)
{
    int r = 0;
    for (int slot = 0; slot < INSTANCE_SLOTS && r == 0; slot++)
        if ((r = take_slot(cluster, slot)) == 1) {
            snprintf(name, sizeof name, "%s/%d", host, slot);
            return;
        }
    if (r < 0)
        log_warn("cannot take an instance slot (%s)", strerror(-r));
    else
        log_warn("all %d instance slots of cluster %s are taken on this host", INSTANCE_SLOTS, cluster);
    snprintf(name, sizeof name, "%s/pid%ld", host, (long)getpid());
    log_warn("named %s: after a restart its pending requests wait 5 s to be claimed", name);
}

static void choose(const struct config *cfg)
{
    char host[72] = "";
    if (gethostname(host, sizeof host) != 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    if (cfg->instance && *cfg->instance)
        snprintf(name, sizeof name, "%s/%s", host, cfg->instance);
    else
        choose_slot(host, cfg->cluster);
}

void instance_name(const struct config *cfg, char *buf, size_t len)
{
    pthread_mutex_lock(&name_lock);
    if (!name[0])
        choose(cfg);
    snprintf(buf, len, "%s", name);
    pthread_mutex_unlock(&name_lock);
}

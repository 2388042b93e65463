/* srcbind -- LD_PRELOAD shim for the random-fault campaign (tests/campaign/):
 * every TCP connection the process makes to a loopback address leaves from
 * the loopback address in SRCBIND_ADDR (e.g. 127.0.1.11), so that the
 * campaign's fault proxies can tell which "host" it comes from and give
 * each pair of hosts its own faults (a DC's WAN link). Redis itself has
 * bind-source-addr for the same; saltrelay-down has no such key, and needs
 * none in production. A socket already bound is left alone. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect)
        real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    const char *src = getenv("SRCBIND_ADDR");
    if (src && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
        (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127) {
        struct sockaddr_in cur;
        socklen_t cl = sizeof cur;
        if (getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 && cur.sin_family == AF_INET && cur.sin_port == 0) {
            struct sockaddr_in b = {.sin_family = AF_INET};
            if (inet_pton(AF_INET, src, &b.sin_addr) == 1)
                bind(fd, (struct sockaddr *)&b, sizeof b); /* on failure: the default source */
        }
    }
    return real_connect(fd, addr, len);
}

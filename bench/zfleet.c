/* zfleet -- simulated Salt minions and a test MoM for the scale benchmark
 * (bench/scale.py). Every time printed is wall clock milliseconds
 * (CLOCK_REALTIME), so that several processes on one host can be compared.
 *
 *   zfleet sub EP N FIRST MAX_MS     N SUB sockets (minions FIRST..FIRST+N-1),
 *                                    each subscribed to its own topic
 *                                    (zfleet_topic) and "broadcast", as a
 *                                    minion with zmq_filtering. Prints
 *                                    "phase P got N last T" once every socket
 *                                    received a message whose payload starts
 *                                    with the phase byte P.
 *   zfleet req EP N FIRST MAX_MS     N REQ sockets send one request each at
 *                                    once; prints "req ok K first T0 last T".
 *   zfleet auth EP N FIRST WAIT_MS MAX_MS
 *                                    N minions send a clear _auth each; one
 *                                    unanswered after WAIT_MS (Salt's
 *                                    auth_timeout) closes its socket and
 *                                    re-sends on a new one, as Salt does.
 *                                    Prints "auth start T0 p50 T p99 T p100 T
 *                                    done K sent S".
 *   zfleet master EP AUTH_US MAX_MS  a ROUTER that answers each request in
 *                                    turn; an _auth costs AUTH_US of work
 *                                    first (a master's RSA). On SIGTERM prints
 *                                    "master auth A other O".
 *   zfleet pub EP MAX_MS             a PUB (backlog 1000, ZMTP heartbeats every
 *                                    10 s with a 30 s timeout, as a Salt 3008
 *                                    master's publisher and saltrelay-down
 *                                    by default) reading commands on
 *                                    stdin: "bcast P SIZE" ([broadcast, payload]),
 *                                    "job P N SIZE" (N copies [topic_i,
 *                                    payload] and a syndic copy), each
 *                                    printing "sent P at T"; "stamped N RATE
 *                                    SIZE" (N [broadcast, payload] at RATE a
 *                                    second, each payload carrying its send
 *                                    time: for zfleet lat), printing "sent
 *                                    N at T" at the end.
 *   zfleet lat N MAX_MS EP...        one SUB socket per EP (subscribed to
 *                                    "broadcast") receives N stamped
 *                                    publications each; prints per EP "lat
 *                                    EP got K p50 MS p99 MS max MS".
 * The file descriptor limit is raised to the hard limit first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <zmq.h>

#define PHASES 256

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A sha1-hex-shaped topic per minion: 40 lowercase hex digits. */
static void zfleet_topic(long i, char out[41])
{
    unsigned long long h = 1469598103934665603ULL ^ (unsigned long long)i;
    for (int k = 0; k < 5; k++) {
        h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
        snprintf(out + 8 * k, 9, "%08x", (unsigned)(h >> 32));
    }
}

static void *new_ctx(long sockets)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, (int)sockets + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    return ctx;
}

static void set_int(void *s, int opt, int v) { zmq_setsockopt(s, opt, &v, sizeof v); }

/* A Salt-shaped request: version 3, top-level id (clear), opaque load. */
static size_t make_request(char *buf, size_t cap, long i, int auth)
{
    char id[32];
    int n = snprintf(id, sizeof id, "m%ld", i);
    if (auth) /* {"enc": "clear", "load": {"cmd": "_auth", "id": ID}} */
        return (size_t)snprintf(buf, cap, "\x82\xa3" "enc\xa5" "clear\xa4" "load\x82\xa3" "cmd\xa5" "_auth\xa2" "id%c%s",
                                (char)(0xa0 | n), id);
    /* {"enc": "aes", "load": bin 8, "id": ID, "version": 3} */
    return (size_t)snprintf(buf, cap, "\x84\xa3" "enc\xa3" "aes\xa4" "load\xc4\x08" "12345678\xa2" "id%c%s\xa7" "version\x03",
                            (char)(0xa0 | n), id);
}

static int run_sub(const char *ep, long n, long first, long max_ms)
{
    void *ctx = new_ctx(n);
    void **s = calloc((size_t)n, sizeof *s);
    unsigned char *seen = calloc((size_t)n * PHASES / 8 + 1, 1);
    long got[PHASES] = {0};
    long long last[PHASES] = {0};
    zmq_pollitem_t *it = calloc((size_t)n, sizeof *it);
    char topic[41];
    for (long i = 0; i < n; i++) {
        s[i] = zmq_socket(ctx, ZMQ_SUB);
        zfleet_topic(first + i, topic);
        zmq_setsockopt(s[i], ZMQ_SUBSCRIBE, topic, 40);
        zmq_setsockopt(s[i], ZMQ_SUBSCRIBE, "broadcast", 9);
        set_int(s[i], ZMQ_RECONNECT_IVL, 100);
        zmq_connect(s[i], ep);
        it[i] = (zmq_pollitem_t){s[i], 0, ZMQ_POLLIN, 0};
    }
    printf("sub connecting %ld at %lld\n", n, wall_ms());
    fflush(stdout);
    long long until = wall_ms() + max_ms;
    char buf[64];
    while (!stop && wall_ms() < until) {
        if (zmq_poll(it, (int)n, 100) <= 0)
            continue;
        for (long i = 0; i < n; i++) {
            if (!(it[i].revents & ZMQ_POLLIN))
                continue;
            int more = 1, part = 0, p = -1;
            while (more) {
                int r = zmq_recv(s[i], buf, sizeof buf, ZMQ_DONTWAIT);
                if (r < 0)
                    break;
                if (part++ == 1 && r > 0)
                    p = (unsigned char)buf[0];
                size_t ml = sizeof more;
                zmq_getsockopt(s[i], ZMQ_RCVMORE, &more, &ml);
            }
            size_t bit = (size_t)i * PHASES + (size_t)(p < 0 ? 0 : p);
            if (p < 0 || (seen[bit / 8] & (1 << bit % 8)))
                continue; /* a repeat in one phase counts once */
            seen[bit / 8] |= (unsigned char)(1 << bit % 8);
            last[p] = wall_ms();
            if (++got[p] == n) {
                printf("phase %d got %ld last %lld\n", p, n, last[p]);
                fflush(stdout);
            }
        }
    }
    for (int p = 0; p < PHASES; p++)
        if (got[p] && got[p] < n)
            printf("phase %d got %ld last %lld\n", p, got[p], last[p]);
    for (long i = 0; i < n; i++) {
        set_int(s[i], ZMQ_LINGER, 0);
        zmq_close(s[i]);
    }
    zmq_ctx_term(ctx);
    free(s), free(seen), free(it);
    return 0;
}

static int run_req(const char *ep, long n, long first, long max_ms)
{
    void *ctx = new_ctx(n);
    void **s = calloc((size_t)n, sizeof *s);
    zmq_pollitem_t *it = calloc((size_t)n, sizeof *it);
    char buf[256];
    for (long i = 0; i < n; i++) {
        s[i] = zmq_socket(ctx, ZMQ_REQ);
        set_int(s[i], ZMQ_LINGER, 0);
        zmq_connect(s[i], ep);
        it[i] = (zmq_pollitem_t){s[i], 0, ZMQ_POLLIN, 0};
    }
    long long t0 = wall_ms(), last = 0, until = t0 + max_ms;
    for (long i = 0; i < n; i++)
        zmq_send(s[i], buf, make_request(buf, sizeof buf, first + i, 0), 0);
    long ok = 0;
    while (!stop && ok < n && wall_ms() < until)
        if (zmq_poll(it, (int)n, 100) > 0)
            for (long i = 0; i < n; i++)
                if ((it[i].revents & ZMQ_POLLIN) && zmq_recv(s[i], buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
                    ok++;
                    last = wall_ms();
                    it[i].events = 0;
                }
    printf("req ok %ld first %lld last %lld\n", ok, t0, last);
    for (long i = 0; i < n; i++)
        zmq_close(s[i]);
    zmq_ctx_term(ctx);
    free(s), free(it);
    return ok == n ? 0 : 1;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void *auth_socket(void *ctx, const char *ep)
{
    void *s = zmq_socket(ctx, ZMQ_REQ);
    set_int(s, ZMQ_LINGER, 0);
    zmq_connect(s, ep);
    return s;
}

static int run_auth(const char *ep, long n, long first, long wait_ms, long max_ms)
{
    void *ctx = new_ctx(n);
    void **s = calloc((size_t)n, sizeof *s);
    long long *sent_at = calloc((size_t)n, sizeof *sent_at), *done = calloc((size_t)n, sizeof *done);
    zmq_pollitem_t *it = calloc((size_t)n, sizeof *it);
    char buf[256];
    long long t0 = wall_ms(), until = t0 + max_ms;
    long sends = 0, ok = 0;
    for (long i = 0; i < n; i++) {
        s[i] = auth_socket(ctx, ep);
        zmq_send(s[i], buf, make_request(buf, sizeof buf, first + i, 1), 0);
        sent_at[i] = wall_ms();
        sends++;
        it[i] = (zmq_pollitem_t){s[i], 0, ZMQ_POLLIN, 0};
    }
    while (!stop && ok < n && wall_ms() < until) {
        if (zmq_poll(it, (int)n, 50) > 0)
            for (long i = 0; i < n; i++)
                if (!done[i] && (it[i].revents & ZMQ_POLLIN) && zmq_recv(s[i], buf, sizeof buf, ZMQ_DONTWAIT) >= 0) {
                    done[i] = wall_ms();
                    ok++;
                    it[i].events = 0;
                }
        long long now = wall_ms();
        for (long i = 0; i < n; i++)
            if (!done[i] && now - sent_at[i] >= wait_ms) { /* Salt: give up, new socket, again */
                zmq_close(s[i]);
                s[i] = auth_socket(ctx, ep);
                it[i].socket = s[i];
                zmq_send(s[i], buf, make_request(buf, sizeof buf, first + i, 1), 0);
                sent_at[i] = now;
                sends++;
            }
    }
    long long *t = calloc((size_t)n, sizeof *t);
    for (long i = 0; i < n; i++)
        t[i] = done[i] ? done[i] - t0 : -1;
    qsort(t, (size_t)n, sizeof *t, cmp_ll);
    long missing = n - ok;
    long long p50 = missing > n / 2 ? -1 : t[missing + (ok - 1) / 2];
    long long p99 = missing > n / 100 ? -1 : t[missing + (long)((ok - 1) * 0.99)];
    printf("auth start %lld p50 %lld p99 %lld p100 %lld done %ld sent %ld\n", t0, p50, p99,
           missing ? -1 : t[n - 1], ok, sends);
    for (long i = 0; i < n; i++)
        zmq_close(s[i]);
    zmq_ctx_term(ctx);
    free(s), free(sent_at), free(done), free(it), free(t);
    return 0;
}

static void burn_us(long us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static int run_master(const char *ep, long auth_us, long max_ms)
{
    void *ctx = new_ctx(4);
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    set_int(r, ZMQ_BACKLOG, 1000);
    if (zmq_bind(r, ep) < 0) {
        fprintf(stderr, "zfleet master: bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("master bound\n");
    fflush(stdout);
    long auth = 0, other = 0;
    long long until = wall_ms() + max_ms;
    zmq_pollitem_t it = {r, 0, ZMQ_POLLIN, 0};
    while (!stop && wall_ms() < until) {
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        zmq_msg_t m[3];
        int n = 0, more = 1;
        while (more && n < 3) {
            zmq_msg_init(&m[n]);
            if (zmq_msg_recv(&m[n], r, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&m[n]);
                break;
            }
            more = zmq_msg_more(&m[n++]);
        }
        if (n == 3) {
            int is_auth = zmq_msg_size(&m[2]) > 30 && memmem(zmq_msg_data(&m[2]), zmq_msg_size(&m[2]), "_auth", 5);
            if (is_auth)
                burn_us(auth_us);
            auth += is_auth, other += !is_auth;
            zmq_msg_send(&m[0], r, ZMQ_SNDMORE);
            zmq_msg_send(&m[1], r, ZMQ_SNDMORE);
            zmq_send(r, "rep", 3, 0);
            zmq_msg_close(&m[2]);
        } else {
            for (int k = 0; k < n; k++)
                zmq_msg_close(&m[k]);
        }
    }
    printf("master auth %ld other %ld\n", auth, other);
    zmq_close(r);
    zmq_ctx_term(ctx);
    return 0;
}

static void send_copy(void *pub, const char *topic, size_t tl, const char *payload, size_t size)
{
    zmq_send(pub, topic, tl, ZMQ_SNDMORE);
    zmq_send(pub, payload, size, 0);
}

/* No socket monitor here: libzmq's I/O thread blocks once 1,000 unread
 * events queue up, which would throttle a connect storm. */
static long long wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#define STAMP_PHASE 0xfe /* the first payload byte of a stamped publication */

/* N stamped broadcasts at RATE a second: [phase][send time, us][index][padding]. */
static void send_stamped(void *pub, long n, long rate, long size)
{
    char *payload = malloc((size_t)size);
    memset(payload, 'x', (size_t)size);
    payload[0] = (char)STAMP_PHASE;
    long long t0 = wall_us();
    for (long i = 0; i < n; i++) {
        long long due = t0 + i * 1000000LL / rate, now = wall_us();
        if (due > now) {
            struct timespec d = {(time_t)((due - now) / 1000000), (long)((due - now) % 1000000) * 1000};
            nanosleep(&d, NULL);
        }
        long long t = wall_us();
        memcpy(payload + 1, &t, sizeof t);
        memcpy(payload + 9, &i, sizeof i);
        send_copy(pub, "broadcast", 9, payload, (size_t)size);
    }
    free(payload);
    printf("sent %ld at %lld\n", n, wall_ms());
}

static int pub_command(void *pub, const char *line)
{
    long a = 0, b = 0, c = 0;
    int p = 0;
    char topic[41];
    if (sscanf(line, "stamped %ld %ld %ld", &a, &b, &c) == 3 && a > 0 && b > 0 && c >= 17) {
        send_stamped(pub, a, b, c);
        fflush(stdout);
        return 0;
    }
    if (sscanf(line, "bcast %d %ld", &p, &a) == 2 || sscanf(line, "job %d %ld %ld", &p, &b, &a) == 3) {
        char *payload = malloc((size_t)a + 1);
        memset(payload, 'x', (size_t)a);
        payload[0] = (char)p;
        long long t = wall_ms();
        if (line[0] == 'b')
            send_copy(pub, "broadcast", 9, payload, (size_t)a);
        for (long i = 0; line[0] == 'j' && i < b; i++) {
            zfleet_topic(i, topic);
            send_copy(pub, topic, 40, payload, (size_t)a);
        }
        if (line[0] == 'j')
            send_copy(pub, "syndic", 6, payload, (size_t)a);
        free(payload);
        printf("sent %d at %lld\n", p, t);
    } else {
        return -1;
    }
    fflush(stdout);
    return 0;
}

static int run_pub(const char *ep, long max_ms)
{
    void *ctx = new_ctx(4);
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    set_int(pub, ZMQ_BACKLOG, 1000);
    set_int(pub, ZMQ_SNDHWM, 0);
    /* like saltrelay-down's: libzmq's timer work for them grows with the
     * number of connections (poller_base_t::cancel_timer walks every timer) */
    set_int(pub, ZMQ_HEARTBEAT_IVL, 10000);
    set_int(pub, ZMQ_HEARTBEAT_TIMEOUT, 30000);
    if (zmq_bind(pub, ep) < 0) {
        fprintf(stderr, "zfleet pub: bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        return 1;
    }
    printf("pub bound\n");
    fflush(stdout);
    long long until = wall_ms() + max_ms;
    char line[256];
    while (!stop && wall_ms() < until && fgets(line, sizeof line, stdin))
        if (pub_command(pub, line) < 0)
            fprintf(stderr, "zfleet pub: unknown command %s", line);
    set_int(pub, ZMQ_LINGER, 2000);
    zmq_close(pub);
    zmq_ctx_term(ctx);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One SUB per endpoint; the latency of every stamped publication each gets. */
static int run_lat(long n, long max_ms, int neps, char **eps)
{
    void *ctx = new_ctx(neps);
    void **s = calloc((size_t)neps, sizeof *s);
    zmq_pollitem_t *it = calloc((size_t)neps, sizeof *it);
    double **lat = calloc((size_t)neps, sizeof *lat);
    long *got = calloc((size_t)neps, sizeof *got), done = 0;
    for (int i = 0; i < neps; i++) {
        s[i] = zmq_socket(ctx, ZMQ_SUB);
        zmq_setsockopt(s[i], ZMQ_SUBSCRIBE, "broadcast", 9);
        set_int(s[i], ZMQ_RCVHWM, 0);
        zmq_connect(s[i], eps[i]);
        it[i] = (zmq_pollitem_t){s[i], 0, ZMQ_POLLIN, 0};
        lat[i] = calloc((size_t)n, sizeof **lat);
    }
    printf("lat connecting %d\n", neps);
    fflush(stdout);
    long long until = wall_ms() + max_ms;
    char buf[64];
    while (!stop && done < neps && wall_ms() < until) {
        if (zmq_poll(it, neps, 100) <= 0)
            continue;
        for (int i = 0; i < neps; i++) {
            while (it[i].revents & ZMQ_POLLIN) {
                int more = 1, part = 0, r = -1;
                while (more) {
                    r = zmq_recv(s[i], buf, sizeof buf, ZMQ_DONTWAIT);
                    if (r < 0)
                        break;
                    part++;
                    size_t ml = sizeof more;
                    zmq_getsockopt(s[i], ZMQ_RCVMORE, &more, &ml);
                }
                if (r < 0)
                    break;
                long long sent;
                memcpy(&sent, buf + 1, sizeof sent);
                if (part == 2 && r >= 17 && (unsigned char)buf[0] == STAMP_PHASE && got[i] < n) {
                    lat[i][got[i]++] = (double)(wall_us() - sent) / 1000.0;
                    done += got[i] == n;
                }
            }
        }
    }
    for (int i = 0; i < neps; i++) {
        long k = got[i];
        qsort(lat[i], (size_t)k, sizeof **lat, cmp_double);
        printf("lat %s got %ld p50 %.3f p99 %.3f max %.3f\n", eps[i], k, k ? lat[i][k / 2] : -1.0,
               k ? lat[i][(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] : -1.0, k ? lat[i][k - 1] : -1.0);
        set_int(s[i], ZMQ_LINGER, 0);
        zmq_close(s[i]);
        free(lat[i]);
    }
    zmq_ctx_term(ctx);
    free(s), free(it), free(lat), free(got);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "sub") && argc == 6)
        return run_sub(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]));
    if (!strcmp(cmd, "req") && argc == 6)
        return run_req(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]));
    if (!strcmp(cmd, "auth") && argc == 7)
        return run_auth(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]), atol(argv[6]));
    if (!strcmp(cmd, "master") && argc == 5)
        return run_master(argv[2], atol(argv[3]), atol(argv[4]));
    if (!strcmp(cmd, "pub") && argc == 4)
        return run_pub(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "lat") && argc >= 5)
        return run_lat(atol(argv[2]), atol(argv[3]), argc - 4, argv + 4);
    fprintf(stderr, "usage: zfleet sub|req|auth|master|pub|lat ... (see the top of bench/zfleet.c)\n");
    return 2;
}

/* bench.c -- saltrelay-bench: the publication path with 1 KB messages,
 * measured three ways in one run:
 *   relay   test MoM PUB -> saltrelay-up -> Redis -> saltrelay-down -> SUB
 *   zmq     a direct ZeroMQ PUB -> SUB over loopback TCP
 *   xadd    raw pipelined XADD of the same payloads to the same Redis
 * For relay and zmq: throughput of a flood of COUNT messages (what reached
 * the subscriber, per second, and what was lost), then latency at a fixed
 * RATE for SECONDS (each payload carries its send time; p50/p99/max).
 * bench/run.sh starts Redis and the daemons and passes their endpoints:
 *   saltrelay-bench --redis PORT --mom EP --dc EP --direct EP
 *                   [--count N] [--rate R] [--seconds S] [--size B]
 *                   [--pids NAME=PID,...]
 * With --pids, the CPU time each of those processes used during the xadd
 * and relay floods is printed per message (from /proc/PID/stat): unlike the
 * rates, it hardly depends on what else runs on the machine. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define XADD_BATCH 512

#define PIDS_MAX 8

struct opts {
    int redis_port;
    const char *mom, *dc, *direct;
    long count, rate, seconds, size;
    int npids;
    char *pid_name[PIDS_MAX];
    int pid[PIDS_MAX];
};

/* CPU seconds (user + system) process PID used so far; 0 if unreadable. */
static double cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU of every --pids process, and of this one, into T. */
static void cpu_all(const struct opts *o, double *t)
{
    for (int i = 0; i < o->npids; i++)
        t[i] = cpu_s(o->pid[i]);
    t[o->npids] = cpu_s(getpid());
}

struct result {
    long sent, got;
    double secs;      /* first send to last receive */
    double p50, p99, max; /* latency, ms */
};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(long long t)
{
    struct timespec ts = {t / 1000000000LL, t % 1000000000LL};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* Receiver: counts messages and records each one's latency. */
struct rx {
    void *sub;
    long expect;
    long got;
    long long last_ns;
    double *lat_ms;
};

static void *rx_run(void *arg)
{
    struct rx *r = arg;
    char buf[65536];
    int timeout = 3000; /* a flood that stopped arriving is over */
    zmq_setsockopt(r->sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    while (r->got < r->expect) {
        int n = zmq_recv(r->sub, buf, sizeof buf, 0);
        if (n < 0)
            break;
        long long t = now_ns(), sent;
        if (n < (int)sizeof sent)
            continue;
        memcpy(&sent, buf, sizeof sent);
        r->lat_ms[r->got++] = (t - sent) / 1e6;
        r->last_ns = t;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void percentiles(struct result *res, double *lat, long n)
{
    if (n == 0)
        return;
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    res->p50 = lat[n / 2];
    res->p99 = lat[(n * 99) / 100];
    res->max = lat[n - 1];
}

/* Send COUNT messages at RATE per second (0: as fast as possible) on PUB
 * and collect them on SUB. */
static struct result run_phase(void *pub, void *sub, const struct opts *o, long count, long rate)
{
    struct rx r = {.sub = sub, .expect = count, .lat_ms = calloc((size_t)count, sizeof(double))};
    char *payload = malloc((size_t)o->size);
    memset(payload, 'x', (size_t)o->size);
    pthread_t th;
    pthread_create(&th, NULL, rx_run, &r);
    long long t0 = now_ns();
    for (long i = 0; i < count; i++) {
        if (rate > 0)
            sleep_until(t0 + i * 1000000000LL / rate);
        long long t = now_ns();
        memcpy(payload, &t, sizeof t);
        zmq_send(pub, payload, (size_t)o->size, 0);
    }
    pthread_join(th, NULL);
    struct result res = {.sent = count, .got = r.got, .secs = r.got ? (r.last_ns - t0) / 1e9 : 0};
    percentiles(&res, r.lat_ms, r.got);
    free(r.lat_ms);
    free(payload);
    return res;
}

static void *socket_on(void *ctx, int type, const char *ep, int bind)
{
    void *s = zmq_socket(ctx, type);
    int hwm = 0;
    zmq_setsockopt(s, type == ZMQ_PUB ? ZMQ_SNDHWM : ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_SUB)
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    if ((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) < 0) {
        fprintf(stderr, "bench: %s %s: %s\n", bind ? "bind" : "connect", ep, zmq_strerror(zmq_errno()));
        exit(1);
    }
    return s;
}

/* PUB drops until the path is up: send pings until one comes through. */
static void warm_up(void *pub, void *sub, const struct opts *o)
{
    char *ping = calloc(1, (size_t)o->size), buf[65536];
    int timeout = 100;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    for (int i = 0; i < 300; i++) {
        zmq_send(pub, ping, (size_t)o->size, 0);
        if (zmq_recv(sub, buf, sizeof buf, 0) >= 0)
            break;
    }
    while (zmq_recv(sub, buf, sizeof buf, 0) >= 0) /* drain the other pings */
        ;
    free(ping);
}

static void measure_path(void *ctx, const char *pub_ep, const char *sub_ep, const struct opts *o,
                         struct result *flood, struct result *paced, double *cpu)
{
    void *pub = socket_on(ctx, ZMQ_PUB, pub_ep, 1);
    void *sub = socket_on(ctx, ZMQ_SUB, sub_ep, 0);
    warm_up(pub, sub, o);
    double before[PIDS_MAX + 1];
    cpu_all(o, before);
    *flood = run_phase(pub, sub, o, o->count, 0);
    cpu_all(o, cpu);
    for (int i = 0; i <= o->npids; i++)
        cpu[i] -= before[i];
    *paced = run_phase(pub, sub, o, o->rate * o->seconds, o->rate);
    zmq_close(sub);
    zmq_close(pub);
}

/* Raw pipelined XADD of COUNT payloads, XADD_BATCH per round trip. */
static double measure_xadd(const struct opts *o, double *cpu)
{
    double before[PIDS_MAX + 1];
    cpu_all(o, before);
    redisContext *c = redisConnect("127.0.0.1", o->redis_port);
    if (!c || c->err) {
        fprintf(stderr, "bench: cannot connect to redis on port %d\n", o->redis_port);
        exit(1);
    }
    char *payload = malloc((size_t)o->size);
    memset(payload, 'x', (size_t)o->size);
    long long t0 = now_ns();
    for (long done = 0; done < o->count;) {
        long n = o->count - done < XADD_BATCH ? o->count - done : XADD_BATCH;
        for (long i = 0; i < n; i++)
            redisAppendCommand(c, "XADD bench:raw MAXLEN ~ 100000 * f0 %b", payload, (size_t)o->size);
        for (long i = 0; i < n; i++) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK)
                exit(1);
            freeReplyObject(r);
        }
        done += n;
    }
    double secs = (now_ns() - t0) / 1e9;
    cpu_all(o, cpu);
    for (int i = 0; i <= o->npids; i++)
        cpu[i] -= before[i];
    freeReplyObject(redisCommand(c, "DEL bench:raw"));
    redisFree(c);
    free(payload);
    return o->count / secs;
}

static void print_path(const char *name, const struct result *f, const struct result *p)
{
    printf("%-8s flood: %7ld/%ld delivered, %9.0f msg/s | at %ld msg/s: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%ld/%ld)\n",
           name, f->got, f->sent, f->secs > 0 ? f->got / f->secs : 0, p->secs > 0 ? (long)(p->sent / (p->secs)) : 0,
           p->p50, p->p99, p->max, p->got, p->sent);
}

static void report(const struct opts *o, double xadd, const struct result *rf, const struct result *rp,
                   const struct result *zf, const struct result *zp)
{
    double relay_tp = rf->secs > 0 ? rf->got / rf->secs : 0, zmq_tp = zf->secs > 0 ? zf->got / zf->secs : 0;
    printf("saltrelay-bench: %ld messages of %ld bytes, latency phase %ld msg/s for %ld s\n", o->count,
           o->size, o->rate, o->seconds);
    printf("%-8s flood: %9.0f msg/s (pipelined, %d per round trip)\n", "xadd", xadd, XADD_BATCH);
    print_path("zmq", zf, zp);
    print_path("relay", rf, rp);
    printf("ratios:  relay/xadd throughput %.0f %% (aim >= 75 %%, idle machine, issue 21), relay/zmq throughput %.0f %%\n",
           100 * relay_tp / xadd, zmq_tp > 0 ? 100 * relay_tp / zmq_tp : 0);
    printf("         p99 added by the relay over direct zmq at %ld msg/s: %.3f ms (aim <= 2 ms)\n", o->rate,
           rp->p99 - zp->p99);
}

/* CPU microseconds per message of each process in the xadd and relay floods. */
static void report_cpu(const struct opts *o, const double *xadd, const double *relay)
{
    if (!o->npids)
        return;
    printf("CPU per message (us), xadd flood | relay flood:");
    double sx = 0, sr = 0;
    for (int i = 0; i <= o->npids; i++) {
        double x = 1e6 * xadd[i] / o->count, r = 1e6 * relay[i] / o->count;
        printf(" %s %.2f | %.2f;", i < o->npids ? o->pid_name[i] : "bench", x, r);
        sx += x;
        sr += r;
    }
    printf(" all %.2f | %.2f\n", sx, sr);
}

/* "name=pid,name=pid" */
static void parse_pids(char *list, struct opts *o)
{
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t && o->npids < PIDS_MAX; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = '\0';
        o->pid_name[o->npids] = t;
        o->pid[o->npids++] = atoi(eq + 1);
    }
}

static void parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.count = 100000, .rate = 1000, .seconds = 10, .size = 1024};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--redis")) o->redis_port = atoi(v);
        else if (!strcmp(k, "--mom")) o->mom = v;
        else if (!strcmp(k, "--dc")) o->dc = v;
        else if (!strcmp(k, "--direct")) o->direct = v;
        else if (!strcmp(k, "--count")) o->count = atol(v);
        else if (!strcmp(k, "--rate")) o->rate = atol(v);
        else if (!strcmp(k, "--seconds")) o->seconds = atol(v);
        else if (!strcmp(k, "--size")) o->size = atol(v);
        else if (!strcmp(k, "--pids")) parse_pids(argv[i + 1], o);
        else { fprintf(stderr, "bench: unknown option %s\n", k); exit(2); }
    }
    if (!o->redis_port || !o->mom || !o->dc || !o->direct || o->size < 16 || o->size > 65536) {
        fprintf(stderr, "usage: saltrelay-bench --redis PORT --mom EP --dc EP --direct EP "
                        "[--count N] [--rate R] [--seconds S] [--size 16..65536]\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    void *ctx = zmq_ctx_new();
    double cpu_x[PIDS_MAX + 1], cpu_z[PIDS_MAX + 1], cpu_r[PIDS_MAX + 1];
    double xadd = measure_xadd(&o, cpu_x);
    struct result zf, zp, rf, rp;
    measure_path(ctx, o.direct, o.direct, &o, &zf, &zp, cpu_z);
    measure_path(ctx, o.mom, o.dc, &o, &rf, &rp, cpu_r);
    report(&o, xadd, &rf, &rp, &zf, &zp);
    report_cpu(&o, cpu_x, cpu_r);
    zmq_ctx_term(ctx);
    return 0;
}

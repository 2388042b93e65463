/* config.c -- YAML config loader. The file is one flat mapping of scalar keys.
 * Each key is described once in key_table: its type, default, and which
 * programs accept it; unknown keys, wrong types and missing required keys are
 * errors that name the file, line and key. */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

enum key_type { T_STR, T_NAME, T_OPTNAME, T_ENDPOINT, T_LISTEN, T_REDIS, T_INT, T_SECONDS, T_RATE, T_MODE,
                T_LEVEL };

struct key_spec {
    const char *name;
    enum key_type type;
    size_t offset;
    int roles;    /* programs that accept the key */
    int required; /* programs that need it */
    const char *def;
    /* T_INT, T_SECONDS: the range (T_SECONDS in milliseconds); HI 0 is no
     * bound beyond the type's. The daemons' parts rely on it. */
    long long lo, hi;
};

#define UP CONFIG_UP
#define DOWN CONFIG_DOWN
#define BOTH (CONFIG_UP | CONFIG_DOWN)
#define F(field) offsetof(struct config, field)

static const struct key_spec key_table[] = {
    {"cluster", T_NAME, F(cluster), BOTH, BOTH, NULL, 0, 0},
    {"redis", T_REDIS, F(redis), BOTH, BOTH, NULL, 0, 0},
    {"mode", T_MODE, F(mode), BOTH, 0, "stream", 0, 0},
    {"log_level", T_LEVEL, F(log_level), BOTH, 0, "info", 0, 0},
    {"log_file", T_STR, F(log_file), BOTH, 0, "", 0, 0},
    {"metrics_bind", T_LISTEN, F(metrics_bind), BOTH, 0, "", 0, 0},
    {"request_timeout", T_SECONDS, F(request_timeout_ms), BOTH, 0, "60", 0, 0},
    {"max_frame_size", T_INT, F(max_frame_size), BOTH, 0, "67108864", 0, 0},
    {"stale_after", T_SECONDS, F(stale_after_ms), BOTH, 0, "10", 0, 0},
    {"sync_max_bytes", T_INT, F(sync_max_bytes), BOTH, 0, "1073741824", 0, 0},
    {"stop_timeout", T_SECONDS, F(stop_timeout_ms), BOTH, 0, "60", 0, 0},
    {"master_publish", T_ENDPOINT, F(master_publish), UP, UP, NULL, 0, 0},
    {"master_ret", T_ENDPOINT, F(master_ret), UP, UP, NULL, 0, 0},
    {"stream_maxlen", T_INT, F(stream_maxlen), UP, 0, "100000", 0, 0},
    {"pub_buffer", T_INT, F(pub_buffer), UP, 0, "100000", 0, 0},
    {"pub_buffer_bytes", T_INT, F(pub_buffer_bytes), UP, 0, "1073741824", 0, 0},
    {"pub_merge_window", T_SECONDS, F(pub_merge_window_ms), UP, 0, "0.05", 0, 0},
    {"pub_dedup_window", T_SECONDS, F(pub_dedup_window_ms), UP, 0, "300", 0, 0},
    {"pub_wait_replicas", T_INT, F(pub_wait_replicas), UP, 0, "0", 0, 0},
    {"pub_wait_timeout", T_SECONDS, F(pub_wait_timeout_ms), UP, 0, "1", 0, 3600000},
    {"req_pool", T_INT, F(req_pool), UP, 0, "64", 1, 10000},
    {"auth_rate", T_RATE, F(auth_rate), UP, 0, "0", 0, 0},
    {"instance", T_OPTNAME, F(instance), UP, 0, "", 0, 0},
    {"sync_source", T_STR, F(sync_source), UP, 0, "", 0, 0},
    {"sync_interval", T_SECONDS, F(sync_interval_ms), UP, 0, "5", 0, 0},
    {"job_cache_dir", T_STR, F(job_cache_dir), UP, 0, "/var/cache/salt/master/jobs", 0, 0},
    {"status_warn_lag", T_SECONDS, F(status_warn_lag_ms), UP, 0, "5", 0, 0},
    {"status_crit_lag", T_SECONDS, F(status_crit_lag_ms), UP, 0, "30", 0, 0},
    {"status_warn_entries", T_INT, F(status_warn_entries), UP, 0, "1000", 0, 0},
    {"status_crit_entries", T_INT, F(status_crit_entries), UP, 0, "10000", 0, 0},
    {"status_warn_replication", T_SECONDS, F(status_warn_repl_ms), UP, 0, "5", 0, 0},
    {"status_crit_replication", T_SECONDS, F(status_crit_repl_ms), UP, 0, "30", 0, 0},
    {"status_warn_tree_lag", T_SECONDS, F(status_warn_tree_lag_ms), UP, 0, "60", 0, 0},
    {"status_crit_tree_lag", T_SECONDS, F(status_crit_tree_lag_ms), UP, 0, "300", 0, 0},
    {"datacenter", T_NAME, F(datacenter), DOWN, DOWN, NULL, 0, 0},
    {"redis_primary", T_REDIS, F(redis_primary), DOWN, 0, "", 0, 0},
    {"publish_bind", T_ENDPOINT, F(publish_bind), DOWN, DOWN, NULL, 0, 0},
    {"ret_bind", T_ENDPOINT, F(ret_bind), DOWN, DOWN, NULL, 0, 0},
    {"state_dir", T_STR, F(state_dir), DOWN, DOWN, NULL, 0, 0},
    {"replay_max_age", T_SECONDS, F(replay_max_age_ms), DOWN, 0, "60", 0, 0},
    {"subscriber_grace", T_SECONDS, F(subscriber_grace_ms), DOWN, 0, "15", 0, 0},
    {"read_batch", T_INT, F(read_batch), DOWN, 0, "512", 1, 0},
    {"zmq_backlog", T_INT, F(zmq_backlog), DOWN, 0, "1000", 0, INT_MAX},
    /* ZeroMQ may hold this many publications per subscriber past the saved cursor */
    {"pub_hwm", T_INT, F(pub_hwm), DOWN, 0, "16", 1, 1000},
    {"pub_slow_wait", T_SECONDS, F(pub_slow_wait_ms), DOWN, 0, "1", 0, 0},
    {"pub_drain_timeout", T_SECONDS, F(pub_drain_timeout_ms), DOWN, 0, "2", 0, 0},
    {"zmq_heartbeat_ivl", T_INT, F(zmq_heartbeat_ivl), DOWN, 0, "10000", 0, INT_MAX},
    {"zmq_heartbeat_timeout", T_INT, F(zmq_heartbeat_timeout), DOWN, 0, "30000", 0, INT_MAX},
    {"tcp_keepalive_idle", T_SECONDS, F(tcp_keepalive_idle_ms), DOWN, 0, "60", 0, 0},
    {"max_pending", T_INT, F(max_pending), DOWN, 0, "50000", 0, 10000000}, /* slot indices are ints */
    {"auth_timeout", T_SECONDS, F(auth_timeout_ms), DOWN, 0, "5", 0, 0},
    {"max_pending_bytes", T_INT, F(max_pending_bytes), DOWN, 0, "268435456", 0, 0},
    {"report_interval", T_SECONDS, F(report_interval_ms), DOWN, 0, "1", 0, 0},
    {"registry_ttl", T_SECONDS, F(registry_ttl_ms), DOWN, 0, "2592000", 0, 0},
    {"sync_target", T_STR, F(sync_target), DOWN, 0, "", 0, 0},
    {"sync_keep", T_INT, F(sync_keep), DOWN, 0, "3", 1, 0},
};
#define NKEYS (sizeof key_table / sizeof key_table[0])
_Static_assert(NKEYS <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

size_t config_key_count(void) { return NKEYS; }
const char *config_key_name(size_t i) { return i < NKEYS ? key_table[i].name : NULL; }
int config_key_roles(size_t i) { return i < NKEYS ? key_table[i].roles : 0; }

/* Messages are one line: a value or path holding a newline or another
 * control character shows it as '?'. */
static void seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    for (char *c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

#define URL_FORMS "redis://[[user]:password@]host[:port][/db] or " \
    "sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db]"

/* "[user]:password@" at *P, if there (the last '@' ends it: a password may
 * hold '@' and ':'). Advances *P past it. */
static int parse_auth(const char **pp, struct redis_url *u, char *err, size_t errlen)
{
    const char *p = *pp, *at = strrchr(p, '@');
    if (!at)
        return 0;
    /* "user:password@" logs in as an ACL user, ":password@" as "default" */
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *pw = colon ? colon + 1 : p;
    size_t ul = colon ? (size_t)(colon - p) : 0, n = (size_t)(at - pw);
    if (n >= sizeof u->password || ul >= sizeof u->user) {
        seterr(err, errlen, "redis user or password too long");
        return -1;
    }
    memcpy(u->user, p, ul);
    memcpy(u->password, pw, n);
    *pp = at + 1;
    return 0;
}

/* "host[:port]" at *P up to one of STOP; advances *P past it. */
static int parse_addr(const char **pp, const char *stop, struct redis_addr *a, const char *s, char *err,
                      size_t errlen)
{
    const char *p = *pp;
    char stops[8];
    snprintf(stops, sizeof stops, ":%s", stop);
    size_t hl = strcspn(p, stops);
    if (hl == 0 || hl >= sizeof a->host) {
        seterr(err, errlen, "missing or too long host in '%s'", s);
        return -1;
    }
    memcpy(a->host, p, hl);
    a->host[hl] = '\0';
    p += hl;
    if (*p == ':') {
        char *end;
        errno = 0;
        long port = strtol(p + 1, &end, 10);
        if (errno || end == p + 1 || port < 1 || port > 65535 || (*end && !strchr(stop, *end))) {
            seterr(err, errlen, "bad port in '%s'", s);
            return -1;
        }
        a->port = (int)port;
        p = end;
    }
    *pp = p;
    return 0;
}

/* "[/db]" at P, the end of the URL. */
static int parse_db(const char *p, struct redis_url *u, const char *s, char *err, size_t errlen)
{
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 10000) {
            seterr(err, errlen, "bad database number in '%s'", s);
            return -1;
        }
        u->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0) {
        seterr(err, errlen, "unexpected '%s' in '%s'", p, s);
        return -1;
    }
    return 0;
}

/* "h1[:p1],h2[:p2],.../master" at P, then the db. */
static int parse_sentinels(const char *p, struct redis_url *u, const char *s, char *err, size_t errlen)
{
    for (;;) {
        if (u->nsentinels == REDIS_SENTINELS_MAX) {
            seterr(err, errlen, "more than %d sentinels in '%s'", REDIS_SENTINELS_MAX, s);
            return -1;
        }
        struct redis_addr *a = &u->sentinel[u->nsentinels++];
        a->port = 26379;
        if (parse_addr(&p, ",/", a, s, err, errlen) < 0)
            return -1;
        if (*p != ',')
            break;
        p++;
    }
    size_t ml = *p == '/' ? strcspn(p + 1, "/") : 0;
    if (ml == 0 || ml >= sizeof u->master) {
        seterr(err, errlen, "missing or too long master name in '%s'", s);
        return -1;
    }
    memcpy(u->master, p + 1, ml);
    return parse_db(p + 1 + ml, u, s, err, errlen);
}

int redis_url_parse(const char *s, struct redis_url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    int sentinel = strncmp(s, "sentinel://", 11) == 0;
    if (!sentinel && strncmp(s, "redis://", 8) != 0) {
        seterr(err, errlen, "expected " URL_FORMS ", got '%s'", s);
        return -1;
    }
    const char *p = s + (sentinel ? 11 : 8);
    if (parse_auth(&p, u, err, errlen) < 0)
        return -1;
    if (sentinel)
        return parse_sentinels(p, u, s, err, errlen);
    struct redis_addr a = {.port = 6379};
    if (parse_addr(&p, "/", &a, s, err, errlen) < 0)
        return -1;
    memcpy(u->host, a.host, sizeof u->host);
    u->port = a.port;
    return parse_db(p, u, s, err, errlen);
}

static int valid_name(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 64)
        return 0;
    for (const char *c = v; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            return 0;
    return 1;
}

/* "[tcp://]host:port" (the scheme required with TCP_REQUIRED) into HOST
 * and PORT; 0, or -1 if V is not that. */
static int split_tcp(const char *v, int tcp_required, char *host, size_t hostlen, long *port)
{
    const char *hp = strncmp(v, "tcp://", 6) == 0 ? v + 6 : tcp_required ? NULL : v;
    const char *colon = hp ? strrchr(hp, ':') : NULL;
    if (!colon || colon == hp || (size_t)(colon - hp) >= hostlen)
        return -1;
    char *end;
    errno = 0;
    *port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || *port < 1 || *port > 65535)
        return -1;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    return 0;
}

static int valid_endpoint(const char *v)
{
    char host[256];
    long port;
    if (strncmp(v, "ipc://", 6) == 0)
        return v[6] != '\0';
    return split_tcp(v, 1, host, sizeof host, &port) == 0;
}

/* A placeholder of the shipped examples and the docs, which must never
 * reach Redis as a password: "CHANGE-ME" or "<...>". */
static const char *placeholder(const char *url, char *buf, size_t len)
{
    if (strstr(url, "CHANGE-ME"))
        return "CHANGE-ME";
    const char *lt = strchr(url, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!gt)
        return NULL;
    snprintf(buf, len, "%.*s", (int)(gt - lt + 1), lt);
    return buf;
}

/* VALUE (parsed as a number into V, in the field's unit) within SPEC's range? */
static int in_range(const struct key_spec *spec, const char *value, long long v, char *why, size_t whylen)
{
    double scale = spec->type == T_SECONDS ? 1000.0 : 1.0;
    if (v >= spec->lo && (spec->hi == 0 || v <= spec->hi))
        return 0;
    if (spec->hi == 0)
        seterr(why, whylen, "must be at least %g, got '%s'", (double)spec->lo / scale, value);
    else
        seterr(why, whylen, "%s is out of range (%g to %g)", value, (double)spec->lo / scale,
               (double)spec->hi / scale);
    return -1;
}

/* Store VALUE into the field of SPEC; on error fill WHY. */
static int set_value(struct config *cfg, const struct key_spec *spec, const char *value, char *why,
                     size_t whylen)
{
    char *field = (char *)cfg + spec->offset;
    char *end;
    switch (spec->type) {
    case T_INT: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 0) {
            seterr(why, whylen, "expected a non-negative integer, got '%s'", value);
            return -1;
        }
        if (in_range(spec, value, v, why, whylen) < 0)
            return -1;
        *(long long *)field = v;
        return 0;
    }
    case T_SECONDS:
    case T_RATE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < 0 || v > 1e9) {
            seterr(why, whylen, "expected a non-negative number%s, got '%s'",
                   spec->type == T_SECONDS ? " of seconds" : " per second", value);
            return -1;
        }
        if (spec->type == T_RATE) {
            *(double *)field = v;
            return 0;
        }
        if (in_range(spec, value, llround(v * 1000.0), why, whylen) < 0)
            return -1;
        *(long long *)field = llround(v * 1000.0);
        return 0;
    }
    case T_NAME:
    case T_OPTNAME:
        if ((spec->type == T_NAME || *value) && !valid_name(value)) {
            seterr(why, whylen, "expected %s1-64 characters of [A-Za-z0-9._-], got '%s'",
                   spec->type == T_OPTNAME ? "\"\" or " : "", value);
            return -1;
        }
        /* the instance name: a number is what an instance without one is named (instance.h) */
        if (spec->type == T_OPTNAME && *value && strspn(value, "0123456789") == strlen(value)) {
            seterr(why, whylen, "expected a name that is not a number (numbers are slots), got '%s'", value);
            return -1;
        }
        break;
    case T_ENDPOINT:
        if (!valid_endpoint(value)) {
            seterr(why, whylen, "expected tcp://host:port or ipc://path, got '%s'", value);
            return -1;
        }
        break;
    case T_LISTEN: {
        char host[256];
        long port;
        if (*value && split_tcp(value, 0, host, sizeof host, &port) < 0) {
            seterr(why, whylen, "expected \"\", host:port or tcp://host:port, got '%s'", value);
            return -1;
        }
        break;
    }
    case T_REDIS: {
        struct redis_url u;
        char buf[64];
        const char *ph = placeholder(value, buf, sizeof buf);
        if (*value && redis_url_parse(value, &u, why, whylen) < 0)
            return -1;
        if (ph) {
            seterr(why, whylen, "'%s' is a placeholder from the example: fill in the real value", ph);
            return -1;
        }
        break;
    }
    case T_MODE:
        if (strcmp(value, "stream") != 0 && strcmp(value, "channel") != 0) {
            seterr(why, whylen, "expected 'stream' or 'channel', got '%s'", value);
            return -1;
        }
        break;
    case T_LEVEL:
        if (strcmp(value, "debug") && strcmp(value, "info") && strcmp(value, "warning") &&
            strcmp(value, "error")) {
            seterr(why, whylen, "expected debug, info, warning or error, got '%s'", value);
            return -1;
        }
        break;
    case T_STR:
        break;
    }
    char **s = (char **)field;
    free(*s);
    *s = strdup(value);
    return 0;
}

static const struct key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(key_table[i].name, name) == 0)
            return &key_table[i];
    return NULL;
}

static int apply_defaults(struct config *cfg)
{
    char why[256];
    for (size_t i = 0; i < NKEYS; i++)
        if (key_table[i].def && set_value(cfg, &key_table[i], key_table[i].def, why, sizeof why) < 0)
            return -1; /* a bad default is a programming error; the selftest catches it */
    return 0;
}

/* Walk the YAML events of a flat mapping, setting keys; cfg->line[] gets
 * the line of each key given. */
static int parse_mapping(struct config *cfg, yaml_parser_t *parser, const char *path, char *err, size_t errlen)
{
    yaml_event_t ev;
    int depth_state = 0; /* 0: before mapping, 1: in mapping expecting key */
    char key[128];
    size_t key_line = 0;
    for (;;) {
        if (!yaml_parser_parse(parser, &ev)) {
            seterr(err, errlen, "%s:%zu: YAML syntax error: %s", path, parser->problem_mark.line + 1,
                   parser->problem ? parser->problem : "unknown");
            return -1;
        }
        size_t line = ev.start_mark.line + 1;
        int rc = 0;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return 0;
        case YAML_MAPPING_START_EVENT:
            if (depth_state == 1 && key[0])
                seterr(err, errlen, "%s:%zu: key '%s': expected a scalar value, got a mapping", path,
                       line, key);
            else if (depth_state == 1)
                seterr(err, errlen, "%s:%zu: expected a scalar key, got a mapping", path, line);
            else if (depth_state == 2)
                seterr(err, errlen, "%s:%zu: expected one YAML document, got another", path, line);
            rc = depth_state != 0 ? -1 : 0;
            depth_state = 1;
            key[0] = '\0';
            break;
        case YAML_MAPPING_END_EVENT:
            depth_state = 2;
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (depth_state == 1 && key[0])
                seterr(err, errlen, "%s:%zu: key '%s': expected a scalar value, got a list", path,
                       line, key);
            else
                seterr(err, errlen, "%s:%zu: expected a mapping of keys, got a list", path, line);
            rc = -1;
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth_state != 1) {
                seterr(err, errlen, "%s:%zu: expected a mapping of 'key: value' lines", path, line);
                rc = -1;
            } else if (!key[0]) {
                snprintf(key, sizeof key, "%s", v);
                key_line = line;
                const struct key_spec *spec = find_key(key);
                if (!spec || !(spec->roles & cfg->role)) {
                    seterr(err, errlen, "%s:%zu: key '%s': unknown key%s", path, line, key,
                           spec ? " for this program" : "");
                    rc = -1;
                } else if (cfg->line[spec - key_table]) {
                    seterr(err, errlen, "%s:%zu: key '%s': given twice", path, line, key);
                    rc = -1;
                }
            } else {
                const struct key_spec *spec = find_key(key);
                char why[300];
                if (ev.data.scalar.length != strlen(v)) {
                    seterr(err, errlen, "%s:%zu: key '%s': value contains a NUL byte", path,
                           key_line, key);
                    rc = -1;
                } else if (set_value(cfg, spec, v, why, sizeof why) < 0) {
                    seterr(err, errlen, "%s:%zu: key '%s': %s", path, key_line, key, why);
                    rc = -1;
                } else {
                    cfg->line[spec - key_table] = (unsigned)key_line;
                }
                key[0] = '\0';
            }
            break;
        }
        case YAML_ALIAS_EVENT:
            seterr(err, errlen, "%s:%zu: aliases are not supported", path, line);
            rc = -1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc < 0)
            return -1;
    }
}

static const struct key_spec *key_of(const char *name)
{
    const struct key_spec *k = find_key(name);
    return k ? k : key_table; /* names below are the table's own */
}

/* The line KEY was given on, 0 if it was not. */
static unsigned line_of(const struct config *cfg, const char *key)
{
    return cfg->line[key_of(key) - key_table];
}

/* Two endpoints that cannot both be bound: the same ipc path, or the same
 * TCP port on the same host or where either takes every address. */
static int binds_clash(const char *a, const char *b)
{
    char ha[256], hb[256];
    long pa, pb;
    if (!*a || !*b)
        return 0;
    if (strncmp(a, "ipc://", 6) == 0 || strncmp(b, "ipc://", 6) == 0)
        return strcmp(a, b) == 0;
    if (split_tcp(a, 0, ha, sizeof ha, &pa) < 0 || split_tcp(b, 0, hb, sizeof hb, &pb) < 0 || pa != pb)
        return 0;
    return !strcmp(ha, hb) || !strcmp(ha, "*") || !strcmp(hb, "*") || !strcmp(ha, "0.0.0.0") ||
           !strcmp(hb, "0.0.0.0");
}

/* saltrelay-down binds publish_bind, ret_bind and metrics_bind: no two the same. */
static int check_binds(const struct config *cfg, char *err, size_t errlen)
{
    static const char *const keys[] = {"publish_bind", "ret_bind", "metrics_bind"};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = i + 1; j < 3; j++) {
            const char *a = *(char *const *)((const char *)cfg + key_of(keys[i])->offset);
            const char *b = *(char *const *)((const char *)cfg + key_of(keys[j])->offset);
            if (!binds_clash(a, b))
                continue;
            unsigned la = line_of(cfg, keys[i]), lb = line_of(cfg, keys[j]);
            seterr(err, errlen, "%s:%u: key '%s': %s is also %s's (line %u): each socket needs its own address",
                   cfg->path, la > lb ? la : lb, la > lb ? keys[i] : keys[j], la > lb ? a : b,
                   la > lb ? keys[j] : keys[i], la > lb ? lb : la);
            return -1;
        }
    return 0;
}

/* What no single key's type and range can tell. */
static int check_across_keys(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->role == CONFIG_UP && *cfg->sync_source && cfg->sync_interval_ms < 100) {
        seterr(err, errlen, "%s:%u: key 'sync_interval': must be at least 0.1 with sync_source set", cfg->path,
               line_of(cfg, "sync_interval"));
        return -1;
    }
    return cfg->role == CONFIG_DOWN ? check_binds(cfg, err, errlen) : 0;
}

/* Open PATH as a config file: a directory or unreadable file is named as such. */
static FILE *open_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        seterr(err, errlen, "%s: is a directory, not a config file", path);
        fclose(f);
        return NULL;
    }
    return f;
}

static int parse_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = open_file(path, err, errlen);
    if (!f)
        return -1;
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    errno = 0;
    int rc = parse_mapping(cfg, &parser, path, err, errlen);
    if (rc < 0 && ferror(f)) /* libyaml says only "input error" */
        seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int config_load(struct config *cfg, int role, const char *path, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->role = role;
    cfg->path = strdup(path);
    if (apply_defaults(cfg) < 0) {
        seterr(err, errlen, "internal error: bad built-in default");
        return -1;
    }
    if (parse_file(cfg, path, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < NKEYS; i++)
        if ((key_table[i].required & role) && !cfg->line[i]) {
            seterr(err, errlen, "%s:1: key '%s': missing required key", path, key_table[i].name);
            return -1;
        }
    if (role == CONFIG_DOWN && !*cfg->redis_primary) {
        free(cfg->redis_primary);
        cfg->redis_primary = strdup(cfg->redis);
    }
    /* both were validated as they were set */
    redis_url_parse(cfg->redis, &cfg->redis_url, err, errlen);
    if (cfg->redis_primary && *cfg->redis_primary)
        redis_url_parse(cfg->redis_primary, &cfg->redis_primary_url, err, errlen);
    err[0] = '\0';
    return check_across_keys(cfg, err, errlen);
}

/* The nearest existing path at or above DIR (in BUF), for a state_dir the
 * daemon is to create: 0 if a directory, else -1 with errno set. */
static int existing_ancestor(const char *dir, char *buf, size_t len, struct stat *st)
{
    snprintf(buf, len, "%s", dir);
    for (;;) {
        if (stat(buf, st) == 0) {
            errno = ENOTDIR;
            return S_ISDIR(st->st_mode) ? 0 : -1;
        }
        char *slash = strrchr(buf, '/');
        if (errno != ENOENT || !strcmp(buf, ".") || !strcmp(buf, "/"))
            return -1;
        if (!slash)
            snprintf(buf, len, ".");
        else if (slash == buf)
            buf[1] = '\0';
        else
            *slash = '\0';
    }
}

/* Create and remove a file in DIR, as the daemon's state files are. */
static int probe_write(const char *dir)
{
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.saltrelay-check.%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return unlink(probe);
}

/* A file of DIR the daemon could not read and rewrite (one left by a run
 * as another user): its name in NAME. */
static int foreign_file(const char *dir, char *name, size_t len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
            continue;
        found = faccessat(dirfd(d), e->d_name, R_OK | W_OK, 0) < 0;
        if (found)
            snprintf(name, len, "%s", e->d_name);
    }
    int saved = errno;
    if (d)
        closedir(d);
    errno = saved;
    return found;
}

/* Why the daemon could not keep its state in DIR, or "" if it can. */
static void state_dir_problem(const char *dir, char *why, size_t len)
{
    char at[4096], name[256];
    struct stat st;
    int exists = stat(dir, &st) == 0, isdir = exists && S_ISDIR(st.st_mode);
    if (strlen(dir) >= sizeof at - 64)
        snprintf(why, len, "path too long");
    else if (exists && !isdir)
        snprintf(why, len, "%.200s is not a directory", dir);
    else if (isdir && probe_write(dir) < 0)
        snprintf(why, len, "cannot write in %.200s: %s", dir, strerror(errno));
    else if (isdir && foreign_file(dir, name, sizeof name))
        snprintf(why, len, "cannot read and write %.200s/%.100s: %s", dir, name, strerror(errno));
    else if (isdir)
        return;
    else if (errno != ENOENT)
        snprintf(why, len, "%.200s: %s", dir, strerror(errno));
    else if (existing_ancestor(dir, at, sizeof at, &st) < 0 || access(at, W_OK | X_OK) < 0)
        snprintf(why, len, "cannot create %.200s: %.150s: %s", dir, at, strerror(errno));
}

int config_check_state_dir(const struct config *cfg, char *err, size_t errlen)
{
    char why[400] = "";
    if (cfg->role == CONFIG_DOWN)
        state_dir_problem(cfg->state_dir, why, sizeof why);
    if (!why[0])
        return 0;
    seterr(err, errlen, "%s:%u: key 'state_dir': %s", cfg->path, line_of(cfg, "state_dir"), why);
    return -1;
}

int config_make_state_dir(const struct config *cfg)
{
    char buf[4096];
    if (cfg->role != CONFIG_DOWN || snprintf(buf, sizeof buf, "%s", cfg->state_dir) >= (int)sizeof buf)
        return 0;
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0750) < 0 && errno != EEXIST)
            return -1;
        if (!c)
            return 0;
        *p = c;
    }
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < NKEYS; i++) {
        enum key_type t = key_table[i].type;
        if (t != T_INT && t != T_SECONDS && t != T_RATE) {
            char **s = (char **)((char *)cfg + key_table[i].offset);
            free(*s);
            *s = NULL;
        }
    }
    free(cfg->path);
    cfg->path = NULL;
}

/* Redis URLs may carry a password: print them with it masked, the user
 * name kept (which user logs in is what an operator checks). */
static void print_masked_url(FILE *f, const char *url)
{
    const char *at = strrchr(url, '@');
    const char *scheme = strstr(url, "://");
    if (!at || !scheme || at < scheme) {
        fputs(url, f);
        return;
    }
    const char *auth = scheme + 3, *colon = memchr(auth, ':', (size_t)(at - auth));
    fprintf(f, "%.*s://%.*s:***@%s", (int)(scheme - url), url, colon ? (int)(colon - auth) : 0, auth, at + 1);
}

void config_print(const struct config *cfg, void *file)
{
    FILE *f = file;
    fprintf(f, "# effective configuration of %s\n", cfg->path);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct key_spec *k = &key_table[i];
        if (!(k->roles & cfg->role))
            continue;
        const char *field = (const char *)cfg + k->offset;
        fprintf(f, "%s: ", k->name);
        switch (k->type) {
        case T_INT:
            fprintf(f, "%lld\n", *(const long long *)field);
            break;
        case T_SECONDS:
            fprintf(f, "%g\n", (double)*(const long long *)field / 1000.0);
            break;
        case T_RATE:
            fprintf(f, "%g\n", *(const double *)field);
            break;
        case T_REDIS:
            print_masked_url(f, *(char *const *)field);
            fputc('\n', f);
            break;
        default:
            fprintf(f, "\"%s\"\n", *(char *const *)field);
        }
    }
}

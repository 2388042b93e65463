/* unit_config.c -- the YAML config loader (runtime/config.c): valid files of
 * both programs, and one test per class of error, each asserting the exact
 * one-line message (file, line, key) that the daemons print before exit 2.
 * Also redis_url_parse. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "unit.h"

#define UP_OK                                                                                      \
    "cluster: c1\nredis: redis://127.0.0.1:6379/0\nmaster_publish: tcp://127.0.0.1:4505\n"        \
    "master_ret: tcp://127.0.0.1:4506\n"
#define DOWN_OK                                                                                    \
    "cluster: c1\ndatacenter: dc1\nredis: redis://127.0.0.1:6380\npublish_bind: tcp://127.0.0.1:4505\n" \
    "ret_bind: tcp://127.0.0.1:4506\nstate_dir: /var/lib/saltrelay\n"

/* Load TEXT as ROLE's config file; returns config_load's result, with the
 * message in ERR where "%F" stands for the file's path. */
static int load(int role, const char *text, struct config *cfg, char *err, size_t errlen)
{
    char *dir = unit_tmpdir();
    char *path = unit_write_file(dir, "relay.yaml", text);
    char raw[600] = "";
    int rc = config_load(cfg, role, path, raw, sizeof raw);
    const char *at = strstr(raw, path);
    if (at)
        snprintf(err, errlen, "%.*s%%F%s", (int)(at - raw), raw, at + strlen(path));
    else
        snprintf(err, errlen, "%s", raw);
    free(path);
    unit_rmdir(dir);
    return rc;
}

/* TEXT must fail to load for ROLE with exactly WANT ("%F" is the file). */
static void expect_error(int role, const char *text, const char *want)
{
    struct config cfg;
    char err[700];
    int rc = load(role, text, &cfg, err, sizeof err);
    config_free(&cfg);
    if (rc == 0)
        unit_fail(__FILE__, __LINE__, "loaded, expected: %s\n---\n%s---", want, text);
    if (strcmp(err, want) != 0)
        unit_fail(__FILE__, __LINE__, "message\n  got:      %s\n  expected: %s\n---\n%s---", err, want, text);
}

UNIT_TEST(valid_up_with_defaults)
{
    struct config cfg;
    char err[700];
    CHECK_INT(load(CONFIG_UP, UP_OK "request_timeout: 1.5\nauth_rate: 2.5\n", &cfg, err, sizeof err), 0);
    CHECK_STR(cfg.cluster, "c1");
    CHECK_STR(cfg.mode, "stream");
    CHECK_INT(cfg.stream_maxlen, 100000);
    CHECK_INT(cfg.request_timeout_ms, 1500);
    CHECK(cfg.auth_rate == 2.5);
    CHECK_STR(cfg.redis_url.host, "127.0.0.1");
    CHECK_INT(cfg.redis_url.port, 6379);
    config_free(&cfg);
}

UNIT_TEST(valid_down_primary_defaults_to_redis)
{
    struct config cfg;
    char err[700];
    CHECK_INT(load(CONFIG_DOWN, DOWN_OK "# a comment\nmode: channel\nreplay_max_age: 0\n", &cfg, err, sizeof err), 0);
    CHECK_STR(cfg.redis_primary, "redis://127.0.0.1:6380");
    CHECK_INT(cfg.redis_primary_url.port, 6380);
    CHECK_STR(cfg.mode, "channel");
    CHECK_INT(cfg.replay_max_age_ms, 0);
    CHECK_INT(cfg.subscriber_grace_ms, 15000);
    config_free(&cfg);
    CHECK_INT(load(CONFIG_DOWN, DOWN_OK "redis_primary: redis://:pw@10.0.0.9:7000/2\n", &cfg, err, sizeof err), 0);
    CHECK_STR(cfg.redis_primary_url.host, "10.0.0.9");
    CHECK_STR(cfg.redis_primary_url.password, "pw");
    CHECK_INT(cfg.redis_primary_url.db, 2);
    config_free(&cfg);
}

UNIT_TEST(print_masks_passwords)
{
    struct config cfg;
    char err[700], *text = NULL;
    size_t len = 0;
    CHECK_INT(load(CONFIG_DOWN, DOWN_OK "redis_primary: redis://:s3cret@h:1\n", &cfg, err, sizeof err), 0);
    FILE *f = open_memstream(&text, &len);
    config_print(&cfg, f);
    fclose(f);
    CHECK(strstr(text, "redis_primary: redis://:***@h:1\n") != NULL);
    CHECK(strstr(text, "s3cret") == NULL);
    CHECK(strstr(text, "datacenter: \"dc1\"\n") != NULL);
    CHECK(strstr(text, "master_publish") == NULL); /* only this program's keys */
    free(text);
    config_free(&cfg);
}

UNIT_TEST(error_unknown_key)
{
    expect_error(CONFIG_UP, UP_OK "colour: blue\n", "%F:5: key 'colour': unknown key");
}

UNIT_TEST(error_key_of_the_other_program)
{
    expect_error(CONFIG_UP, UP_OK "datacenter: dc1\n", "%F:5: key 'datacenter': unknown key for this program");
    expect_error(CONFIG_DOWN, "master_publish: tcp://127.0.0.1:1\n" DOWN_OK,
                 "%F:1: key 'master_publish': unknown key for this program");
}

UNIT_TEST(error_wrong_type_int)
{
    expect_error(CONFIG_UP, UP_OK "stream_maxlen: lots\n",
                 "%F:5: key 'stream_maxlen': expected a non-negative integer, got 'lots'");
    expect_error(CONFIG_UP, UP_OK "pub_buffer: -1\n",
                 "%F:5: key 'pub_buffer': expected a non-negative integer, got '-1'");
    expect_error(CONFIG_UP, UP_OK "pub_buffer: 99999999999999999999\n",
                 "%F:5: key 'pub_buffer': expected a non-negative integer, got '99999999999999999999'");
}

UNIT_TEST(error_wrong_type_seconds)
{
    expect_error(CONFIG_DOWN, DOWN_OK "replay_max_age: 60s\n",
                 "%F:7: key 'replay_max_age': expected a non-negative number of seconds, got '60s'");
    expect_error(CONFIG_DOWN, DOWN_OK "subscriber_grace: nan\n",
                 "%F:7: key 'subscriber_grace': expected a non-negative number of seconds, got 'nan'");
    expect_error(CONFIG_UP, UP_OK "auth_rate: -5\n",
                 "%F:5: key 'auth_rate': expected a non-negative number per second, got '-5'");
}

UNIT_TEST(error_wrong_type_endpoint)
{
    expect_error(CONFIG_UP, "master_publish: 10.0.0.1:4505\n",
                 "%F:1: key 'master_publish': expected tcp://host:port or ipc://path, got '10.0.0.1:4505'");
    /* the port range, each on a file of its own line (not after DOWN_OK, which
     * would fail first on "given twice") */
    expect_error(CONFIG_DOWN, "publish_bind: tcp://0.0.0.0:99999\n",
                 "%F:1: key 'publish_bind': expected tcp://host:port or ipc://path, got 'tcp://0.0.0.0:99999'");
    expect_error(CONFIG_DOWN, "publish_bind: tcp://0.0.0.0:65536\n",
                 "%F:1: key 'publish_bind': expected tcp://host:port or ipc://path, got 'tcp://0.0.0.0:65536'");
    expect_error(CONFIG_UP, "master_ret: tcp://127.0.0.1:0\n",
                 "%F:1: key 'master_ret': expected tcp://host:port or ipc://path, got 'tcp://127.0.0.1:0'");
    expect_error(CONFIG_DOWN, "ret_bind: tcp://0.0.0.0:x\n",
                 "%F:1: key 'ret_bind': expected tcp://host:port or ipc://path, got 'tcp://0.0.0.0:x'");
}

UNIT_TEST(error_wrong_type_name)
{
    expect_error(CONFIG_UP, "cluster: my cluster\n",
                 "%F:1: key 'cluster': expected 1-64 characters of [A-Za-z0-9._-], got 'my cluster'");
    expect_error(CONFIG_DOWN, "datacenter:\n",
                 "%F:1: key 'datacenter': expected 1-64 characters of [A-Za-z0-9._-], got ''");
    expect_error(CONFIG_DOWN, "datacenter: dc/1\n",
                 "%F:1: key 'datacenter': expected 1-64 characters of [A-Za-z0-9._-], got 'dc/1'");
    /* a number names a slot of an instance without a name (instance.h) */
    expect_error(CONFIG_UP, "instance: 1\n",
                 "%F:1: key 'instance': expected a name that is not a number (numbers are slots), got '1'");
}

UNIT_TEST(error_wrong_type_mode)
{
    expect_error(CONFIG_UP, UP_OK "mode: pubsub\n",
                 "%F:5: key 'mode': expected 'stream' or 'channel', got 'pubsub'");
}

UNIT_TEST(error_wrong_type_redis_url)
{
    expect_error(CONFIG_UP, "redis: localhost:6379\n",
                 "%F:1: key 'redis': expected redis://[[user]:password@]host[:port][/db] or sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db], got 'localhost:6379'");
    expect_error(CONFIG_DOWN, "redis_primary: redis://h:0\n",
                 "%F:1: key 'redis_primary': bad port in 'redis://h:0'");
}

UNIT_TEST(error_missing_required_key)
{
    expect_error(CONFIG_UP, "cluster: c1\nredis: redis://h\nmaster_publish: tcp://h:1\n",
                 "%F:1: key 'master_ret': missing required key");
    expect_error(CONFIG_DOWN, "", "%F:1: key 'cluster': missing required key");
    expect_error(CONFIG_DOWN, "# only a comment\n", "%F:1: key 'cluster': missing required key");
}

UNIT_TEST(error_key_given_twice)
{
    expect_error(CONFIG_UP, UP_OK "cluster: c2\n", "%F:5: key 'cluster': given twice");
}

UNIT_TEST(error_yaml_syntax)
{
    expect_error(CONFIG_UP, "cluster: c1\nredis: \"unterminated\n",
                 "%F:3: YAML syntax error: found unexpected end of stream");
    expect_error(CONFIG_UP, "cluster: c1\nredis: redis://h: y\n",
                 "%F:2: YAML syntax error: mapping values are not allowed in this context");
    expect_error(CONFIG_UP, "cluster: c1\nredis: redis://h\n\tx: 1\n",
                 "%F:3: YAML syntax error: found a tab character that violates indentation");
}

UNIT_TEST(error_list_as_value)
{
    expect_error(CONFIG_UP, "cluster: c1\nredis:\n  - a\n",
                 "%F:3: key 'redis': expected a scalar value, got a list");
    expect_error(CONFIG_UP, "cluster: [a, b]\n", "%F:1: key 'cluster': expected a scalar value, got a list");
}

UNIT_TEST(error_mapping_as_value)
{
    expect_error(CONFIG_UP, "cluster: c1\nredis:\n  host: a\n",
                 "%F:3: key 'redis': expected a scalar value, got a mapping");
    expect_error(CONFIG_DOWN, "cluster: {a: b}\n", "%F:1: key 'cluster': expected a scalar value, got a mapping");
}

UNIT_TEST(error_not_a_mapping)
{
    expect_error(CONFIG_UP, "- cluster\n- c1\n", "%F:1: expected a mapping of keys, got a list");
    expect_error(CONFIG_UP, "just some text\n", "%F:1: expected a mapping of 'key: value' lines");
    expect_error(CONFIG_UP, "cluster: c1\n---\nredis: redis://h\n",
                 "%F:3: expected one YAML document, got another");
    expect_error(CONFIG_UP, "? {a: b}\n: c\n", "%F:1: expected a scalar key, got a mapping");
    expect_error(CONFIG_UP, "cluster: &a c1\nredis: *a\n", "%F:2: aliases are not supported");
}

UNIT_TEST(error_is_one_line)
{
    expect_error(CONFIG_DOWN, "datacenter: \"dc\\n1\\t\"\n",
                 "%F:1: key 'datacenter': expected 1-64 characters of [A-Za-z0-9._-], got 'dc?1?'");
    expect_error(CONFIG_DOWN, "datacenter: dc1\n\n  more text\n",
                 "%F:1: key 'datacenter': expected 1-64 characters of [A-Za-z0-9._-], got 'dc1?more text'");
}

UNIT_TEST(error_nonexistent_file)
{
    struct config cfg;
    char err[700];
    CHECK_INT(config_load(&cfg, CONFIG_UP, "/nonexistent/saltrelay.yaml", err, sizeof err), -1);
    CHECK_STR(err, "/nonexistent/saltrelay.yaml: cannot open: No such file or directory");
    config_free(&cfg);
}

UNIT_TEST(error_value_out_of_range)
{
    /* the line is the key's own, wherever it is */
    expect_error(CONFIG_UP, UP_OK "req_pool: 0\n", "%F:5: key 'req_pool': 0 is out of range (1 to 10000)");
    expect_error(CONFIG_DOWN, "read_batch: 0\n" DOWN_OK, "%F:1: key 'read_batch': must be at least 1, got '0'");
    expect_error(CONFIG_DOWN, DOWN_OK "\n# a comment\npub_hwm: 5000\n",
                 "%F:9: key 'pub_hwm': 5000 is out of range (1 to 1000)");
    expect_error(CONFIG_DOWN, DOWN_OK "max_pending: 10000001\n",
                 "%F:7: key 'max_pending': 10000001 is out of range (0 to 1e+07)");
    expect_error(CONFIG_UP, UP_OK "pub_wait_timeout: 3600.5\n",
                 "%F:5: key 'pub_wait_timeout': 3600.5 is out of range (0 to 3600)");
    expect_error(CONFIG_UP, UP_OK "sync_source: /srv/salt\nsync_interval: 0.05\n",
                 "%F:6: key 'sync_interval': must be at least 0.1 with sync_source set");
}

UNIT_TEST(error_binds_given_twice)
{
    expect_error(CONFIG_DOWN, DOWN_OK "metrics_bind: 127.0.0.1:4506\n",
                 "%F:7: key 'metrics_bind': 127.0.0.1:4506 is also ret_bind's (line 5): each socket needs its "
                 "own address");
    /* every address of the port takes the port on each one */
    expect_error(CONFIG_DOWN,
                 "cluster: c1\ndatacenter: dc1\nredis: redis://h\nret_bind: tcp://0.0.0.0:7\n"
                 "publish_bind: tcp://127.0.0.1:7\nstate_dir: /x\n",
                 "%F:5: key 'publish_bind': tcp://127.0.0.1:7 is also ret_bind's (line 4): each socket needs its "
                 "own address");
    expect_error(CONFIG_DOWN,
                 "cluster: c1\ndatacenter: dc1\nredis: redis://h\nret_bind: ipc:///run/r\n"
                 "publish_bind: ipc:///run/r\nstate_dir: /x\n",
                 "%F:5: key 'publish_bind': ipc:///run/r is also ret_bind's (line 4): each socket needs its "
                 "own address");
    struct config cfg;
    char err[700];
    CHECK_INT(load(CONFIG_DOWN, DOWN_OK "metrics_bind: 127.0.0.2:4506\n", &cfg, err, sizeof err), 0);
    config_free(&cfg);
}

UNIT_TEST(error_metrics_bind)
{
    expect_error(CONFIG_UP, UP_OK "metrics_bind: 9105\n",
                 "%F:5: key 'metrics_bind': expected \"\", host:port or tcp://host:port, got '9105'");
    expect_error(CONFIG_UP, UP_OK "metrics_bind: tcp://h:0\n",
                 "%F:5: key 'metrics_bind': expected \"\", host:port or tcp://host:port, got 'tcp://h:0'");
}

UNIT_TEST(error_placeholder_password)
{
    expect_error(CONFIG_UP, "redis: redis://:CHANGE-ME@h:6379/0\n",
                 "%F:1: key 'redis': 'CHANGE-ME' is a placeholder from the example: fill in the real value");
    expect_error(CONFIG_DOWN, DOWN_OK "redis_primary: sentinel://relay:<password>@s1/m\n",
                 "%F:7: key 'redis_primary': '<password>' is a placeholder from the example: fill in the real "
                 "value");
}

UNIT_TEST(error_directory_as_file)
{
    struct config cfg;
    char err[700];
    char *dir = unit_tmpdir();
    CHECK_INT(config_load(&cfg, CONFIG_UP, dir, err, sizeof err), -1);
    char want[700];
    snprintf(want, sizeof want, "%s: is a directory, not a config file", dir);
    CHECK_STR(err, want);
    config_free(&cfg);
    unit_rmdir(dir);
}

/* state_dir TEXT: config_check_state_dir's message ("%D" the temporary
 * directory, "%F" the file), or "" if it passes. */
static void expect_state_dir(const char *state_dir, const char *want)
{
    char *dir = unit_tmpdir(), text[600], got[700] = "", exp[700];
    char *file = unit_write_file(dir, "plain", "x");
    free(file);
    snprintf(text, sizeof text, "cluster: c1\ndatacenter: dc1\nredis: redis://h\npublish_bind: tcp://h:1\n"
             "ret_bind: tcp://h:2\nstate_dir: %s/%s\n", dir, state_dir);
    char *path = unit_write_file(dir, "relay.yaml", text);
    struct config cfg;
    CHECK_INT(config_load(&cfg, CONFIG_DOWN, path, got, sizeof got), 0);
    if (config_check_state_dir(&cfg, got, sizeof got) == 0)
        got[0] = '\0';
    size_t o = 0;
    for (const char *w = want; *w && o + 300 < sizeof exp; w++)
        if (w[0] == '%' && (w[1] == 'D' || w[1] == 'F'))
            o += (size_t)snprintf(exp + o, sizeof exp - o, "%s", *++w == 'D' ? dir : path);
        else
            exp[o++] = *w;
    exp[o] = '\0';
    CHECK_STR(got, exp);
    config_free(&cfg);
    free(path);
    unit_rmdir(dir);
}

UNIT_TEST(state_dir_checked)
{
    expect_state_dir("new/deeper", ""); /* created at start */
    expect_state_dir(".", "");
    expect_state_dir("plain", "%F:6: key 'state_dir': %D/plain is not a directory");
    expect_state_dir("plain/sub", "%F:6: key 'state_dir': %D/plain/sub: Not a directory");
}

UNIT_TEST(key_table_defaults_load)
{
    for (size_t i = 0; i < config_key_count(); i++)
        CHECK(config_key_name(i) != NULL && config_key_roles(i) != 0);
    CHECK(config_key_name(config_key_count()) == NULL);
}

static void url_ok(const char *s, const char *host, int port, const char *pw, int db)
{
    struct redis_url u;
    char err[300] = "";
    if (redis_url_parse(s, &u, err, sizeof err) != 0)
        unit_fail(__FILE__, __LINE__, "'%s' refused: %s", s, err);
    CHECK_STR(u.host, host);
    CHECK_INT(u.port, port);
    CHECK_STR(u.password, pw);
    CHECK_INT(u.db, db);
}

static void url_bad(const char *s, const char *want)
{
    struct redis_url u;
    char err[600] = "";
    if (redis_url_parse(s, &u, err, sizeof err) == 0)
        unit_fail(__FILE__, __LINE__, "'%s' accepted", s);
    if (strcmp(err, want) != 0)
        unit_fail(__FILE__, __LINE__, "'%s': message '%s', expected '%s'", s, err, want);
}

UNIT_TEST(redis_url_forms)
{
    url_ok("redis://h", "h", 6379, "", 0);
    url_ok("redis://h/", "h", 6379, "", 0);
    url_ok("redis://127.0.0.1:7000/15", "127.0.0.1", 7000, "", 15);
    url_ok("redis://:pw@h:1", "h", 1, "pw", 0);
    url_ok("redis://user:pw@h", "h", 6379, "pw", 0); /* user: see redis_url_acl_user */
    url_ok("redis://:p@ss:w@rd@h:65535/3", "h", 65535, "p@ss:w@rd", 3);
}

UNIT_TEST(redis_url_acl_user)
{
    struct redis_url u;
    char err[300] = "";
    CHECK_INT(redis_url_parse("redis://relay:p:w@h:7/1", &u, err, sizeof err), 0);
    CHECK_STR(u.user, "relay");
    CHECK_STR(u.password, "p:w");
    CHECK_INT(redis_url_parse("redis://:pw@h", &u, err, sizeof err), 0);
    CHECK_STR(u.user, "");
}

UNIT_TEST(redis_url_errors)
{
    url_bad("http://h", "expected redis://[[user]:password@]host[:port][/db] or sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db], got 'http://h'");
    url_bad("redis://", "missing or too long host in 'redis://'");
    url_bad("redis://:6379", "missing or too long host in 'redis://:6379'");
    url_bad("redis://h:0", "bad port in 'redis://h:0'");
    url_bad("redis://h:65536", "bad port in 'redis://h:65536'");
    url_bad("redis://h:12x", "bad port in 'redis://h:12x'");
    url_bad("redis://h:", "bad port in 'redis://h:'");
    url_bad("redis://h/x", "bad database number in 'redis://h/x'");
    url_bad("redis://h/-1", "bad database number in 'redis://h/-1'");
    url_bad("redis://h/1/2", "bad database number in 'redis://h/1/2'");
    char big[400] = "redis://:";
    memset(big + 9, 'p', 300);
    strcpy(big + 309, "@h");
    url_bad(big, "redis user or password too long");
}

static void sentinel_is(const struct redis_url *u, int i, const char *host, int port)
{
    CHECK_STR(u->sentinel[i].host, host);
    CHECK_INT(u->sentinel[i].port, port);
}

UNIT_TEST(sentinel_url_forms)
{
    char err[300] = "";
    struct redis_url u;
    int rc = redis_url_parse("sentinel://relay:p@w@s1:26380,s2,10.0.0.3:7/mymaster/2", &u, err, sizeof err);
    CHECK_INT(rc || u.db != 2 || u.nsentinels != 3 || u.host[0], 0);
    CHECK_STR(u.master, "mymaster");
    CHECK_STR(u.password, "p@w");
    CHECK_STR(u.user, "relay");
    sentinel_is(&u, 0, "s1", 26380);
    sentinel_is(&u, 1, "s2", 26379);
    sentinel_is(&u, 2, "10.0.0.3", 7);
    CHECK_INT(redis_url_parse("sentinel://s/m", &u, err, sizeof err) || u.nsentinels != 1 || u.db, 0);
    CHECK_STR(u.master, "m");
    CHECK_INT(redis_url_parse("redis://h", &u, err, sizeof err) || u.nsentinels || u.master[0], 0);
}

UNIT_TEST(sentinel_url_errors)
{
    url_bad("sentinel://", "missing or too long host in 'sentinel://'");
    url_bad("sentinel://s1", "missing or too long master name in 'sentinel://s1'");
    url_bad("sentinel://s1/", "missing or too long master name in 'sentinel://s1/'");
    url_bad("sentinel://s1,/m", "missing or too long host in 'sentinel://s1,/m'");
    url_bad("sentinel://s1:0/m", "bad port in 'sentinel://s1:0/m'");
    url_bad("sentinel://s1:1x,s2/m", "bad port in 'sentinel://s1:1x,s2/m'");
    url_bad("sentinel://s1/m/x", "bad database number in 'sentinel://s1/m/x'");
    url_bad("sentinel://a,b,c,d,e,f,g,h,i/m", "more than 8 sentinels in 'sentinel://a,b,c,d,e,f,g,h,i/m'");
}

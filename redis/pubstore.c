/* pubstore.c -- the publication dedup-and-store script and its batches; see
 * pubstore.h. */
#include "pubstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "pubhash.h"
#include "rconn.h"

/* KEYS and the index as in pubstore.h. ARGV: maxlen (0 = none), window ms,
 * the predecessor's hash ("" = none), the first publication's receive time
 * (wall ms), the caller's token, then one version-3 record per publication
 * (its hash its last 12 bytes). The waiters' hash: token -> "<first> <now>",
 * an entry not renewed for 500 ms is gone.
 * string.format('%d'): Lua 5.1 would print a number above 1e14 as "1e+14".
 * Versions 1 and 2 (older saltrelay-ups) carry a serial ("s") and a SHA-1,
 * not the hash of pubhash.h: only their serial is read. */
static const char script[] =
    "local W = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local b = math.floor(now / W)\n"
    "local HL = 12\n"
    "redis.set_repl(redis.REPL_NONE)\n"
    "local ix = redis.call('HMGET', KEYS[3], 'top', 'serial', 'b0', 'b1')\n"
    "local top, serial = ix[1], tonumber(ix[2])\n"
    "local held, sets, adds = {tonumber(ix[3]) or -1, tonumber(ix[4]) or -1}, {KEYS[4], KEYS[5]}, {{}, {}}\n"
    "local function flush(p)\n"
    "  if #adds[p] > 0 then redis.call('SADD', sets[p], unpack(adds[p])); adds[p] = {} end\n"
    "end\n"
    "local function index(h, bucket)\n"
    "  if bucket < b - 1 then return end\n"
    "  local p = bucket % 2 + 1\n"
    "  if held[p] ~= bucket then redis.call('UNLINK', sets[p]); held[p] = bucket; adds[p] = {} end\n"
    "  local a = adds[p]\n"
    "  a[#a + 1] = h\n"
    "  if #a >= 1000 then flush(p) end\n"
    "end\n"
    "local function parse(f)\n"
    "  if #f == 2 then\n"
    "    if #f[2] > HL and math.floor(string.byte(f[2], 1) / 16) == 3 then\n"
    "      return string.sub(f[2], -HL), tonumber(f[1])\n"
    "    end\n"
    "  elseif f[1] == 'v' and f[3] == 's' then\n"
    "    return nil, tonumber(f[4])\n"
    "  end\n"
    "end\n"
    "local moved = not top or #redis.call('XRANGE', KEYS[1], '(' .. top, '+', 'COUNT', 1) > 0\n"
    "if moved then\n"
    "  local s\n"
    "  for _, e in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 16)) do\n"
    "    local _, es = parse(e[2])\n"
    "    if es then s = es; break end\n"
    "  end\n"
    "  serial = s or serial or tonumber(redis.call('GET', KEYS[2])) or 0\n"
    "  local from = string.format('%d', (b - 1) * W)\n"
    "  if top and tonumber(top:match('^%d+')) >= (b - 1) * W then from = '(' .. top end\n"
    "  repeat\n"
    "    local es = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 1000)\n"
    "    for _, e in ipairs(es) do\n"
    "      local h = parse(e[2])\n"
    "      if h then index(h, math.floor(math.min(tonumber(e[1]:match('^%d+')), now) / W)) end\n"
    "    end\n"
    "    if #es > 0 then top = es[#es][1]; from = '(' .. top end\n"
    "  until #es < 1000\n"
    "end\n"
    "local n, hs, dup = #ARGV - 5, {}, {}\n"
    "for i = 1, n do hs[i] = string.sub(ARGV[i + 5], -HL) end\n"
    "local pred = ARGV[3] ~= '' and ARGV[3] or nil\n"
    "if pred then hs[n + 1] = pred end\n"
    "for _, bucket in ipairs({b, b - 1}) do\n"
    "  local p = bucket % 2 + 1\n"
    "  if #hs > 0 and held[p] == bucket then\n"
    "    flush(p)\n"
    "    local m = redis.call('SMISMEMBER', sets[p], unpack(hs))\n"
    "    for i = 1, #hs do if m[i] == 1 then dup[hs[i]] = true end end\n"
    "  end\n"
    "end\n"
    "local function save()\n"
    "  flush(1)\n"
    "  flush(2)\n"
    "  if top then\n"
    "    redis.call('HSET', KEYS[3], 'top', top, 'serial', string.format('%d', serial), 'b0', held[1], 'b1', held[2])\n"
    "  end\n"
    "end\n"
    "local function oldest_of_waiters()\n"
    "  local first, others, go = tonumber(ARGV[4]), false, true\n"
    "  local ws = redis.call('HGETALL', KEYS[6])\n"
    "  for i = 1, #ws, 2 do\n"
    "    local f, at = string.match(ws[i + 1], '^(%d+) (%d+)$')\n"
    "    if not at or tonumber(at) < now - 500 then\n"
    "      redis.call('HDEL', KEYS[6], ws[i])\n"
    "    elseif ws[i] ~= ARGV[5] then\n"
    "      others = true\n"
    "      if tonumber(f) < first then go = false end\n"
    "    end\n"
    "  end\n"
    "  return others and go\n"
    "end\n"
    "local function ahead()\n"
    "  for i = 1, n do if dup[hs[i]] then return true end end\n"
    "  return false\n"
    "end\n"
    "if pred and not dup[pred] then\n"
    "  if not ahead() and not oldest_of_waiters() then\n"
    "    redis.call('HSET', KEYS[6], ARGV[5], ARGV[4] .. ' ' .. string.format('%d', now))\n"
    "    save()\n"
    "    return 'W'\n"
    "  end\n"
    "  redis.call('HDEL', KEYS[6], ARGV[5])\n"
    "end\n"
    "redis.set_repl(redis.REPL_ALL)\n"
    "local out, stored = {}, 0\n"
    "for i = 1, n do\n"
    "  if dup[hs[i]] then\n"
    "    out[i] = '0'\n"
    "  else\n"
    "    serial = serial + 1\n"
    "    top = redis.call('XADD', KEYS[1], '*', string.format('%d', serial), ARGV[i + 5])\n"
    "    dup[hs[i]] = true\n"
    "    stored = stored + 1\n"
    "    out[i] = '1'\n"
    "  end\n"
    "end\n"
    "if stored > 0 and ARGV[1] ~= '0' then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1]) end\n"
    "redis.set_repl(redis.REPL_NONE)\n"
    "for i = 1, n do if out[i] == '1' then index(hs[i], b) end end\n"
    "save()\n"
    "return table.concat(out)\n";

#define HEAD_ROOM 16 /* "*<argc>\r\n", written last, right before the arguments */

void pubstore_init(struct pubstore *ps, const char *cluster, long long maxlen, long long window_ms)
{
    memset(ps, 0, sizeof *ps);
    key_pub_stream(ps->keys[0], cluster);
    key_pub_serial(ps->keys[1], cluster);
    key_pub_index(ps->keys[2], cluster);
    key_pub_index_set(ps->keys[3], cluster, 0);
    key_pub_index_set(ps->keys[4], cluster, 1);
    key_pub_order(ps->keys[5], cluster);
    snprintf(ps->token, sizeof ps->token, "%llx", (unsigned long long)clock_wall_ms() ^ ((unsigned long long)getpid() << 40));
    snprintf(ps->maxlen, sizeof ps->maxlen, "%lld", maxlen > 0 ? maxlen : 0);
    snprintf(ps->window, sizeof ps->window, "%lld", window_ms > 0 ? window_ms : 1);
}

int pubstore_load(struct pubstore *ps, struct rconn *rc)
{
    redisReply *r = rconn_command(rc, "SCRIPT LOAD %s", script);
    if (!r)
        return -1;
    int ok = r->type == REDIS_REPLY_STRING && r->len == sizeof ps->sha - 1;
    if (ok)
        memcpy(ps->sha, r->str, sizeof ps->sha);
    else
        log_error("redis refuses the publication script (%s); retrying",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* Room for MORE bytes. -1 without memory. */
static int reserve(struct pubstore_batch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *buf = realloc(b->buf, cap);
    if (!buf)
        return -1;
    b->buf = buf;
    b->cap = cap;
    return 0;
}

/* "$<len>\r\n" (the caller reserved room for it); no printf per record. */
static void put_len(struct pubstore_batch *b, size_t len)
{
    char digits[24];
    int n = 0;
    do
        digits[n++] = (char)('0' + len % 10);
    while ((len /= 10) > 0);
    char *p = b->buf + b->len;
    *p++ = '$';
    while (n)
        *p++ = digits[--n];
    *p++ = '\r';
    *p++ = '\n';
    b->len = (size_t)(p - b->buf);
}

static void put_bytes(struct pubstore_batch *b, const void *s, size_t l)
{
    put_len(b, l);
    memcpy(b->buf + b->len, s, l);
    memcpy(b->buf + b->len + l, "\r\n", 2);
    b->len += l + 2;
}

static void put_arg(struct pubstore_batch *b, const char *s) { put_bytes(b, s, strlen(s)); }

void pubstore_batch_begin(const struct pubstore *ps, struct pubstore_batch *b, const unsigned char *pred,
                          long long first_ms)
{
    b->len = HEAD_ROOM;
    b->count = 0;
    if (reserve(b, 8 * (KEY_MAX + 32)) < 0) { /* the fixed arguments fit in that */
        b->len = 0;
        return;
    }
    put_arg(b, "EVALSHA");
    put_arg(b, ps->sha);
    put_arg(b, "6");
    for (int i = 0; i < 6; i++)
        put_arg(b, ps->keys[i]);
    put_arg(b, ps->maxlen);
    put_arg(b, ps->window);
    put_bytes(b, pred ? (const void *)pred : "", pred ? PUBREC_HASH_LEN : 0);
    char first[24];
    snprintf(first, sizeof first, "%lld", first_ms);
    put_arg(b, first);
    put_arg(b, ps->token);
}

size_t pubstore_batch_cost(const struct pubrec *rec)
{
    return pubrec_v3_size(rec) + 32;
}

int pubstore_batch_add(struct pubstore_batch *b, const struct pubrec *rec, unsigned char hash[PUBREC_HASH_LEN])
{
    size_t size = pubrec_v3_size(rec);
    if (!b->len || !size || reserve(b, size + 32) < 0)
        return -1;
    pubhash(rec, hash);
    put_len(b, size);
    pubrec_v3_write(rec, hash, b->buf + b->len);
    memcpy(b->buf + b->len + size, "\r\n", 2);
    b->len += size + 2;
    b->count++;
    return 0;
}

int pubstore_batch_send(struct pubstore_batch *b, struct rpipe *p, uint64_t tag)
{
    char head[HEAD_ROOM + 1];
    int hl = snprintf(head, sizeof head, "*%zu\r\n", 14 + b->count);
    size_t at = HEAD_ROOM - (size_t)hl;
    memcpy(b->buf + at, head, (size_t)hl);
    return rpipe_append_formatted(p, tag, b->buf + at, b->len - at);
}

void pubstore_batch_free(struct pubstore_batch *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

int pubstore_waits(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->len == 1 && r->str[0] == 'W';
}

const char *pubstore_verdicts(const redisReply *r, size_t n)
{
    if (r->type != REDIS_REPLY_STRING || (size_t)r->len != n)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (r->str[i] != '0' && r->str[i] != '1')
            return NULL;
    return r->str;
}

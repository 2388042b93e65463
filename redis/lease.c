/* lease.c -- the lease scripts and tokens; see lease.h. */
#include "lease.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"

const char LEASE_TAKE_LUA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or (ARGV[4] ~= '' and v == ARGV[4]) then v = ARGV[2] end "
    "if v == ARGV[1] or v == ARGV[2] then redis.call('SET', KEYS[1], v, 'PX', ARGV[3]) end "
    "return v";

const char LEASE_RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

void lease_token_new(const char *name, char *tok, size_t len)
{
    uint64_t n = 0;
    if (getrandom(&n, sizeof n, GRND_NONBLOCK) != (ssize_t)sizeof n)
        n = (uint64_t)clock_wall_ms() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)clock_mono_ms() << 20;
    snprintf(tok, len, "%s#%016llx", name, (unsigned long long)n);
}

void lease_holder(const char *token, size_t len, char *name, size_t namelen)
{
    const char *hash = memchr(token, '#', len);
    size_t n = hash ? (size_t)(hash - token) : len;
    snprintf(name, namelen, "%.*s", (int)n, token);
    for (char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

/* unit.c -- runner and helpers of the unit test framework; see unit.h. */
#include "unit.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TESTS 128

static struct {
    const char *name;
    unit_fn fn;
} tests[MAX_TESTS];
static size_t ntests;
static jmp_buf on_fail;

void unit_register(const char *name, unit_fn fn)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "unit: more than %d tests in one program\n", MAX_TESTS);
        exit(2);
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    longjmp(on_fail, 1);
}

void unit_check_str(const char *file, int line, const char *expr, const char *got, const char *want)
{
    if (!got || strcmp(got, want) != 0)
        unit_fail(file, line, "%s\n  got:      %s\n  expected: %s", expr, got ? got : "(null)", want);
}

void unit_check_refused(const char *file, int line, int rc, const char *why, const char *want, const char *label)
{
    if (rc == 0)
        unit_fail(file, line, "%s: accepted, expected '%s'", label, want);
    if (!why || strcmp(why, want) != 0)
        unit_fail(file, line, "%s: reason '%s', expected '%s'", label, why ? why : "(null)", want);
}

void unit_check_mem(const char *file, int line, const char *expr, const void *got, size_t gotlen,
                    const void *want, size_t wantlen)
{
    if (gotlen != wantlen || (gotlen && memcmp(got, want, gotlen) != 0))
        unit_fail(file, line, "%s: %zu bytes differ from the %zu expected", expr, gotlen, wantlen);
}

void unit_check_argv(const char *file, int line, const char *const *argv, const size_t *argvlen, int argc,
                     const char *const *want)
{
    for (int i = 0; i < argc; i++) {
        if (!want[i])
            unit_fail(file, line, "argv has more than the expected %d items", i);
        if (argvlen[i] != strlen(want[i]) || memcmp(argv[i], want[i], argvlen[i]) != 0)
            unit_fail(file, line, "argv[%d] is '%.*s', expected '%s'", i, (int)argvlen[i], argv[i], want[i]);
    }
    if (want[argc])
        unit_fail(file, line, "argv has %d items, fewer than expected", argc);
}

redisReply *unit_resp(const char *bytes, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (redisReaderFeed(rd, bytes, len) != REDIS_OK || redisReaderGetReply(rd, &reply) != REDIS_OK ||
        !reply) {
        redisReaderFree(rd);
        unit_fail(__FILE__, __LINE__, "not one complete RESP reply: %.*s", (int)len, bytes);
    }
    redisReaderFree(rd);
    return reply;
}

redisReply *unit_resps(const char *text) { return unit_resp(text, strlen(text)); }

char *unit_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *dir;
    if (asprintf(&dir, "%s/saltrelay-unit-XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(dir))
        unit_fail(__FILE__, __LINE__, "cannot make a temporary directory");
    return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void unit_rmdir(char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

char *unit_write_file(const char *dir, const char *name, const char *text)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        unit_fail(__FILE__, __LINE__, "out of memory");
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        unit_fail(__FILE__, __LINE__, "cannot write %s", path);
    return path;
}

char *unit_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap + 1);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

const char *unit_wire_dir(void)
{
    const char *d = getenv("SALTRELAY_WIRE");
    return d && *d ? d : "../shared/salt-wire";
}

static int run_one(size_t i)
{
    if (setjmp(on_fail)) {
        printf("FAIL %s\n", tests[i].name);
        return 1;
    }
    tests[i].fn();
    printf("PASS %s\n", tests[i].name);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0, found = 0;
    for (size_t i = 0; i < ntests; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], tests[i].name) == 0;
        if (wanted) {
            found++;
            failed += run_one(i);
        }
    }
    if (!found) {
        fprintf(stderr, "%s: no such test\n", argv[0]);
        return 2;
    }
    return failed ? 1 : 0;
}

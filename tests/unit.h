/* unit.h -- a tiny unit test framework for the shared code (no dependencies).
 *
 * A test file defines tests with UNIT_TEST(name) { ... }; tests/unit.cmake
 * finds the names in the source and registers one ctest test per name,
 * run as `unit_FILE NAME` (with no name every test runs). A failed CHECK
 * prints file, line and what failed, ends that test and makes the program
 * exit 1. Helpers build hiredis replies from RESP bytes and read files. */
#ifndef SALTRELAY_UNIT_H
#define SALTRELAY_UNIT_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));

#define UNIT_TEST(name)                                                                     \
    static void test_##name(void);                                                          \
    __attribute__((constructor)) static void register_##name(void) { unit_register(#name, test_##name); } \
    static void test_##name(void)

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond))                                                                        \
            unit_fail(__FILE__, __LINE__, "check failed: %s", #cond);                      \
    } while (0)
#define CHECK_INT(a, b)                                                                     \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_)                                                                       \
            unit_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld", #a, a_, #b, b_); \
    } while (0)
#define CHECK_STR(a, b) unit_check_str(__FILE__, __LINE__, #a, (a), (b))
#define CHECK_MEM(p, plen, q, qlen) unit_check_mem(__FILE__, __LINE__, #p, (p), (plen), (q), (qlen))

/* A decoder returned RC and reason WHY for input LABEL: must be -1 with WANT. */
#define CHECK_REFUSED(rc, why, want, label) unit_check_refused(__FILE__, __LINE__, (rc), (why), (want), (label))
void unit_check_refused(const char *file, int line, int rc, const char *why, const char *want, const char *label);
void unit_check_str(const char *file, int line, const char *expr, const char *got, const char *want);
void unit_check_mem(const char *file, int line, const char *expr, const void *got, size_t gotlen,
                    const void *want, size_t wantlen);
/* The ARGC strings of ARGV/ARGVLEN (a command's argv) are those of WANT, a
 * NULL-terminated list, in order. */
#define CHECK_ARGV(argv, argvlen, argc, want) unit_check_argv(__FILE__, __LINE__, (argv), (argvlen), (argc), (want))
void unit_check_argv(const char *file, int line, const char *const *argv, const size_t *argvlen, int argc,
                     const char *const *want);

/* Parse one whole RESP reply from LEN bytes (fails the test if incomplete). */
redisReply *unit_resp(const char *bytes, size_t len);
/* The same from a C string. */
redisReply *unit_resps(const char *text);

/* A fresh empty directory under $TMPDIR (removed by unit_rmdir). */
char *unit_tmpdir(void);
void unit_rmdir(char *dir);
/* Write TEXT to DIR/NAME and return the malloc'd path. */
char *unit_write_file(const char *dir, const char *name, const char *text);
/* Read a whole file into a malloc'd buffer; NULL if it cannot. */
char *unit_read_file(const char *path, size_t *len);

/* Directory of the salt-wire captures ($SALTRELAY_WIRE). */
const char *unit_wire_dir(void);

#endif

/* unit_statefile.c -- durable state files (proto/statefile.c): atomic
 * replace, read with bounds, and "key value" lookup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "statefile.h"
#include "unit.h"

static int exists(const char *dir, const char *name)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

UNIT_TEST(write_then_read)
{
    char *dir = unit_tmpdir(), buf[128];
    CHECK_INT(statefile_read(dir, "pub.state", buf, sizeof buf), 0); /* none yet */
    CHECK_INT(statefile_write(dir, "pub.state", "cursor 1-2\nserial 3\n", 1), 0);
    CHECK_INT(statefile_read(dir, "pub.state", buf, sizeof buf), 20);
    CHECK_STR(buf, "cursor 1-2\nserial 3\n");
    CHECK_INT(statefile_write(dir, "pub.state", "cursor 4-5\n", 0), 0); /* replaced whole */
    CHECK_INT(statefile_read(dir, "pub.state", buf, sizeof buf), 11);
    CHECK_STR(buf, "cursor 4-5\n");
    CHECK(!exists(dir, "pub.state.tmp"));
    CHECK_INT(statefile_write(dir, "empty", "", 1), 0);
    CHECK_INT(statefile_read(dir, "empty", buf, sizeof buf), 0);
    CHECK_STR(buf, "");
    unit_rmdir(dir);
}

UNIT_TEST(stale_temporary_is_harmless)
{
    char *dir = unit_tmpdir(), buf[64];
    free(unit_write_file(dir, "pub.state.tmp", "cursor torn-"));
    CHECK_INT(statefile_write(dir, "pub.state", "cursor 9-9\n", 0), 0);
    CHECK_INT(statefile_read(dir, "pub.state", buf, sizeof buf), 11);
    CHECK(!exists(dir, "pub.state.tmp"));
    unit_rmdir(dir);
}

UNIT_TEST(read_refuses_what_does_not_fit)
{
    char *dir = unit_tmpdir(), buf[16];
    free(unit_write_file(dir, "big", "0123456789abcdefXYZ"));
    CHECK_INT(statefile_read(dir, "big", buf, sizeof buf), -1);
    free(unit_write_file(dir, "fits", "0123456789"));
    CHECK_INT(statefile_read(dir, "fits", buf, sizeof buf), 10);
    unit_rmdir(dir);
}

UNIT_TEST(write_errors)
{
    char *dir = unit_tmpdir(), buf[16], longdir[5000];
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/no/such/dir", dir);
    CHECK_INT(statefile_write(missing, "pub.state", "x", 0), -1);
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[sizeof longdir - 1] = '\0';
    CHECK_INT(statefile_write(longdir, "pub.state", "x", 0), -1);
    CHECK_INT(statefile_read(longdir, "pub.state", buf, sizeof buf), -1);
    CHECK_INT(statefile_read(dir, ".", buf, sizeof buf), -1); /* a directory */
    unit_rmdir(dir);
}

UNIT_TEST(get_values)
{
    const char *text = "cursor 1-2\ncursorx 7\nserial 35\nsubscribers 2";
    char v[8];
    CHECK_INT(statefile_get(text, "cursor", v, sizeof v), 0);
    CHECK_STR(v, "1-2");
    CHECK_INT(statefile_get(text, "serial", v, sizeof v), 0);
    CHECK_STR(v, "35");
    CHECK_INT(statefile_get(text, "subscribers", v, sizeof v), 0); /* last line, no newline */
    CHECK_STR(v, "2");
    CHECK_INT(statefile_get(text, "curs", v, sizeof v), -1);
    CHECK_INT(statefile_get(text, "missing", v, sizeof v), -1);
    CHECK_INT(statefile_get("", "cursor", v, sizeof v), -1);
    CHECK_INT(statefile_get("cursor 12345678\n", "cursor", v, sizeof v), -1); /* too long */
    CHECK_INT(statefile_get("cursor \n", "cursor", v, sizeof v), 0);
    CHECK_STR(v, "");
}

static long read_raw(const char *dir, char *buf, size_t len)
{
    return statefile_read(dir, "pub.state", buf, len);
}

UNIT_TEST(slots_new_file_then_saves)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[2048], v[32];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "");
    CHECK_INT(read_raw(dir, raw, sizeof raw), 2 * STATEFILE_SLOT); /* created at full size */
    CHECK_INT(statefile_save(&sf, "cursor 1-1\nsubscribers 2\n", 0), 0);
    CHECK_INT(statefile_save(&sf, "cursor 2-0\nsubscribers 3", 1), 0); /* no final newline */
    CHECK_INT(read_raw(dir, raw, sizeof raw), 2 * STATEFILE_SLOT); /* overwritten in place */
    CHECK(strstr(raw, "cursor 2-0\nsubscribers 3\ncheck ") != NULL); /* readable text */
    statefile_close(&sf);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 2-0\nsubscribers 3\n");
    CHECK_INT(statefile_get(text, "subscribers", v, sizeof v), 0);
    CHECK_STR(v, "3");
    CHECK_INT(statefile_save(&sf, "cursor 3-0\n", 0), 0); /* takes the older slot */
    statefile_close(&sf);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 3-0\n");
    statefile_close(&sf);
    unit_rmdir(dir);
}

/* A slot torn or damaged anywhere: the other one is taken. */
UNIT_TEST(slots_damaged_slot_ignored)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[2048], path[4200];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_INT(statefile_save(&sf, "cursor 5-5\n", 0), 0); /* seq 2, slot 1 */
    CHECK_INT(statefile_save(&sf, "cursor 6-6\n", 0), 0); /* seq 3, slot 0 */
    statefile_close(&sf);
    long n = read_raw(dir, raw, sizeof raw);
    raw[8] = raw[8] == '6' ? '7' : '6'; /* damage the newest slot's cursor */
    snprintf(path, sizeof path, "%s/pub.state", dir);
    FILE *f = fopen(path, "w");
    fwrite(raw, 1, (size_t)n, f);
    fclose(f);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 5-5\n");
    statefile_close(&sf);
    memset(raw + STATEFILE_SLOT + 20, 'x', 10); /* and now the other one too */
    f = fopen(path, "w");
    fwrite(raw, 1, (size_t)n, f);
    fclose(f);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), -1);
    unit_rmdir(dir);
}

/* A file written by an earlier saltrelay (whole text) is carried over. */
UNIT_TEST(slots_take_over_older_format)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[2048];
    struct statefile sf;
    free(unit_write_file(dir, "pub.state", "cursor 9-9\nserial 4\nsubscribers 1\n"));
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 9-9\nserial 4\nsubscribers 1\n");
    CHECK_INT(read_raw(dir, raw, sizeof raw), 2 * STATEFILE_SLOT);
    CHECK(strncmp(raw, "seq 1\ncursor 9-9\n", 17) == 0);
    CHECK_INT(statefile_save(&sf, "x", 0), 0);
    char big[STATEFILE_TEXT_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(statefile_save(&sf, big, 0), -1); /* too long for a slot */
    statefile_close(&sf);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "x\n");
    statefile_close(&sf);
    unit_rmdir(dir);
}

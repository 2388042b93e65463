/* unit_statefile.c -- durable state files (runtime/statefile.c): atomic
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

/* Open DIR/pub.state, expect its state to be WANT, close it. */
static void expect_text(const char *dir, const char *want)
{
    char text[STATEFILE_TEXT_MAX + 1];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, want);
    statefile_close(&sf);
}

UNIT_TEST(slots_new_file_then_saves)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192], v[32];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "");
    CHECK_INT(read_raw(dir, raw, sizeof raw), STATEFILE_FILE_SIZE); /* created at full size */
    CHECK_INT(statefile_save(&sf, "cursor 1-1\nsubscribers 2\n", 0), 0);
    CHECK_INT(statefile_save(&sf, "cursor 2-0\nsubscribers 3", 1), 0); /* no final newline */
    CHECK_INT(read_raw(dir, raw, sizeof raw), STATEFILE_FILE_SIZE); /* overwritten in place */
    CHECK(strstr(raw, "cursor 2-0\nsubscribers 3\ncheck ") != NULL); /* readable text */
    statefile_close(&sf);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 2-0\nsubscribers 3\n");
    CHECK_INT(statefile_get(text, "subscribers", v, sizeof v), 0);
    CHECK_STR(v, "3");
    CHECK_INT(statefile_save(&sf, "cursor 3-0\n", 0), 0); /* takes the older slot */
    statefile_close(&sf);
    expect_text(dir, "cursor 3-0\n");
    unit_rmdir(dir);
}

static void write_raw(const char *dir, const char *raw, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/pub.state", dir);
    FILE *f = fopen(path, "w");
    fwrite(raw, 1, n, f);
    fclose(f);
}

/* A file whose slot 1 holds "cursor 5-5" (seq 2) and slot 0 the newer
 * "cursor 6-6" (seq 3), read into RAW: its size. */
static long two_states(const char *dir, char *raw, size_t len)
{
    char text[STATEFILE_TEXT_MAX + 1];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_INT(statefile_save(&sf, "cursor 5-5\n", 0), 0);
    CHECK_INT(statefile_save(&sf, "cursor 6-6\n", 0), 0);
    statefile_close(&sf);
    return read_raw(dir, raw, len);
}

/* A slot torn or damaged anywhere: the other one is taken. */
UNIT_TEST(slots_damaged_slot_ignored)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192];
    struct statefile sf;
    long n = two_states(dir, raw, sizeof raw);
    raw[8] = raw[8] == '6' ? '7' : '6'; /* damage the newest slot's cursor */
    write_raw(dir, raw, (size_t)n);
    expect_text(dir, "cursor 5-5\n");
    memset(raw + STATEFILE_BLOCK + 20, 'x', 10); /* and now the other one too */
    write_raw(dir, raw, (size_t)n);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), -1);
    unit_rmdir(dir);
}

/* A file written by an earlier saltrelay (whole text) is carried over. */
UNIT_TEST(slots_take_over_older_format)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192];
    struct statefile sf;
    free(unit_write_file(dir, "pub.state", "cursor 9-9\nserial 4\nsubscribers 1\n"));
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 9-9\nserial 4\nsubscribers 1\n");
    CHECK_INT(read_raw(dir, raw, sizeof raw), STATEFILE_FILE_SIZE);
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

/* Issue 10 item 1: damage to the very first bytes of slot 0 (where the file
 * was once told apart from the older format) leaves slot 1 usable. */
UNIT_TEST(slots_damaged_start_of_first_slot)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192];
    struct statefile sf;
    long n = two_states(dir, raw, sizeof raw);
    memcpy(raw, "\0\0\0\0", 4);
    write_raw(dir, raw, (size_t)n);
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_STR(text, "cursor 5-5\n");
    CHECK_INT(statefile_save(&sf, "cursor 7-7\n", 0), 0); /* rewrites the damaged slot */
    statefile_close(&sf);
    expect_text(dir, "cursor 7-7\n");
    unit_rmdir(dir);
}

/* The two slots never share a 4 KiB block: one at 0, one at 4096. */
UNIT_TEST(slots_in_separate_blocks)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192];
    struct statefile sf;
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0);
    CHECK_INT(statefile_save(&sf, "cursor 5-5\n", 0), 0);
    statefile_close(&sf);
    CHECK_INT(read_raw(dir, raw, sizeof raw), 4096 + 512);
    CHECK(strncmp(raw + 4096, "seq 2\ncursor 5-5\n", 17) == 0);
    CHECK(strncmp(raw, "seq 1\n", 6) == 0);
    memset(raw, 'x', 4096); /* the whole first block torn */
    write_raw(dir, raw, 4096 + 512);
    expect_text(dir, "cursor 5-5\n");
    unit_rmdir(dir);
}

/* A 1 KiB file of the earlier layout (adjacent slots) is carried over, each
 * slot parsed on its own. */
UNIT_TEST(slots_take_over_adjacent_layout)
{
    char *dir = unit_tmpdir(), text[STATEFILE_TEXT_MAX + 1], raw[8192], slot[STATEFILE_SLOT + 1];
    struct statefile sf;
    memset(raw, ' ', 2 * STATEFILE_SLOT);
    snprintf(slot, sizeof slot, "seq 4\ncursor 8-8\ncheck 00000000\n"); /* bad check */
    memcpy(raw, slot, strlen(slot));
    CHECK_INT(statefile_open(&sf, dir, "pub.state", text, sizeof text), 0); /* a valid slot to copy */
    CHECK_INT(statefile_save(&sf, "cursor 3-3\n", 0), 0);
    statefile_close(&sf);
    char cur[8192];
    read_raw(dir, cur, sizeof cur);
    memcpy(raw + STATEFILE_SLOT, cur + STATEFILE_BLOCK, STATEFILE_SLOT);
    write_raw(dir, raw, 2 * STATEFILE_SLOT);
    expect_text(dir, "cursor 3-3\n");
    CHECK_INT(read_raw(dir, raw, sizeof raw), STATEFILE_FILE_SIZE);
    unit_rmdir(dir);
}

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

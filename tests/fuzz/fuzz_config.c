/* fuzz_config.c -- libFuzzer target: the YAML config loader. The bytes are
 * written to a temporary file and loaded for saltrelay-up and for
 * saltrelay-down; an error must be one line naming the file, a loaded
 * config must print. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];
static FILE *sink;

static void remove_file(void) { unlink(path); }

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/saltrelay-fuzz-config-%d.yaml", (int)getpid());
    atexit(remove_file);
    sink = fopen("/dev/null", "w");
    if (!sink)
        abort();
}

static void load(int role)
{
    struct config cfg;
    char err[600] = "";
    if (config_load(&cfg, role, path, err, sizeof err) == 0)
        config_print(&cfg, sink);
    else if (strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n'))
        __builtin_trap(); /* every message starts with the file and is one line */
    config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sink)
        setup();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    load(CONFIG_UP);
    load(CONFIG_DOWN);
    return 0;
}

/* seeds.c -- writes the fuzzers' seed corpora from the salt-wire captures:
 *   fuzz_seeds WIRE_DIR OUT_DIR
 * OUT_DIR/entry/    XREAD replies (RESP) holding each captured publication
 *                   as saltrelay-up stores it, one per file and one batch
 * OUT_DIR/channel/  each publication packed as a channel-mode record
 * OUT_DIR/envelope/ each captured request and reply frame
 * OUT_DIR/config.dict  the loader's key names, a libFuzzer dictionary
 * (the config seeds are the .yaml files of conf/, copied by run.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pubrec.h"
#include "resp.h"
#include "wire.h"

struct out {
    const char *dir;
    long n;
    struct resp batch; /* every publication's entry, for one big XREAD reply */
    long batched;
};

static void write_seed(struct out *o, const char *kind, const char *buf, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/seed-%04ld", o->dir, kind, o->n++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void xread_reply(struct resp *r, const struct resp *entries, long n)
{
    resp_array(r, 1);
    resp_array(r, 2);
    resp_str(r, "saltrelay:{c}:pub");
    resp_array(r, n);
    resp_raw(r, entries->buf);
}

static void on_pub(const struct wire_record *w, void *arg)
{
    struct out *o = arg;
    struct pubrec rec = {.id = {1700000000000ULL + (uint64_t)o->n, 0}, .serial = (uint64_t)o->n + 1,
                         .nframes = w->nframes};
    for (size_t i = 0; i < w->nframes && i < PUBREC_MAX_FRAMES; i++) {
        rec.frame[i] = w->frame[i];
        rec.len[i] = w->len[i];
    }
    const char *argv[PUBREC_ARGC_MAX];
    size_t argvlen[PUBREC_ARGC_MAX], len;
    struct pubrec_scratch s;
    int argc = pubrec_xadd_argv(&rec, "saltrelay:{c}:pub", 100000, &s, argv, argvlen);
    struct resp one = {0}, reply = {0};
    resp_entry_from_xadd(&one, argc, argv, argvlen);
    xread_reply(&reply, &one, 1);
    write_seed(o, "entry", reply.buf, reply.len);
    resp_entry_from_xadd(&o->batch, argc, argv, argvlen);
    o->batched++;
    char *packed = pubrec_pack(&rec, &len);
    write_seed(o, "channel", packed, len);
    free(packed);
    resp_free(&one);
    resp_free(&reply);
}

static void on_frame(const struct wire_record *w, void *arg)
{
    if (w->len[0] < 8192) /* the 1 MiB file chunks teach nothing more */
        write_seed(arg, "envelope", w->frame[0], w->len[0]);
}

static void write_dict(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.dict", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    for (size_t i = 0; i < config_key_count(); i++)
        fprintf(f, "\"%s: \"\n", config_key_name(i));
    fputs("\"redis://\"\n\"tcp://\"\n\"ipc://\"\n\"---\"\n\"- \"\n\"{\"\n\"[\"\n\"&a\"\n\"*a\"\n", f);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds WIRE_DIR OUT_DIR\n");
        return 2;
    }
    struct out o = {.dir = argv[2]};
    for (const char *const *c = wire_captures; *c; c++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", argv[1], *c);
        if (wire_each(path, "pub", on_pub, &o) < 0 || wire_each(path, "req", on_frame, &o) < 0 ||
            wire_each(path, "rep", on_frame, &o) < 0) {
            fprintf(stderr, "fuzz_seeds: cannot read %s\n", path);
            return 1;
        }
    }
    struct resp all = {0};
    xread_reply(&all, &o.batch, o.batched);
    write_seed(&o, "entry", all.buf, all.len);
    resp_free(&all);
    resp_free(&o.batch);
    write_dict(argv[2]);
    printf("fuzz_seeds: %ld seeds\n", o.n);
    return 0;
}

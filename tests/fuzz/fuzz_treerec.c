/* fuzz_treerec.c -- libFuzzer target: tree sync's records as saltrelay-down
 * reads them from Redis (proto/treerec.c). The first byte picks the decoder:
 * 'h' the version record, anything else the manifest. What decodes must
 * satisfy the decoder's promises (relative clean paths, strictly ascending,
 * chunk counts matching sizes, totals within the limit) and encode to a
 * record that decodes to the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "treerec.h"

#define MAX_BYTES (1ULL << 40)

static void check_manifest(const struct tree_manifest *m)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct tree_file *f = &m->file[i];
        if (!tree_path_ok(f->path, strlen(f->path)) || f->nchunks != tree_nchunks(f->size) ||
            (i && strcmp(m->file[i - 1].path, f->path) >= 0))
            __builtin_trap();
        total += f->size;
    }
    if (total != m->bytes || total > MAX_BYTES)
        __builtin_trap();
}

static void same_manifest(const struct tree_manifest *a, const struct tree_manifest *b)
{
    if (a->nfiles != b->nfiles || a->bytes != b->bytes)
        __builtin_trap();
    for (size_t i = 0; i < a->nfiles; i++)
        if (strcmp(a->file[i].path, b->file[i].path) || a->file[i].exec != b->file[i].exec ||
            a->file[i].size != b->file[i].size ||
            (a->file[i].nchunks && memcmp(a->file[i].chunk, b->file[i].chunk, a->file[i].nchunks * TREE_ID_LEN)))
            __builtin_trap();
}

static void manifest(const char *buf, size_t len)
{
    struct tree_manifest m, again;
    const char *why = NULL;
    if (tree_manifest_decode(buf, len, MAX_BYTES, &m, &why) != 0) {
        if (!why)
            __builtin_trap();
        tree_manifest_free(&m);
        return;
    }
    check_manifest(&m);
    size_t elen;
    char *enc = tree_manifest_encode(&m, &elen);
    if (!enc || tree_manifest_decode(enc, elen, MAX_BYTES, &again, &why) != 0)
        __builtin_trap();
    same_manifest(&m, &again);
    free(enc);
    tree_manifest_free(&m);
    tree_manifest_free(&again);
}

static void head(const char *buf, size_t len)
{
    struct tree_head h, again;
    const char *why = NULL;
    if (tree_head_decode(buf, len, &h, &why) != 0) {
        if (!why)
            __builtin_trap();
        tree_head_free(&h);
        return;
    }
    if (h.version == 0 || h.nchunks != tree_nchunks(h.manifest_len) || h.manifest_len > TREE_MANIFEST_MAX)
        __builtin_trap();
    size_t elen;
    char *enc = tree_head_encode(&h, &elen);
    if (!enc || tree_head_decode(enc, elen, &again, &why) != 0 || again.version != h.version ||
        again.created_ms != h.created_ms || again.files != h.files || again.bytes != h.bytes ||
        again.manifest_len != h.manifest_len || memcmp(again.chunk, h.chunk, h.nchunks * TREE_ID_LEN))
        __builtin_trap();
    free(enc);
    tree_head_free(&h);
    tree_head_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] == 'h')
        head((const char *)data + 1, size - 1);
    else
        manifest((const char *)data + 1, size - 1);
    return 0;
}

/* unit_treerec.c -- tree sync's records (proto/treerec.c): chunk geometry,
 * path checks, manifest and version record round trips, and the refusal of
 * what saltrelay-down must never act on: paths leading out of the target,
 * duplicates, chunk lists that do not match sizes, trees over the limit,
 * malformed msgpack. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "treerec.h"
#include "unit.h"

/* CALL (a decoder that sets WHY) must refuse with WANT; the call is made
 * before WHY is read. */
#define DECODE_REFUSED(call, want, label)                                                          \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK_REFUSED(rc_, why, want, label);                                                      \
    } while (0)

UNIT_TEST(chunk_geometry)
{
    CHECK_INT(tree_nchunks(0), 0);
    CHECK_INT(tree_nchunks(1), 1);
    CHECK_INT(tree_nchunks(TREE_CHUNK), 1);
    CHECK_INT(tree_nchunks(TREE_CHUNK + 1), 2);
    CHECK_INT(tree_chunk_len(TREE_CHUNK + 5, 0), TREE_CHUNK);
    CHECK_INT(tree_chunk_len(TREE_CHUNK + 5, 1), 5);
    CHECK_INT(tree_chunk_len(TREE_CHUNK + 5, 2), 0);
}

UNIT_TEST(sha1_of_known_input)
{
    tree_id id;
    char hex[TREE_HEX_LEN];
    tree_chunk_id("abc", 3, id);
    CHECK_STR(tree_id_hex(id, hex), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

UNIT_TEST(paths)
{
    static const char *const good[] = {"a", "a/b", "with space/ünïcødé ✓.sls", "..a", "a..", ".hidden", "a/.b"};
    static const char *const bad[] = {"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a/.."};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(tree_path_ok(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!tree_path_ok(bad[i], strlen(bad[i])));
    CHECK(!tree_path_ok("a\0b", 3));
    char longname[300];
    memset(longname, 'x', sizeof longname);
    CHECK(!tree_path_ok(longname, 256)); /* a component over 255 bytes */
    CHECK(tree_path_ok(longname, 255));
}

/* A manifest of two files, the second of two chunks. */
static struct tree_manifest sample(tree_id ids[3])
{
    static struct tree_file files[2];
    tree_chunk_id("one", 3, ids[0]);
    tree_chunk_id("two", 3, ids[1]);
    tree_chunk_id("three", 5, ids[2]);
    files[0] = (struct tree_file){"bin/run me.sh", 1, 3, 1, &ids[0]};
    files[1] = (struct tree_file){"states/ünï.sls", 0, TREE_CHUNK + 5, 2, &ids[1]};
    return (struct tree_manifest){2, files, 3 + TREE_CHUNK + 5};
}

UNIT_TEST(manifest_round_trip)
{
    tree_id ids[3];
    struct tree_manifest m = sample(ids), back;
    size_t len;
    const char *why;
    char *buf = tree_manifest_encode(&m, &len);
    CHECK(buf);
    CHECK_INT(tree_manifest_decode(buf, len, 1ULL << 30, &back, &why), 0);
    CHECK_INT(back.nfiles, 2);
    CHECK_INT(back.bytes, m.bytes);
    CHECK_STR(back.file[1].path, "states/ünï.sls");
    CHECK_INT(back.file[0].exec, 1);
    CHECK_INT(back.file[1].nchunks, 2);
    CHECK_MEM(back.file[1].chunk, 2 * TREE_ID_LEN, &ids[1], 2 * TREE_ID_LEN);
    tree_manifest_free(&back);
    /* a limit below the total refuses it */
    DECODE_REFUSED(tree_manifest_decode(buf, len, TREE_CHUNK, &back, &why),
                  "the tree is larger than sync_max_bytes", "over the limit");
    tree_manifest_free(&back);
    DECODE_REFUSED(tree_manifest_decode(buf, len - 1, 1ULL << 30, &back, &why),
                  "not one whole msgpack document", "truncated");
    tree_manifest_free(&back);
    free(buf);
}

/* Encode a manifest of one or two raw entries (packed by the caller). */
static void refused_entries(const char *label, void (*pack)(msgpack_packer *), const char *want)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk);
    struct tree_manifest m;
    const char *why;
    DECODE_REFUSED(tree_manifest_decode(sb.data, sb.size, 1ULL << 30, &m, &why), want, label);
    tree_manifest_free(&m);
    msgpack_sbuffer_destroy(&sb);
}

static void entry(msgpack_packer *pk, const char *path, int exec, uint64_t size, size_t nids)
{
    static const unsigned char id[TREE_ID_LEN];
    msgpack_pack_array(pk, 4);
    msgpack_pack_str(pk, strlen(path));
    msgpack_pack_str_body(pk, path, strlen(path));
    msgpack_pack_int(pk, exec);
    msgpack_pack_uint64(pk, size);
    msgpack_pack_array(pk, nids);
    for (size_t i = 0; i < nids; i++) {
        msgpack_pack_bin(pk, TREE_ID_LEN);
        msgpack_pack_bin_body(pk, id, TREE_ID_LEN);
    }
}

static void escape(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "../etc/passwd", 0, 1, 1); }
static void absolute(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "/etc/passwd", 0, 1, 1); }
static void inner_dotdot(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "a/../../b", 0, 1, 1); }
static void duplicate(msgpack_packer *pk) { msgpack_pack_array(pk, 2), entry(pk, "a", 0, 1, 1), entry(pk, "a", 0, 1, 1); }
static void unsorted(msgpack_packer *pk) { msgpack_pack_array(pk, 2), entry(pk, "b", 0, 1, 1), entry(pk, "a", 0, 1, 1); }
static void few_chunks(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "a", 0, TREE_CHUNK + 1, 1); }
static void extra_chunk(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "a", 0, 0, 1); }
static void exec_two(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "a", 2, 1, 1); }
static void huge(msgpack_packer *pk) { msgpack_pack_array(pk, 1), entry(pk, "a", 0, UINT64_MAX, 0); }
static void not_array(msgpack_packer *pk) { msgpack_pack_map(pk, 0); }

UNIT_TEST(hostile_manifests_refused)
{
    const char *path = "a path is absolute, empty, has a '.', '..' or empty component, a NUL, or is too long";
    const char *order = "paths are not strictly ascending (duplicate or unsorted)";
    const char *chunks = "chunk list does not match the size";
    refused_entries("../", escape, path);
    refused_entries("absolute", absolute, path);
    refused_entries("a/../../b", inner_dotdot, path);
    refused_entries("duplicate", duplicate, order);
    refused_entries("unsorted", unsorted, order);
    refused_entries("too few chunks", few_chunks, chunks);
    refused_entries("chunk for an empty file", extra_chunk, chunks);
    refused_entries("exec 2", exec_two, "bad exec flag or size");
    refused_entries("size 2^64-1", huge, "a file size is beyond any manifest's reach");
    refused_entries("a map", not_array, "not an array of files");
}

UNIT_TEST(head_round_trip_and_refusals)
{
    tree_id ids[2];
    tree_chunk_id("m1", 2, ids[0]);
    tree_chunk_id("m2", 2, ids[1]);
    struct tree_head h = {.version = 42, .created_ms = 1764480000123ULL, .files = 9, .bytes = 77,
                          .manifest_len = TREE_CHUNK + 1, .nchunks = 2, .chunk = ids}, back;
    size_t len;
    const char *why;
    char *buf = tree_head_encode(&h, &len);
    CHECK_INT(tree_head_decode(buf, len, &back, &why), 0);
    CHECK_INT(back.version, 42);
    CHECK_INT(back.created_ms, 1764480000123LL);
    CHECK_INT(back.manifest_len, TREE_CHUNK + 1);
    CHECK_MEM(back.chunk, 2 * TREE_ID_LEN, ids, 2 * TREE_ID_LEN);
    tree_head_free(&back);
    free(buf);
    h.nchunks = 1; /* one chunk cannot hold TREE_CHUNK + 1 bytes */
    buf = tree_head_encode(&h, &len);
    DECODE_REFUSED(tree_head_decode(buf, len, &back, &why), "manifest chunk list does not match its length",
                  "short chunk list");
    tree_head_free(&back);
    free(buf);
    h.version = 0;
    h.nchunks = 2;
    buf = tree_head_encode(&h, &len);
    DECODE_REFUSED(tree_head_decode(buf, len, &back, &why), "a number is missing or negative", "version 0");
    tree_head_free(&back);
    free(buf);
    DECODE_REFUSED(tree_head_decode("\xc1", 1, &back, &why), "not one whole msgpack document", "0xc1");
    tree_head_free(&back);
    /* an array claiming 2^32 items in 5 bytes is refused before any allocation */
    DECODE_REFUSED(tree_head_decode("\xdd\xff\xff\xff\xff", 5, &back, &why), "not one whole msgpack document",
                  "huge array");
    tree_head_free(&back);
}

UNIT_TEST(head_names_its_manifest)
{
    tree_id ids[3];
    struct tree_manifest m = sample(ids);
    size_t len;
    char *buf = tree_manifest_encode(&m, &len);
    tree_id mid;
    tree_chunk_id(buf, len, mid);
    struct tree_head h = {.version = 1, .manifest_len = len, .nchunks = 1, .chunk = &mid};
    CHECK(tree_head_names(&h, buf, len));
    buf[len - 1] ^= 1;
    CHECK(!tree_head_names(&h, buf, len));
    CHECK(!tree_head_names(&h, buf, len - 1));
    free(buf);
}

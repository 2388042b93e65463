/* wire.c -- see wire.h. Reads a capture with msgpack-c, as wirecat does. */
#include "wire.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const wire_captures[] = {
    "s1_flat_first_start.msgpack", "s2_ping_unfiltered.msgpack", "s3_ping_zmq_filtering.msgpack",
    "s3a_restart_reauth_filtering.msgpack", "s4_syndic_first_start_and_ping.msgpack",
    "s5_cp_get_file_3MB.msgpack", "s6_pillar.msgpack", "s7_aes_rotation.msgpack", NULL};

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

/* Copy the str O into BUF as a C string; 0 if it fits. */
static int copy_str(const msgpack_object *o, char *buf, size_t len)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= len)
        return -1;
    memcpy(buf, o->via.str.ptr, o->via.str.size);
    buf[o->via.str.size] = '\0';
    return 0;
}

/* Fill REC from one capture record; 0 if it has the expected shape. */
static int to_record(const msgpack_object *o, struct wire_record *rec, char (*text)[8])
{
    const msgpack_object *frames = get(o, "frames");
    if (copy_str(get(o, "dir"), text[0], 8) < 0 || copy_str(get(o, "peer"), text[1], 8) < 0 || !frames ||
        frames->type != MSGPACK_OBJECT_ARRAY || frames->via.array.size > WIRE_MAX_FRAMES)
        return -1;
    rec->dir = text[0];
    rec->peer = text[1];
    rec->nframes = frames->via.array.size;
    for (size_t i = 0; i < rec->nframes; i++) {
        const msgpack_object *f = &frames->via.array.ptr[i];
        if (f->type != MSGPACK_OBJECT_BIN)
            return -1;
        rec->frame[i] = f->via.bin.ptr;
        rec->len[i] = f->via.bin.size;
    }
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

long wire_each(const char *path, const char *dir, wire_fn fn, void *arg)
{
    size_t len, off = 0;
    char *buf = slurp(path, &len);
    if (!buf)
        return -1;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    long n = -1;
    if (msgpack_unpack_next(&up, buf, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_ARRAY) {
        n = 0;
        for (uint32_t i = 0; i < up.data.via.array.size; i++) {
            struct wire_record rec;
            char text[2][8];
            if (to_record(&up.data.via.array.ptr[i], &rec, text) == 0 &&
                (!dir || strcmp(dir, rec.dir) == 0)) {
                fn(&rec, arg);
                n++;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    return n;
}

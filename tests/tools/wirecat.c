/* wirecat -- print records of a salt-wire capture (../shared/salt-wire) as lines.
 *   wirecat FILE DIR [PEER]
 * DIR is pub, req or rep; with PEER (flat or syndic) only that leg. Reading
 * uses msgpack-c as a relay would: frames are bin, nothing is re-encoded. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_is(&map->via.map.ptr[i].key, key))
            return &map->via.map.ptr[i].val;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: wirecat FILE pub|req|rep [flat|syndic]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) { perror("read"); return 1; }
    fclose(f);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, buf, (size_t)len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_ARRAY) {
        fprintf(stderr, "wirecat: %s is not a msgpack array\n", argv[1]);
        return 1;
    }
    for (uint32_t i = 0; i < up.data.via.array.size; i++) {
        const msgpack_object *rec = &up.data.via.array.ptr[i];
        const msgpack_object *dir = get(rec, "dir"), *peer = get(rec, "peer"), *frames = get(rec, "frames");
        if (!dir || !frames || !str_is(dir, argv[2]) || (argc > 3 && (!peer || !str_is(peer, argv[3]))))
            continue;
        for (uint32_t j = 0; j < frames->via.array.size; j++) {
            const msgpack_object *fr = &frames->via.array.ptr[j];
            if (j)
                putchar(' ');
            if (fr->via.bin.size == 0)
                putchar('-');
            for (uint32_t k = 0; k < fr->via.bin.size; k++)
                printf("%02x", (unsigned char)fr->via.bin.ptr[k]);
        }
        putchar('\n');
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    return 0;
}

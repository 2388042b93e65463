/* envelope.c -- read the clear parts of a Salt request; see envelope.h.
 *
 * The frame is walked, never unpacked: msgpack-c materialises every object
 * (24 bytes each), so a 48 MiB request of nils would cost 1.2 GB, while
 * reading headers and skipping what is not needed costs nothing whatever
 * the frame holds. */
#include "envelope.h"

#include <string.h>

#include "mpwalk.h"

/* Minion ids name files on the master: refuse what could never be one. */
static void copy_id(const struct mpwalk_item *v, char *out)
{
    out[0] = '\0';
    if (v->kind != MPWALK_BYTES || v->count == 0 || v->count >= ENVELOPE_ID_MAX)
        return;
    for (size_t i = 0; i < v->count; i++)
        if ((unsigned char)v->bytes[i] < 0x20 || v->bytes[i] == 0x7f || v->bytes[i] == '/')
            return;
    memcpy(out, v->bytes, v->count);
    out[v->count] = '\0';
}

/* One key/value pair of a map at *OFF: the key and the value's first item
 * (a container's header) in K and V; *OFF moves past the whole pair. */
static int next_pair(const char *buf, size_t len, size_t *off, struct mpwalk_item *k, struct mpwalk_item *v)
{
    size_t at = *off;
    if (mpwalk_next(buf, len, &at, k) < 0 || mpwalk_skip(buf, len, off) < 0)
        return -1;
    at = *off;
    return mpwalk_next(buf, len, &at, v) < 0 || mpwalk_skip(buf, len, off) < 0 ? -1 : 0;
}

static void read_clear_load(const char *buf, size_t len, size_t off, struct salt_envelope *env)
{
    struct mpwalk_item load, k, v;
    if (mpwalk_next(buf, len, &off, &load) < 0 || load.kind != MPWALK_MAP)
        return;
    for (uint64_t i = 0; i < load.count && next_pair(buf, len, &off, &k, &v) == 0; i++) {
        if (mpwalk_item_is(&k, "cmd"))
            env->is_auth = mpwalk_item_is(&v, "_auth");
        else if (mpwalk_item_is(&k, "id"))
            copy_id(&v, env->id);
        else if (mpwalk_item_is(&k, "token"))
            env->has_token = 1;
    }
}

static enum salt_enc enc_of(const struct mpwalk_item *v)
{
    return mpwalk_item_is(v, "clear") ? ENC_CLEAR : mpwalk_item_is(v, "aes") ? ENC_AES : ENC_OTHER;
}

int envelope_peek(const char *buf, size_t len, struct salt_envelope *env, const char **why)
{
    memset(env, 0, sizeof *env);
    env->version = -1;
    struct mpwalk_item top, k, v, top_id = {0};
    size_t off = 0, load_off = 0;
    int have_load = 0;
    if (!mpwalk_plausible(buf, len) || mpwalk_next(buf, len, &off, &top) < 0) {
        *why = "not a msgpack document";
        return -1;
    }
    if (top.kind != MPWALK_MAP) {
        *why = "not a msgpack map";
        return -1;
    }
    for (uint64_t i = 0; i < top.count; i++) {
        size_t at = off;
        if (next_pair(buf, len, &off, &k, &v) < 0)
            break; /* not reached: the document was walked whole above */
        if (mpwalk_item_is(&k, "enc"))
            env->enc = enc_of(&v);
        else if (mpwalk_item_is(&k, "load")) {
            have_load = 1;
            load_off = at;
        }
        else if (mpwalk_item_is(&k, "id"))
            top_id = v;
        else if (mpwalk_item_is(&k, "version") && v.kind == MPWALK_UINT && v.u < 1000)
            env->version = (int)v.u;
    }
    if (!have_load) {
        *why = "no 'load' key";
        return -1;
    }
    if (env->enc == ENC_CLEAR) {
        mpwalk_skip(buf, len, &load_off); /* the key; the value follows */
        read_clear_load(buf, len, load_off, env);
    }
    if (!env->id[0])
        copy_id(&top_id, env->id);
    return 0;
}

/* 1 if the map at OFF has a key "aes" or "session": the keys an accepted
 * _auth gets (RSA-encrypted to the minion). */
static int map_has_session(const char *buf, size_t len, size_t off)
{
    struct mpwalk_item m, k, v;
    if (mpwalk_next(buf, len, &off, &m) < 0 || m.kind != MPWALK_MAP)
        return 0;
    for (uint64_t i = 0; i < m.count && next_pair(buf, len, &off, &k, &v) == 0; i++)
        if (mpwalk_item_is(&k, "aes") || mpwalk_item_is(&k, "session"))
            return 1;
    return 0;
}

int envelope_auth_accepted(const char *buf, size_t len)
{
    struct mpwalk_item top, k, v;
    size_t off = 0;
    if (!mpwalk_plausible(buf, len))
        return 0;
    if (map_has_session(buf, len, 0))
        return 1; /* older Salt: the reply is the load */
    mpwalk_next(buf, len, &off, &top);
    for (uint64_t i = 0; top.kind == MPWALK_MAP && i < top.count; i++) {
        size_t at = off;
        if (next_pair(buf, len, &off, &k, &v) < 0)
            return 0;
        if (!mpwalk_item_is(&k, "load"))
            continue;
        mpwalk_skip(buf, len, &at); /* the key; the value follows */
        if (v.kind == MPWALK_MAP)
            return map_has_session(buf, len, at);
        /* Salt 3007+: the load is a str holding another msgpack document */
        return v.kind == MPWALK_BYTES && mpwalk_plausible(v.bytes, v.count) && map_has_session(v.bytes, v.count, 0);
    }
    return 0;
}

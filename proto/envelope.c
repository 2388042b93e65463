/* envelope.c -- read the clear parts of a Salt request; see envelope.h. */
#include "envelope.h"

#include <msgpack.h>
#include <string.h>

#include "mpwalk.h"

/* Minion ids name files on the master: refuse what could never be one. */
static void copy_id(const msgpack_object *o, char *out)
{
    size_t len;
    const char *p = mpwalk_bytes(o, &len);
    out[0] = '\0';
    if (!p || len == 0 || len >= ENVELOPE_ID_MAX)
        return;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
            return;
    memcpy(out, p, len);
    out[len] = '\0';
}

static void read_clear_load(const msgpack_object *load, struct salt_envelope *env)
{
    if (load->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < load->via.map.size; i++) {
        const msgpack_object_kv *kv = &load->via.map.ptr[i];
        if (mpwalk_key_is(&kv->key, "cmd"))
            env->is_auth = mpwalk_key_is(&kv->val, "_auth");
        else if (mpwalk_key_is(&kv->key, "id"))
            copy_id(&kv->val, env->id);
        else if (mpwalk_key_is(&kv->key, "token"))
            env->has_token = 1;
    }
}

int envelope_peek(const char *buf, size_t len, struct salt_envelope *env, const char **why)
{
    memset(env, 0, sizeof *env);
    env->version = -1;
    if (!mpwalk_plausible(buf, len)) {
        *why = "not a msgpack document";
        return -1;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = -1;
    size_t off = 0;
    if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        *why = "not a msgpack document";
        goto out;
    }
    const msgpack_object *o = &up.data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        *why = "not a msgpack map";
        goto out;
    }
    const msgpack_object *load = NULL, *top_id = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (mpwalk_key_is(&kv->key, "enc"))
            env->enc = mpwalk_key_is(&kv->val, "clear") ? ENC_CLEAR : mpwalk_key_is(&kv->val, "aes") ? ENC_AES : ENC_OTHER;
        else if (mpwalk_key_is(&kv->key, "load"))
            load = &kv->val;
        else if (mpwalk_key_is(&kv->key, "id"))
            top_id = &kv->val;
        else if (mpwalk_key_is(&kv->key, "version") && kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                 kv->val.via.u64 < 1000)
            env->version = (int)kv->val.via.u64;
    }
    if (!load) {
        *why = "no 'load' key";
        goto out;
    }
    if (env->enc == ENC_CLEAR)
        read_clear_load(load, env);
    if (!env->id[0] && top_id)
        copy_id(top_id, env->id);
    rc = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rc;
}

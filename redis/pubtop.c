/* pubtop.c -- the newest publication of the stream; see pubtop.h. */
#include "pubtop.h"

#include "log.h"
#include "pubrec.h"

int pubtop_read(struct rconn *rc, const char *key, struct streamid *id, uint64_t *serial)
{
    redisReply *r = rconn_command(rc, "XREVRANGE %s + - COUNT 1", key);
    if (!r)
        return -1;
    int ret = 0;
    struct pubrec rec;
    const char *why;
    if (r->type == REDIS_REPLY_ERROR || (r->type != REDIS_REPLY_ARRAY && r->type != REDIS_REPLY_NIL)) {
        log_error("cannot read the newest entry of %s: %s", key,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rconn_fail(rc, "stream not readable");
        ret = -1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        const redisReply *e = r->element[0];
        if (pubrec_from_entry(e, &rec, &why) == 0) {
            *id = rec.id;
            *serial = rec.serial;
        } else if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
                   streamid_parse(e->element[0]->str, (size_t)e->element[0]->len, id) == 0) {
            log_warn("newest entry of %s is not a saltrelay record (%s); continuing after its ID", key, why);
            *serial = 0;
        } else {
            log_error("newest entry of %s has no valid ID", key);
            rconn_fail(rc, "unexpected XREVRANGE reply");
            ret = -1;
        }
    }
    freeReplyObject(r);
    return ret;
}

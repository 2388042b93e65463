/* hreport.c -- one report hash per HSET, and its replies (see hreport.h). */
#include "hreport.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

void hreport_init_head(struct hreport *h, const char *const *head, size_t n)
{
    h->argc = h->head = 0;
    for (size_t i = 0; i < n && i < HREPORT_HEAD_MAX; i++) {
        h->argv[i] = head[i];
        h->argvlen[i] = strlen(head[i]);
        h->argc = h->head = i + 1;
    }
}

void hreport_init(struct hreport *h, const char *key)
{
    const char *head[] = {"HSET", key};
    hreport_init_head(h, head, 2);
}

void hreport_text(struct hreport *h, const char *name, const char *text)
{
    if ((h->argc - h->head) / 2 >= HREPORT_MAX_FIELDS)
        return;
    h->argv[h->argc] = name;
    h->argvlen[h->argc++] = strlen(name);
    h->argv[h->argc] = text;
    h->argvlen[h->argc++] = strlen(text);
}

void hreport_int(struct hreport *h, const char *name, long long v)
{
    if ((h->argc - h->head) / 2 >= HREPORT_MAX_FIELDS)
        return;
    char *buf = h->values[(h->argc - h->head) / 2];
    snprintf(buf, HREPORT_VALUE, "%lld", v);
    hreport_text(h, name, buf);
}

void hreport_metrics(struct hreport *h, const struct hreport_metric *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hreport_int(h, list[i].name, (long long)metric_get(list[i].id));
}

void hreport_note(int *failing, const char *what, const char *why)
{
    if ((why != NULL) != *failing)
        log_msg(why ? LOG_LVL_WARN : LOG_LVL_INFO, "%s %s%s", what, why ? "fails: " : "works again",
                why ? why : "");
    *failing = why != NULL;
}

void hreport_unsent(struct hreport_replies *s, const struct rconn *rc)
{
    snprintf(s->why, sizeof s->why, "redis %s", rconn_problem(rc) ? rconn_problem(rc) : "pipeline full");
    hreport_note(&s->failing, s->what, s->why);
    s->why[0] = '\0';
}

int hreport_append(struct hreport *h, struct rpipe *p, uint64_t tag)
{
    return rpipe_append_argv(p, tag, (int)h->argc, h->argv, h->argvlen);
}

int hreport_take(struct hreport_replies *s, const redisReply *r, int last)
{
    if (!s->why[0] && (!r || r->type != REDIS_REPLY_INTEGER))
        snprintf(s->why, sizeof s->why, "%s",
                 !r ? "connection lost" : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (!last)
        return 0;
    int ok = !s->why[0];
    hreport_note(&s->failing, s->what, ok ? NULL : s->why);
    s->why[0] = '\0';
    return ok;
}

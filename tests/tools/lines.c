/* lines.c -- see lines.h. */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

void lines_write(FILE *out, zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *d = zmq_msg_data(&frames[i]);
        size_t len = zmq_msg_size(&frames[i]);
        if (i)
            fputc(' ', out);
        if (len == 0)
            fputc('-', out); /* an empty frame still needs a token */
        for (size_t j = 0; j < len; j++)
            fprintf(out, "%02x", d[j]);
    }
    fputc('\n', out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int lines_send(void *sock, const char *line, int flags_last)
{
    size_t n = strcspn(line, "\n");
    const char *p = line, *end = line + n;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *tok_end = sp ? sp : end;
        size_t tl = (size_t)(tok_end - p);
        size_t bl = (tl == 1 && *p == '-') ? 0 : tl / 2;
        if (bl * 2 != tl && bl != 0)
            return -1;
        unsigned char *buf = malloc(bl ? bl : 1);
        for (size_t i = 0; i < bl; i++) {
            int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(buf);
                return -1;
            }
            buf[i] = (unsigned char)(hi << 4 | lo);
        }
        int rc = zmq_send(sock, buf, bl, sp ? ZMQ_SNDMORE : flags_last);
        free(buf);
        if (rc < 0)
            return -1;
        p = sp ? sp + 1 : end;
    }
    return 0;
}

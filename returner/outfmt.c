/* outfmt.c -- tables and JSON strings for saltrelay-status (see outfmt.h).
 * Column widths are measured on the plain text; colour codes are wrapped
 * around the padded cell so they never shift the columns. */
#include "outfmt.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void table_init(struct table *t, const char *const *heads)
{
    memset(t, 0, sizeof *t);
    while (t->ncols < TABLE_COLS && heads[t->ncols]) {
        t->head[t->ncols] = heads[t->ncols];
        t->ncols++;
    }
}

int table_row(struct table *t, enum health h)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        void *cell = realloc(t->cell, cap * sizeof *t->cell);
        if (!cell)
            return -1;
        t->cell = cell;
        void *health = realloc(t->health, cap * sizeof *t->health);
        if (!health)
            return -1;
        t->health = health;
        t->cap = cap;
    }
    memset(t->cell[t->nrows], 0, sizeof t->cell[t->nrows]);
    t->health[t->nrows++] = h;
    return 0;
}

void table_cell(struct table *t, const char *fmt, ...)
{
    if (!t->nrows)
        return;
    char(*row)[TABLE_CELL] = t->cell[t->nrows - 1];
    size_t c = 0;
    while (c < t->ncols && row[c][0])
        c++;
    if (c == t->ncols)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row[c], TABLE_CELL, fmt, ap);
    va_end(ap);
    if (!row[c][0])
        snprintf(row[c], TABLE_CELL, "-"); /* an empty cell would end the row */
}

void table_print(const struct table *t, FILE *f, int colour)
{
    size_t w[TABLE_COLS] = {0};
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->head[c]);
        for (size_t r = 0; r < t->nrows; r++)
            if (strlen(t->cell[r][c]) > w[c])
                w[c] = strlen(t->cell[r][c]);
    }
    for (size_t c = 0; c < t->ncols; c++)
        fprintf(f, "%-*s%s", c + 1 < t->ncols ? (int)w[c] : 0, t->head[c], c + 1 < t->ncols ? "  " : "\n");
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            fprintf(f, "%s%-*s%s%s", c == 0 ? health_colour(t->health[r], colour) : "",
                    c + 1 < t->ncols ? (int)w[c] : 0, t->cell[r][c], c == 0 ? colour_reset(colour) : "",
                    c + 1 < t->ncols ? "  " : "\n");
}

void table_free(struct table *t)
{
    free(t->cell);
    free(t->health);
    t->cell = NULL;
    t->health = NULL;
}

const char *health_colour(enum health h, int colour)
{
    if (!colour)
        return "";
    return h == HEALTH_OK ? "\033[32m" : h == HEALTH_WARN ? "\033[33m" : "\033[1;31m";
}

const char *colour_reset(int colour) { return colour ? "\033[0m" : ""; }

int want_colour(void)
{
    const char *no = getenv("NO_COLOR");
    return isatty(STDOUT_FILENO) && !(no && *no);
}

/* Bytes of the well-formed UTF-8 sequence of a code point from U+0080 at S
 * (N bytes left), or 0: no overlong forms, surrogates or code points past
 * U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (!len || len > n || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || (s[0] == 0xf0 && s[1] < 0x90) ||
        (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

void json_string(FILE *f, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        size_t n = u[i] >= 0x80 ? utf8_seq(u + i, len - i) : 1;
        if (u[i] == '"' || u[i] == '\\')
            fprintf(f, "\\%c", u[i]);
        else if (u[i] < 0x20 || u[i] == 0x7f)
            fprintf(f, "\\u%04x", u[i]);
        else if (n == 0)
            fputs("\\ufffd", f); /* not UTF-8: the replacement character, one per byte */
        else
            fwrite(u + i, 1, n, f);
        i += n ? n : 1;
    }
    fputc('"', f);
}

const char *printable(const char *s, size_t len, char *buf, size_t buflen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < buflen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", ch);
        else
            buf[o++] = (char)ch;
    }
    buf[o] = '\0';
    return buf;
}

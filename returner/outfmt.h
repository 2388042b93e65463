/* outfmt.h -- saltrelay-status's output: aligned text tables (colour only
 * on a terminal) and JSON strings. Minion ids come from Salt's files and may
 * hold any bytes: both forms escape what is not printable. */
#ifndef SALTRELAY_OUTFMT_H
#define SALTRELAY_OUTFMT_H

#include <stdio.h>

#include "dcstate.h"

#define TABLE_COLS 16
#define TABLE_CELL 96

struct table {
    size_t ncols, nrows, cap;
    const char *head[TABLE_COLS];
    char (*cell)[TABLE_COLS][TABLE_CELL];
    enum health *health; /* of each row: colours its first column */
};

/* HEADS is a NULL-terminated list of column titles. */
void table_init(struct table *t, const char *const *heads);
/* Start a row; then fill its cells left to right with table_cell. */
int table_row(struct table *t, enum health h);
void table_cell(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table_print(const struct table *t, FILE *f, int colour);
void table_free(struct table *t);

/* Colour for H when COLOUR, else "" (and the reset sequence likewise). */
const char *health_colour(enum health h, int colour);
const char *colour_reset(int colour);
/* Whether stdout is a terminal that wants colour (NO_COLOR unset). */
int want_colour(void);

/* LEN bytes as a JSON string (quotes included): UTF-8 as it is, control
 * characters escaped, each byte that is not part of well-formed UTF-8 as
 * \ufffd (Salt's minion ids are text, but any bytes may come). */
void json_string(FILE *f, const char *s, size_t len);
/* S with non-printable bytes as \xNN, into BUF (truncated to fit). */
const char *printable(const char *s, size_t len, char *buf, size_t buflen);

#endif

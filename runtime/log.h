/* log.h -- one-line log messages to stderr (or a log file), never payloads.
 *
 * Every line: "2026-11-22T10:00:00.123Z saltrelay-down[1234] info: text".
 * Callers log state changes, not retries (see rconn.c for the pattern). */
#ifndef SALTRELAY_LOG_H
#define SALTRELAY_LOG_H

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* Name shown in each line; call once at start. */
void log_init(const char *progname, enum log_level min_level);
void log_set_level(enum log_level min_level);
/* Parse "debug|info|warning|error"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* Redirect to PATH (append); NULL or "" means stderr. Safe to call again (SIGHUP reopen). */
int log_open_file(const char *path);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif

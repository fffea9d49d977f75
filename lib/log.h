/* log: leveled logging to stderr for the daemons and tools. */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped before formatting. */
extern int log_level;

/* Parses "error", "warn", "info" or "debug"; returns the level or -1. */
int log_parse_level(const char *s);
void log_set_prefix(const char *prefix);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                                     \
	do {                                                                 \
		if ((lvl) <= log_level)                                      \
			log_msg((lvl), __VA_ARGS__);                         \
	} while (0)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)

#endif

/*
 * history: the fault-injection suite's history file, parsed into arrays.
 *
 * The file is text, one record per line, fields separated by single spaces,
 * '#' lines are comments and blank lines are skipped ("\r\n" is accepted):
 *
 *   op PROC T_INVOKE T_COMPLETE STATUS TYPE KEY [ARGS...] [RESULTS...]
 *       STATUS ok | fail | unknown; results only with ok:
 *       put KEY VALUE              rev=R
 *       get KEY                    val=V modrev=M rev=R
 *       cas KEY EXPECT NEW         succeeded=0|1 rev=R
 *       del KEY                    deleted=0|1 rev=R
 *   watch W start PREFIX FROM_REV
 *   event W T KEY put VALUE MODREV | event W T KEY del - MODREV
 *   watch W end END_REV
 *   ref M REV KEY put VALUE | ref M REV KEY del -
 *   kv M KEY VALUE MODREV
 *   final M REV
 *
 * Tokens are [A-Za-z0-9_/.:-]+; "-" is "none" (an absent value, a cas that
 * expects the key absent). Numbers are decimal uint64. Results may come in any
 * order but each exactly once. The T_COMPLETE of an unknown op may be "-"; an
 * unknown op completes at +infinity whatever it says. A watch PREFIX of "-" is
 * the empty prefix (every key); a FROM_REV of 0 means "from wherever the
 * watcher started" (see watchchk.h).
 *
 * Beyond the syntax the parser enforces what the checkers rely on: every value
 * written by a put or cas (ok, fail or unknown) is unique in the history, a
 * watcher is started once before its events and its end, an ok get of "-" has
 * modrev 0, and the limits below. Anything else is an error that names the
 * file and line ("h.txt:12: op: cas needs EXPECT and NEW"); the parser stops
 * at the first one. It never reads outside the buffer it is given, whatever
 * the bytes (it is a fuzz target).
 *
 * All strings are interned: a token is a hist_str id, equal tokens have equal
 * ids, id 0 is "-". Whatever a history points to belongs to it and lives until
 * history_free(). Not thread-safe; a parsed history is read-only and may be
 * shared by readers.
 */
#ifndef CAIRN_FAULT_HISTORY_H
#define CAIRN_FAULT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_MAX_LINE 65536     /* bytes in one line, without its break */
#define HIST_MAX_LINES 50000000 /* records in one file */
#define HIST_NONE 0             /* the hist_str of "-" */
#define HIST_NEVER UINT64_MAX   /* the completion time of an unknown op */

typedef uint32_t hist_str;

enum hist_status { HIST_OK, HIST_FAIL, HIST_UNKNOWN };
enum hist_type { HIST_PUT, HIST_GET, HIST_CAS, HIST_DEL };

struct hist_op {
	uint32_t line;
	uint8_t status; /* enum hist_status */
	uint8_t type;   /* enum hist_type */
	uint8_t flag;   /* ok cas: succeeded, ok del: deleted */
	hist_str proc;
	hist_str key;
	hist_str value;  /* put VALUE, cas NEW */
	hist_str expect; /* cas EXPECT (HIST_NONE: must be absent) */
	hist_str read;   /* ok get: val= (HIST_NONE: absent) */
	uint64_t invoke;
	uint64_t complete; /* HIST_NEVER when unknown */
	uint64_t modrev;   /* ok get */
	uint64_t rev;      /* ok ops */
};

struct hist_event {
	uint32_t line;
	bool del;
	hist_str key;
	hist_str value; /* HIST_NONE for a delete */
	uint64_t time;
	uint64_t rev; /* the MODREV field */
};

struct hist_watch {
	hist_str name;
	hist_str prefix;   /* HIST_NONE: every key */
	uint32_t line;     /* of the start record */
	uint32_t end_line; /* 0 when there is no end record */
	uint64_t from;
	uint64_t end;
	struct hist_event *events; /* in the order they were received */
	size_t nevents;
	size_t cap;
};

/* A ref record (one change of the member's history) or, with value and
 * modrev, a kv record (one key of its final keyspace). */
struct hist_ref {
	uint32_t line;
	bool del;
	hist_str key;
	hist_str value;
	uint64_t rev;
};

struct hist_member {
	hist_str name;
	struct hist_ref *refs; /* file order */
	size_t nrefs;
	size_t refs_cap;
	struct hist_ref *kvs; /* file order; rev is MODREV */
	size_t nkvs;
	size_t kvs_cap;
	uint32_t final_line; /* 0 when there is no final record */
	uint64_t final;
};

struct history {
	const char *name;    /* for messages; owned */
	struct hist_op *ops; /* file order */
	size_t nops;
	struct hist_watch *watches; /* order of their start records */
	size_t nwatches;
	struct hist_member *members; /* order of first mention */
	size_t nmembers;
	/* writer[s] is 1 + the index in ops of the put or cas that writes
	 * value s, or 0; one entry per hist_str. */
	uint32_t *writer;
	uint32_t nstrs;
	/* private: the string pool */
	char *pool;
	size_t pool_len;
	size_t pool_cap;
	uint32_t *offs;
	size_t offs_cap;
	uint32_t *slots;
	size_t nslots;
	size_t ops_cap;
	size_t watches_cap;
	size_t members_cap;
};

/* Parses len bytes of text; name labels messages (copied). On success *out is
 * a new history and the result 0. On failure the result is -1, *out is NULL
 * and err holds "name:line: what" (always NUL-terminated, errlen > 0). */
int history_parse(const char *text, size_t len, const char *name,
                  struct history **out, char *err, size_t errlen);

/* Reads the file at path and parses it as history_parse(). */
int history_load(const char *path, struct history **out, char *err,
                 size_t errlen);

/* Frees h and everything it points to; NULL is fine. */
void history_free(struct history *h);

/* The text of s ("-" for HIST_NONE); borrowed from h. */
const char *history_str(const struct history *h, hist_str s);

/* Whether key starts with prefix (HIST_NONE: the empty prefix). */
bool history_has_prefix(const struct history *h, hist_str key, hist_str prefix);

/* Writes op as one readable line, without a line break, truncated to n - 1
 * bytes: "line 12: p3 [1200, 1350] ok cas k1 v7 v9 -> succeeded=1 rev=40". */
void history_format_op(const struct history *h, const struct hist_op *op,
                       char *buf, size_t n);
/* The same without "line 12: ". */
void history_describe_op(const struct history *h, const struct hist_op *op,
                         char *buf, size_t n);

/* The name of a status or type ("ok", "cas"). */
const char *history_status_name(int status);
const char *history_type_name(int type);

#endif

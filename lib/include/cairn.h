/*
 * cairn.h: the client library of the cairn replicated key-value store.
 *
 * A client holds a list of store endpoints ("127.0.0.1:2379,..."). It keeps one
 * connection to the member it talks to, follows the leader for writes and
 * linearizable reads, and fails over to another endpoint when a member goes away.
 * Each write carries the client's id and a sequence number, so a retry after an
 * indeterminate failure (a connection lost mid-request, a leader change) is
 * applied at most once by the store.
 *
 * Two ways to use it:
 *   - sync: cairn_open() then cairn_do()/cairn_put()/cairn_get()...; each call
 *     blocks until its answer (or the request timeout). One thread at a time.
 *   - async: cairn_open_async() on the caller's libuv loop, then cairn_submit();
 *     the callback runs on the loop thread. All calls on the loop thread.
 *
 * Errors are CAIRN_E* codes; every failed call leaves a message that says what
 * went wrong in cairn_errmsg() (sync) or in the result's errmsg (async).
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_API __attribute__((visibility("default")))

#define CAIRN_VERSION "0.1.0"

/* Error codes. 0 is success; every code has a string in cairn_strerror(). */
#define CAIRN_ERRORS(X)                                                     \
	X(CAIRN_EINVAL, 1, "invalid argument")                                 \
	X(CAIRN_ENOMEM, 2, "out of memory")                                    \
	X(CAIRN_EPROTO, 3, "protocol error")                                   \
	X(CAIRN_ETOOBIG, 4, "frame too large")                                 \
	X(CAIRN_EVERSION, 5, "protocol version not supported")                 \
	X(CAIRN_ENOTLEADER, 6, "not the leader")                               \
	X(CAIRN_ENOLEADER, 7, "no leader elected")                             \
	X(CAIRN_EINDETERMINATE, 8, "outcome unknown (leadership lost)")        \
	X(CAIRN_ECOMPACTED, 9, "revision has been compacted")                  \
	X(CAIRN_EFUTUREREV, 10, "revision is in the future")                   \
	X(CAIRN_EDUPKEY, 11, "duplicate key in transaction")                   \
	X(CAIRN_ETOOMANYOPS, 12, "too many operations in transaction")         \
	X(CAIRN_EIO, 13, "I/O error")                                          \
	X(CAIRN_ECONN, 14, "connection failed")                                \
	X(CAIRN_ETIMEDOUT, 15, "timed out")                                    \
	X(CAIRN_ECANCELED, 16, "canceled")                                     \
	X(CAIRN_EUNAVAILABLE, 17, "no endpoint available")                     \
	X(CAIRN_ESHUTDOWN, 18, "member is shutting down")                      \
	X(CAIRN_ENOSPACE, 19, "keyspace quota exceeded")                       \
	X(CAIRN_EINTERNAL, 20, "internal error")                               \
	X(CAIRN_ENOLEASE, 21, "lease not found")                               \
	X(CAIRN_ELEASEEXISTS, 22, "lease already exists")                      \
	X(CAIRN_EBUSY, 23, "a membership change is already in progress")       \
	X(CAIRN_ENOMEMBER, 24, "no such member")                               \
	X(CAIRN_EAUTH, 25, "authentication failed")                            \
	X(CAIRN_EPERM, 26, "permission denied")

enum cairn_error {
	CAIRN_OK = 0,
#define CAIRN__ERR_ENUM(name, code, text) name = code,
	CAIRN_ERRORS(CAIRN__ERR_ENUM)
#undef CAIRN__ERR_ENUM
	CAIRN_ERROR_MAX
};

/* A static string describing code; never NULL. */
CAIRN_API const char *cairn_strerror(int code);

/* One key-value pair as stored. Pointers are owned by the result that holds it. */
struct cairn_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value; /* NULL when the request asked keys_only */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0: none */
};

/* Operation types. TXN and STATUS use their own fields of struct cairn_op. */
enum cairn_op_type {
	CAIRN_OP_RANGE = 1,
	CAIRN_OP_PUT,
	CAIRN_OP_DELETE,
	CAIRN_OP_TXN,
	CAIRN_OP_STATUS,
	CAIRN_OP_MEMBERS,
	CAIRN_OP_COMPACT = 12, /* discard history below op->revision */
	CAIRN_OP_LEASE_GRANT = 13,     /* ttl; lease: wanted id or 0 */
	CAIRN_OP_LEASE_REVOKE = 14,    /* lease */
	CAIRN_OP_LEASE_KEEPALIVE = 15, /* lease: renews it to its full TTL */
	CAIRN_OP_LEASE_TTL = 16,       /* lease; keys: list the attached keys */
	CAIRN_OP_LEASE_LIST = 17,
	CAIRN_OP_SNAPSHOT = 18, /* the answering member's state, for a backup */
	CAIRN_OP_MEMBER_ADD = 19,     /* member_id, peer_address: as a learner */
	CAIRN_OP_MEMBER_REMOVE = 20,  /* member_id */
	CAIRN_OP_MEMBER_PROMOTE = 21, /* member_id: a caught-up learner votes */
	/* Users, roles and authentication (see "Users and roles" below). */
	CAIRN_OP_AUTHENTICATE = 22,      /* user, password: a token (the
	                                    library does this by itself) */
	CAIRN_OP_USER_ADD = 23,          /* user, password */
	CAIRN_OP_USER_DELETE = 24,       /* user */
	CAIRN_OP_USER_LIST = 25,         /* names */
	CAIRN_OP_USER_GET = 26,          /* user: its roles in names */
	CAIRN_OP_USER_PASSWD = 27,       /* user, password */
	CAIRN_OP_USER_GRANT_ROLE = 28,   /* user, role */
	CAIRN_OP_USER_REVOKE_ROLE = 29,  /* user, role */
	CAIRN_OP_ROLE_ADD = 30,          /* role */
	CAIRN_OP_ROLE_DELETE = 31,       /* role */
	CAIRN_OP_ROLE_LIST = 32,         /* names */
	CAIRN_OP_ROLE_GET = 33,          /* role: its permissions in perms */
	CAIRN_OP_ROLE_GRANT_PERMISSION = 34,  /* role, perm, key, end */
	CAIRN_OP_ROLE_REVOKE_PERMISSION = 35, /* role, key, end */
	CAIRN_OP_AUTH_ENABLE = 36,
	CAIRN_OP_AUTH_DISABLE = 37,
	CAIRN_OP_AUTH_STATUS = 38, /* auth_enabled, auth_revision */
};

/* What a role's permission allows on its key range. */
enum cairn_perm_type {
	CAIRN_PERM_READ = 0,
	CAIRN_PERM_WRITE = 1,
	CAIRN_PERM_READWRITE = 2,
};

/* One permission of a role (ROLE_GET): a key range with etcd's rules (end
 * empty: the one key; end "\0": every key >= key). */
struct cairn_permission {
	int type; /* enum cairn_perm_type */
	const uint8_t *key;
	size_t key_len;
	const uint8_t *end;
	size_t end_len;
};

/* Compare targets and results of a transaction's compare clause. */
enum cairn_cmp_target {
	CAIRN_CMP_VALUE = 0,
	CAIRN_CMP_VERSION,
	CAIRN_CMP_CREATE,
	CAIRN_CMP_MOD,
};
enum cairn_cmp_result {
	CAIRN_CMP_EQUAL = 0,
	CAIRN_CMP_NOT_EQUAL,
	CAIRN_CMP_LESS,
	CAIRN_CMP_GREATER,
};

struct cairn_compare {
	const void *key;
	size_t key_len;
	int target; /* enum cairn_cmp_target */
	int result; /* enum cairn_cmp_result */
	const void *value; /* target VALUE */
	size_t value_len;
	int64_t number; /* targets VERSION, CREATE, MOD */
};

struct cairn_op;

struct cairn_txn {
	const struct cairn_compare *compare;
	size_t n_compare;
	const struct cairn_op *success; /* RANGE, PUT, DELETE only */
	size_t n_success;
	const struct cairn_op *failure;
	size_t n_failure;
};

/*
 * A request. Key ranges follow etcd: end NULL/empty is the single key; an end of
 * one zero byte ("\0", end_len 1) means every key >= key; key "\0" with end "\0"
 * means the whole keyspace. cairn_prefix_end() computes the end of a prefix.
 * All pointers are borrowed for the duration of the call (copied on submit).
 */
struct cairn_op {
	int type; /* enum cairn_op_type */
	const void *key;
	size_t key_len;
	const void *end;
	size_t end_len;
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease;    /* PUT: lease id to attach, 0 for none */
	bool prev_kv;     /* PUT, DELETE: return the previous pair(s) */
	int64_t revision; /* RANGE: read at this revision; 0 for the latest.
	                     COMPACT: the new compact revision */
	int64_t limit;    /* RANGE: at most this many pairs; 0 for no limit */
	bool serializable; /* RANGE: served from the member's local state */
	bool keys_only;   /* RANGE */
	bool count_only;  /* RANGE */
	const struct cairn_txn *txn; /* TXN */
	int64_t ttl; /* LEASE_GRANT: seconds */
	bool keys;   /* LEASE_TTL: return the attached keys */
	uint64_t member_id;       /* MEMBER_ADD, REMOVE, PROMOTE */
	const char *peer_address; /* MEMBER_ADD: "IP:PORT" */
	const char *user;     /* USER_*, AUTHENTICATE: at most 128 bytes */
	const char *role;     /* ROLE_*, USER_GRANT_ROLE, USER_REVOKE_ROLE */
	const char *password; /* USER_ADD, USER_PASSWD, AUTHENTICATE: at most
	                         1024 bytes */
	int perm;             /* ROLE_GRANT_PERMISSION: enum cairn_perm_type;
	                         the range is key and end */
};

/* Status of one member (CAIRN_OP_STATUS). */
struct cairn_status {
	uint64_t member_id;
	uint64_t leader_id; /* 0: no leader known */
	uint64_t raft_term;
	uint64_t raft_index;
	uint64_t raft_applied;
	int64_t revision;
	int64_t compact_revision;
	uint64_t keys;     /* live keys */
	uint64_t db_size;  /* bytes held by the keyspace, history included */
	const char *name;
	const char *version;
};

/* One member of the cluster (CAIRN_OP_MEMBERS). */
struct cairn_member {
	uint64_t id;
	const char *peer_address;
	const char *client_address; /* NULL when not known to the answering member */
	const char *name;           /* NULL when not known to the answering member */
	bool voter;
	bool leader;
};

/* The response header every successful answer carries. */
struct cairn_header {
	uint64_t member_id; /* the member that answered */
	int64_t revision;   /* the store's revision when the answer was made */
	uint64_t raft_term;
};

/*
 * The answer to one operation. Allocated by the library; release it with
 * cairn_result_free(). All pointers inside live as long as the result.
 */
struct cairn_result {
	int err;            /* CAIRN_OK or a CAIRN_E* code */
	const char *errmsg; /* NULL when err == 0 */
	int type;           /* the op type answered */
	struct cairn_header header;
	/* RANGE */
	struct cairn_kv *kvs;
	size_t n_kvs;
	bool more;
	int64_t count;
	/* PUT, DELETE: previous pairs when prev_kv was asked */
	struct cairn_kv *prev_kvs;
	size_t n_prev_kvs;
	int64_t deleted;
	/* TXN: which branch ran and one result per operation of it */
	bool succeeded;
	struct cairn_result *responses;
	size_t n_responses;
	/* STATUS */
	struct cairn_status status;
	/* MEMBERS */
	struct cairn_member *members;
	size_t n_members;
	/* LEASE_GRANT, LEASE_KEEPALIVE, LEASE_TTL: the lease, its TTL (seconds
	 * left for KEEPALIVE and TTL) and, for LEASE_TTL, the granted TTL and
	 * the attached keys (in kvs, keys only). LEASE_LIST: the ids. */
	int64_t lease;
	int64_t ttl;
	int64_t granted_ttl;
	int64_t *leases;
	size_t n_leases;
	/* SNAPSHOT: the state machine snapshot (write it with a backup header;
	 * see cairnctl snapshot save) at header.revision. */
	const uint8_t *snapshot;
	size_t snapshot_len;
	/* ECOMPACTED: the compact revision, so the caller knows where history
	 * starts. */
	int64_t compact_revision;
	/* Set when the store recognized a retried write that it had already applied:
	 * header.revision is the revision it was applied at; prev_kvs are absent. */
	bool duplicate;
	/* USER_LIST, ROLE_LIST: the names; USER_GET: the user's roles. */
	const char **names;
	size_t n_names;
	/* ROLE_GET */
	struct cairn_permission *perms;
	size_t n_perms;
	/* AUTH_STATUS: whether auth is on, and the auth revision (bumped by
	 * every change of users, roles or permissions). */
	bool auth_enabled;
	uint64_t auth_revision;
	/* AUTHENTICATE: the token (absent when auth is disabled) and its
	 * lifetime in seconds. */
	const uint8_t *token;
	size_t token_len;
};

CAIRN_API void cairn_result_free(struct cairn_result *res);

/* Client options. Zero values select the defaults noted. */
/*
 * The cluster secret. cairn-store talks only through its secure channel
 * (unless run with --insecure), authenticated by the secret its first member
 * wrote to DATA_DIR/cluster.secret: a client needs a copy of that file (mode
 * 0600) or its one line of text ("cairn-secret-1:..."). The first of these
 * that is set is used:
 *   secret, secret_file, insecure          (the options, in this order)
 *   CAIRN_SECRET, CAIRN_SECRET_FILE         (the environment: the text, a file)
 *   CAIRN_INSECURE=1                        (the environment: plaintext)
 * With none of them cairn_open() fails with CAIRN_EAUTH. insecure speaks
 * plaintext, for a store run with --insecure only. A member that does not
 * share the secret (or speaks plaintext when this client does not, or the
 * reverse) fails every request and watch with CAIRN_EAUTH and a message that
 * says which.
 */
struct cairn_options {
	unsigned dial_timeout_ms;    /* per connection attempt; default 2000 */
	unsigned request_timeout_ms; /* whole request, retries included; default 10000 */
	bool no_redirect; /* talk only to the first endpoint; never follow the leader
	                     (for per-member status) */
	const char *secret_file; /* path of the cluster secret file; read by cairn_open */
	const char *secret;      /* or the secret's text itself; copied */
	bool insecure;           /* plaintext, no secret (store run with --insecure) */
	/* The user the client acts as when the store has auth enabled (see
	 * "Users and roles" below); both copied. NULL user: the environment's
	 * CAIRN_USER and CAIRN_PASSWORD, if set; else no user. */
	const char *user;
	const char *password;
};

/*
 * Users and roles (as etcd's): with auth enabled, the store serves a request
 * only with a valid token of a user whose roles grant read or write on every
 * key it touches (role "root" grants everything, plus the administration:
 * users, roles, auth, compaction, snapshots, membership). A client with a
 * user authenticates on each new connection (after HELLO, before sending
 * anything else), attaches the token to every request and watch, and when
 * the store says the token expired or is out of date (users or roles
 * changed), authenticates again once and retries, transparently. A wrong
 * user name or password fails the requests with CAIRN_EAUTH; a request the
 * user's roles do not allow fails with CAIRN_EPERM and a message naming the
 * user, the operation and the key.
 */

typedef struct cairn_client cairn_client;

/*
 * Opens a sync client on a comma-separated endpoint list ("host:port,...").
 * Does not connect until the first request. On error *out is NULL and, if
 * errbuf is given, it holds a message.
 */
CAIRN_API int cairn_open(cairn_client **out, const char *endpoints,
                         const struct cairn_options *opts, char *errbuf,
                         size_t errbuf_len);

/* Closes a sync or async client. Async: callbacks of requests still pending fire
 * with CAIRN_ECANCELED before this returns; the handles are released once the
 * loop runs. */
CAIRN_API void cairn_close(cairn_client *c);

/* The message of the last failed sync call. */
CAIRN_API const char *cairn_errmsg(const cairn_client *c);

/*
 * Sync: performs op and stores its answer in *out (free it with
 * cairn_result_free). Returns 0 on success or the CAIRN_E* code of the failure,
 * in which case *out is NULL and cairn_errmsg() says why.
 */
CAIRN_API int cairn_do(cairn_client *c, const struct cairn_op *op,
                       struct cairn_result **out);

/* Sync conveniences over cairn_do(). */
CAIRN_API int cairn_put(cairn_client *c, const void *key, size_t key_len,
                        const void *value, size_t value_len,
                        struct cairn_result **out);
CAIRN_API int cairn_get(cairn_client *c, const void *key, size_t key_len,
                        struct cairn_result **out);
CAIRN_API int cairn_delete(cairn_client *c, const void *key, size_t key_len,
                           struct cairn_result **out);

/* Async. loop is borrowed and must outlive the client. */
struct uv_loop_s;
CAIRN_API int cairn_open_async(cairn_client **out, struct uv_loop_s *loop,
                               const char *endpoints,
                               const struct cairn_options *opts, char *errbuf,
                               size_t errbuf_len);

/* Fires once per accepted submit with the answer; res belongs to the callee,
 * who frees it with cairn_result_free(). res->err carries any failure. */
typedef void (*cairn_cb)(cairn_client *c, struct cairn_result *res, void *arg);

/* Queues op (copied). Returns 0 and the callback will fire exactly once, or an
 * error code and it never fires. */
CAIRN_API int cairn_submit(cairn_client *c, const struct cairn_op *op,
                           cairn_cb cb, void *arg);

/*
 * Watches (async clients only). A watch delivers every change to a key, range
 * or prefix from a start revision on: history first, then live changes, in
 * revision order, never twice, never with a gap; all changes of one
 * transaction together. Any member serves watches; if the connection breaks,
 * the library resumes the watch on another member from the revision after the
 * last one it delivered, so the caller sees no gap and no duplicate.
 */
enum cairn_event_type { CAIRN_EVENT_PUT = 0, CAIRN_EVENT_DELETE = 1 };

struct cairn_event {
	int type;            /* enum cairn_event_type */
	struct cairn_kv kv;  /* DELETE: key and mod_revision (the deletion's) only */
	struct cairn_kv prev_kv;
	bool has_prev_kv;    /* prev_kv is set (only if the watch asked for it) */
};

struct cairn_watch_opts {
	const void *key; /* range rules as struct cairn_op */
	size_t key_len;
	const void *end;
	size_t end_len;
	int64_t start_revision; /* 0: changes after the serving member's current
	                           revision, which may lag the leader's: to
	                           start exactly after a write, pass its
	                           revision + 1 */
	bool prev_kv;
	bool no_put;
	bool no_delete;
	bool progress_notify; /* periodic progress while idle */
};

/*
 * What a watch callback receives. Exactly one of: events (n_events > 0, all
 * of revision 'revision', or, for a transaction split over frames, part of
 * them with more set), a progress notification (progress set: everything up
 * to 'revision' was delivered), or the end (err set: CAIRN_ECANCELED after
 * cairn_watch_cancel or cairn_close, CAIRN_ECOMPACTED with compact_revision
 * when the history it needs is gone, or another error); no call follows the
 * end. Pointers are valid during the call only.
 */
struct cairn_watch_update {
	int err;
	const char *errmsg;
	int64_t revision;
	int64_t compact_revision;
	const struct cairn_event *events;
	size_t n_events;
	bool more;
	bool progress;
};

typedef struct cairn_watch cairn_watch;
typedef void (*cairn_watch_cb)(cairn_client *c, cairn_watch *w,
                               const struct cairn_watch_update *u, void *arg);

/* Starts a watch (opts copied). Returns 0 and *out, or an error code and the
 * callback never fires. */
CAIRN_API int cairn_watch_start(cairn_client *c,
                                const struct cairn_watch_opts *opts,
                                cairn_watch_cb cb, void *arg, cairn_watch **out);
/* Ends a watch: its callback fires once more with CAIRN_ECANCELED (maybe
 * before this returns); w is invalid after that. */
CAIRN_API void cairn_watch_cancel(cairn_watch *w);
/* Asks the member for a progress notification on every watch of c. */
CAIRN_API int cairn_watch_progress(cairn_client *c);

/* Writes into end (of at least max(key_len, 1) bytes) the end of the range holding
 * every key that starts with key; returns its length. A prefix of only 0xff
 * bytes (or empty) gives the end "\0" (every key >= key), length 1. */
CAIRN_API size_t cairn_prefix_end(const void *key, size_t key_len, uint8_t *end);

#ifdef __cplusplus
}
#endif
#endif /* CAIRN_H */

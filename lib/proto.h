/*
 * proto: cairn's native wire protocol, declared once for the client and the store.
 *
 * A frame is a 4-byte big-endian payload length, then one MessagePack map (the
 * payload). A connection opens with a HELLO request naming the protocol version;
 * the store answers with its own HELLO (version, member id, leader id) or with
 * CAIRN_EVERSION and closes. After that the client sends requests, each with an
 * id of its choosing, and may keep many in flight; answers carry the request's
 * id and may come in any order.
 *
 * Request map keys (absent = zero/false/empty):
 *   id  uint  request id          op  uint  PROTO_OP_*
 *   k   bin   key                 e   bin   range end      v  bin  value
 *   l   int   lease               pkv bool  prev_kv
 *   rev int   read revision       lim int   limit
 *   ser bool  serializable        ko  bool  keys_only      co bool count_only
 *   cid uint  client id           seq uint  write sequence number
 *   ack uint  lowest sequence number the client still waits on
 *   cmp array of compare maps {k, t: target, r: result, v: bin, n: int}
 *   s   array of op maps (success branch: op + the fields above, no id)
 *   f   array of op maps (failure branch)
 *   ver uint  protocol version (HELLO)
 *   wid uint  watch id            np, nd, pn bool  watch filters and progress
 *   ttl int   lease TTL (seconds) keys bool  LEASE_TTL: list attached keys
 *   peer str  a member's peer address (MEMBER_ADD)
 *   mid uint, cli str, name str  a member's attributes (PUBLISH: members
 *             only, proposed by a new leader for itself; clients are refused)
 *
 * Response map keys:
 *   id, op  as the request        err uint  CAIRN_E* (absent = success)
 *   msg str   error message       ldr uint  leader id (HELLO, ENOTLEADER)
 *   la  str   the leader's client address, when known (ENOTLEADER)
 *   h   map   header {m: member id, r: revision, t: raft term}
 *   kvs array of kv               more bool   cnt int     (RANGE)
 *   pkvs array of kv              del int                 (PUT, DELETE)
 *   ok  bool  txn succeeded       rs array of op responses (TXN, each {op,...})
 *   dup bool  retried write already applied
 *   st  map   status {id, ldr, term, idx, app, rev, crev, keys, size, name, ver}
 *   ms  array of members {id, peer, cli, voter, ldr}
 *   ver uint, mid uint, name str  (HELLO)
 * A kv is an array [key bin, value bin|nil, create_rev, mod_rev, version, lease].
 *
 * Watches. WATCH {id, op, k, e, rev: first revision wanted (0 = the next one),
 * pkv, np: no puts, nd: no deletes, pn: periodic progress notifications} is
 * answered {id, op, h, wid: watch id (per connection), rev: the first revision
 * it will deliver}; a rev at or below the compact revision is refused with
 * CAIRN_ECOMPACTED and crev. Events then come in EVENTS frames (id 0):
 *   {op, wid, h, ev: [[type 0 put | 1 delete, kv, prev kv|nil], ...],
 *    more: true when more frames of the same revision follow}
 * every event of a revision in one frame unless it would pass the frame
 * limit, revisions in order, none twice, none skipped. A progress
 * notification is an EVENTS frame {op, wid, h, prog: true}: the watch has
 * delivered everything up to h.r. A watch the store ends is an EVENTS frame
 * {op, wid, h, cancel: true, err, msg[, crev]}. WATCH_CANCEL {id, op, wid}
 * ends one watch (answered {id, op, h}); WATCH_PROGRESS {id, op} is answered
 * {id, op, h} and makes every caught-up watch of the connection send a
 * progress notification. A deleted kv is [key, nil, 0, delete revision, 0, 0].
 *
 * Leases. LEASE_GRANT {id, op, ttl: seconds, l: wanted id or 0, cid, seq,
 * ack} answers {id, op, h, l, ttl}. LEASE_REVOKE {id, op, l, cid, seq, ack}
 * deletes the lease and, in one revision, every key attached to it; answers
 * {id, op, h}. LEASE_KEEPALIVE {id, op, l} renews it to its full TTL; answers
 * {id, op, h, l, ttl}. LEASE_TTL {id, op, l, keys: bool} answers {id, op, h,
 * l, ttl: seconds left, gttl: granted, keys: [bin...]}. LEASE_LIST {id, op}
 * answers {id, op, h, ls: [id...]}. Grant and revoke go through the log;
 * keep-alive and TTL are answered by the leader (which alone times leases);
 * list by any member. An unknown lease is CAIRN_ENOLEASE.
 *
 * SNAPSHOT {id, op} answers {id, op, h, rev, snap: bin}: the member's whole
 * applied state as a state machine snapshot (see store/fsm.h), for backups
 * (lib/backup.h wraps it in a file). libcairn asks the leader, which refuses
 * (CAIRN_ENOLEADER) until it has applied everything committed before its
 * election. One answer frame, so at most PROTO_RESP_FRAME_MAX bytes
 * compressed.
 *
 * Membership (the leader answers; others say ENOTLEADER): MEMBER_ADD {id, op,
 * mid, peer: "IP:PORT"} adds a member as a learner (it receives the log, does
 * not vote; start it with --join); MEMBER_PROMOTE {id, op, mid} makes a
 * learner a voter once it has caught up; MEMBER_REMOVE {id, op, mid} removes a
 * member (a removed member stops). Each is answered {id, op, h, ms: members}
 * when the configuration change is committed. One change at a time: another
 * is refused with CAIRN_EBUSY.
 *
 * Users, roles and auth. Any request may carry "tok" (bin, a token from
 * AUTHENTICATE); with auth enabled every request but HELLO, STATUS, MEMBERS,
 * AUTHENTICATE, AUTH_STATUS, WATCH_CANCEL and WATCH_PROGRESS needs one, and
 * the token's user must be allowed the request (store/authz.h says what each
 * operation needs). AUTHENTICATE {id, op, user, pw} answers {id, op, h, tok:
 * bin, ttl} (no tok while auth is disabled). A refused token is CAIRN_EAUTH
 * with "reauth": true when a new token would do (expired, or users and roles
 * changed since); a refused request CAIRN_EPERM. USER_ADD, USER_PASSWD {user,
 * pw}: the member hashes the password and proposes {user, hash} instead;
 * USER_DELETE, USER_GET {user}; USER_GRANT_ROLE, USER_REVOKE_ROLE {user,
 * role}; ROLE_ADD, ROLE_DELETE, ROLE_GET {role}; ROLE_GRANT_PERMISSION {role,
 * perm: 0 read | 1 write | 2 readwrite, k, e}; ROLE_REVOKE_PERMISSION {role,
 * k, e}; AUTH_ENABLE, AUTH_DISABLE {} (the leader adds "seed": 32 random
 * bytes, the token signing key's seed). Writes answer {id, op, h}; USER_LIST
 * and ROLE_LIST {names: [str]}, USER_GET {user, names: roles}, ROLE_GET
 * {role, perms: [[perm, k, e]...]}, AUTH_STATUS {en: bool, arev: uint}.
 *
 * COMPACT {id, op, rev, cid, seq, ack} discards the history below rev (a write,
 * through the log); answered {id, op, h}, or CAIRN_ECOMPACTED (rev at or below
 * the compact revision, with crev) or CAIRN_EFUTUREREV.
 *
 * Limits: a request frame is at most PROTO_REQ_FRAME_MAX bytes; an answer at
 * most PROTO_RESP_FRAME_MAX. A transaction has at most PROTO_MAX_TXN_OPS
 * compares and as many operations per branch.
 */
#ifndef CAIRN_PROTO_H
#define CAIRN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp.h"

#define PROTO_VERSION 1
#define PROTO_REQ_FRAME_MAX (4u << 20)
#define PROTO_RESP_FRAME_MAX (256u << 20)
#define PROTO_MAX_TXN_OPS 128
#define PROTO_MAX_KEY (64u << 10)
#define PROTO_MAX_ATTR 64 /* member address and name lengths */
#define PROTO_MAX_NAME 128      /* user and role names */
#define PROTO_MAX_PASSWORD 1024
#define PROTO_MAX_HASH 256      /* a crypto_pwhash_str string */
#define PROTO_MAX_TOKEN 512
#define PROTO_SEED_BYTES 32     /* the token signing seed */

/* X(name, code, is_write): one table of operations. */
#define PROTO_OPS(X)                                                         \
	X(HELLO, 0, false)                                                   \
	X(RANGE, 1, false)                                                   \
	X(PUT, 2, true)                                                      \
	X(DELETE, 3, true)                                                   \
	X(TXN, 4, true)                                                      \
	X(STATUS, 5, false)                                                  \
	X(MEMBERS, 6, false)                                                 \
	X(PUBLISH, 7, true)                                                  \
	X(WATCH, 8, false)                                                   \
	X(WATCH_CANCEL, 9, false)                                            \
	X(WATCH_PROGRESS, 10, false)                                         \
	X(EVENTS, 11, false)                                                 \
	X(COMPACT, 12, true)                                                 \
	X(LEASE_GRANT, 13, true)                                             \
	X(LEASE_REVOKE, 14, true)                                            \
	X(LEASE_KEEPALIVE, 15, false)                                        \
	X(LEASE_TTL, 16, false)                                              \
	X(LEASE_LIST, 17, false)                                             \
	X(SNAPSHOT, 18, false)                                               \
	X(MEMBER_ADD, 19, false)                                             \
	X(MEMBER_REMOVE, 20, false)                                          \
	X(MEMBER_PROMOTE, 21, false)                                         \
	X(AUTHENTICATE, 22, false)                                           \
	X(USER_ADD, 23, true)                                                \
	X(USER_DELETE, 24, true)                                             \
	X(USER_LIST, 25, false)                                              \
	X(USER_GET, 26, false)                                               \
	X(USER_PASSWD, 27, true)                                             \
	X(USER_GRANT_ROLE, 28, true)                                         \
	X(USER_REVOKE_ROLE, 29, true)                                        \
	X(ROLE_ADD, 30, true)                                                \
	X(ROLE_DELETE, 31, true)                                             \
	X(ROLE_LIST, 32, false)                                              \
	X(ROLE_GET, 33, false)                                               \
	X(ROLE_GRANT_PERMISSION, 34, true)                                   \
	X(ROLE_REVOKE_PERMISSION, 35, true)                                  \
	X(AUTH_ENABLE, 36, true)                                             \
	X(AUTH_DISABLE, 37, true)                                            \
	X(AUTH_STATUS, 38, false)

enum proto_op {
#define PROTO__OP_ENUM(name, code, w) PROTO_OP_##name = code,
	PROTO_OPS(PROTO__OP_ENUM)
#undef PROTO__OP_ENUM
	PROTO_OP_MAX
};

/* "range", "put"...; NULL for an unknown code. */
const char *proto_op_name(unsigned op);
/* True for operations that go through the Raft log. */
bool proto_op_is_write(unsigned op);
/* True for the operations on users, roles and auth (AUTHENTICATE to
 * AUTH_STATUS). */
bool proto_op_is_auth(unsigned op);

struct proto_compare {
	const uint8_t *key;
	uint32_t key_len;
	uint8_t target; /* enum cairn_cmp_target */
	uint8_t result; /* enum cairn_cmp_result */
	const uint8_t *value;
	uint32_t value_len;
	int64_t number;
};

/*
 * A decoded request. Byte pointers point into the decoded frame, which must
 * outlive the request; the compare and branch arrays are allocated and released
 * by proto_req_free().
 */
struct proto_req {
	uint64_t id;
	unsigned op;
	const uint8_t *key;
	const uint8_t *end;
	const uint8_t *value;
	uint32_t key_len;
	uint32_t end_len;
	uint32_t value_len;
	int64_t lease;
	int64_t revision;
	int64_t limit;
	bool prev_kv;
	bool serializable;
	bool keys_only;
	bool count_only;
	uint64_t client_id;
	uint64_t seq;
	uint64_t ack;
	uint64_t version;
	int64_t ttl;
	bool with_keys;
	uint64_t watch_id;
	bool no_put;
	bool no_delete;
	bool progress_notify;
	uint64_t member;
	const uint8_t *peer;
	uint32_t peer_len;
	const uint8_t *addr;
	uint32_t addr_len;
	const uint8_t *name;
	uint32_t name_len;
	const uint8_t *user; /* user and role names, password: not NUL-ended */
	uint32_t user_len;
	const uint8_t *role;
	uint32_t role_len;
	const uint8_t *password;
	uint32_t password_len;
	const uint8_t *hash; /* USER_ADD, USER_PASSWD in the log */
	uint32_t hash_len;
	const uint8_t *token;
	uint32_t token_len;
	const uint8_t *seed; /* AUTH_ENABLE in the log: PROTO_SEED_BYTES */
	uint32_t seed_len;
	uint64_t perm; /* enum cairn_perm_type */
	struct proto_compare *cmp;
	uint32_t n_cmp;
	struct proto_req *succ;
	uint32_t n_succ;
	struct proto_req *fail;
	uint32_t n_fail;
};

/*
 * Decodes one request payload (top level: has id and op). Checks every type and
 * size, the op code, the limits above; on failure returns CAIRN_EPROTO (or
 * CAIRN_ETOOMANYOPS, CAIRN_EINVAL) with a message in errbuf, and req holds
 * nothing to free. req->id is set as soon as it was read, so an error answer
 * can name the request.
 */
int proto_decode_req(const uint8_t *p, size_t len, struct proto_req *req,
                     char *errbuf, size_t errlen);
void proto_req_free(struct proto_req *req);

/* True for "a.b.c.d:port" (decimal parts without leading zeros, port 1 to
 * 65535): the one address form members listen on and clients dial. */
bool proto_valid_address(const char *s);

/* Writes a kv array. value NULL writes nil (keys_only). */
void proto_put_kv(struct mp_writer *w, const uint8_t *key, size_t key_len,
                  const uint8_t *value, size_t value_len, int64_t create_rev,
                  int64_t mod_rev, int64_t version, int64_t lease);

/* Frames: the payload length as 4 big-endian bytes. */
static inline void proto_put_len(uint8_t out[4], uint32_t len)
{
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
}

static inline uint32_t proto_get_len(const uint8_t in[4])
{
	return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 |
	       (uint32_t)in[2] << 8 | in[3];
}

/* Starts a frame in b: reserves the 4 length bytes; returns their offset. */
size_t proto_frame_begin(struct buf *b);
/* Fills in the length of the frame begun at off. Returns 0 or CAIRN_ETOOBIG
 * when the payload exceeds max (the frame is then removed from b). */
int proto_frame_end(struct buf *b, size_t off, uint32_t max);

#endif

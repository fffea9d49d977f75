/*
 * auth: the replicated state of users, roles and authentication, and the
 * pieces built on it: the permission matcher and the tokens.
 *
 * The state (users with their password hash and roles, roles with their
 * permissions, the enabled flag, the token signing seed and the auth
 * revision) lives in the state machine next to the keyspace: it changes only
 * through the log (auth_apply, on every member alike) and travels in
 * snapshots (auth_dump, auth_load). Every change that succeeds bumps the auth
 * revision; tokens carry the revision they were made at, so a change makes
 * older tokens invalid and their clients authenticate again (etcd's rule).
 *
 * Role "root" always exists (it is not stored), grants every permission and
 * the administration, and has no permissions of its own to grant or revoke.
 * Auth can be enabled only while user "root" exists and holds role "root";
 * while enabled, that user cannot be deleted nor lose the role.
 *
 * Permissions follow etcd's ranges: a permission on key with an empty end
 * covers that key; end "\0" covers every key >= key; else [key, end). A
 * request's range is allowed when the union of the matching permissions of
 * the user's roles covers it (a single-key permission only covers requests
 * for that one key).
 *
 * Tokens: the Ed25519 signature (crypto_sign, combined form) of the msgpack
 * array [user, auth revision, expiry in unix seconds], with the key pair
 * derived from the seed that the leader drew when auth was enabled. Any
 * member verifies them without a round trip; members' clocks are assumed
 * roughly in sync.
 *
 * All calls on the loop thread (the token functions on any thread, with
 * their own copies of the seed).
 */
#ifndef CAIRN_STORE_AUTH_H
#define CAIRN_STORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#include "buf.h"
#include "mp.h"
#include "proto.h"

#define AUTH_MAX_USERS 4096
#define AUTH_MAX_ROLES 4096
#define AUTH_MAX_USER_ROLES 64
#define AUTH_MAX_PERMS 256 /* per role */
#define AUTH_ROOT "root"

/* Permission bits; CAIRN_PERM_* + 1 as a mask. */
#define AUTH_READ 1u
#define AUTH_WRITE 2u

struct auth_perm {
	unsigned mask; /* AUTH_READ | AUTH_WRITE */
	uint8_t *key;
	uint32_t key_len;
	uint8_t *end;
	uint32_t end_len;
};

struct auth_role {
	char *name;
	struct auth_perm *perms;
	uint32_t n_perms;
};

struct auth_user {
	char *name;
	char *hash; /* crypto_pwhash_str form */
	char **roles;
	uint32_t n_roles;
};

struct auth {
	bool enabled;
	uint64_t revision;
	bool has_seed;
	uint8_t seed[PROTO_SEED_BYTES];
	uint8_t pk[crypto_sign_PUBLICKEYBYTES]; /* derived from the seed */
	uint8_t sk[crypto_sign_SECRETKEYBYTES];
	struct auth_user *users; /* in name order */
	uint32_t n_users;
	struct auth_role *roles; /* in name order, root not among them */
	uint32_t n_roles;
};

/* An empty state (auth disabled). Returns 0 or CAIRN_ENOMEM. */
int auth_create(struct auth **out);
void auth_destroy(struct auth *a);

/* The user or role of that name, or NULL. */
const struct auth_user *auth_user(const struct auth *a, const uint8_t *name,
                                  size_t len);
const struct auth_role *auth_role(const struct auth *a, const uint8_t *name,
                                  size_t len);

/* True when u holds role root. */
bool auth_is_root(const struct auth_user *u);

/*
 * Applies an auth write (USER_ADD ... AUTH_DISABLE as they stand in the log).
 * Returns 0, or a CAIRN_E* code with a message in msg (nothing changed).
 * Aborts the process on out of memory (exec_out_of_memory).
 */
int auth_apply(struct auth *a, const struct proto_req *req, char *msg,
               size_t len);

/* Writes the answer fields of an auth read (USER_LIST, USER_GET, ROLE_LIST,
 * ROLE_GET, AUTH_STATUS) into an open map; returns how many it wrote, or -1
 * with a CAIRN_E* code in *code and a message in msg. */
int auth_read_fields(const struct auth *a, const struct proto_req *req,
                     struct mp_writer *w, int *code, char *msg, size_t len);

/* Snapshot section: [enabled, revision, seed|nil, users, roles]. */
int auth_dump(const struct auth *a, struct buf *out);
/* Reads a section written by auth_dump into a new state; CAIRN_EPROTO if it
 * is malformed. */
int auth_load(struct mp_reader *r, struct auth **out);

/* True when the permissions of u's roles allow mask (AUTH_READ, AUTH_WRITE
 * or both) on [key, end) under etcd's range rules. */
bool auth_allowed(const struct auth *a, const struct auth_user *u,
                  unsigned mask, const uint8_t *key, size_t key_len,
                  const uint8_t *end, size_t end_len);

/* True when the permission ranges in perms (n of them) cover [key, end).
 * The matcher under auth_allowed, for tests. */
bool auth_covered(const struct auth_perm *const *perms, size_t n,
                  const uint8_t *key, size_t key_len, const uint8_t *end,
                  size_t end_len);

/* Tokens. out must hold AUTH_TOKEN_MAX bytes; returns the token's length,
 * or 0 if the name is too long. */
#define AUTH_TOKEN_MAX (crypto_sign_BYTES + PROTO_MAX_NAME + 32)
size_t auth_token_sign(const uint8_t sk[crypto_sign_SECRETKEYBYTES],
                       const char *user, uint64_t revision, int64_t expiry,
                       uint8_t *out);

/* Why a token is refused. */
enum auth_token_status {
	AUTH_TOKEN_OK = 0,
	AUTH_TOKEN_INVALID, /* malformed or not signed by this cluster's key */
	AUTH_TOKEN_EXPIRED,
	AUTH_TOKEN_OLD, /* made before the last change of users or roles */
};

/* Checks a token's signature, expiry (against now, unix seconds) and
 * revision (against the current one); on OK, user (at least PROTO_MAX_NAME
 * + 1 bytes) gets the user's name. */
enum auth_token_status
auth_token_verify(const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                  const uint8_t *tok, size_t len, int64_t now,
                  uint64_t revision, char *user);

/* The key pair of a seed. */
void auth_keypair(const uint8_t seed[PROTO_SEED_BYTES],
                  uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                  uint8_t sk[crypto_sign_SECRETKEYBYTES]);

/* Writes s as printable text into out (at most len bytes, NUL-ended): bytes
 * outside printable ASCII become \xNN, and a long one is cut with "...". */
void auth_printable(const uint8_t *s, size_t n, char *out, size_t len);

#endif

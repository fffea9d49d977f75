/*
 * auth: users, roles, permissions and tokens (see auth.h).
 *
 * Users and roles are small sorted arrays: a cluster has tens of them, and
 * every lookup is a binary search. Applying never fails halfway: each write
 * checks everything first, then changes the state (out of memory exits, as
 * for every write, so members never diverge).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "exec.h"

/* ---- helpers --------------------------------------------------------------
 */

static int cmp_bytes(const uint8_t *a, size_t alen, const uint8_t *b,
                     size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void *xmemdup(const void *p, size_t len, bool nul)
{
	uint8_t *q = malloc(len + (nul ? 1 : 0) + 1);

	if (q == NULL)
		exec_out_of_memory();
	if (len > 0)
		memcpy(q, p, len);
	if (nul)
		q[len] = '\0';
	return q;
}

static char *xstrdup(const uint8_t *p, size_t len)
{
	return xmemdup(p, len, true);
}

void auth_printable(const uint8_t *s, size_t n, char *out, size_t len)
{
	size_t o = 0;
	size_t i;

	if (len == 0)
		return;
	for (i = 0; i < n && o + 8 < len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[o++] = (char)s[i];
		else
			o +=
			    (size_t)snprintf(out + o, len - o, "\\x%02x", s[i]);
	}
	if (i < n && o + 4 <= len)
		o += (size_t)snprintf(out + o, len - o, "...");
	out[o < len ? o : len - 1] = '\0';
}

/* Names: 1 to PROTO_MAX_NAME bytes, no control characters; user names also
 * no ':' (cairnctl --user NAME:PASSWORD). */
static bool valid_name(const uint8_t *p, size_t len, bool user)
{
	size_t i;

	if (len == 0 || len > PROTO_MAX_NAME)
		return false;
	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] == 0x7f || (user && p[i] == ':'))
			return false;
	return true;
}

/* A password hash as crypto_pwhash_str makes it: text, so no NUL byte (the
 * snapshot keeps it as a string and refuses one that is cut short). */
static bool valid_hash(const uint8_t *p, size_t len)
{
	return len > 0 && len < PROTO_MAX_HASH && memchr(p, '\0', len) == NULL;
}

static bool is_root_name(const uint8_t *p, size_t len)
{
	return same(p, len, (const uint8_t *)AUTH_ROOT, strlen(AUTH_ROOT));
}

/* ---- lookups --------------------------------------------------------------
 */

/* The name of element i of an array of structs whose first member is a
 * char *name (read with memcpy: the array is seen as bytes). */
static const char *name_at(const void *base, size_t size, uint32_t i)
{
	const char *s;

	memcpy(&s, (const char *)base + (size_t)i * size, sizeof s);
	return s;
}

/* Index of name in a sorted array of structs whose first member is a
 * char *name; *found says whether it is there (else the insert position). */
static uint32_t find_name(const void *base, size_t size, uint32_t n,
                          const uint8_t *name, size_t len, bool *found)
{
	uint32_t lo = 0;
	uint32_t hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *s = name_at(base, size, mid);
		int c = cmp_bytes((const uint8_t *)s, strlen(s), name, len);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

const struct auth_user *auth_user(const struct auth *a, const uint8_t *name,
                                  size_t len)
{
	bool found;
	uint32_t i = find_name(a->users, sizeof *a->users, a->n_users, name,
	                       len, &found);

	return found ? &a->users[i] : NULL;
}

const struct auth_role *auth_role(const struct auth *a, const uint8_t *name,
                                  size_t len)
{
	bool found;
	uint32_t i = find_name(a->roles, sizeof *a->roles, a->n_roles, name,
	                       len, &found);

	return found ? &a->roles[i] : NULL;
}

static int user_role_index(const struct auth_user *u, const uint8_t *role,
                           size_t len)
{
	uint32_t i;

	for (i = 0; i < u->n_roles; i++)
		if (same((const uint8_t *)u->roles[i], strlen(u->roles[i]),
		         role, len))
			return (int)i;
	return -1;
}

bool auth_is_root(const struct auth_user *u)
{
	return user_role_index(u, (const uint8_t *)AUTH_ROOT,
	                       strlen(AUTH_ROOT)) >= 0;
}

/* ---- life -----------------------------------------------------------------
 */

int auth_create(struct auth **out)
{
	*out = calloc(1, sizeof **out);
	return *out == NULL ? CAIRN_ENOMEM : 0;
}

static void user_free(struct auth_user *u)
{
	uint32_t i;

	for (i = 0; i < u->n_roles; i++)
		free(u->roles[i]);
	free(u->roles);
	free(u->name);
	free(u->hash);
}

static void role_free(struct auth_role *r)
{
	uint32_t i;

	for (i = 0; i < r->n_perms; i++) {
		free(r->perms[i].key);
		free(r->perms[i].end);
	}
	free(r->perms);
	free(r->name);
}

void auth_destroy(struct auth *a)
{
	uint32_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n_users; i++)
		user_free(&a->users[i]);
	for (i = 0; i < a->n_roles; i++)
		role_free(&a->roles[i]);
	free(a->users);
	free(a->roles);
	sodium_memzero(a->sk, sizeof a->sk);
	free(a);
}

void auth_keypair(const uint8_t seed[PROTO_SEED_BYTES],
                  uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                  uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* ---- applying writes ------------------------------------------------------
 */

#define FAIL(code, ...)                                                        \
	do {                                                                   \
		snprintf(msg, len, __VA_ARGS__);                               \
		return code;                                                   \
	} while (0)

/* Grows an array of n elements of size by one slot at index at. */
static void *insert_at(void *base, size_t size, uint32_t n, uint32_t at)
{
	char *p = realloc(base, (n + 1) * size);

	if (p == NULL)
		exec_out_of_memory();
	memmove(p + (at + 1) * size, p + at * size, (n - at) * size);
	memset(p + at * size, 0, size);
	return p;
}

static void remove_at(void *base, size_t size, uint32_t *n, uint32_t at)
{
	char *p = base;

	memmove(p + at * size, p + (at + 1) * size, (*n - at - 1) * size);
	(*n)--;
}

static int user_add(struct auth *a, const struct proto_req *req, char *msg,
                    size_t len, const char *who)
{
	struct auth_user *u;
	bool found;
	uint32_t at;

	if (!valid_name(req->user, req->user_len, true))
		FAIL(CAIRN_EINVAL,
		     "a user name is 1 to %d bytes, without control characters "
		     "or ':'",
		     PROTO_MAX_NAME);
	if (!valid_hash(req->hash, req->hash_len))
		FAIL(CAIRN_EINVAL, "user add: no valid password hash");
	at = find_name(a->users, sizeof *a->users, a->n_users, req->user,
	               req->user_len, &found);
	if (found)
		FAIL(CAIRN_EINVAL, "user %s already exists", who);
	if (a->n_users >= AUTH_MAX_USERS)
		FAIL(CAIRN_EINVAL, "at most %d users", AUTH_MAX_USERS);
	a->users = insert_at(a->users, sizeof *a->users, a->n_users, at);
	a->n_users++;
	u = &a->users[at];
	u->name = xstrdup(req->user, req->user_len);
	u->hash = xstrdup(req->hash, req->hash_len);
	return 0;
}

static struct auth_user *need_user(struct auth *a, const struct proto_req *req)
{
	return (struct auth_user *)auth_user(a, req->user, req->user_len);
}

static int user_delete(struct auth *a, const struct proto_req *req, char *msg,
                       size_t len, const char *who)
{
	struct auth_user *u = need_user(a, req);

	if (u == NULL)
		FAIL(CAIRN_EINVAL, "user %s not found", who);
	if (a->enabled && is_root_name(req->user, req->user_len))
		FAIL(CAIRN_EINVAL, "user root cannot be deleted while auth is "
		                   "enabled");
	user_free(u);
	remove_at(a->users, sizeof *a->users, &a->n_users,
	          (uint32_t)(u - a->users));
	return 0;
}

static int user_passwd(struct auth *a, const struct proto_req *req, char *msg,
                       size_t len, const char *who)
{
	struct auth_user *u = need_user(a, req);

	if (u == NULL)
		FAIL(CAIRN_EINVAL, "user %s not found", who);
	if (!valid_hash(req->hash, req->hash_len))
		FAIL(CAIRN_EINVAL, "user passwd: no valid password hash");
	free(u->hash);
	u->hash = xstrdup(req->hash, req->hash_len);
	return 0;
}

static int user_role(struct auth *a, const struct proto_req *req, char *msg,
                     size_t len, const char *who, const char *role)
{
	struct auth_user *u = need_user(a, req);
	bool root = is_root_name(req->role, req->role_len);
	int i;

	if (u == NULL)
		FAIL(CAIRN_EINVAL, "user %s not found", who);
	i = user_role_index(u, req->role, req->role_len);
	if (req->op == PROTO_OP_USER_REVOKE_ROLE) {
		if (i < 0)
			FAIL(CAIRN_EINVAL, "user %s does not have role %s", who,
			     role);
		if (a->enabled && root &&
		    is_root_name(req->user, req->user_len))
			FAIL(CAIRN_EINVAL, "user root cannot lose role root "
			                   "while auth is enabled");
		free(u->roles[i]);
		remove_at(u->roles, sizeof *u->roles, &u->n_roles, (uint32_t)i);
		return 0;
	}
	if (!root && auth_role(a, req->role, req->role_len) == NULL)
		FAIL(CAIRN_EINVAL, "role %s not found", role);
	if (i >= 0)
		FAIL(CAIRN_EINVAL, "user %s already has role %s", who, role);
	if (u->n_roles >= AUTH_MAX_USER_ROLES)
		FAIL(CAIRN_EINVAL, "a user has at most %d roles",
		     AUTH_MAX_USER_ROLES);
	u->roles =
	    insert_at(u->roles, sizeof *u->roles, u->n_roles, u->n_roles);
	u->roles[u->n_roles++] = xstrdup(req->role, req->role_len);
	return 0;
}

static int role_add(struct auth *a, const struct proto_req *req, char *msg,
                    size_t len, const char *role)
{
	bool found;
	uint32_t at;

	if (!valid_name(req->role, req->role_len, false))
		FAIL(CAIRN_EINVAL,
		     "a role name is 1 to %d bytes, without control characters",
		     PROTO_MAX_NAME);
	at = find_name(a->roles, sizeof *a->roles, a->n_roles, req->role,
	               req->role_len, &found);
	if (found || is_root_name(req->role, req->role_len))
		FAIL(CAIRN_EINVAL, "role %s already exists", role);
	if (a->n_roles >= AUTH_MAX_ROLES)
		FAIL(CAIRN_EINVAL, "at most %d roles", AUTH_MAX_ROLES);
	a->roles = insert_at(a->roles, sizeof *a->roles, a->n_roles, at);
	a->n_roles++;
	a->roles[at].name = xstrdup(req->role, req->role_len);
	return 0;
}

static int role_delete(struct auth *a, const struct proto_req *req, char *msg,
                       size_t len, const char *role)
{
	struct auth_role *r =
	    (struct auth_role *)auth_role(a, req->role, req->role_len);
	uint32_t i;
	int k;

	if (is_root_name(req->role, req->role_len))
		FAIL(CAIRN_EINVAL, "role root cannot be deleted");
	if (r == NULL)
		FAIL(CAIRN_EINVAL, "role %s not found", role);
	for (i = 0; i < a->n_users; i++) {
		k = user_role_index(&a->users[i], req->role, req->role_len);
		if (k >= 0) {
			free(a->users[i].roles[k]);
			remove_at(a->users[i].roles, sizeof(char *),
			          &a->users[i].n_roles, (uint32_t)k);
		}
	}
	role_free(r);
	remove_at(a->roles, sizeof *a->roles, &a->n_roles,
	          (uint32_t)(r - a->roles));
	return 0;
}

static int perm_index(const struct auth_role *r, const struct proto_req *req)
{
	uint32_t i;

	for (i = 0; i < r->n_perms; i++)
		if (same(r->perms[i].key, r->perms[i].key_len, req->key,
		         req->key_len) &&
		    same(r->perms[i].end, r->perms[i].end_len, req->end,
		         req->end_len))
			return (int)i;
	return -1;
}

static int role_perm(struct auth *a, const struct proto_req *req, char *msg,
                     size_t len, const char *role)
{
	struct auth_role *r =
	    (struct auth_role *)auth_role(a, req->role, req->role_len);
	struct auth_perm *p;
	char key[96];
	int i;

	if (is_root_name(req->role, req->role_len))
		FAIL(CAIRN_EINVAL, "role root has every permission already");
	if (r == NULL)
		FAIL(CAIRN_EINVAL, "role %s not found", role);
	if (req->key_len == 0)
		FAIL(CAIRN_EINVAL, "a permission needs a key");
	i = perm_index(r, req);
	if (req->op == PROTO_OP_ROLE_REVOKE_PERMISSION) {
		auth_printable(req->key, req->key_len, key, sizeof key);
		if (i < 0)
			FAIL(CAIRN_EINVAL,
			     "role %s has no permission on key %s%s", role, key,
			     req->end_len ? " with that range end" : "");
		free(r->perms[i].key);
		free(r->perms[i].end);
		remove_at(r->perms, sizeof *r->perms, &r->n_perms, (uint32_t)i);
		return 0;
	}
	if (i < 0) {
		if (r->n_perms >= AUTH_MAX_PERMS)
			FAIL(CAIRN_EINVAL, "a role has at most %d permissions",
			     AUTH_MAX_PERMS);
		r->perms = insert_at(r->perms, sizeof *r->perms, r->n_perms,
		                     r->n_perms);
		i = (int)r->n_perms++;
		p = &r->perms[i];
		p->key = xmemdup(req->key, req->key_len, false);
		p->key_len = req->key_len;
		p->end = xmemdup(req->end, req->end_len, false);
		p->end_len = req->end_len;
	}
	r->perms[i].mask = (unsigned)req->perm + 1; /* READ 1, WRITE 2, RW 3 */
	return 0;
}

static int auth_enable(struct auth *a, const struct proto_req *req, char *msg,
                       size_t len)
{
	const struct auth_user *root =
	    auth_user(a, (const uint8_t *)AUTH_ROOT, strlen(AUTH_ROOT));

	if (root == NULL || !auth_is_root(root))
		FAIL(
		    CAIRN_EINVAL,
		    "auth enable: a user 'root' holding role 'root' must exist "
		    "first (user add root; user grant-role root root)");
	if (req->seed_len != PROTO_SEED_BYTES)
		FAIL(CAIRN_EINVAL, "auth enable: no token signing seed");
	if (a->enabled)
		return 0;
	a->enabled = true;
	memcpy(a->seed, req->seed, PROTO_SEED_BYTES);
	a->has_seed = true;
	auth_keypair(a->seed, a->pk, a->sk);
	return 0;
}

int auth_apply(struct auth *a, const struct proto_req *req, char *msg,
               size_t len)
{
	char who[PROTO_MAX_NAME * 4 + 8];
	char role[PROTO_MAX_NAME * 4 + 8];
	int rv;

	auth_printable(req->user, req->user_len, who, sizeof who);
	auth_printable(req->role, req->role_len, role, sizeof role);
	switch (req->op) {
	case PROTO_OP_USER_ADD:
		rv = user_add(a, req, msg, len, who);
		break;
	case PROTO_OP_USER_DELETE:
		rv = user_delete(a, req, msg, len, who);
		break;
	case PROTO_OP_USER_PASSWD:
		rv = user_passwd(a, req, msg, len, who);
		break;
	case PROTO_OP_USER_GRANT_ROLE:
	case PROTO_OP_USER_REVOKE_ROLE:
		rv = user_role(a, req, msg, len, who, role);
		break;
	case PROTO_OP_ROLE_ADD:
		rv = role_add(a, req, msg, len, role);
		break;
	case PROTO_OP_ROLE_DELETE:
		rv = role_delete(a, req, msg, len, role);
		break;
	case PROTO_OP_ROLE_GRANT_PERMISSION:
	case PROTO_OP_ROLE_REVOKE_PERMISSION:
		rv = role_perm(a, req, msg, len, role);
		break;
	case PROTO_OP_AUTH_ENABLE:
		rv = auth_enable(a, req, msg, len);
		break;
	case PROTO_OP_AUTH_DISABLE:
		a->enabled = false;
		rv = 0;
		break;
	default:
		FAIL(CAIRN_EPROTO, "not an auth write");
	}
	if (rv == 0)
		a->revision++;
	return rv;
}

/* ---- reads ----------------------------------------------------------------
 */

static void put_cstr(struct mp_writer *w, const char *s)
{
	mp_put_str(w, s, strlen(s));
}

static void put_role_names(const struct auth *a, struct mp_writer *w)
{
	const char *root = AUTH_ROOT;
	bool root_done = false;
	uint32_t i;

	mp_put_array(w, a->n_roles + 1);
	for (i = 0; i < a->n_roles; i++) {
		if (!root_done && strcmp(root, a->roles[i].name) < 0) {
			put_cstr(w, root);
			root_done = true;
		}
		put_cstr(w, a->roles[i].name);
	}
	if (!root_done)
		put_cstr(w, root);
}

static void put_perms(const struct auth_role *r, struct mp_writer *w)
{
	uint32_t i;

	mp_put_array(w, r != NULL ? r->n_perms : 0);
	for (i = 0; r != NULL && i < r->n_perms; i++) {
		mp_put_array(w, 3);
		mp_put_uint(w, r->perms[i].mask - 1);
		mp_put_bin(w, r->perms[i].key, r->perms[i].key_len);
		mp_put_bin(w, r->perms[i].end, r->perms[i].end_len);
	}
}

int auth_read_fields(const struct auth *a, const struct proto_req *req,
                     struct mp_writer *w, int *code, char *msg, size_t len)
{
	const struct auth_user *u;
	const struct auth_role *r = NULL;
	char name[PROTO_MAX_NAME * 4 + 8];
	uint32_t i;

	*code = CAIRN_EINVAL;
	switch (req->op) {
	case PROTO_OP_USER_LIST:
		mp_put_key(w, "names");
		mp_put_array(w, a->n_users);
		for (i = 0; i < a->n_users; i++)
			put_cstr(w, a->users[i].name);
		return 1;
	case PROTO_OP_USER_GET:
		u = auth_user(a, req->user, req->user_len);
		if (u == NULL) {
			auth_printable(req->user, req->user_len, name,
			               sizeof name);
			snprintf(msg, len, "user %s not found", name);
			return -1;
		}
		mp_put_key(w, "user");
		put_cstr(w, u->name);
		mp_put_key(w, "names");
		mp_put_array(w, u->n_roles);
		for (i = 0; i < u->n_roles; i++)
			put_cstr(w, u->roles[i]);
		return 2;
	case PROTO_OP_ROLE_LIST:
		mp_put_key(w, "names");
		put_role_names(a, w);
		return 1;
	case PROTO_OP_ROLE_GET:
		if (!is_root_name(req->role, req->role_len)) {
			r = auth_role(a, req->role, req->role_len);
			if (r == NULL) {
				auth_printable(req->role, req->role_len, name,
				               sizeof name);
				snprintf(msg, len, "role %s not found", name);
				return -1;
			}
		}
		mp_put_key(w, "role");
		mp_put_str(w, req->role, req->role_len);
		mp_put_key(w, "perms");
		put_perms(r, w);
		return 2;
	default: /* AUTH_STATUS */
		mp_put_key(w, "en");
		mp_put_bool(w, a->enabled);
		mp_put_key(w, "arev");
		mp_put_uint(w, a->revision);
		return 2;
	}
}

/* ---- snapshots ------------------------------------------------------------
 */

int auth_dump(const struct auth *a, struct buf *out)
{
	struct mp_writer w;
	uint32_t i;
	uint32_t j;

	mp_writer_init(&w, out);
	mp_put_array(&w, 5);
	mp_put_bool(&w, a->enabled);
	mp_put_uint(&w, a->revision);
	if (a->has_seed)
		mp_put_bin(&w, a->seed, sizeof a->seed);
	else
		mp_put_nil(&w);
	mp_put_array(&w, a->n_users);
	for (i = 0; i < a->n_users; i++) {
		const struct auth_user *u = &a->users[i];
		mp_put_array(&w, 3);
		put_cstr(&w, u->name);
		put_cstr(&w, u->hash);
		mp_put_array(&w, u->n_roles);
		for (j = 0; j < u->n_roles; j++)
			put_cstr(&w, u->roles[j]);
	}
	mp_put_array(&w, a->n_roles);
	for (i = 0; i < a->n_roles; i++) {
		mp_put_array(&w, 2);
		put_cstr(&w, a->roles[i].name);
		put_perms(&a->roles[i], &w);
	}
	return w.err;
}

static bool load_str(struct mp_reader *r, size_t max, char **out)
{
	const uint8_t *p;
	uint32_t len;

	if (!mp_read_bytes(r, &p, &len) || len == 0 || len > max ||
	    memchr(p, '\0', len) != NULL)
		return false;
	*out = malloc(len + 1);
	if (*out == NULL)
		return false;
	memcpy(*out, p, len);
	(*out)[len] = '\0';
	return true;
}

static bool load_user(struct mp_reader *r, struct auth_user *u)
{
	uint32_t n;

	if (!mp_read_array(r, &n) || n != 3 ||
	    !load_str(r, PROTO_MAX_NAME, &u->name) ||
	    !load_str(r, PROTO_MAX_HASH, &u->hash) || !mp_read_array(r, &n) ||
	    n > AUTH_MAX_USER_ROLES)
		return false;
	u->roles = calloc(n ? n : 1, sizeof *u->roles);
	if (u->roles == NULL)
		return false;
	for (; u->n_roles < n; u->n_roles++)
		if (!load_str(r, PROTO_MAX_NAME, &u->roles[u->n_roles]))
			return false;
	return true;
}

static bool load_perm(struct mp_reader *r, struct auth_perm *p)
{
	const uint8_t *k;
	const uint8_t *e;
	uint64_t type;
	uint32_t n;

	if (!mp_read_array(r, &n) || n != 3 || !mp_read_uint(r, &type) ||
	    type > CAIRN_PERM_READWRITE || !mp_read_bytes(r, &k, &p->key_len) ||
	    p->key_len == 0 || p->key_len > PROTO_MAX_KEY ||
	    !mp_read_bytes(r, &e, &p->end_len) || p->end_len > PROTO_MAX_KEY)
		return false;
	p->mask = (unsigned)type + 1;
	p->key = malloc(p->key_len);
	p->end = malloc(p->end_len + 1);
	if (p->key == NULL || p->end == NULL)
		return false;
	memcpy(p->key, k, p->key_len);
	if (p->end_len > 0)
		memcpy(p->end, e, p->end_len);
	return true;
}

static bool load_role(struct mp_reader *r, struct auth_role *role)
{
	uint32_t n;

	if (!mp_read_array(r, &n) || n != 2 ||
	    !load_str(r, PROTO_MAX_NAME, &role->name) ||
	    !mp_read_array(r, &n) || n > AUTH_MAX_PERMS)
		return false;
	role->perms = calloc(n ? n : 1, sizeof *role->perms);
	if (role->perms == NULL)
		return false;
	for (; role->n_perms < n; role->n_perms++)
		if (!load_perm(r, &role->perms[role->n_perms])) {
			role->n_perms++; /* freed with the role */
			return false;
		}
	return true;
}

/* Names strictly ascending, as lookups need. */
static bool sorted(const void *base, size_t size, uint32_t n)
{
	uint32_t i;

	for (i = 1; i < n; i++) {
		const char *a = name_at(base, size, i - 1);
		const char *b = name_at(base, size, i);
		if (strcmp(a, b) >= 0)
			return false;
	}
	return true;
}

static bool load_body(struct mp_reader *r, struct auth *a)
{
	const uint8_t *seed;
	uint32_t len;
	uint32_t n;

	if (!mp_read_array(r, &n) || n != 5 || !mp_read_bool(r, &a->enabled) ||
	    !mp_read_uint(r, &a->revision))
		return false;
	if (mp_peek(r) == MP_NIL) {
		mp_read_nil(r);
	} else {
		if (!mp_read_bytes(r, &seed, &len) || len != PROTO_SEED_BYTES)
			return false;
		memcpy(a->seed, seed, len);
		a->has_seed = true;
		auth_keypair(a->seed, a->pk, a->sk);
	}
	if (a->enabled && !a->has_seed)
		return false;
	if (!mp_read_array(r, &n) || n > AUTH_MAX_USERS)
		return false;
	a->users = calloc(n ? n : 1, sizeof *a->users);
	if (a->users == NULL)
		return false;
	for (; a->n_users < n; a->n_users++)
		if (!load_user(r, &a->users[a->n_users])) {
			a->n_users++;
			return false;
		}
	if (!mp_read_array(r, &n) || n > AUTH_MAX_ROLES)
		return false;
	a->roles = calloc(n ? n : 1, sizeof *a->roles);
	if (a->roles == NULL)
		return false;
	for (; a->n_roles < n; a->n_roles++)
		if (!load_role(r, &a->roles[a->n_roles])) {
			a->n_roles++;
			return false;
		}
	return sorted(a->users, sizeof *a->users, a->n_users) &&
	       sorted(a->roles, sizeof *a->roles, a->n_roles);
}

int auth_load(struct mp_reader *r, struct auth **out)
{
	struct auth *a;

	if (auth_create(&a) != 0)
		return CAIRN_ENOMEM;
	if (!load_body(r, a)) {
		auth_destroy(a);
		return CAIRN_EPROTO;
	}
	*out = a;
	return 0;
}

/* ---- permissions ----------------------------------------------------------
 */

struct perm_group {
	const struct auth_perm *p;
	size_t n;
};

static bool is_zero_byte(const uint8_t *p, size_t len)
{
	return len == 1 && p[0] == 0;
}

/* The lower bound of a range: key "\0" with end "\0" means from the start. */
static size_t low_len(const uint8_t *key, size_t key_len, const uint8_t *end,
                      size_t end_len)
{
	return is_zero_byte(key, key_len) && is_zero_byte(end, end_len)
	           ? 0
	           : key_len;
}

static bool one_key_covered(const struct perm_group *g, size_t ng,
                            unsigned mask, const uint8_t *key, size_t len)
{
	size_t i;
	size_t j;

	for (i = 0; i < ng; i++)
		for (j = 0; j < g[i].n; j++) {
			const struct auth_perm *p = &g[i].p[j];
			size_t lo =
			    low_len(p->key, p->key_len, p->end, p->end_len);
			if ((p->mask & mask) != mask)
				continue;
			if (p->end_len == 0) {
				if (same(p->key, p->key_len, key, len))
					return true;
			} else if (cmp_bytes(p->key, lo, key, len) <= 0 &&
			           (is_zero_byte(p->end, p->end_len) ||
			            cmp_bytes(key, len, p->end, p->end_len) <
			                0)) {
				return true;
			}
		}
	return false;
}

/*
 * How it works: cur walks from the range's start; each round takes the
 * permission ranges that hold cur and moves cur to the furthest end among
 * them. The range is covered once cur reaches its end (or a permission
 * reaches infinity); it is not when no permission holds cur. cur only moves
 * forward, to a permission's end, so there are at most as many rounds as
 * permissions.
 */
static bool range_covered(const struct perm_group *g, size_t ng, unsigned mask,
                          const uint8_t *key, size_t key_len,
                          const uint8_t *end, size_t end_len)
{
	bool to_inf = is_zero_byte(end, end_len);
	const uint8_t *cur = key;
	size_t cur_len = low_len(key, key_len, end, end_len);
	size_t i;
	size_t j;

	for (;;) {
		const uint8_t *best = NULL;
		size_t best_len = 0;
		if (!to_inf && cmp_bytes(cur, cur_len, end, end_len) >= 0)
			return true;
		for (i = 0; i < ng; i++)
			for (j = 0; j < g[i].n; j++) {
				const struct auth_perm *p = &g[i].p[j];
				if ((p->mask & mask) != mask ||
				    p->end_len == 0 ||
				    cmp_bytes(p->key,
				              low_len(p->key, p->key_len,
				                      p->end, p->end_len),
				              cur, cur_len) > 0)
					continue;
				if (is_zero_byte(p->end, p->end_len))
					return true;
				if (cmp_bytes(cur, cur_len, p->end,
				              p->end_len) < 0 &&
				    (best == NULL ||
				     cmp_bytes(p->end, p->end_len, best,
				               best_len) > 0)) {
					best = p->end;
					best_len = p->end_len;
				}
			}
		if (best == NULL)
			return false;
		cur = best;
		cur_len = best_len;
	}
}

static bool covered(const struct perm_group *g, size_t ng, unsigned mask,
                    const uint8_t *key, size_t key_len, const uint8_t *end,
                    size_t end_len)
{
	if (end_len == 0)
		return one_key_covered(g, ng, mask, key, key_len);
	return range_covered(g, ng, mask, key, key_len, end, end_len);
}

bool auth_covered(const struct auth_perm *const *perms, size_t n,
                  const uint8_t *key, size_t key_len, const uint8_t *end,
                  size_t end_len)
{
	struct perm_group g[64];
	size_t i;

	if (n > 64)
		return false;
	for (i = 0; i < n; i++) {
		g[i].p = perms[i];
		g[i].n = 1;
	}
	/* Masks: the test's permissions say what they allow; ask for read. */
	return covered(g, n, AUTH_READ, key, key_len, end, end_len);
}

bool auth_allowed(const struct auth *a, const struct auth_user *u,
                  unsigned mask, const uint8_t *key, size_t key_len,
                  const uint8_t *end, size_t end_len)
{
	struct perm_group g[AUTH_MAX_USER_ROLES];
	size_t ng = 0;
	uint32_t i;

	if (auth_is_root(u))
		return true;
	for (i = 0; i < u->n_roles; i++) {
		const struct auth_role *r = auth_role(
		    a, (const uint8_t *)u->roles[i], strlen(u->roles[i]));
		if (r != NULL && ng < AUTH_MAX_USER_ROLES) {
			g[ng].p = r->perms;
			g[ng++].n = r->n_perms;
		}
	}
	if ((mask & AUTH_READ) &&
	    !covered(g, ng, AUTH_READ, key, key_len, end, end_len))
		return false;
	if ((mask & AUTH_WRITE) &&
	    !covered(g, ng, AUTH_WRITE, key, key_len, end, end_len))
		return false;
	return true;
}

/* ---- tokens ---------------------------------------------------------------
 */

size_t auth_token_sign(const uint8_t sk[crypto_sign_SECRETKEYBYTES],
                       const char *user, uint64_t revision, int64_t expiry,
                       uint8_t *out)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	unsigned long long n = 0;
	size_t ulen = strlen(user);

	if (ulen > PROTO_MAX_NAME)
		return 0;
	mp_writer_init(&w, &b);
	mp_put_array(&w, 3);
	mp_put_str(&w, user, ulen);
	mp_put_uint(&w, revision);
	mp_put_int(&w, expiry);
	if (w.err != 0 || b.len + crypto_sign_BYTES > AUTH_TOKEN_MAX) {
		buf_free(&b);
		return 0;
	}
	crypto_sign(out, &n, b.data, b.len, sk);
	buf_free(&b);
	return (size_t)n;
}

enum auth_token_status
auth_token_verify(const uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                  const uint8_t *tok, size_t len, int64_t now,
                  uint64_t revision, char *user)
{
	uint8_t body[AUTH_TOKEN_MAX];
	unsigned long long blen = 0;
	struct mp_reader r;
	const char *name;
	uint32_t name_len;
	uint32_t n;
	uint64_t rev;
	int64_t expiry;

	if (len < crypto_sign_BYTES || len > AUTH_TOKEN_MAX ||
	    crypto_sign_open(body, &blen, tok, len, pk) != 0)
		return AUTH_TOKEN_INVALID;
	mp_reader_init(&r, body, (size_t)blen);
	if (!mp_read_array(&r, &n) || n != 3 ||
	    !mp_read_str(&r, &name, &name_len) || name_len > PROTO_MAX_NAME ||
	    !mp_read_uint(&r, &rev) || !mp_read_int(&r, &expiry))
		return AUTH_TOKEN_INVALID;
	if (expiry <= now)
		return AUTH_TOKEN_EXPIRED;
	if (rev < revision)
		return AUTH_TOKEN_OLD;
	memcpy(user, name, name_len);
	user[name_len] = '\0';
	return AUTH_TOKEN_OK;
}

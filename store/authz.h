/*
 * authz: the server side of authentication and authorization: which user a
 * request comes from, whether that user may make it, and the auth
 * operations that need the member's help before the log (see auth.h for
 * the state they work on).
 *
 * What each request needs while auth is enabled (as etcd):
 *   HELLO, STATUS, MEMBERS, AUTHENTICATE, AUTH_STATUS, WATCH_CANCEL,
 *   WATCH_PROGRESS                   nothing, not even a token
 *   RANGE, WATCH                     read on [k, e)
 *   PUT, DELETE                      write on [k, e) (and read with prev_kv)
 *   TXN                              read on every compare's key, and what
 *                                    each operation of BOTH branches needs
 *   LEASE_GRANT, KEEPALIVE, TTL, LIST  any user
 *   LEASE_REVOKE                     write on every key attached to it
 *   everything else (users, roles, auth, COMPACT, SNAPSHOT, MEMBER_*)  root
 * The check runs when the request arrives, on the member that receives it,
 * against the auth state that member has applied; a watch is checked when
 * it is created.
 *
 * Passwords are hashed (crypto_pwhash_str, Argon2id with the INTERACTIVE
 * limits) and verified on libuv's thread pool, never on the loop: USER_ADD
 * and USER_PASSWD are proposed, with the hash in place of the password, once
 * their hash is ready; AUTHENTICATE is answered once the verification is
 * done. A request waiting there holds a reference on its connection.
 */
#ifndef CAIRN_STORE_AUTHZ_H
#define CAIRN_STORE_AUTHZ_H

#include <stdbool.h>

#include "proto.h"

struct server;
struct conn;

/* True when req may go on; else its error answer was sent. */
bool authz_check(struct server *s, struct conn *c, const struct proto_req *req);

/* AUTHENTICATE: verifies the password off the loop, then answers. */
void authz_authenticate(struct server *s, struct conn *c,
                        const struct proto_req *req);

/* USER_ADD, USER_PASSWD (hashed off the loop first) and AUTH_ENABLE (with a
 * new seed): proposes the request as the log must hold it. The caller
 * checked that this member leads. */
void authz_propose(struct server *s, struct conn *c,
                   const struct proto_req *req);

/* USER_LIST, USER_GET, ROLE_LIST, ROLE_GET, AUTH_STATUS from local state. */
void authz_answer_read(struct server *s, struct conn *c,
                       const struct proto_req *req);

#endif

/*
 * transport: Raft's peer connections, through the secure channel.
 *
 * A struct raft_uv_transport (see /usr/include/raft/uv.h) that replaces
 * libraft's plain TCP one. Every connection starts with a cleartext preamble
 * from the connecting side, so that tools in the middle (the fault-injection
 * proxy) can tell who speaks without the secret:
 *
 *   "CRNP"  uint32 LE version (1)  uint64 LE sender raft id         16 bytes
 *
 * then, unless the cluster runs --insecure, the secure channel's handshake
 * (lib/secure.h; the connecting side is the client), then the identity
 * message, inside the channel:
 *
 *   uint8 version (1)  uint64 LE raft id  uint16 LE length  address bytes
 *
 * The listening side checks that the authenticated id equals the preamble's,
 * then hands Raft one end of a socketpair and relays between the other end
 * and the TCP connection, sealing and opening frames. With --insecure the
 * preamble and identity go in plaintext and Raft gets the TCP connection
 * itself (no relay).
 *
 * The relay's buffers are bounded: it stops reading a side while more than
 * TRANSPORT_RELAY_HIGH bytes wait for the other. Handshakes (TCP connect
 * included) have TRANSPORT_HANDSHAKE_MS to finish. Failures are logged with
 * the peer's id and address, at most once per TRANSPORT_LOG_EVERY_MS per
 * peer (Raft retries every second).
 *
 * Async contract (raft's): every connect callback fires exactly once, with
 * RAFT_CANCELED for attempts still running when the transport closes; the
 * accept callback never fires after close; close's callback fires once every
 * handle of the transport is closed. All on the loop thread.
 */
#ifndef CAIRN_STORE_TRANSPORT_H
#define CAIRN_STORE_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#define TRANSPORT_MAGIC "CRNP"
#define TRANSPORT_VERSION 1
#define TRANSPORT_PREAMBLE_BYTES 16
#define TRANSPORT_HANDSHAKE_MS 5000
#define TRANSPORT_RELAY_HIGH (4u << 20)
#define TRANSPORT_LOG_EVERY_MS 10000

/*
 * Sets up t (before raft_uv_init) to listen on bind_address ("IP:PORT") and
 * to secure every connection with key (copied), or plaintext if key is NULL.
 * Returns 0 or RAFT_NOMEM.
 */
int transport_init(struct raft_uv_transport *t, uv_loop_t *loop,
                   const char *bind_address, const uint8_t *key);

/* Releases t's memory: after raft closed it (or if raft never started). */
void transport_free(struct raft_uv_transport *t);

#endif

/*
 * exec: carries out one decoded request against the MVCC keyspace and encodes
 * its answer (see proto.h for the answer's keys).
 *
 * Reads (RANGE) run wherever the server decides they may; writes (PUT, DELETE,
 * TXN) run only from the state machine's apply, on every member, in log order,
 * so they must be deterministic: they depend on nothing but the keyspace and
 * the request. The answer is written only when w is not NULL (the member that
 * proposed the write answers the client; the others just apply).
 */
#ifndef CAIRN_STORE_EXEC_H
#define CAIRN_STORE_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct mvcc;
struct leases;

/* The replicated state writes change. */
struct exec_store {
	struct mvcc *m;
	struct leases *leases;
};

/* What every answer's header says besides the revision. */
struct exec_hdr {
	uint64_t member_id;
	uint64_t term;
};

/* Encodes a whole RANGE answer (map with id, op, h...) into w. */
void exec_read(struct mvcc *m, const struct proto_req *req,
               const struct exec_hdr *h, struct mp_writer *w);

/* A transaction whose compares failed (its failure branch ran). */
#define EXEC_TXN_FAILED (-1)

/*
 * Applies a write and, if w is not NULL, encodes its whole answer. Returns its
 * outcome: 0 for success, EXEC_TXN_FAILED, or the CAIRN_E* code of a domain
 * error (nothing changed).
 */
int exec_write(const struct exec_store *s, const struct proto_req *req,
               const struct exec_hdr *h, struct mp_writer *w);

/* Encodes the answer to a retried write that was applied before with this
 * outcome: the same error if it failed, else a success marked dup. */
void exec_duplicate(const struct proto_req *req, const struct exec_hdr *h,
                    int64_t rev, int outcome, struct mp_writer *w);

/* Encodes an error answer {id, op, err, msg[, ldr][, la]}; leader 0 and
 * leader_addr NULL are left out. */
void exec_error(struct mp_writer *w, uint64_t id, unsigned op, int code,
                const char *msg, uint64_t leader, const char *leader_addr);

/* An error answer that also says the compact revision (CAIRN_ECOMPACTED). */
void exec_error_crev(struct mp_writer *w, uint64_t id, unsigned op, int code,
                     const char *msg, int64_t crev);

/* A write that cannot be applied for lack of memory would leave this member
 * different from the others: log and exit (the log replays on restart). */
void exec_out_of_memory(void) __attribute__((noreturn));

/* Encodes the header map under key "h" (the caller counts the field). */
void exec_put_header(struct mp_writer *w, const struct exec_hdr *h, int64_t rev);

#endif

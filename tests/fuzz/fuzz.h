/*
 * fuzz.h: what cairn's libFuzzer targets share.
 *
 * Each tests/fuzz/fuzz_NAME.c (listed in tests/fuzz/targets) defines
 * LLVMFuzzerTestOneInput() for one decoder, and fuzz_seeds(), which makes
 * its seed inputs with code and hands each to fuzz_emit(). fuzz.c, linked
 * into every target, provides LLVMFuzzerInitialize(): it silences cairn's
 * log and, when CAIRN_FUZZ_SEEDS names a directory, writes the seeds there
 * and exits (run.sh does that before fuzzing). reqgen.c builds and checks
 * requests for the targets that decode them; fsmrun.c runs them against an
 * in-memory state machine.
 *
 * A new target (the secure channel's handshake, say) is a line in
 * tests/fuzz/targets and a tests/fuzz/fuzz_NAME.c defining those two
 * functions: build.sh compiles every source of lib/ and store/ into the
 * library the targets link, and run.sh (make check, make fuzz) and make
 * dist take the list from that file.
 *
 * A failed FUZZ_CHECK() prints the broken invariant and aborts, so libFuzzer
 * keeps the input and reports it with a stack, like any other crash.
 * Everything a target allocates per input is freed before it returns:
 * LeakSanitizer runs after every input that allocated more than it freed.
 */
#ifndef CAIRN_FUZZ_H
#define CAIRN_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Defined by each target: calls fuzz_emit() once per seed input. */
void fuzz_seeds(void);
/* Writes one seed input (a copy of p) into the seed directory. */
void fuzz_emit(const void *p, size_t len);
/* The same, prefixed by a mode byte (targets that read one first). */
void fuzz_emit_mode(uint8_t mode, const void *p, size_t len);

void fuzz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__FILE__, __LINE__, #cond);                  \
	} while (0)

/* A heap copy of exactly len bytes (never NULL), so that a decoder reading
 * one byte past the input trips AddressSanitizer even where libFuzzer's own
 * buffer would not. Free it with free(). */
uint8_t *fuzz_dup(const void *p, size_t len);

/*
 * Memory a decoder may hold per byte of its input. Decoders size what they
 * allocate from counts already checked against the bytes left, so a hostile
 * count costs at most a small multiple of the frame: fuzz_heap_bytes()
 * (this thread's heap) before and after a decode bound what it kept. The
 * costliest today: a lease's key list in an answer, where a one-byte empty
 * key becomes a 64-byte struct cairn_kv and a 16-byte copy (~96 with the
 * arena's chunks).
 */
#define FUZZ_BYTES_PER_INPUT_BYTE 128
#define FUZZ_HEAP_SLACK (64u << 10)
size_t fuzz_heap_bytes(void);
#define FUZZ_CHECK_HEAP(before, input_len)                                     \
	FUZZ_CHECK(fuzz_heap_bytes() - (before) <=                             \
	           FUZZ_BYTES_PER_INPUT_BYTE * (input_len) + FUZZ_HEAP_SLACK)

/* The fuzzer's bytes read as a stream of choices; past the end, zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};
uint8_t fuzz_u8(struct fuzz_in *in);
uint64_t fuzz_be(struct fuzz_in *in, unsigned n); /* n big-endian bytes */
/* Up to want bytes (fewer at the end); *got says how many. */
const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t want, size_t *got);

/* ---- requests (reqgen.c) -------------------------------------------------
 *
 * fuzz_build_req() turns a stream into one request payload that reaches the
 * decoder's every field: an op byte (op = b % 24: every PROTO_OP_* code, then
 * an unknown code, then no "op" at all), an id byte, a field count byte,
 * then per field a selector byte naming the key (REQ_F_*) whose top bit asks
 * for a raw msgpack object from the stream instead of a value of the key's
 * type. Compare and branch arrays nest the same grammar one level down.
 */
enum reqgen_field {
	REQ_F_ID,
	REQ_F_OP,
	REQ_F_K,
	REQ_F_E,
	REQ_F_V,
	REQ_F_L,
	REQ_F_REV,
	REQ_F_LIM,
	REQ_F_PKV,
	REQ_F_SER,
	REQ_F_KO,
	REQ_F_CO,
	REQ_F_CID,
	REQ_F_SEQ,
	REQ_F_ACK,
	REQ_F_VER,
	REQ_F_TTL,
	REQ_F_KEYS,
	REQ_F_WID,
	REQ_F_NP,
	REQ_F_ND,
	REQ_F_PN,
	REQ_F_MID,
	REQ_F_PEER,
	REQ_F_CLI,
	REQ_F_NAME,
	REQ_F_CMP,
	REQ_F_S,
	REQ_F_F,
	REQ_F_USER,
	REQ_F_ROLE,
	REQ_F_PW,
	REQ_F_HASH,
	REQ_F_TOK,
	REQ_F_SEED,
	REQ_F_PERM,
	REQ_F_UNKNOWN,
	REQ_F_COUNT
};
enum reqgen_cmp_field {
	REQ_C_K,
	REQ_C_T,
	REQ_C_R,
	REQ_C_V,
	REQ_C_N,
	REQ_C_UNKNOWN,
	REQ_C_COUNT
};
/* Op bytes past the PROTO_OP_* codes. */
#define REQ_OP_UNKNOWN PROTO_OP_MAX
#define REQ_OP_NONE (PROTO_OP_MAX + 1)

/* Appends one request payload built from in to out. */
void fuzz_build_req(struct fuzz_in *in, struct buf *out);

/* Writing streams for fuzz_build_req() (seeds): a request header, then
 * fields. Numbers below 0xf0 take one byte, others nine. */
void reqseed_op(struct buf *s, unsigned op, uint8_t id, uint8_t n_fields);
void reqseed_uint(struct buf *s, unsigned field, uint64_t v);
void reqseed_bool(struct buf *s, unsigned field, bool v);
void reqseed_bin(struct buf *s, unsigned field, const char *p, size_t len);
#define reqseed_str(s, field, lit)                                             \
	reqseed_bin((s), (field), (lit), sizeof(lit) - 1)
/* An array field (REQ_F_CMP, REQ_F_S, REQ_F_F) of n elements: compares
 * follow as reqseed_cmp() plus fields (REQ_C_*), operations as requests. */
void reqseed_array(struct buf *s, unsigned field, uint8_t n);
void reqseed_cmp(struct buf *s, uint8_t n_fields);

/* A typical request of op (every PROTO_OP_* code) as a stream. */
void reqseed_example(struct buf *s, unsigned op);

/*
 * proto_decode_req(p, len, req), checked: on success every limit of proto.h
 * holds, every pointer lies inside the payload, and encoding the request
 * again and decoding that gives the same request; on failure the request
 * holds nothing and the message is set; either way the decoder kept at most
 * FUZZ_BYTES_PER_INPUT_BYTE per byte. p (best an exact-size heap copy, see
 * fuzz_dup) must outlive req, which the caller frees with proto_req_free().
 */
int fuzz_decode_req(const uint8_t *p, size_t len, struct proto_req *req);

/* Encodes req (every field it holds) as a request payload. */
void fuzz_encode_req(struct buf *out, const struct proto_req *req);

/* ---- a state machine to run requests against (fsmrun.c) -----------------
 *
 * A fresh in-memory state machine (store/fsm.h: keyspace, at-most-once
 * table, leases, member attributes) of member 1, fed as the store feeds its
 * own: RANGE through exec_read(), anything else as a log entry through the
 * state machine's apply(), which decodes it and runs exec_write(). Requests
 * the server would not propose (not writes, or not decodable) go through
 * apply() too, as a hostile leader could log them, when they are one whole
 * msgpack object. The answer to the last request is kept; every answer must
 * be one the client decodes.
 */
struct fsm;
struct fuzz_fsm {
	struct fsm *fsm;
	struct buf answer; /* the last request's answer, if answered */
	bool answered;
	struct mp_writer w;
	uint64_t batch;
};

/* Aborts when out of memory. */
void fuzz_fsm_init(struct fuzz_fsm *s);
void fuzz_fsm_close(struct fuzz_fsm *s);
/* Runs one request payload; returns whether it ran (and was answered). */
bool fuzz_fsm_run(struct fuzz_fsm *s, const uint8_t *p, size_t len);
/* Hands a whole log entry's bytes to apply(). */
void fuzz_fsm_apply(struct fuzz_fsm *s, const uint8_t *entry, size_t len);
/* Builds the request of a reqgen stream (reqseed_*) and runs it. */
bool fuzz_fsm_run_stream(struct fuzz_fsm *s, const struct buf *stream);
/* Fills s with a little of everything: keys with history, a deletion, a
 * transaction, leases with keys, a client's writes, member attributes, a
 * compaction. */
void fuzz_fsm_populate(struct fuzz_fsm *s);
/*
 * Checks a state: it snapshots, restores into a new state machine with the
 * same revision, compact revision, key count, size, clients, leases and
 * members, which snapshots to the same bytes; a count of every key agrees
 * with the key count; the change history above the compact revision walks
 * in order.
 */
void fuzz_fsm_check(struct fsm *f);

#endif

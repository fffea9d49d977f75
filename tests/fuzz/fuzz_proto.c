/*
 * fuzz_proto: the store's request decoder (proto_decode_req) over requests
 * built from the fuzzer's bytes (reqgen.c), so every op and every field is
 * one byte away: a valid envelope whose fields take typed or raw values.
 * fuzz_proto_raw feeds it arbitrary bytes instead.
 */
#include <stdlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct buf b = BUF_INIT;
	struct proto_req req;
	uint8_t *p;

	fuzz_build_req(&in, &b);
	p = fuzz_dup(b.data, b.len);
	fuzz_decode_req(p, b.len, &req);
	proto_req_free(&req);
	free(p);
	buf_free(&b);
	return 0;
}

void fuzz_seeds(void)
{
	struct buf s = BUF_INIT;
	unsigned op;

	for (op = 0; op < PROTO_OP_MAX; op++) {
		buf_reset(&s);
		reqseed_example(&s, op);
		fuzz_emit(s.data, s.len);
	}
	buf_free(&s);
}

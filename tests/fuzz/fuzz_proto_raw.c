/*
 * fuzz_proto_raw: the store's request decoder (proto_decode_req) over
 * arbitrary bytes, as a client may send them in a frame. Seeds: the typical
 * request of every op, encoded.
 */
#include <stdlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_req req;

	/* libFuzzer's copy of the input is exactly size bytes long. */
	fuzz_decode_req(data, size, &req);
	proto_req_free(&req);
	return 0;
}

void fuzz_seeds(void)
{
	struct buf s = BUF_INIT;
	struct buf b = BUF_INIT;
	struct fuzz_in in;
	unsigned op;

	for (op = 0; op < PROTO_OP_MAX; op++) {
		buf_reset(&s);
		buf_reset(&b);
		reqseed_example(&s, op);
		in.p = s.data;
		in.n = s.len;
		fuzz_build_req(&in, &b);
		fuzz_emit(b.data, b.len);
	}
	buf_free(&s);
	buf_free(&b);
}

/*
 * rawframe: speaks cairn's wire protocol byte by byte over a plain blocking
 * socket, to send a store what no well-behaved client would. Used by
 * malformed.sh.
 *
 *   rawframe HOST:PORT CASE
 *
 *   rawframe HOST:PORT slow-watch PREFIX PAUSE_MS COUNT
 *
 * slow-watch opens a watch on PREFIX from the next revision, reads nothing
 * for PAUSE_MS (the store must stop sending when its buffer for us is full),
 * then reads until COUNT put events arrived, checking that each event's
 * revision is above the one before (the writes it watches are single puts, one
 * per revision: so none twice, none out of order), and prints
 * "events N revisions A..B". A COUNT of 0 instead expects the store to end
 * the watch as compacted (the history it lagged behind was compacted away
 * while it was not reading) and succeeds when it does.
 *
 *   rawframe HOST:PORT snapshot FILE
 *
 * snapshot asks for the member's state (SNAPSHOT) and writes it to FILE as a
 * backup (lib/backup.h), as cairnctl snapshot save does.
 *
 *   rawframe HOST:PORT wrong-secret|plaintext-hello|tamper|replay|reorder|
 *                      truncate-frame
 *
 * The secure channel's cases: a handshake with another secret (refused by
 * both sides); a plaintext HELLO to a secure store (answered CAIRN_EAUTH in
 * plaintext); after a good handshake, a sealed frame with one bit flipped,
 * the same sealed frame sent twice, two frames sent in the wrong order (each
 * must make the store end the channel with an alert naming the frame that
 * failed authentication); a sealed frame cut short at the end of the stream.
 *
 * Everything else goes through the secure channel when the environment
 * names a secret (CAIRN_SECRET_FILE or CAIRN_SECRET), in plaintext when it
 * does not (or CAIRN_INSECURE is set): the cases speak the same frames.
 *
 * Each case sends its bytes, then reads answers until the store closes the
 * connection or 3 seconds pass, and prints one line per answer:
 *   answer op=N err=N msg=...
 * followed by "closed" if the store closed the connection. Exit status 0 when
 * the exchange went as the case expects (printed as "expect: ..."), 1 if not.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backup.h"
#include "cairn.h"
#include "frame.h"
#include "mp.h"
#include "proto.h"
#include "secret.h"
#include "secure_fd.h"

static struct secure_fd net; /* the connection, plaintext or secure */
static uint8_t secret[SECURE_KEY_BYTES];

/* The secret from the environment, as libcairn finds it; NULL: plaintext. */
static const uint8_t *env_key(void)
{
	const char *file = getenv("CAIRN_SECRET_FILE");
	const char *text = getenv("CAIRN_SECRET");
	const char *insecure = getenv("CAIRN_INSECURE");
	char err[512];
	int rv;

	if (insecure != NULL && *insecure != '\0' && strcmp(insecure, "0") != 0)
		return NULL;
	if (text != NULL && *text != '\0')
		rv = secret_parse(text, secret, err, sizeof err);
	else if (file != NULL && *file != '\0')
		rv = secret_load_file(file, secret, err, sizeof err);
	else
		return NULL;
	if (rv != 0) {
		fprintf(stderr, "rawframe: %s\n", err);
		exit(2);
	}
	return secret;
}

/* Waits up to ms for bytes to read (decrypted bytes count as ready). */
static bool net_wait(int fd, int ms)
{
	struct pollfd pfd = {fd, POLLIN, 0};

	return secure_fd_pending(&net) || poll(&pfd, 1, ms) == 1;
}

/* recv() through the channel; an error (an alert from the store) is
 * printed and counts as the end of the stream. */
static ssize_t net_recv(void *p, size_t n)
{
	ssize_t k = secure_fd_recv(&net, p, n);

	if (k < 0)
		printf("error: %s\n", net.err);
	return k;
}

struct answer {
	uint64_t op;
	uint64_t err;
	char msg[256];
};

static int dial(const char *endpoint)
{
	struct sockaddr_in sa;
	char host[64];
	char *colon;
	int fd;

	snprintf(host, sizeof host, "%s", endpoint);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		exit(1);
	}
	return fd;
}

/* dial, then the handshake with the environment's secret (if any). */
static int dial_channel(const char *endpoint, const uint8_t *k)
{
	int fd = dial(endpoint);

	if (fd >= 0 && secure_fd_open(&net, fd, k) != 0) {
		printf("handshake failed: %s\n", net.err);
		exit(1);
	}
	return fd;
}

/* Bytes on the wire as they are, bypassing the channel. */
static void send_raw(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t k;

	while (n > 0) {
		k = send(fd, b, n, MSG_NOSIGNAL);
		if (k <= 0) {
			if (k < 0 && errno == EINTR)
				continue;
			return; /* the store may close early; reading shows it */
		}
		b += k;
		n -= (size_t)k;
	}
}

/* Through the channel (sealed as one frame when secure). */
static void send_all(int fd, const void *p, size_t n)
{
	(void)fd;
	(void)secure_fd_send(&net, p, n); /* reading shows any failure */
}

static void send_frame(int fd, const struct buf *payload)
{
	struct buf b = BUF_INIT;
	uint8_t hdr[4];

	proto_put_len(hdr, (uint32_t)payload->len);
	if (buf_append(&b, hdr, 4) != 0 ||
	    buf_append(&b, payload->data, payload->len) != 0)
		exit(2);
	send_all(fd, b.data, b.len);
	buf_free(&b);
}

/* A HELLO request's payload (without its length) into b. */
static void hello_payload(struct buf *b, uint64_t version)
{
	struct mp_writer w;

	mp_writer_init(&w, b);
	mp_put_map(&w, 3);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 1);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_HELLO);
	mp_put_key(&w, "ver");
	mp_put_uint(&w, version);
}

static void send_hello(int fd, uint64_t version)
{
	struct buf b = BUF_INIT;

	hello_payload(&b, version);
	send_frame(fd, &b);
	buf_free(&b);
}

static void send_put(int fd, uint64_t id, const char *k, const char *v)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;

	mp_writer_init(&w, &b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_PUT);
	mp_put_key(&w, "k");
	mp_put_bin(&w, k, strlen(k));
	mp_put_key(&w, "v");
	mp_put_bin(&w, v, strlen(v));
	send_frame(fd, &b);
	buf_free(&b);
}

static void send_status(int fd, uint64_t id)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;

	mp_writer_init(&w, &b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, id);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_STATUS);
	send_frame(fd, &b);
	buf_free(&b);
}

static void parse_answer(const uint8_t *p, uint32_t len, struct answer *a)
{
	struct mp_reader r;
	const char *k;
	const char *s;
	uint32_t klen;
	uint32_t slen;
	uint32_t n;

	memset(a, 0, sizeof *a);
	mp_reader_init(&r, p, len);
	if (!mp_read_map(&r, &n)) {
		snprintf(a->msg, sizeof a->msg, "(not a map)");
		return;
	}
	while (n-- > 0 && mp_read_str(&r, &k, &klen)) {
		if (MP_KEY_IS(k, klen, "op"))
			mp_read_uint(&r, &a->op);
		else if (MP_KEY_IS(k, klen, "err"))
			mp_read_uint(&r, &a->err);
		else if (MP_KEY_IS(k, klen, "msg") && mp_read_str(&r, &s, &slen))
			snprintf(a->msg, sizeof a->msg, "%.*s", (int)slen, s);
		else
			mp_skip(&r);
	}
}

/* Reads answers until close or timeout; returns how many, the last in *last;
 * *closed tells whether the store closed the connection. */
static int read_answers(int fd, struct answer *last, int *closed)
{
	struct frame_reader fr;
	const uint8_t *payload;
	uint32_t len;
	uint8_t *p;
	size_t room;
	ssize_t k;
	int count = 0;

	*closed = 0;
	frame_reader_init(&fr, PROTO_RESP_FRAME_MAX);
	while (net_wait(fd, 3000)) {
		if (frame_space(&fr, 65536, &p, &room) != 0)
			break;
		k = net_recv(p, room);
		if (k <= 0) {
			*closed = 1;
			break;
		}
		frame_commit(&fr, (size_t)k);
		while (frame_next(&fr, &payload, &len) == 1) {
			parse_answer(payload, len, last);
			printf("answer op=%llu err=%llu msg=%s\n",
			       (unsigned long long)last->op,
			       (unsigned long long)last->err, last->msg);
			count++;
		}
	}
	if (*closed)
		printf("closed\n");
	frame_reader_close(&fr);
	return count;
}

static void send_bytes_frame(int fd, const uint8_t *p, size_t n)
{
	struct buf b = {(uint8_t *)p, n, n};

	send_frame(fd, &b);
}

/* Each case returns the error code its last answer must carry (0 = success)
 * and whether the connection must be closed by the store. */
static int run_case(int fd, const char *name, int *want_err, int *want_close)
{
	static const uint8_t garbage[] = {0xc1, 0xff, 0x00, 0x13};
	/* a map of one pair whose value declares 2^32-1 array elements */
	static const uint8_t hostile[] = {0x81, 0xa2, 'i', 'd', 0xdd, 0xff, 0xff,
	                                  0xff, 0xff, 0x01};
	/* a map declaring 2^32-1 pairs */
	static const uint8_t hostile_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	/* a key whose string length claims 4 GiB */
	static const uint8_t hostile_str[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff};
	uint8_t hdr[4];

	*want_close = 1;
	*want_err = CAIRN_EPROTO;
	if (strcmp(name, "hello") == 0) {
		send_hello(fd, PROTO_VERSION);
		*want_err = 0;
		*want_close = 0;
	} else if (strcmp(name, "status") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_status(fd, 2);
		*want_err = 0;
		*want_close = 0;
	} else if (strcmp(name, "bad-version") == 0) {
		send_hello(fd, 999);
		*want_err = CAIRN_EVERSION;
	} else if (strcmp(name, "no-hello") == 0) {
		send_put(fd, 5, "k", "v");
	} else if (strcmp(name, "oversize") == 0) {
		send_hello(fd, PROTO_VERSION);
		proto_put_len(hdr, 0xffffffffu);
		send_all(fd, hdr, 4);
		*want_err = CAIRN_ETOOBIG;
	} else if (strcmp(name, "garbage") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_bytes_frame(fd, garbage, sizeof garbage);
	} else if (strcmp(name, "hostile-array") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_bytes_frame(fd, hostile, sizeof hostile);
	} else if (strcmp(name, "hostile-map") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_bytes_frame(fd, hostile_map, sizeof hostile_map);
	} else if (strcmp(name, "hostile-str") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_bytes_frame(fd, hostile_str, sizeof hostile_str);
	} else if (strcmp(name, "truncated") == 0) {
		send_hello(fd, PROTO_VERSION);
		proto_put_len(hdr, 100);
		send_all(fd, hdr, 4);
		send_all(fd, garbage, sizeof garbage);
		shutdown(fd, SHUT_WR);
	} else if (strcmp(name, "empty-frame") == 0) {
		send_hello(fd, PROTO_VERSION);
		send_bytes_frame(fd, garbage, 0);
	} else {
		fprintf(stderr, "rawframe: unknown case '%s'\n", name);
		exit(2);
	}
	return 0;
}

/* The fields of an EVENTS frame slow_watch checks. */
struct events {
	uint64_t op;
	int64_t rev;
	uint32_t n_put;
	bool cancel;
	uint64_t err;
};

static bool parse_events(const uint8_t *p, uint32_t len, struct events *e,
                         char *last_key, size_t last_cap, int64_t *last_rev)
{
	struct mp_reader r;
	const char *k;
	uint32_t klen;
	uint32_t n;
	uint32_t i;
	uint32_t m;

	memset(e, 0, sizeof *e);
	mp_reader_init(&r, p, len);
	if (!mp_read_map(&r, &n))
		return false;
	while (n-- > 0 && mp_read_str(&r, &k, &klen)) {
		if (MP_KEY_IS(k, klen, "op")) {
			mp_read_uint(&r, &e->op);
		} else if (MP_KEY_IS(k, klen, "cancel")) {
			e->cancel = true;
			mp_skip(&r);
		} else if (MP_KEY_IS(k, klen, "err")) {
			mp_read_uint(&r, &e->err);
		} else if (MP_KEY_IS(k, klen, "ev") && mp_read_array(&r, &m)) {
			for (i = 0; i < m; i++) {
				uint32_t three;
				uint64_t type;
				uint32_t six;
				const uint8_t *key;
				uint32_t key_len;
				int64_t v;
				int64_t mod;
				if (!mp_read_array(&r, &three) || !mp_read_uint(&r, &type) ||
				    !mp_read_array(&r, &six) || !mp_read_bytes(&r, &key, &key_len))
					return false;
				mp_skip(&r);           /* value */
				mp_read_int(&r, &v);   /* create */
				mp_read_int(&r, &mod); /* mod */
				mp_skip(&r);
				mp_skip(&r);
				mp_skip(&r); /* prev */
				if (mod <= *last_rev) {
					printf("revision %lld after %lld\n", (long long)mod,
					       (long long)*last_rev);
					return false;
				}
				*last_rev = mod;
				snprintf(last_key, last_cap, "%.*s", (int)key_len, key);
				e->n_put += type == 0;
			}
		} else {
			mp_skip(&r);
		}
	}
	return mp_ok(&r);
}

static void send_watch(int fd, const char *prefix)
{
	struct buf b = BUF_INIT;
	struct mp_writer w;
	uint8_t end[256];
	size_t n = strlen(prefix);

	memcpy(end, prefix, n);
	end[n - 1]++; /* the test's prefixes never end in 0xff */
	mp_writer_init(&w, &b);
	mp_put_map(&w, 4);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_WATCH);
	mp_put_key(&w, "k");
	mp_put_bin(&w, prefix, n);
	mp_put_key(&w, "e");
	mp_put_bin(&w, end, n);
	send_frame(fd, &b);
	buf_free(&b);
}

static int slow_watch(int fd, const char *prefix, int pause_ms, long count)
{
	struct frame_reader fr;
	struct events e;
	const uint8_t *payload;
	char last_key[256] = "";
	int64_t first = 0;
	int64_t last = 0;
	long seen = 0;
	uint32_t len;
	uint8_t *p;
	size_t room;
	ssize_t k;

	send_hello(fd, PROTO_VERSION);
	send_watch(fd, prefix);
	usleep((useconds_t)pause_ms * 1000);
	frame_reader_init(&fr, PROTO_RESP_FRAME_MAX);
	while ((count == 0 || seen < count) && net_wait(fd, 10000)) {
		if (frame_space(&fr, 65536, &p, &room) != 0)
			break;
		k = net_recv(p, room);
		if (k <= 0)
			break;
		frame_commit(&fr, (size_t)k);
		while (frame_next(&fr, &payload, &len) == 1) {
			if (!parse_events(payload, len, &e, last_key, sizeof last_key,
			                  &last)) {
				printf("bad events frame\n");
				frame_reader_close(&fr);
				return 1;
			}
			if (e.cancel) {
				printf("watch ended by the store: error %llu after %ld events\n",
				       (unsigned long long)e.err, seen);
				frame_reader_close(&fr);
				return count == 0 && e.err == CAIRN_ECOMPACTED ? 0 : 1;
			}
			if (e.op == PROTO_OP_EVENTS && e.n_put > 0 && first == 0)
				first = last;
			seen += e.n_put;
		}
	}
	frame_reader_close(&fr);
	printf("events %ld revisions %lld..%lld\n", seen, (long long)first,
	       (long long)last);
	return count > 0 && seen == count ? 0 : 1;
}

static int save_snapshot(int fd, const char *file)
{
	struct frame_reader fr;
	struct buf b = BUF_INIT;
	struct mp_writer w;
	struct mp_reader r;
	const uint8_t *payload;
	const uint8_t *snap = NULL;
	uint8_t header[BACKUP_HEADER_SIZE];
	uint32_t snap_len = 0;
	uint32_t len;
	uint32_t n;
	int64_t rev = 0;
	uint8_t *p;
	size_t room;
	ssize_t k;
	const char *key;
	uint32_t klen;
	FILE *f;

	send_hello(fd, PROTO_VERSION);
	mp_writer_init(&w, &b);
	mp_put_map(&w, 2);
	mp_put_key(&w, "id");
	mp_put_uint(&w, 2);
	mp_put_key(&w, "op");
	mp_put_uint(&w, PROTO_OP_SNAPSHOT);
	send_frame(fd, &b);
	buf_free(&b);
	frame_reader_init(&fr, PROTO_RESP_FRAME_MAX);
	while (snap == NULL) {
		if (frame_space(&fr, 65536, &p, &room) != 0)
			return 1;
		k = net_recv(p, room);
		if (k <= 0)
			return 1;
		frame_commit(&fr, (size_t)k);
		while (snap == NULL && frame_next(&fr, &payload, &len) == 1) {
			mp_reader_init(&r, payload, len);
			if (!mp_read_map(&r, &n))
				return 1;
			while (n-- > 0 && mp_read_str(&r, &key, &klen)) {
				if (MP_KEY_IS(key, klen, "snap"))
					mp_read_bytes(&r, &snap, &snap_len);
				else if (MP_KEY_IS(key, klen, "rev"))
					mp_read_int(&r, &rev);
				else
					mp_skip(&r);
			}
		}
	}
	f = fopen(file, "wb");
	if (f == NULL || backup_header(header, rev, snap, snap_len) != 0 ||
	    fwrite(header, 1, sizeof header, f) != sizeof header ||
	    fwrite(snap, 1, snap_len, f) != snap_len || fclose(f) != 0)
		return 1;
	printf("saved revision %lld, %u bytes\n", (long long)rev, snap_len);
	frame_reader_close(&fr);
	return 0;
}

/* ---- the secure channel's cases ----------------------------------------- */

/* A plaintext HELLO frame (its length, then its payload) into b. */
static void hello_frame(struct buf *b)
{
	struct buf payload = BUF_INIT;
	uint8_t hdr[4];

	hello_payload(&payload, PROTO_VERSION);
	proto_put_len(hdr, (uint32_t)payload.len);
	if (buf_append(b, hdr, 4) != 0 ||
	    buf_append(b, payload.data, payload.len) != 0)
		exit(2);
	buf_free(&payload);
}

/* Seals HELLO (and a second HELLO, as frame two) with the channel's state,
 * without sending them. */
static void seal_two(struct buf *one, struct buf *two)
{
	struct buf hello = BUF_INIT;

	hello_frame(&hello);
	if (secure_seal(&net.s, hello.data, hello.len, one) != 0 ||
	    secure_seal(&net.s, hello.data, hello.len, two) != 0)
		exit(2);
	buf_free(&hello);
}

/* Reads until the store ends the channel; true when its alert names what
 * the case expects. */
static bool expect_alert(int fd, const char *want)
{
	struct answer last;
	int closed;

	(void)read_answers(fd, &last, &closed);
	printf("expect: the store's alert '%s'\n", want);
	return closed && strstr(net.err, want) != NULL;
}

static int secure_case(const char *ep, const char *name)
{
	struct buf one = BUF_INIT;
	struct buf two = BUF_INIT;
	struct answer last;
	int closed;
	int ok = 0;
	int fd;
	int rv;

	if (strcmp(name, "wrong-secret") == 0) {
		randombytes_buf(secret, sizeof secret);
		fd = dial(ep);
		rv = secure_fd_open(&net, fd, secret);
		printf("handshake: %s\n", rv == 0 ? "open" : net.err);
		ok = rv == CAIRN_EAUTH &&
		     strstr(net.err, "does not know the cluster secret") != NULL;
		close(fd);
		return ok ? 0 : 1;
	}
	if (strcmp(name, "plaintext-hello") == 0) {
		fd = dial_channel(ep, NULL);
		hello_frame(&one);
		send_raw(fd, one.data, one.len);
		(void)read_answers(fd, &last, &closed);
		close(fd);
		buf_free(&one);
		printf("expect: err=%d closed\n", CAIRN_EAUTH);
		return (int)last.err == CAIRN_EAUTH && closed ? 0 : 1;
	}
	fd = dial_channel(ep, env_key());
	if (!net.secure) {
		printf("rawframe: %s needs a secret in the environment\n", name);
		return 2;
	}
	seal_two(&one, &two);
	if (strcmp(name, "tamper") == 0) {
		one.data[one.len - 3] ^= 0x20;
		send_raw(fd, one.data, one.len);
		ok = expect_alert(fd, "frame 1: authentication failed (tampered, "
		                      "replayed or reordered)");
	} else if (strcmp(name, "replay") == 0) {
		send_raw(fd, one.data, one.len);
		send_raw(fd, one.data, one.len);
		ok = expect_alert(fd, "frame 2: authentication failed");
	} else if (strcmp(name, "reorder") == 0) {
		send_raw(fd, two.data, two.len);
		send_raw(fd, one.data, one.len);
		ok = expect_alert(fd, "frame 1: authentication failed");
	} else if (strcmp(name, "truncate-frame") == 0) {
		send_raw(fd, one.data, one.len);
		send_raw(fd, two.data, two.len - 5);
		shutdown(fd, SHUT_WR);
		(void)read_answers(fd, &last, &closed);
		printf("expect: the HELLO answered, then closed\n");
		ok = closed && last.err == 0 && last.op == PROTO_OP_HELLO;
	} else {
		fprintf(stderr, "rawframe: unknown case '%s'\n", name);
		return 2;
	}
	buf_free(&one);
	buf_free(&two);
	close(fd);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct answer last;
	int want_err;
	int want_close;
	int closed;
	int n;
	int fd;

	if (argc == 3 && (strcmp(argv[2], "wrong-secret") == 0 ||
	                  strcmp(argv[2], "plaintext-hello") == 0 ||
	                  strcmp(argv[2], "tamper") == 0 ||
	                  strcmp(argv[2], "replay") == 0 ||
	                  strcmp(argv[2], "reorder") == 0 ||
	                  strcmp(argv[2], "truncate-frame") == 0)) {
		n = secure_case(argv[1], argv[2]);
		secure_fd_close(&net);
		return n;
	}
	if (argc == 6 && strcmp(argv[2], "slow-watch") == 0) {
		fd = dial_channel(argv[1], env_key());
		if (fd < 0)
			return 2;
		n = slow_watch(fd, argv[3], atoi(argv[4]), atol(argv[5]));
		close(fd);
		return n;
	}
	if (argc == 4 && strcmp(argv[2], "snapshot") == 0) {
		fd = dial_channel(argv[1], env_key());
		if (fd < 0)
			return 2;
		n = save_snapshot(fd, argv[3]);
		close(fd);
		return n;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: rawframe HOST:PORT CASE\n");
		return 2;
	}
	fd = dial_channel(argv[1], env_key());
	if (fd < 0) {
		fprintf(stderr, "rawframe: bad endpoint '%s'\n", argv[1]);
		return 2;
	}
	run_case(fd, argv[2], &want_err, &want_close);
	n = read_answers(fd, &last, &closed);
	close(fd);
	secure_fd_close(&net);
	printf("expect: err=%d %s\n", want_err, want_close ? "closed" : "open");
	if (n == 0 || (int)last.err != want_err || closed != want_close)
		return 1;
	return 0;
}

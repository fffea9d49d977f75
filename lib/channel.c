/* channel: plaintext or secure byte path under the frame layer (channel.h). */
#include "channel.h"

#include <stdio.h>
#include <stdlib.h>

#include "cairn.h"

int channel_init(struct channel *ch, const uint8_t *key, bool server)
{
	struct buf empty = BUF_INIT;
	int rv;

	ch->sec = NULL;
	ch->raw = empty;
	if (key == NULL)
		return 0;
	ch->sec = malloc(sizeof *ch->sec);
	if (ch->sec == NULL)
		return CAIRN_ENOMEM;
	rv = secure_init(ch->sec, server ? SECURE_SERVER : SECURE_CLIENT, key);
	if (rv != 0) {
		free(ch->sec);
		ch->sec = NULL;
	}
	return rv;
}

void channel_close(struct channel *ch)
{
	if (ch->sec != NULL) {
		secure_close(ch->sec);
		free(ch->sec);
		ch->sec = NULL;
	}
	buf_free(&ch->raw);
}

int channel_start(struct channel *ch)
{
	return ch->sec != NULL ? secure_start(ch->sec, &ch->raw) : 0;
}

int channel_space(struct channel *ch, struct frame_reader *fr, size_t want,
                  uint8_t **p, size_t *len)
{
	if (ch->sec == NULL)
		return frame_space(fr, want, p, len);
	return secure_space(ch->sec, want, p, len);
}

int channel_commit(struct channel *ch, struct frame_reader *fr, size_t n)
{
	if (ch->sec == NULL) {
		frame_commit(fr, n);
		return 0;
	}
	return secure_commit(ch->sec, n, &ch->raw, frame_sink(fr));
}

int channel_wire(struct channel *ch, struct buf *out, struct buf *wire)
{
	struct buf tmp;
	int rv;

	if (ch->sec == NULL) {
		tmp = *wire;
		*wire = *out;
		*out = tmp;
		return 0;
	}
	if (ch->raw.len > 0) {
		/* The raw buffer becomes the wire, so no copy in the common
		 * case of a handshake message alone. */
		tmp = *wire;
		*wire = ch->raw;
		ch->raw = tmp;
	}
	if (out->len == 0 || !secure_can_seal(ch->sec))
		return 0;
	rv = secure_seal(ch->sec, out->data, out->len, wire);
	if (rv != 0)
		return rv;
	buf_reset(out);
	return 0;
}

void channel_last_words(struct channel *ch, uv_stream_t *s)
{
	uv_buf_t b;

	if (ch->raw.len == 0)
		return;
	b = uv_buf_init((char *)ch->raw.data, (unsigned)ch->raw.len);
	(void)uv_try_write(s, &b, 1);
	buf_reset(&ch->raw);
}

const char *channel_eof(struct channel *ch)
{
	return ch->sec != NULL ? secure_eof(ch->sec) : NULL;
}

const char *channel_errmsg(const struct channel *ch)
{
	return ch->sec != NULL ? secure_errmsg(ch->sec) : "no error";
}

void channel_peer_name(const uv_tcp_t *tcp, char *out, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof ss;
	char ip[64];
	int port = 0;

	snprintf(out, len, "?");
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		uv_ip4_name(a, ip, sizeof ip);
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%d", ip, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		uv_ip6_name(a, ip, sizeof ip);
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%d", ip, port);
	}
}

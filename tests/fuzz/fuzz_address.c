/*
 * fuzz_address: the parsers of the addresses users and operators type: a
 * client's endpoint list (cairn_open: --endpoints, CAIRN_ENDPOINTS),
 * cairn-store's --initial-cluster (config_parse_cluster), and the one
 * address form members listen on (proto_valid_address).
 *
 * Input: the text (a NUL-terminated copy, which ends at its first NUL).
 * Checks: proto_valid_address() agrees with a plain reading of
 * "a.b.c.d:port"; an accepted --initial-cluster holds 1 to
 * CONFIG_MAX_MEMBERS members with distinct non-zero ids and valid
 * addresses; cairn_open() gives a client (closed at once, leaking nothing)
 * or a message.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "config.h"
#include "fuzz.h"
#include "proto.h"

/* Decimal digits without a leading zero, at most max. */
static bool ref_number(const char **s, unsigned long max)
{
	const char *p = *s;
	unsigned long v = 0;
	size_t n = 0;

	while (p[n] >= '0' && p[n] <= '9')
		n++;
	if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(p[i] - '0');
	*s = p + n;
	return v <= max && (max != 65535 || v > 0);
}

static bool ref_valid_address(const char *s)
{
	int i;

	for (i = 0; i < 4; i++)
		if (!ref_number(&s, 255) || *s++ != (i < 3 ? '.' : ':'))
			return false;
	return ref_number(&s, 65535) && *s == '\0';
}

static void check_cluster(const char *text)
{
	struct config cfg;
	char err[256] = "";
	unsigned i;
	unsigned j;

	memset(&cfg, 0, sizeof cfg);
	if (config_parse_cluster(&cfg, text, err, sizeof err) != 0) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	FUZZ_CHECK(cfg.n_members >= 1 && cfg.n_members <= CONFIG_MAX_MEMBERS);
	for (i = 0; i < cfg.n_members; i++) {
		FUZZ_CHECK(cfg.members[i].id != 0);
		FUZZ_CHECK(proto_valid_address(cfg.members[i].peer));
		for (j = 0; j < i; j++)
			FUZZ_CHECK(cfg.members[j].id != cfg.members[i].id);
	}
}

static void check_endpoints(const char *text)
{
	cairn_client *c;
	char err[256] = "";

	if (cairn_open(&c, text, NULL, err, sizeof err) != 0) {
		FUZZ_CHECK(c == NULL && err[0] != '\0');
		return;
	}
	cairn_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	FUZZ_CHECK(text != NULL);
	if (size > 0)
		memcpy(text, data, size);
	text[size] = '\0';
	FUZZ_CHECK(proto_valid_address(text) == ref_valid_address(text));
	check_cluster(text);
	check_endpoints(text);
	free(text);
	return 0;
}

void fuzz_seeds(void)
{
	static const char *const texts[] = {
	    "127.0.0.1:2379",
	    "127.0.0.1:2379,127.0.0.1:22379, 10.0.0.3:2379",
	    "localhost:2379,[::1]:2379,http://192.168.1.1:2379",
	    "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003",
	    "255.255.255.255:65535",
	};
	size_t i;

	for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
		fuzz_emit(texts[i], strlen(texts[i]));
}

/*
 * authclient: one long-lived sync client acting as a user, driven by lines
 * on stdin, for tests/integration/auth.sh (what a token does over time).
 *
 *   authclient ENDPOINTS USER PASSWORD
 *
 * Reads "get KEY", "put KEY VALUE" or "del KEY" lines and prints one line
 * per command: "ok VALUE" (get; "ok" for put and del, "ok -" for a missing
 * key) or "err CODE MESSAGE". The same client, hence the same connection
 * and token, serves every command, so a test can let the token expire or
 * change the user's roles between two commands. With CAIRN_TRACE set, the
 * library traces its authentication on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"

static void answer(cairn_client *c, int rv, const struct cairn_result *r,
                   bool get)
{
	if (rv != 0)
		printf("err %d %s\n", rv, cairn_errmsg(c));
	else if (!get)
		printf("ok\n");
	else if (r->n_kvs == 0)
		printf("ok -\n");
	else
		printf("ok %.*s\n", (int)r->kvs[0].value_len,
		       (const char *)r->kvs[0].value);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct cairn_options o = {0};
	struct cairn_result *r;
	cairn_client *c;
	char line[1024];
	char err[256];
	char *key;
	char *val;
	int rv;

	if (argc != 4) {
		fprintf(stderr, "usage: authclient ENDPOINTS USER PASSWORD\n");
		return 2;
	}
	o.user = argv[2];
	o.password = argv[3];
	if (cairn_open(&c, argv[1], &o, err, sizeof err) != 0) {
		fprintf(stderr, "authclient: %s\n", err);
		return 1;
	}
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		key = strchr(line, ' ');
		if (key == NULL)
			break;
		*key++ = '\0';
		val = strchr(key, ' ');
		if (val != NULL)
			*val++ = '\0';
		r = NULL;
		if (strcmp(line, "get") == 0)
			rv = cairn_get(c, key, strlen(key), &r);
		else if (strcmp(line, "put") == 0 && val != NULL)
			rv = cairn_put(c, key, strlen(key), val, strlen(val),
			               &r);
		else
			rv = cairn_delete(c, key, strlen(key), &r);
		answer(c, rv, r, strcmp(line, "get") == 0);
		cairn_result_free(r);
	}
	cairn_close(c);
	return 0;
}

/*
 * cairn-store: one member of a cairn cluster.
 *
 * Parses the settings, starts the Raft node and the client server on one libuv
 * loop, and runs until SIGINT or SIGTERM, then shuts both down in order
 * (server first, so no new request reaches a stopping node).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cairn.h"
#include "config.h"
#include "log.h"
#include "node.h"
#include "recover.h"
#include "restore.h"
#include "security.h"
#include "server.h"

struct store {
	uv_loop_t loop;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	struct config cfg;
	struct node node;
	struct server server;
	bool stopping;
};

static void node_stopped(struct node *n)
{
	(void)n;
	log_info("stopped");
}

static void server_stopped(struct server *s)
{
	struct store *st = (struct store *)((char *)s - offsetof(struct store, server));

	node_stop(&st->node, node_stopped);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct store *st = h->data;

	if (st->stopping)
		return;
	st->stopping = true;
	log_info("received %s: shutting down", strsignal(signum));
	uv_close((uv_handle_t *)&st->sigint, NULL);
	uv_close((uv_handle_t *)&st->sigterm, NULL);
	server_stop(&st->server, server_stopped);
}

static int parse(struct store *st, int argc, char **argv)
{
	char err[512];

	switch (config_parse(&st->cfg, argc, argv, err, sizeof err)) {
	case CONFIG_HELP:
		config_usage(stdout);
		exit(0);
	case CONFIG_VERSION:
		printf("cairn-store %s\n", CAIRN_VERSION);
		exit(0);
	case CONFIG_ERROR:
		fprintf(stderr, "cairn-store: %s\nTry 'cairn-store --help'.\n", err);
		return 2;
	default:
		return 0;
	}
}

int main(int argc, char **argv)
{
	static struct store st;
	char prefix[96];
	char err[512];
	int rv;

	rv = parse(&st, argc, argv);
	if (rv != 0)
		return rv;
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit (RLIMIT_FSIZE) reached would kill the process with
	 * SIGXFSZ; ignored, the write fails with EFBIG instead and takes the
	 * same path as any other disk error (see poll_cb in node.c). */
	signal(SIGXFSZ, SIG_IGN);
	if (st.cfg.generate_secret[0] != '\0') {
		rv = security_generate(st.cfg.generate_secret, err, sizeof err);
		if (rv != 0)
			fprintf(stderr, "cairn-store: %s\n", err);
		return rv == 0 ? 0 : 1;
	}
	log_level = st.cfg.log_level;
	snprintf(prefix, sizeof prefix, "%s", st.cfg.name);
	log_set_prefix(prefix);
	if (st.cfg.force_new_cluster) {
		rv = recover_cluster(&st.cfg, err, sizeof err);
		if (rv != 0)
			log_error("cannot recover: %s", err);
		return rv == 0 ? 0 : 1;
	}
	if (st.cfg.restore_from[0] != '\0') {
		rv = restore_backup(&st.cfg, st.cfg.restore_from, err, sizeof err);
		if (rv != 0)
			log_error("cannot restore: %s", err);
		return rv == 0 ? 0 : 1;
	}
	rv = security_setup(&st.cfg, err, sizeof err);
	if (rv != 0) {
		log_error("cannot start: %s", err);
		return 1;
	}
	uv_loop_init(&st.loop);
	rv = node_start(&st.node, &st.loop, &st.cfg, err, sizeof err);
	if (rv == 0)
		rv = server_start(&st.server, &st.loop, &st.node, &st.cfg, err,
		                  sizeof err);
	if (rv != 0) {
		log_error("cannot start: %s", err);
		return 1;
	}
	log_info("member %llu serving clients on %s, peers on %s, data in %s",
	         (unsigned long long)st.cfg.id, st.cfg.listen_client,
	         st.cfg.listen_peer, st.cfg.data_dir);
	uv_signal_init(&st.loop, &st.sigint);
	uv_signal_init(&st.loop, &st.sigterm);
	st.sigint.data = &st;
	st.sigterm.data = &st;
	uv_signal_start(&st.sigint, signal_cb, SIGINT);
	uv_signal_start(&st.sigterm, signal_cb, SIGTERM);
	uv_run(&st.loop, UV_RUN_DEFAULT);
	rv = uv_loop_close(&st.loop);
	if (rv != 0)
		log_warn("loop closed with handles still open: %s", uv_strerror(rv));
	return 0;
}

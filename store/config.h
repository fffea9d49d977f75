/*
 * config: cairn-store's settings, from flags and from an optional config file
 * (one "name = value" per line, the flag names without dashes; '#' comments).
 * Flags given on the command line win over the file.
 */
#ifndef CAIRN_STORE_CONFIG_H
#define CAIRN_STORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "secure.h"

#define CONFIG_MAX_MEMBERS 16
#define CONFIG_ADDR_LEN 64

struct config_member {
	uint64_t id;
	char peer[CONFIG_ADDR_LEN];
};

struct config {
	uint64_t id;
	char name[64];
	char data_dir[1024];
	char listen_client[CONFIG_ADDR_LEN];
	char listen_peer[CONFIG_ADDR_LEN];
	struct config_member members[CONFIG_MAX_MEMBERS];
	unsigned n_members;
	unsigned election_timeout_ms;
	unsigned heartbeat_ms;
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	uint64_t snapshot_bytes; /* log bytes applied that trigger a snapshot */
	uint64_t quota_bytes;
	int compaction_mode;           /* enum compaction_mode */
	uint64_t compaction_retention; /* ms or revisions; 0 = off */
	char retention_text[24];
	bool join; /* join a running cluster (after 'cairnctl member add') */
	bool force_new_cluster; /* recover from a lost quorum, then exit */
	char restore_from[1024]; /* restore this backup into data_dir and exit */
	unsigned watch_progress_ms;
	unsigned auth_token_ttl_s; /* lifetime of an authentication token */
	int log_level;
	/* security */
	bool insecure; /* plaintext for clients and peers */
	char secret_file[1024]; /* default DATA_DIR/cluster.secret */
	bool secret_file_given; /* --cluster-secret-file was given */
	char generate_secret[1024]; /* write a new secret file here and exit */
	uint8_t secret[SECURE_KEY_BYTES]; /* loaded at start (security.h) */
};

/* What config_parse() asks the caller to do. */
enum config_action { CONFIG_RUN, CONFIG_HELP, CONFIG_VERSION, CONFIG_ERROR };

/* Fills cfg from defaults, the config file if --config names one, then the
 * flags. On CONFIG_ERROR errbuf says what is wrong. */
int config_parse(struct config *cfg, int argc, char **argv, char *errbuf,
                 size_t errlen);

/* Parses "1=127.0.0.1:7001,2=..." into cfg->members. Returns 0 or -1 with a
 * message. */
int config_parse_cluster(struct config *cfg, const char *s, char *errbuf,
                         size_t errlen);

/* This member's peer address as the others know it: its --initial-cluster
 * entry if there is one, else --listen-peer. */
const char *config_own_peer(const struct config *cfg);

/* The usage text of cairn-store. */
void config_usage(FILE *out);

#endif

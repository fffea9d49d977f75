/*
 * config: cairn-store's flags and config file (see config.h).
 *
 * One table names every setting once; the flag parser (getopt_long) and the
 * config file reader both go through it, so a setting has one spelling, one
 * check and one error message wherever it comes from.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "compactor.h"
#include "log.h"
#include "proto.h"

enum { OPT_BOOL = 0, OPT_ARG = 1 };

struct setting {
	const char *name;
	int has_arg;
	const char *arg;
	const char *help;
	int (*set)(struct config *cfg, const char *v, char *err, size_t len);
};

static int parse_uint(const char *v, unsigned long long max,
                      unsigned long long *out)
{
	char *end;

	if (*v == '\0' || *v == '-')
		return -1;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || *out > max)
		return -1;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *v, const char *what,
                    char *err, size_t len)
{
	if (strlen(v) >= cap || *v == '\0') {
		snprintf(err, len, "%s: must be 1 to %zu characters", what, cap - 1);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* host:port with an IPv4 literal host, as raft_uv_tcp and the server accept. */
static int check_addr(const char *v, const char *what, char *err, size_t len)
{
	if (!proto_valid_address(v)) {
		snprintf(err, len,
		         "%s: '%s' is not an IPv4 address and port like 127.0.0.1:2379",
		         what, v);
		return -1;
	}
	return 0;
}

static int set_id(struct config *cfg, const char *v, char *err, size_t len)
{
	unsigned long long id;

	if (parse_uint(v, UINT64_MAX, &id) != 0 || id == 0) {
		snprintf(err, len, "--id: '%s' is not a positive integer", v);
		return -1;
	}
	cfg->id = id;
	return 0;
}

static int set_name(struct config *cfg, const char *v, char *err, size_t len)
{
	return copy_str(cfg->name, sizeof cfg->name, v, "--name", err, len);
}

static int set_data_dir(struct config *cfg, const char *v, char *err, size_t len)
{
	return copy_str(cfg->data_dir, sizeof cfg->data_dir, v, "--data-dir", err,
	                len);
}

static int set_listen_client(struct config *cfg, const char *v, char *err,
                             size_t len)
{
	if (check_addr(v, "--listen-client", err, len) != 0)
		return -1;
	return copy_str(cfg->listen_client, sizeof cfg->listen_client, v,
	                "--listen-client", err, len);
}

static int set_listen_peer(struct config *cfg, const char *v, char *err,
                           size_t len)
{
	if (check_addr(v, "--listen-peer", err, len) != 0)
		return -1;
	return copy_str(cfg->listen_peer, sizeof cfg->listen_peer, v,
	                "--listen-peer", err, len);
}

static int set_cluster(struct config *cfg, const char *v, char *err, size_t len)
{
	return config_parse_cluster(cfg, v, err, len);
}

static int set_ms(unsigned *dst, const char *what, unsigned min, unsigned max,
                  const char *v, char *err, size_t len)
{
	unsigned long long n;

	if (parse_uint(v, max, &n) != 0 || n < min) {
		snprintf(err, len, "%s: '%s' is not a number from %u to %u", what, v,
		         min, max);
		return -1;
	}
	*dst = (unsigned)n;
	return 0;
}

static int set_election(struct config *cfg, const char *v, char *err, size_t len)
{
	return set_ms(&cfg->election_timeout_ms, "--election-timeout", 50, 60000,
	              v, err, len);
}

static int set_heartbeat(struct config *cfg, const char *v, char *err,
                         size_t len)
{
	return set_ms(&cfg->heartbeat_ms, "--heartbeat-interval", 5, 10000, v, err,
	              len);
}

static int set_snapshot(struct config *cfg, const char *v, char *err, size_t len)
{
	return set_ms(&cfg->snapshot_threshold, "--snapshot-count", 16, 100000000,
	              v, err, len);
}

static int set_snapshot_bytes(struct config *cfg, const char *v, char *err,
                              size_t len)
{
	unsigned long long n;

	if (parse_uint(v, UINT64_MAX, &n) != 0 || n < 65536) {
		snprintf(err, len, "--snapshot-bytes: '%s' is not a number of "
		         "bytes of at least 65536", v);
		return -1;
	}
	cfg->snapshot_bytes = n;
	return 0;
}

static int set_quota(struct config *cfg, const char *v, char *err, size_t len)
{
	unsigned long long n;

	if (parse_uint(v, UINT64_MAX, &n) != 0) {
		snprintf(err, len, "--quota-bytes: '%s' is not a number of bytes", v);
		return -1;
	}
	cfg->quota_bytes = n;
	return 0;
}

static int set_progress(struct config *cfg, const char *v, char *err,
                        size_t len)
{
	return set_ms(&cfg->watch_progress_ms, "--watch-progress-interval", 10,
	              86400000, v, err, len);
}

/* A duration: N (seconds), Ns, Nm or Nh; 1 s to 1 day. */
static int set_token_ttl(struct config *cfg, const char *v, char *err,
                         size_t len)
{
	unsigned long long n = 0;
	unsigned unit = 1;
	size_t k = strlen(v);
	char num[24];

	if (k > 0 && strchr("smh", v[k - 1]) != NULL) {
		unit = v[k - 1] == 's' ? 1 : v[k - 1] == 'm' ? 60 : 3600;
		k--;
	}
	if (k == 0 || k >= sizeof num)
		goto bad;
	memcpy(num, v, k);
	num[k] = '\0';
	if (parse_uint(num, 86400, &n) != 0 || n * unit < 1 || n * unit > 86400)
		goto bad;
	cfg->auth_token_ttl_s = (unsigned)(n * unit);
	return 0;
bad:
	snprintf(err, len, "--auth-token-ttl: '%s' is not a duration from 1s "
	         "to 24h (such as 300, 30s, 5m)", v);
	return -1;
}

static int set_compaction_mode(struct config *cfg, const char *v, char *err,
                               size_t len)
{
	if (strcmp(v, "periodic") == 0)
		cfg->compaction_mode = COMPACT_PERIODIC;
	else if (strcmp(v, "revision") == 0)
		cfg->compaction_mode = COMPACT_REVISION;
	else {
		snprintf(err, len,
		         "--auto-compaction-mode: '%s' is not periodic or revision", v);
		return -1;
	}
	return 0;
}

/* Kept as text until all settings are read: its meaning depends on the mode. */
static int set_retention(struct config *cfg, const char *v, char *err,
                         size_t len)
{
	return copy_str(cfg->retention_text, sizeof cfg->retention_text, v,
	                "--auto-compaction-retention", err, len);
}

/* "0", "90s", "5m", "1h" (periodic) or a number of revisions (revision). */
static int parse_retention(struct config *cfg, char *err, size_t len)
{
	const char *v = cfg->retention_text;
	unsigned long long n;

	if (*v == '\0') /* not given: 5 minutes, or 10000 revisions */
		v = cfg->compaction_mode == COMPACT_REVISION ? "10000" : "5m";
	char digits[24];
	size_t k = strspn(v, "0123456789");
	unsigned long long unit = 0;

	if (k == 0 || k >= sizeof digits)
		goto bad;
	memcpy(digits, v, k);
	digits[k] = '\0';
	if (parse_uint(digits, UINT64_MAX / 3600000, &n) != 0)
		goto bad;
	if (cfg->compaction_mode == COMPACT_REVISION) {
		if (v[k] != '\0')
			goto bad;
		cfg->compaction_retention = n;
		return 0;
	}
	if (strcmp(v + k, "s") == 0)
		unit = 1000;
	else if (strcmp(v + k, "m") == 0)
		unit = 60000;
	else if (strcmp(v + k, "h") == 0)
		unit = 3600000;
	else if (v[k] == '\0' && n == 0)
		unit = 1;
	else
		goto bad;
	cfg->compaction_retention = n * unit;
	return 0;
bad:
	snprintf(err, len,
	         "--auto-compaction-retention: '%s' is not %s", v,
	         cfg->compaction_mode == COMPACT_REVISION
	             ? "a number of revisions"
	             : "a duration such as 90s, 5m or 1h (or 0 for off)");
	return -1;
}

static int set_join(struct config *cfg, const char *v, char *err, size_t len)
{
	if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		cfg->join = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		cfg->join = false;
		return 0;
	}
	snprintf(err, len, "join: '%s' is not true or false", v);
	return -1;
}

static int set_force(struct config *cfg, const char *v, char *err, size_t len)
{
	if (strcmp(v, "confirm") != 0) {
		snprintf(err, len,
		         "--force-new-cluster: give it the value 'confirm' "
		         "(--force-new-cluster confirm): it drops every other member "
		         "from the cluster, and writes only they had are lost");
		return -1;
	}
	cfg->force_new_cluster = true;
	return 0;
}

static int set_restore(struct config *cfg, const char *v, char *err,
                       size_t len)
{
	return copy_str(cfg->restore_from, sizeof cfg->restore_from, v,
	                "--restore-from", err, len);
}

static int set_log_level(struct config *cfg, const char *v, char *err,
                         size_t len)
{
	int level = log_parse_level(v);

	if (level < 0) {
		snprintf(err, len, "--log-level: '%s' is not error, warn, info or debug",
		         v);
		return -1;
	}
	cfg->log_level = level;
	return 0;
}

static int set_secret_file(struct config *cfg, const char *v, char *err,
                           size_t len)
{
	return copy_str(cfg->secret_file, sizeof cfg->secret_file, v,
	                "--cluster-secret-file", err, len);
}

static int set_generate(struct config *cfg, const char *v, char *err,
                        size_t len)
{
	return copy_str(cfg->generate_secret, sizeof cfg->generate_secret, v,
	                "--generate-secret", err, len);
}

static int set_insecure(struct config *cfg, const char *v, char *err,
                        size_t len)
{
	if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		cfg->insecure = true;
		return 0;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		cfg->insecure = false;
		return 0;
	}
	snprintf(err, len, "insecure: '%s' is not true or false", v);
	return -1;
}

static const struct setting settings[] = {
	{"id", OPT_ARG, "N", "this member's id, a positive integer (required)", set_id},
	{"name", OPT_ARG, "NAME", "a human-readable name (default member-ID)", set_name},
	{"data-dir", OPT_ARG, "DIR", "where the Raft log and snapshots live (default ./cairn-ID.data)", set_data_dir},
	{"listen-client", OPT_ARG, "IP:PORT", "address for clients (default 127.0.0.1:2379)", set_listen_client},
	{"listen-peer", OPT_ARG, "IP:PORT", "address for Raft peers (default: this member's entry in --initial-cluster, else 127.0.0.1:2380)", set_listen_peer},
	{"initial-cluster", OPT_ARG, "ID=IP:PORT,...", "the members to bootstrap a new cluster with (peer addresses); ignored once the data directory holds state (default: this member alone)", set_cluster},
	{"election-timeout", OPT_ARG, "MS", "Raft election timeout (default 300)", set_election},
	{"heartbeat-interval", OPT_ARG, "MS", "Raft heartbeat interval (default 30)", set_heartbeat},
	{"snapshot-count", OPT_ARG, "N", "applied entries between snapshots (default 16384)", set_snapshot},
	{"snapshot-bytes", OPT_ARG, "N", "bytes of applied log entries that also trigger a snapshot, so the log held in memory stays bounded (default 33554432)", set_snapshot_bytes},
	{"quota-bytes", OPT_ARG, "N", "refuse writes that add data once the keyspace holds N bytes; 0 for no quota (default 2147483648)", set_quota},
	{"watch-progress-interval", OPT_ARG, "MS", "how often idle watches that asked for it hear the current revision (default 10000)", set_progress},
	{"auth-token-ttl", OPT_ARG, "DURATION", "how long an authentication token lasts, such as 300, 30s or 5m (default 300 seconds); members' clocks must roughly agree", set_token_ttl},
	{"auto-compaction-mode", OPT_ARG, "MODE", "periodic (keep a duration of history) or revision (keep a number of revisions) (default periodic)", set_compaction_mode},
	{"auto-compaction-retention", OPT_ARG, "N", "history to keep: a duration such as 5m or 1h in periodic mode, a number of revisions in revision mode; 0 turns automatic compaction off (default 5m, or 10000 in revision mode)", set_retention},
	{"join", OPT_BOOL, "", "join a running cluster that added this member with 'cairnctl member add' (the data directory must be new; --initial-cluster is not used)", set_join},
	{"force-new-cluster", OPT_ARG, "confirm", "recover from a lost quorum: make this member's data directory a one-member cluster, then exit; only with every member stopped, on the survivor with the highest revision; then start it as usual and add members back", set_force},
	{"restore-from", OPT_ARG, "FILE", "build this member's new data directory from a backup (cairnctl snapshot save), then exit; run it on every member with the same backup and --initial-cluster, then start them", set_restore},
	{"log-level", OPT_ARG, "LEVEL", "error, warn, info or debug (default info)", set_log_level},
	{"cluster-secret-file", OPT_ARG, "FILE", "the cluster secret that authenticates and encrypts client and peer traffic (default DATA_DIR/cluster.secret); the member listed first in --initial-cluster (or alone) creates it on its first start if it is missing; every other member and every client needs a copy (mode 0600); without this option, CAIRN_SECRET in the environment may hold the secret's text instead", set_secret_file},
	{"insecure", OPT_BOOL, "", "no secure channel: clients and peers talk plaintext, unauthenticated (for tests on one machine; every member and client must agree)", set_insecure},
	{"generate-secret", OPT_ARG, "FILE", "write a new cluster secret to FILE (a new file, mode 0600), then exit", set_generate},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

void config_usage(FILE *out)
{
	size_t i;

	fprintf(out,
	        "Usage: cairn-store [OPTIONS]\n"
	        "A member of a cairn cluster: a Raft-replicated, strongly consistent\n"
	        "key-value store.\n\nOptions:\n");
	for (i = 0; i < N_SETTINGS; i++)
		fprintf(out, "  --%s %s\n      %s\n", settings[i].name, settings[i].arg,
		        settings[i].help);
	fprintf(out,
	        "  --config FILE\n      read settings from FILE (name = value lines,"
	        " names as the flags above)\n"
	        "  -v, --verbose\n      same as --log-level debug\n"
	        "  -h, --help\n      this text\n"
	        "  --version\n      print the version and exit\n\n"
	        "Example, member 1 of 3:\n"
	        "  cairn-store --id 1 --data-dir /var/lib/cairn --listen-client "
	        "10.0.0.1:2379 \\\n"
	        "    --initial-cluster 1=10.0.0.1:2380,2=10.0.0.2:2380,3=10.0.0.3:2380\n");
}

int config_parse_cluster(struct config *cfg, const char *s, char *err,
                         size_t len)
{
	char copy[CONFIG_MAX_MEMBERS * (CONFIG_ADDR_LEN + 24)];
	char *save = NULL;
	char *item;
	unsigned long long id;
	unsigned i;

	if (strlen(s) >= sizeof copy) {
		snprintf(err, len, "--initial-cluster: too long");
		return -1;
	}
	strcpy(copy, s);
	cfg->n_members = 0;
	for (item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		if (eq == NULL || cfg->n_members == CONFIG_MAX_MEMBERS) {
			snprintf(err, len,
			         "--initial-cluster: '%s' is not ID=IP:PORT (at most %d members)",
			         item, CONFIG_MAX_MEMBERS);
			return -1;
		}
		*eq = '\0';
		if (parse_uint(item, UINT64_MAX, &id) != 0 || id == 0) {
			snprintf(err, len, "--initial-cluster: '%s' is not a member id", item);
			return -1;
		}
		if (check_addr(eq + 1, "--initial-cluster", err, len) != 0)
			return -1;
		for (i = 0; i < cfg->n_members; i++) {
			if (cfg->members[i].id == id) {
				snprintf(err, len, "--initial-cluster: id %llu given twice", id);
				return -1;
			}
		}
		cfg->members[cfg->n_members].id = id;
		snprintf(cfg->members[cfg->n_members].peer, CONFIG_ADDR_LEN, "%s", eq + 1);
		cfg->n_members++;
	}
	if (cfg->n_members == 0) {
		snprintf(err, len, "--initial-cluster: no members given");
		return -1;
	}
	return 0;
}

static const struct setting *find_setting(const char *name)
{
	size_t i;

	for (i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
	                   end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int read_file(struct config *cfg, const char *path, char *err, size_t len)
{
	const struct setting *st;
	char line[2048];
	char *eq;
	char *key;
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, len, "--config: cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq != NULL)
			*eq = '\0';
		st = find_setting(trim(key));
		if (eq == NULL || st == NULL) {
			snprintf(err, len, "%s:%u: expected 'name = value' with a known name",
			         path, lineno);
			fclose(f);
			return -1;
		}
		if (st->set(cfg, trim(eq + 1), err, len) != 0) {
			char inner[512];
			snprintf(inner, sizeof inner, "%s", err);
			snprintf(err, len, "%s:%u: %s", path, lineno, inner);
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static void defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	strcpy(cfg->listen_client, "127.0.0.1:2379");
	cfg->election_timeout_ms = 300;
	cfg->heartbeat_ms = 30;
	cfg->snapshot_threshold = 16384;
	cfg->snapshot_bytes = 32u << 20;
	cfg->quota_bytes = 2ull << 30;
	/* retention_text stays empty: the default depends on the mode. */
	cfg->watch_progress_ms = 10000;
	cfg->auth_token_ttl_s = 300;
	cfg->log_level = LOG_INFO;
}

/* Settings derived from others once all are read. */
static int finish(struct config *cfg, char *err, size_t len)
{
	unsigned i;

	if (cfg->generate_secret[0] != '\0')
		return 0; /* nothing else is needed */
	if (cfg->id == 0) {
		snprintf(err, len, "--id is required (a positive integer)");
		return -1;
	}
	if (cfg->heartbeat_ms * 2 > cfg->election_timeout_ms) {
		snprintf(err, len,
		         "--heartbeat-interval (%u ms) must be at most half of "
		         "--election-timeout (%u ms)",
		         cfg->heartbeat_ms, cfg->election_timeout_ms);
		return -1;
	}
	if (cfg->name[0] == '\0')
		snprintf(cfg->name, sizeof cfg->name, "member-%llu",
		         (unsigned long long)cfg->id);
	if (cfg->data_dir[0] == '\0')
		snprintf(cfg->data_dir, sizeof cfg->data_dir, "./cairn-%llu.data",
		         (unsigned long long)cfg->id);
	cfg->secret_file_given = cfg->secret_file[0] != '\0';
	if (cfg->secret_file[0] == '\0' &&
	    snprintf(cfg->secret_file, sizeof cfg->secret_file,
	             "%s/cluster.secret",
	             cfg->data_dir) >= (int)sizeof cfg->secret_file) {
		snprintf(err, len, "--data-dir: too long for the default "
		                   "--cluster-secret-file");
		return -1;
	}
	for (i = 0; i < cfg->n_members && cfg->listen_peer[0] == '\0'; i++)
		if (cfg->members[i].id == cfg->id)
			strcpy(cfg->listen_peer, cfg->members[i].peer);
	if (cfg->listen_peer[0] == '\0')
		strcpy(cfg->listen_peer, "127.0.0.1:2380");
	if (cfg->join) {
		if (cfg->n_members > 0) {
			snprintf(err, len, "--join and --initial-cluster exclude each "
			         "other: a joining member learns the cluster from it");
			return -1;
		}
		cfg->snapshot_trailing = cfg->snapshot_threshold / 2;
		return parse_retention(cfg, err, len);
	}
	if (cfg->n_members == 0) {
		cfg->members[0].id = cfg->id;
		strcpy(cfg->members[0].peer, cfg->listen_peer);
		cfg->n_members = 1;
	}
	for (i = 0; i < cfg->n_members; i++)
		if (cfg->members[i].id == cfg->id)
			break;
	if (i == cfg->n_members) {
		snprintf(err, len, "--initial-cluster does not list this member's id %llu",
		         (unsigned long long)cfg->id);
		return -1;
	}
	cfg->snapshot_trailing = cfg->snapshot_threshold / 2;
	return parse_retention(cfg, err, len);
}

const char *config_own_peer(const struct config *cfg)
{
	unsigned i;

	for (i = 0; i < cfg->n_members; i++)
		if (cfg->members[i].id == cfg->id)
			return cfg->members[i].peer;
	return cfg->listen_peer;
}

static const char *find_config_flag(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}

int config_parse(struct config *cfg, int argc, char **argv, char *err,
                 size_t len)
{
	struct option opts[N_SETTINGS + 5];
	const char *file;
	size_t i;
	int c;
	int idx;

	defaults(cfg);
	file = find_config_flag(argc, argv);
	if (file != NULL && read_file(cfg, file, err, len) != 0)
		return CONFIG_ERROR;
	for (i = 0; i < N_SETTINGS; i++) {
		opts[i].name = settings[i].name;
		opts[i].has_arg = settings[i].has_arg ? required_argument : no_argument;
		opts[i].flag = NULL;
		opts[i].val = 0;
	}
	opts[i++] = (struct option){"config", required_argument, NULL, 'c'};
	opts[i++] = (struct option){"help", no_argument, NULL, 'h'};
	opts[i++] = (struct option){"version", no_argument, NULL, 'V'};
	opts[i++] = (struct option){"verbose", no_argument, NULL, 'v'};
	opts[i] = (struct option){NULL, 0, NULL, 0};
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hv", opts, &idx)) != -1) {
		switch (c) {
		case 0:
			if (settings[idx].set(cfg, optarg, err, len) != 0)
				return CONFIG_ERROR;
			break;
		case 'c':
			break; /* read above */
		case 'h':
			return CONFIG_HELP;
		case 'V':
			return CONFIG_VERSION;
		case 'v':
			cfg->log_level = LOG_DEBUG;
			break;
		case ':':
			snprintf(err, len, "%s needs a value", argv[optind - 1]);
			return CONFIG_ERROR;
		default:
			snprintf(err, len, "unknown option '%s'", argv[optind - 1]);
			return CONFIG_ERROR;
		}
	}
	if (optind < argc) {
		snprintf(err, len, "unexpected argument '%s'", argv[optind]);
		return CONFIG_ERROR;
	}
	return finish(cfg, err, len) == 0 ? CONFIG_RUN : CONFIG_ERROR;
}

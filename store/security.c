/* security: loading or creating the cluster secret (see security.h). */
#include "security.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "log.h"
#include "secret.h"

bool security_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* libraft writes metadata1 or metadata2 once a directory holds state. */
static bool has_raft_state(const char *dir)
{
	char path[1100];

	snprintf(path, sizeof path, "%s/metadata1", dir);
	if (exists(path))
		return true;
	snprintf(path, sizeof path, "%s/metadata2", dir);
	return exists(path);
}

/* Only the first member of a new cluster creates the secret, so that the
 * members of one cluster never each make their own. */
static bool may_generate(const struct config *cfg)
{
	return !cfg->join && cfg->n_members > 0 &&
	       cfg->members[0].id == cfg->id && !has_raft_state(cfg->data_dir);
}

static void warn_insecure(const struct config *cfg)
{
	log_warn("--insecure: clients and peers talk plaintext, without "
	         "authentication");
	if (!security_is_loopback(cfg->listen_client))
		log_warn(
		    "--insecure on %s: anyone who can reach it can read and "
		    "change every key",
		    cfg->listen_client);
	if (!security_is_loopback(cfg->listen_peer))
		log_warn(
		    "--insecure on %s: anyone who can reach it can take part "
		    "in Raft and rewrite the log",
		    cfg->listen_peer);
}

static int generate(struct config *cfg, char *err, size_t len)
{
	char fp[SECRET_FINGERPRINT_LEN];
	int rv;

	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, len, "cannot create data directory %s: %s",
		         cfg->data_dir, strerror(errno));
		return CAIRN_EIO;
	}
	rv = secret_generate(cfg->secret_file, cfg->secret, err, len);
	if (rv != 0)
		return rv;
	secret_fingerprint(cfg->secret, fp);
	log_info("created the cluster secret %s (fingerprint %s): copy it "
	         "(mode 0600) to the other members (--cluster-secret-file) and "
	         "give it to clients (CAIRN_SECRET_FILE, cairnctl "
	         "--secret-file); whoever holds it is trusted",
	         cfg->secret_file, fp);
	return 0;
}

int security_setup(struct config *cfg, char *err, size_t len)
{
	const char *env = getenv("CAIRN_SECRET");
	char fp[SECRET_FINGERPRINT_LEN];
	int rv;

	if (cfg->insecure) {
		warn_insecure(cfg);
		return 0;
	}
	if (!cfg->secret_file_given && env != NULL && *env != '\0') {
		rv = secret_parse(env, cfg->secret, err, len);
		if (rv != 0)
			return rv;
		secret_fingerprint(cfg->secret, fp);
		log_info("cluster secret from CAIRN_SECRET (fingerprint %s)",
		         fp);
		return 0;
	}
	if (!exists(cfg->secret_file)) {
		if (may_generate(cfg))
			return generate(cfg, err, len);
		snprintf(
		    err, len,
		    "the cluster secret file %s does not exist: copy it from "
		    "a member of the cluster (the member listed first in "
		    "--initial-cluster created it as DATA_DIR/cluster.secret) "
		    "or name it with --cluster-secret-file",
		    cfg->secret_file);
		return CAIRN_EAUTH;
	}
	rv = secret_load_file(cfg->secret_file, cfg->secret, err, len);
	if (rv != 0)
		return rv;
	secret_fingerprint(cfg->secret, fp);
	log_info("cluster secret from %s (fingerprint %s)", cfg->secret_file,
	         fp);
	return 0;
}

int security_generate(const char *path, char *err, size_t len)
{
	uint8_t key[SECURE_KEY_BYTES];
	char fp[SECRET_FINGERPRINT_LEN];
	int rv;

	rv = secret_generate(path, key, err, len);
	if (rv != 0)
		return rv;
	secret_fingerprint(key, fp);
	sodium_memzero(key, sizeof key);
	printf("wrote a new cluster secret to %s (fingerprint %s)\n", path, fp);
	return 0;
}

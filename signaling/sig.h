/* sig.h — testigod, the Testigo signaling server: officer API, signatory
 * join links, WebSocket signaling, per-session recorder processes and
 * sealing at close. The protocol is specified in docs/protocol.md and the
 * configuration in docs/operator-guide.md.
 *
 * Every symbol carries the sig_ prefix; errors are in the TG_ERROR domain
 * (common/tg-common.h).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SigConfig SigConfig;
typedef struct _SigServer SigServer;

/**
 * sig_config_parse:
 * Builds the configuration from the embedded defaults, then the GKeyFile
 * named by --config (if any), then the command-line flags in @argv.
 * Returns: (transfer full) (nullable): the configuration, or NULL with
 * @error set (TG_ERROR_INVALID for a bad flag, key or value).
 */
SigConfig *sig_config_parse (int *argc, char ***argv, GError **error);
void sig_config_free (SigConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SigConfig, sig_config_free)

/**
 * sig_server_new:
 * @config: (transfer full): the configuration
 * Prepares the state directory (database with migrations, evidence/,
 * sessions/, development keys on first start) and checks the listening and
 * TLS settings; refuses a non-loopback address without a certificate.
 * Returns: (transfer full) (nullable): the server, not yet listening.
 */
SigServer *sig_server_new (SigConfig *config, GError **error);

/**
 * sig_server_listen:
 * Starts listening; prints nothing. @uri_out receives the first URI
 * listened on (transfer full), useful with port 0.
 */
gboolean sig_server_listen (SigServer *server, char **uri_out, GError **error);
void sig_server_free (SigServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SigServer, sig_server_free)

/** sig_default_state_dir: (transfer full) $XDG_STATE_HOME/testigo. */
char *sig_default_state_dir (void);

/**
 * sig_officer_add:
 * Adds officer @id (an identifier: letters, digits, '.', '_', '-') with the
 * display @name to the database under @state_dir (created and migrated if
 * needed), the password hashed with argon2id. Refuses an existing id
 * (TG_ERROR_EXISTS) and a password shorter than 10 characters.
 */
gboolean sig_officer_add (const char *state_dir, const char *id, const char *name,
                          const char *password, GError **error);

G_END_DECLS

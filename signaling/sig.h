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

/**
 * sig_officer_add_role:
 * As sig_officer_add with @role "officer" (a registration officer: cases,
 * sessions, in-person visits, renewals and revocations through the gate) or
 * "admin" (the CA administrator: also suspension and reactivation). The role
 * is stored as its display text ("registration officer", "CA administrator"),
 * which the validation record carries.
 */
gboolean sig_officer_add_role (const char *state_dir, const char *id, const char *name, const char *role,
                               const char *password, GError **error);

/**
 * sig_holder_add:
 * Adds a portal account for the certificate holder @national_id (normalised:
 * upper case, without dots or spaces, so "v-12.345.678" is "V-12345678"),
 * with the display @name and @email, the password (10 to 1024 characters)
 * hashed with argon2id. Refuses an existing holder (TG_ERROR_EXISTS).
 */
gboolean sig_holder_add (const char *state_dir, const char *national_id, const char *name, const char *email,
                         const char *password, GError **error);

/** sig_national_id_normalize: (transfer full) upper case, dots and spaces removed; NULL when not an ID. */
char *sig_national_id_normalize (const char *text);

G_END_DECLS

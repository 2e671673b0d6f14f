/* ca-private.h — shared by the ca/ core files (store.c, certs.c, gate.c,
 * publish.c, intake-glue.c). Not for other folders. */
#pragma once

#include "ca.h"
#include "ca-audit.h"
#include "tg-common.h"

#include <json-glib/json-glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

G_BEGIN_DECLS

#define CA_DAY ((gint64) 86400)
#define CA_RECORD_MAX ((gsize) 1024 * 1024)
#define CA_CSR_MAX ((gsize) 64 * 1024)
#define CA_CERT_MAX ((gsize) 64 * 1024)

struct _CaStore {
  char *state_dir;
  char *db_path;
  char *keys_dir;          /* development PKI: seals and verifies evidence */
  char *ca_dir;            /* the holders' issuing CA */
  char *pub_dir;
  char *evidence_dir;
  char *intake_dir;
  char *bundle_ca_file;
  char *crl_url, *delta_crl_url, *ocsp_url;
  CaClock clock;
  gpointer clock_data;
  int max_days;
  gboolean superseded_on_crl;
  sqlite3 *db;
  CaAudit *audit;
  X509 *ca_cert;
  EVP_PKEY *ca_key;
  GHashTable *paths;       /* name → path (ca_store_get_path) */
  CaSigner *crl_signer;    /* loaded on first use */
  CaSigner *ocsp_signer;
  sqlite3_stmt *ocsp_lookup; /* prepared once: OCSP answers one serial per lookup */
};

/* store.c */
gboolean ca_db_exec (CaStore *store, const char *sql, GError **error);
sqlite3_stmt *ca_db_prepare (CaStore *store, const char *sql, GError **error);
void ca_db_set_error (CaStore *store, GError **error, const char *what);
gboolean ca_db_begin (CaStore *store, GError **error);
gboolean ca_db_commit (CaStore *store, GError **error);
void ca_db_rollback (CaStore *store);
/* binds a text or NULL */
void ca_db_bind_text (sqlite3_stmt *st, int i, const char *text);
char *ca_db_column_text (sqlite3_stmt *st, int i);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

/* JSON building (store.c) */
/* @member: @value as a string, or null when @value is NULL */
void ca_json_add_str (JsonBuilder *b, const char *member, const char *value);
/* @member: @t (unix seconds) as RFC 3339 UTC, or null when @t is 0 */
void ca_json_add_time (JsonBuilder *b, const char *member, gint64 t);
/* the builder's root as text (free it), indented when @pretty */
char *ca_json_builder_text (JsonBuilder *b, gboolean pretty);

/* The parts of a sealed record the RA writes itself (intake, sweep) after
 * "version" and "case": holder, certificate, officer, a session of no
 * length at @now, one document, an approved outcome, 15 years' retention. */
typedef struct {
  const char *holder_name, *national_id, *email;
  const char *serial, *issuer;
  const char *officer_id, *officer_name, *officer_role;
  const char *doc_name, *doc_sha256, *doc_media_type, *doc_description;
  const char *notes;
} CaRecordParts;
/* Adds those members and closes the record's object. */
void ca_record_add_parts (JsonBuilder *b, const CaRecordParts *parts, gint64 now);

/* An exclusive flock on <state>/@name (waits), the open fd; -1 with @error set. */
int ca_lock_state_file (CaStore *store, const char *name, GError **error);

/* ca_audit: appends to the log; a failure is returned (and the caller decides). */
gboolean ca_store_audit (CaStore *store, const char *kind, const char *actor, const char *details_json, GError **error);
/* "admin:root" */
char *ca_actor_to_string (const CaActor *actor);

/* canonical serial: upper-case hex, two digits per byte, no leading zero byte (as
 * `openssl x509 -serial`); NULL when not hex or longer than 40 digits */
char *ca_serial_normalise (const char *serial);
gboolean ca_is_identifier (const char *text);

/* certs.c */
/* an http(s) URL fit for a certificate extension (printable, no , ; ") */
gboolean ca_is_plain_url (const char *url);
gboolean ca_certs_ensure_ca (CaStore *store, GError **error);
CaCertInfo *ca_cert_info_from_stmt (CaStore *store, sqlite3_stmt *st);
#define CA_CERT_COLUMNS                                                                          \
  "serial, subject, issuer, name, national_id, email, not_before, not_after, state, "            \
  "revocation_time, reason, invalidity_time, hold_deadline, hold_case, superseded_by, renewal_of, pem"
/* issues (inside the caller's transaction) and inserts a renewal of @old; the new info */
CaCertInfo *ca_certs_issue_locked (CaStore *store, const CaIssueRequest *request, const char *renewal_of,
                                   char **key_pem, GError **error);

/* gate.c */
gboolean ca_record_refusal (CaStore *store, const CaActionRequest *request, const char *sha256,
                            const char *message, gboolean dry_run);

/* the sweep's path through the gate: actor SYSTEM, system bundle, held past the deadline */
CaActionResult *ca_gate_apply_system (CaStore *store, const CaActionRequest *request, GError **error);

/* sweep.c: a private scratch directory under <state>/tmp (remove it when done) */
char *ca_scratch_dir (CaStore *store, GError **error);
/* removes the files of a scratch directory, then the directory */
void ca_scratch_remove (const char *dir);
/* seals a document bundle (record + data/documents/NAMES[i] from PATHS[i]) with the development PKI */
gboolean ca_seal_documents (CaStore *store, const char *record_json, const char *const *names,
                            const char *const *paths, const char *out_path, gint64 sealing_time,
                            const char *scratch, GError **error);

/* reason mapping from the record's free text (gate.c) */
CaReason ca_reason_from_text (const char *text);

G_END_DECLS

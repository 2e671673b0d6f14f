/* ca.h — the CA core: the certificate store, the lifecycle actions
 * (suspension, reactivation, revocation, renewal, automatic revocation at
 * the suspension deadline), the evidence gate that admits an action only
 * with a sealed bundle that binds it, and the glue to publication (CRL,
 * OCSP), signed e-mail intake and the audit log.
 *
 * Rules and choices are documented in docs/lifecycle.md. Errors are in the
 * TG_ERROR domain: TG_ERROR_REFUSED when a rule refuses (the message says
 * exactly which), TG_ERROR_NOT_FOUND for an unknown certificate, case or
 * account, TG_ERROR_INVALID for malformed input, TG_ERROR_IO/NOSPACE for the
 * database and files, TG_ERROR_CRYPTO for OpenSSL failures.
 *
 * A CaStore is not thread-safe: use it from one thread (testigod's main
 * context). Several processes (testigod and `testigo ca`) may open the same
 * state directory: every state change is one SQLite BEGIN IMMEDIATE
 * transaction.
 */
#pragma once

#include <glib.h>

#include "ca-publication.h"

G_BEGIN_DECLS

/* The legal maximum of a suspension (days); a configuration may ask for less, never more. */
#define CA_MAX_SUSPENSION_DAYS 15

typedef struct _CaStore CaStore;

/** CaClock: returns "now" in unix seconds (an injectable clock for tests). */
typedef gint64 (*CaClock) (gpointer user_data);

typedef struct {
  const char *state_dir;        /* required; created 0700 if missing */
  CaClock clock;                /* NULL: real time */
  gpointer clock_data;
  int max_suspension_days;      /* 0: the saved setting, else 15; clamped to 1..15 whatever is asked */
  gboolean superseded_on_crl;   /* list renewed (superseded) certificates on the CRL with reason
                                 * superseded (the CPS decides); FALSE: the saved setting, else no */
  const char *bundle_ca_file;   /* trust anchors of another RA PKI for evidence bundles, trusted besides
                                 * <state>/keys/root.pem (the sweep's and intake's); NULL: only that */
  const char *crl_url;          /* CRL distribution point written into issued certificates; NULL: saved setting */
  const char *delta_crl_url;    /* Freshest CRL URI in issued certificates and full CRLs; NULL: saved setting */
  const char *ocsp_url;         /* AIA OCSP URI in issued certificates; NULL: saved setting */
  int dev_key_bits;             /* RSA size when <state>/keys is created here; 0 = bundle default */
  gboolean no_create;           /* TRUE: fail with TG_ERROR_NOT_FOUND when the store was never initialised */
} CaStoreOptions;

/**
 * ca_store_open:
 * Opens (creating on first use unless @options->no_create) the store in
 * @options->state_dir: `ca.db` (SQLite, WAL, versioned migrations), `keys/`
 * (the development PKI that seals and verifies evidence, created with
 * bundle_keys_init when missing), `ca/` (the holders' issuing CA: ca.pem,
 * ca.key, EC P-256, self-signed, created when missing; and the delegated OCSP
 * responder ocsp.pem/ocsp.key), `publication/` (full.crl, delta.crl: DER),
 * `audit.jsonl`, `evidence/system/` (bundles sealed by the sweep).
 * Returns: (transfer full) the store, or NULL with @error.
 */
CaStore *ca_store_open (const CaStoreOptions *options, GError **error);
/** ca_store_free: closes the database and the audit log; NULL is allowed. */
void ca_store_free (CaStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaStore, ca_store_free)

/**
 * ca_store_save_settings:
 * Makes the store's current max_suspension_days, superseded_on_crl and URLs
 * the defaults of every later ca_store_open of this state directory (what an
 * opener's options leave unset, 0 or NULL, comes from here), so testigod and
 * `testigo ca` publish the same way. Audited.
 */
gboolean ca_store_save_settings (CaStore *store, GError **error);

/** ca_store_now: the store's clock, unix seconds. */
gint64 ca_store_now (CaStore *store);

/** ca_store_get_path: (transfer none) @name ("ca.pem", "root.pem", "full.crl", "delta.crl", "audit.jsonl", "ocsp.pem") as a path in the state dir, or NULL. */
const char *ca_store_get_path (CaStore *store, const char *name);

/* ------------------------------------------------------------ accounts */

typedef enum {
  CA_ROLE_HOLDER,   /* the certificate holder; id = national ID ("V-12345678") */
  CA_ROLE_OFFICER,  /* a registration officer; validates, never applies */
  CA_ROLE_ADMIN,    /* the CA administrator; id must hold the "admin" grant */
  CA_ROLE_SYSTEM,   /* the RA itself (sweep, intake); not accepted from callers of ca_apply */
} CaRole;

typedef struct {
  CaRole role;
  const char *id;
} CaActor;

/** ca_role_to_string / ca_role_from_string: "holder", "officer", "admin", "system". */
const char *ca_role_to_string (CaRole role);
gboolean ca_role_from_string (const char *text, CaRole *out);

/**
 * ca_grant:
 * Authorises @account for @what: one of the actions "renewal", "suspension",
 * "reactivation", "revocation" (an officer whose validations may back that
 * action), or "admin" (the CA administrator). Roles are distinct: an account
 * with officer grants cannot become admin and the reverse (TG_ERROR_REFUSED).
 * Idempotent. Audited.
 */
gboolean ca_grant (CaStore *store, const char *account, const char *what, const CaActor *by, GError **error);

/** ca_ungrant: withdraws a grant (no error when it was not there). Audited. */
gboolean ca_ungrant (CaStore *store, const char *account, const char *what, const CaActor *by, GError **error);

/** ca_has_grant: TRUE when @account holds @what. */
gboolean ca_has_grant (CaStore *store, const char *account, const char *what);

/** ca_grants_to_json: (transfer full) [{"account", "grant", "granted_at"}…]. */
char *ca_grants_to_json (CaStore *store, GError **error);

/* -------------------------------------------------------- certificates */

typedef enum {
  CA_CERT_VALID,
  CA_CERT_HELD,        /* suspended: certificateHold since revocation_time, until hold_deadline */
  CA_CERT_REVOKED,     /* final */
  CA_CERT_SUPERSEDED,  /* renewed: superseded_by names the new serial */
  CA_CERT_EXPIRED,     /* valid but past notAfter (computed) */
} CaCertState;

/** ca_cert_state_to_string: "valid", "held", "revoked", "superseded", "expired". */
const char *ca_cert_state_to_string (CaCertState state);

typedef struct {
  char *serial;            /* upper-case hex, no separators */
  char *subject;           /* RFC 2253 */
  char *issuer;
  char *name;              /* subject CN */
  char *national_id;       /* subject serialNumber, NULL when absent */
  char *email;             /* SAN rfc822Name or emailAddress, NULL when absent */
  gint64 not_before, not_after;
  CaCertState state;
  gint64 revocation_time;  /* t0 of the hold or the revocation; 0 when not revoked */
  CaReason reason;         /* CA_REASON_NONE when not revoked */
  gint64 invalidity_time;  /* keyCompromise only; 0 when none */
  gint64 hold_deadline;    /* HELD: t0 + duration */
  char *hold_case;         /* HELD: the suspension's case */
  char *superseded_by;     /* SUPERSEDED: the new serial */
  char *renewal_of;        /* the serial this one renewed, NULL when none */
  char *pem;
} CaCertInfo;

/** ca_cert_info_free: frees @info and its strings; NULL is allowed. */
void ca_cert_info_free (CaCertInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaCertInfo, ca_cert_info_free)

/** ca_cert_info_to_json: (transfer full) the info as a JSON object text (without the PEM unless @with_pem). */
char *ca_cert_info_to_json (const CaCertInfo *info, gboolean with_pem);

/**
 * ca_cert_import:
 * Adds an existing certificate (PEM) issued by this store's CA (its
 * signature is checked). Holder identity from the subject CN, serialNumber
 * (national ID) and SAN/emailAddress. TG_ERROR_EXISTS when already there.
 * Returns: (transfer full) the stored info.
 */
CaCertInfo *ca_cert_import (CaStore *store, const char *pem, GError **error);

typedef struct {
  const char *csr_pem;     /* the holder's CSR (its signature is checked); NULL: generate an EC P-256 key */
  const char *name;        /* subject CN (required) */
  const char *national_id; /* subject serialNumber (required) */
  const char *email;       /* SAN rfc822Name (required) */
  int days;                /* validity; 0 means 365 */
} CaIssueRequest;

/**
 * ca_cert_issue:
 * Issues a holder certificate from the store's CA: random 128-bit serial,
 * keyUsage digitalSignature+nonRepudiation, EKU emailProtection+clientAuth,
 * SAN email, CRL DP / Freshest CRL / AIA OCSP from the store options.
 * @key_pem: (out) (optional) (transfer full) the generated key when no CSR.
 * Returns: (transfer full) the stored info.
 */
CaCertInfo *ca_cert_issue (CaStore *store, const CaIssueRequest *request, char **key_pem, GError **error);

/** ca_cert_get: (transfer full) the certificate @serial (hex, any case), or NULL with TG_ERROR_NOT_FOUND. */
CaCertInfo *ca_cert_get (CaStore *store, const char *serial, GError **error);

/** ca_cert_list: (transfer full) (element-type CaCertInfo) every certificate, or the holder's (@national_id). */
GPtrArray *ca_cert_list (CaStore *store, const char *national_id, GError **error);

/* --------------------------------------------------- gate and actions */

typedef struct {
  const char *case_id;
  const char *action;          /* "suspension", "reactivation", "revocation", "renewal" */
  const char *serial;
  const char *bundle_path;     /* the sealed evidence bundle */
  CaActor actor;               /* who applies */
  CaReason reason;             /* revocation: CA_REASON_NONE = mapped from the record's reason (note: a
                                * zero-initialised request means CA_REASON_UNSPECIFIED; set NONE) */
  gint64 invalidity_time;      /* keyCompromise: when the key was compromised (0: none) */
  const char *csr_pem;         /* renewal: issue the new certificate at once (optional) */
} CaActionRequest;

typedef struct {
  gint64 action_id;
  char *case_id;
  char *action;                /* as applied: also "key-compromise-upgrade", "automatic-revocation" */
  char *serial;
  gint64 applied_at;
  gint64 revocation_time;      /* hold and revocation: t0 */
  gint64 deadline;             /* suspension: t0 + duration */
  CaReason reason;
  char *bundle_sha256;
  char *new_serial;            /* renewal, when issued */
  char *new_cert_pem;
} CaActionResult;

/** ca_action_result_free: frees @result and its strings; NULL is allowed. */
void ca_action_result_free (CaActionResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaActionResult, ca_action_result_free)

/** ca_action_result_to_json: (transfer full) the result as a JSON object text. */
char *ca_action_result_to_json (const CaActionResult *result);

/**
 * ca_gate_check:
 * Dry run of ca_apply (no state change; refusals are audited): the bundle
 * verifies with the case, action and serial bound (`testigo verify
 * --for-case --action --serial`), the outcome is approved, the record's
 * officer holds a grant for the action, the bundle was never accepted
 * before, the actor may apply the action, and the certificate's state
 * allows it. @verdict_json: (out) (optional) (transfer full)
 * {"allowed": bool, "reason": "…", "bundle": {the verify report}, …} also
 * on refusal. Returns TRUE when allowed; FALSE with TG_ERROR_REFUSED (and
 * the reason) otherwise.
 */
gboolean ca_gate_check (CaStore *store, const CaActionRequest *request, char **verdict_json, GError **error);

/**
 * ca_apply:
 * Passes the gate, then applies the action in the same transaction that
 * records the bundle's SHA-256 (UNIQUE), the case and the action; audits
 * it; republishes the CRLs. Returns: (transfer full) the result, or NULL
 * with TG_ERROR_REFUSED and the exact reason (also kept in the refusals
 * table and the audit log).
 */
CaActionResult *ca_apply (CaStore *store, const CaActionRequest *request, GError **error);

/**
 * ca_renew_complete:
 * Issues the new certificate for an applied, not yet completed renewal case
 * from the holder's CSR (@actor: the holder of the old certificate, or an
 * admin); the old certificate becomes superseded. Returns: (transfer full).
 */
CaActionResult *ca_renew_complete (CaStore *store, const char *case_id, const char *csr_pem,
                                   const CaActor *actor, GError **error);

/**
 * ca_sweep:
 * Revokes every HELD certificate whose deadline has passed (reason
 * cessationOfOperation, revocationDate kept at t0), each with its own
 * sealed system evidence bundle in <state>/evidence/system/. Idempotent.
 * @n_revoked: (out) (optional) how many were revoked now.
 */
gboolean ca_sweep (CaStore *store, guint *n_revoked, GError **error);

/** ca_store_next_deadline: the earliest hold deadline (unix seconds), 0 when nothing is held. */
gint64 ca_store_next_deadline (CaStore *store);

/* --------------------------------------------------------- publication */

/**
 * ca_publish:
 * Writes a new full CRL and a delta CRL (based on the previous full CRL:
 * new entries, changed reasons, removeFromCRL for released holds) to
 * <state>/publication/{full,delta}.crl atomically. Called by every change;
 * call it also periodically (before nextUpdate).
 */
gboolean ca_publish (CaStore *store, GError **error);

/**
 * ca_store_timestamp_audit:
 * Time-stamps the audit log's head (ca_audit_timestamp_head) with the
 * built-in TSA of <state>/keys, or @tsa_url when not NULL. Nothing happens
 * when the head is already stamped. `testigo ca publish` calls it.
 */
gboolean ca_store_timestamp_audit (CaStore *store, const char *tsa_url, GError **error);

/** ca_store_get_crl: (transfer full) the published full or delta CRL (DER), publishing first when none exists. */
GBytes *ca_store_get_crl (CaStore *store, gboolean delta, GError **error);

/**
 * ca_store_ocsp_respond:
 * Answers a DER OCSPRequest from the store: HELD → revoked (certificateHold,
 * t0), REVOKED → revoked (reason, invalidityDate none), others good, unknown
 * serials unknown. Returns: (transfer full) a DER OCSPResponse.
 */
GBytes *ca_store_ocsp_respond (CaStore *store, GBytes *request, GError **error);

/* -------------------------------------------------------------- intake */

typedef struct {
  char *case_id;
  char *action;
  char *serial;             /* the signer's certificate */
  char *national_id;
  char *reason;
  int suspension_days;
  char *message_sha256;
  char *bundle_path;        /* the sealed evidence of the request */
} CaIntakeCase;

/** ca_intake_case_free: frees @c and its strings; NULL is allowed. */
void ca_intake_case_free (CaIntakeCase *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaIntakeCase, ca_intake_case_free)

/**
 * ca_intake_accept:
 * Accepts one signed e-mail request (ca_intake_parse against the store's
 * CA): the signer certificate must be a certificate of the store belonging
 * to the holder named in the body; the message must be new (SHA-256).
 * Creates a case (channel signed-email) and seals the message as its
 * evidence bundle. A refused message is kept under <state>/intake/refused/.
 * Returns: (transfer full) the case, or NULL with the reason.
 */
CaIntakeCase *ca_intake_accept (CaStore *store, GBytes *message, GError **error);

/**
 * ca_national_id_key: (transfer full) @id as compared: upper case, without
 * dots, spaces or dashes ("V-12.345.678" → "V12345678").
 */
char *ca_national_id_key (const char *id);

G_END_DECLS

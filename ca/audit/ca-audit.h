/* ca-audit.h — the append-only, hash-chained audit log of the CA core:
 * every action, refusal and login is one JSON line whose hash covers the
 * previous line's hash; the head is time-stamped periodically through an
 * RFC 3161 TSA, so an edited, removed or reordered entry is detected.
 * The format is specified in docs/audit-log.md. Errors: TG_ERROR domain.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CaAudit CaAudit;

/** Caps: one line (newline excluded), a kind, an actor, in bytes. */
#define CA_AUDIT_MAX_LINE (64u * 1024)
#define CA_AUDIT_MAX_KIND 32
#define CA_AUDIT_MAX_ACTOR 128

/** ca_audit_kind_is_valid: 1-32 of [a-z0-9_-], starting with a letter. */
gboolean ca_audit_kind_is_valid (const char *kind);
/** ca_audit_actor_is_valid: 1-128 of [A-Za-z0-9._:@+-]. */
gboolean ca_audit_actor_is_valid (const char *actor);

/**
 * ca_audit_open:
 * Opens (creating mode 0600 if needed) the log at @path and checks its tail
 * so appends continue the chain. Safe with several processes (testigod and
 * `testigo ca`) appending: each append takes an exclusive lock.
 */
CaAudit *ca_audit_open (const char *path, GError **error);
void ca_audit_close (CaAudit *audit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaAudit, ca_audit_close)

/**
 * ca_audit_append:
 * Appends one entry and fdatasyncs it. @kind is a short word ("action",
 * "refusal", "login", "login-failed", "logout", "sweep", …); @actor the
 * account ("officer:ana", "holder:V-1", "admin:root", "system"); @details_json
 * a JSON object text (NULL for none; no secrets). @time: unix ms, <= 0 = now.
 */
gboolean ca_audit_append (CaAudit *audit, const char *kind, const char *actor,
                          const char *details_json, gint64 time_ms, GError **error);

/**
 * ca_audit_append_full:
 * As ca_audit_append(), and stores the new entry's sequence number in @seq
 * (may be NULL). The kind "timestamp" is reserved for ca_audit_timestamp_head().
 * Errors: TG_ERROR_INVALID for a bad kind, actor or details, or a log whose
 * last line is incomplete or corrupt (never repaired silently);
 * TG_ERROR_TOO_BIG for a line over CA_AUDIT_MAX_LINE; I/O errors otherwise
 * (a partly written line is then cut off again).
 */
gboolean ca_audit_append_full (CaAudit *audit, const char *kind, const char *actor,
                               const char *details_json, gint64 time_ms, guint64 *seq,
                               GError **error);

/**
 * ca_audit_timestamp_head:
 * Gets an RFC 3161 token over the current head hash, from the built-in TSA in
 * @keys_dir (tsa.pem, tsa.key) or from @tsa_url when not NULL, and appends
 * it as a "timestamp" entry. Does nothing when the head is already stamped.
 */
gboolean ca_audit_timestamp_head (CaAudit *audit, const char *keys_dir, const char *tsa_url, GError **error);

/**
 * ca_audit_timestamp_head_full:
 * As ca_audit_timestamp_head(); the reply is checked (status, imprint, nonce,
 * strict form) and, when trust anchors are known — @tsa_ca_file, else
 * @keys_dir/root.pem — its signer chain too. @seq (may be NULL) receives the
 * sequence number of the timestamp entry, 0 when nothing was appended.
 */
gboolean ca_audit_timestamp_head_full (CaAudit *audit, const char *keys_dir, const char *tsa_url,
                                       const char *tsa_ca_file, guint64 *seq, GError **error);

typedef struct {
  gboolean ok;
  guint64 entries;
  guint64 timestamps;
  guint64 first_bad;         /* 1-based line of the first problem, 0 when ok */
  char *message;             /* what is wrong, or a summary when ok */
  gint64 last_stamped_time;  /* genTime of the last valid token, 0 when none */
  guint64 unstamped_tail;    /* entries after the last token (not yet protected against truncation) */
} CaAuditReport;

void ca_audit_report_free (CaAuditReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaAuditReport, ca_audit_report_free)

/**
 * ca_audit_verify:
 * Checks every line, the chain, sequence numbers and every time-stamp token
 * (against @tsa_ca_file). Returns: (transfer full) a report; NULL with @error
 * only when the file cannot be read at all.
 */
CaAuditReport *ca_audit_verify (const char *path, const char *tsa_ca_file, GError **error);

G_END_DECLS

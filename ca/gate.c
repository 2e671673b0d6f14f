/* gate.c — the evidence gate and the lifecycle actions: an action is
 * applied only with a sealed bundle that verifies with the case, action and
 * serial bound, whose outcome is approved, whose officer holds a grant for
 * the action, and that was never accepted before; the actor must be allowed
 * to apply it and the certificate's state must allow it. Refusals say
 * exactly why, and are kept (refusals table, audit log). The rules are in
 * docs/lifecycle.md. */
#include "config.h"
#include "ca-private.h"
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* An account id the RA itself uses in the records it seals. */
#define SYSTEM_OFFICER "system"
#define INTAKE_OFFICER "intake"

typedef struct {
  char *sha256;
  BundleReport *report;
  char *report_json;
  char *officer_id, *officer_role;
  char *holder_id;
  char *case_reason;
  char *channel;
  int suspension_days;
} Evidence;

static void
evidence_clear (Evidence *ev)
{
  g_free (ev->sha256);
  g_clear_pointer (&ev->report, bundle_report_free);
  g_free (ev->report_json);
  g_free (ev->officer_id);
  g_free (ev->officer_role);
  g_free (ev->holder_id);
  g_free (ev->case_reason);
  g_free (ev->channel);
  memset (ev, 0, sizeof *ev);
}

void
ca_action_result_free (CaActionResult *r)
{
  if (r == NULL)
    return;
  g_free (r->case_id);
  g_free (r->action);
  g_free (r->serial);
  g_free (r->bundle_sha256);
  g_free (r->new_serial);
  g_free (r->new_cert_pem);
  g_free (r);
}

char *
ca_action_result_to_json (const CaActionResult *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action_id");
  json_builder_add_int_value (b, r->action_id);
  ca_json_add_str (b, "case", r->case_id);
  ca_json_add_str (b, "action", r->action);
  ca_json_add_str (b, "serial", r->serial);
  ca_json_add_time (b, "applied_at", r->applied_at);
  ca_json_add_time (b, "revocation_time", r->revocation_time);
  ca_json_add_time (b, "deadline", r->deadline);
  ca_json_add_str (b, "reason", r->reason == CA_REASON_NONE ? NULL : ca_reason_to_string (r->reason));
  ca_json_add_str (b, "bundle_sha256", r->bundle_sha256);
  ca_json_add_str (b, "new_serial", r->new_serial);
  if (r->new_cert_pem)
    ca_json_add_str (b, "new_certificate", r->new_cert_pem);
  json_builder_end_object (b);
  return ca_json_builder_text (b, FALSE);
}

/* ------------------------------------------------------------ reasons */

/* PROCERT's causes (Spanish or English free text) to RFC 5280 reasons. */
CaReason
ca_reason_from_text (const char *text)
{
  static const struct { const char *word; CaReason reason; } words[] = {
    { "keycompromise", CA_REASON_KEY_COMPROMISE },
    { "key compromise", CA_REASON_KEY_COMPROMISE },
    { "compromised", CA_REASON_KEY_COMPROMISE },
    { "compromet", CA_REASON_KEY_COMPROMISE },   /* comprometida, comprometió */
    { "private key", CA_REASON_KEY_COMPROMISE },
    { "clave privada", CA_REASON_KEY_COMPROMISE },
    { "robo", CA_REASON_KEY_COMPROMISE },
    { "stolen", CA_REASON_KEY_COMPROMISE },
    { "affiliationchanged", CA_REASON_AFFILIATION_CHANGED },
    { "affiliation", CA_REASON_AFFILIATION_CHANGED },
    { "left the company", CA_REASON_AFFILIATION_CHANGED },
    { "ya no trabaja", CA_REASON_AFFILIATION_CHANGED },
    { "renuncia", CA_REASON_AFFILIATION_CHANGED },
    { "cargo", CA_REASON_AFFILIATION_CHANGED },
    { "privilegewithdrawn", CA_REASON_PRIVILEGE_WITHDRAWN },
    { "cessationofoperation", CA_REASON_CESSATION_OF_OPERATION },
    { "ceased", CA_REASON_CESSATION_OF_OPERATION },
    { "cessation", CA_REASON_CESSATION_OF_OPERATION },
    { "dej\xc3\xb3 de existir", CA_REASON_CESSATION_OF_OPERATION },
    { "dejo de existir", CA_REASON_CESSATION_OF_OPERATION },
    { "cese", CA_REASON_CESSATION_OF_OPERATION },
    { "ces\xc3\xb3", CA_REASON_CESSATION_OF_OPERATION },
    { "fallec", CA_REASON_CESSATION_OF_OPERATION },
    { "deceased", CA_REASON_CESSATION_OF_OPERATION },
    { "disuel", CA_REASON_CESSATION_OF_OPERATION },     /* disuelta: a legal person dissolved */
    { "dissolved", CA_REASON_CESSATION_OF_OPERATION },
  };
  g_autofree char *low = NULL;

  if (text == NULL)
    return CA_REASON_UNSPECIFIED;
  low = g_utf8_strdown (text, -1);
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    if (strstr (low, words[i].word) != NULL)
      return words[i].reason;
  return CA_REASON_UNSPECIFIED;
}

static gboolean
reason_allowed_for_holder (CaReason r)
{
  switch (r)
    {
    case CA_REASON_UNSPECIFIED:
    case CA_REASON_KEY_COMPROMISE:
    case CA_REASON_AFFILIATION_CHANGED:
    case CA_REASON_SUPERSEDED:
    case CA_REASON_CESSATION_OF_OPERATION:
    case CA_REASON_PRIVILEGE_WITHDRAWN:
      return TRUE;
    default:
      return FALSE;
    }
}

/* ------------------------------------------------------ the record */

static gboolean
is_record_member (const char *name)
{
  const char *slash = name ? strchr (name, '/') : NULL;

  return slash != NULL && slash != name && strcmp (slash, "/data/record.json") == 0;
}

/* Reads <case>/data/record.json from the (already verified) bundle. */
static JsonNode *
read_record (const char *path, GError **error)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  JsonNode *node = NULL;
  int rc;

  archive_read_support_format_tar (a);
  if (archive_read_open_filename (a, path, 64 * 1024) != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "%s: %s", path, archive_error_string (a));
      archive_read_free (a);
      return NULL;
    }
  while ((rc = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    {
      g_autofree char *buf = NULL;
      la_int64_t size;
      la_ssize_t got;
      g_autoptr (JsonParser) parser = NULL;

      if (!is_record_member (archive_entry_pathname (e)))
        continue;
      size = archive_entry_size (e);
      if (size <= 0 || (guint64) size > CA_RECORD_MAX)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "%s: the record is empty or over 1 MiB", path);
          break;
        }
      buf = g_malloc ((gsize) size + 1);
      got = archive_read_data (a, buf, (size_t) size);
      if (got != size)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_IO, "%s: cannot read the record", path);
          break;
        }
      buf[size] = '\0';
      parser = json_parser_new ();
      if (!json_parser_load_from_data (parser, buf, (gssize) size, error))
        break;
      node = json_node_copy (json_parser_get_root (parser));
      break;
    }
  if (node == NULL && error != NULL && *error == NULL)
    g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s: no record.json in the bundle", path);
  archive_read_free (a);
  return node;
}

static const char *
record_str (JsonObject *root, const char *obj, const char *member)
{
  JsonObject *o;
  JsonNode *n;

  if (root == NULL || !json_object_has_member (root, obj) || !JSON_NODE_HOLDS_OBJECT (json_object_get_member (root, obj)))
    return NULL;
  o = json_object_get_object_member (root, obj);
  n = json_object_get_member (o, member);
  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n) : NULL;
}

/* ---------------------------------------------------------- refusals */

gboolean
ca_record_refusal (CaStore *store, const CaActionRequest *req, const char *sha256, const char *message,
                   gboolean dry_run)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *actor = ca_actor_to_string (&req->actor);
  g_autofree char *details = NULL;

  ca_db_rollback (store);
  json_builder_begin_object (b);
  ca_json_add_str (b, "case", req->case_id);
  ca_json_add_str (b, "action", req->action);
  ca_json_add_str (b, "serial", req->serial);
  ca_json_add_str (b, "bundle_sha256", sha256);
  ca_json_add_str (b, "reason", message);
  json_builder_set_member_name (b, "dry_run");
  json_builder_add_boolean_value (b, dry_run);
  json_builder_end_object (b);
  details = ca_json_builder_text (b, FALSE);

  if (!ca_db_begin (store, &error))
    goto fail;
  st = ca_db_prepare (store,
                      "INSERT INTO refusals (time, case_id, action, serial, actor, bundle_sha256, dry_run, reason)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      &error);
  if (st == NULL)
    goto fail;
  sqlite3_bind_int64 (st, 1, ca_store_now (store));
  ca_db_bind_text (st, 2, req->case_id);
  ca_db_bind_text (st, 3, req->action);
  ca_db_bind_text (st, 4, req->serial);
  ca_db_bind_text (st, 5, actor);
  ca_db_bind_text (st, 6, sha256);
  sqlite3_bind_int (st, 7, dry_run ? 1 : 0);
  ca_db_bind_text (st, 8, message);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, &error, "refusal");
      goto fail;
    }
  if (!ca_store_audit (store, "refusal", actor, details, &error) || !ca_db_commit (store, &error))
    goto fail;
  return TRUE;
fail:
  ca_db_rollback (store);
  g_warning ("cannot record the refusal (%s): %s", message, error ? error->message : "?");
  return FALSE;
}

/* Sets a TG_ERROR_REFUSED (or @code) error, recording the refusal. */
static void
refuse (CaStore *store, const CaActionRequest *req, const char *sha, gboolean dry_run, GError **error, int code,
        const char *fmt, ...) G_GNUC_PRINTF (7, 8);

static void
refuse (CaStore *store, const CaActionRequest *req, const char *sha, gboolean dry_run, GError **error, int code,
        const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  ca_record_refusal (store, req, sha, msg, dry_run);
  g_set_error_literal (error, TG_ERROR, code, msg);
}

/* -------------------------------------------------------------- rules */

static gboolean
is_action (const char *a)
{
  return g_strcmp0 (a, "suspension") == 0 || g_strcmp0 (a, "reactivation") == 0 || g_strcmp0 (a, "revocation") == 0
         || g_strcmp0 (a, "renewal") == 0;
}

static const char *
verb (const char *action)
{
  return strcmp (action, "suspension") == 0 ? "suspend" : strcmp (action, "reactivation") == 0 ? "reactivate"
         : strcmp (action, "revocation") == 0 ? "revoke" : "renew";
}

/* Who may apply: NULL when allowed, else why not. */
static char *
actor_rule (CaStore *store, const CaActionRequest *req, gboolean internal)
{
  const CaActor *a = &req->actor;
  const char *action = req->action;

  if (a->role == CA_ROLE_SYSTEM)
    return internal ? NULL
                    : g_strdup ("the system role applies only the automatic revocation at the suspension deadline (ca_sweep)");
  if (a->id == NULL || *a->id == '\0')
    return g_strdup ("the actor has no account id");
  if (a->role == CA_ROLE_OFFICER)
    return g_strdup_printf ("officer %s may validate but not apply: only the CA administrator%s may %s", a->id,
                            strcmp (action, "revocation") == 0 || strcmp (action, "renewal") == 0 ? " or the holder" : "",
                            verb (action));
  if (a->role == CA_ROLE_ADMIN && !ca_has_grant (store, a->id, "admin"))
    return g_strdup_printf ("account %s is not a CA administrator", a->id);
  if (a->role == CA_ROLE_HOLDER && strcmp (action, "suspension") == 0)
    return g_strdup ("only the CA administrator may suspend (the holder asks; the administrator applies)");
  if (a->role == CA_ROLE_HOLDER && strcmp (action, "reactivation") == 0)
    return g_strdup ("only the CA administrator may reactivate (the holder asks; the administrator applies)");
  return NULL;
}

static gboolean
same_id (const char *a, const char *b)
{
  g_autofree char *x = NULL, *y = NULL;

  if (a == NULL || b == NULL)
    return FALSE;
  /* "V-12.345.678", "v 12345678" and "V12345678" are one ID written three
   * ways: compare without case, dots, spaces or dashes. */
  x = ca_national_id_key (a);
  y = ca_national_id_key (b);
  return strcmp (x, y) == 0;
}

/* Whose validation may back the action: NULL when allowed. */
static char *
officer_rule (CaStore *store, const CaActionRequest *req, const Evidence *ev, const CaCertInfo *cert, gboolean internal)
{
  const char *id = ev->officer_id, *role = ev->officer_role ? ev->officer_role : "";

  if (id == NULL)
    return g_strdup ("the record names no officer");
  if (g_ascii_strcasecmp (role, "system") == 0)
    {
      if (strcmp (id, SYSTEM_OFFICER) == 0)
        return internal ? NULL : g_strdup ("a system bundle backs only the automatic revocation");
      return g_strdup_printf ("unknown system account %s in the record", id);
    }
  if (strcmp (id, INTAKE_OFFICER) == 0)
    {
      /* a request by signed e-mail accepted by ca_intake_accept (intake-glue.c) */
      if (g_strcmp0 (ev->channel, "signed-email") != 0)
        return g_strdup_printf ("the intake account backs only signed e-mail requests, not the %s channel",
                                ev->channel ? ev->channel : "unknown");
      if (strcmp (req->action, "renewal") == 0)
        return g_strdup ("a renewal needs an in-person or teleconference validation, not only the signed e-mail");
      return internal ? g_strdup ("the automatic revocation needs a system bundle") : NULL;
    }
  if (g_ascii_strcasecmp (role, "holder") == 0)
    {
      g_autofree char *prefixed = cert->national_id ? g_strdup_printf ("holder-%s", cert->national_id) : NULL;
      if (strcmp (req->action, "revocation") != 0)
        return g_strdup_printf ("a holder's own request (portal) backs only a revocation, not a %s", req->action);
      if (!same_id (id, cert->national_id) && !same_id (id, prefixed))
        return g_strdup_printf ("the portal request was made by %s, not by the holder of %s", id, cert->serial);
      return internal ? g_strdup ("the automatic revocation needs a system bundle") : NULL;
    }
  if (internal)
    return g_strdup ("the automatic revocation needs a system bundle");
  if (req->actor.id != NULL && strcmp (req->actor.id, id) == 0)
    return g_strdup_printf ("%s validated the case and cannot also apply it", id);
  if (!ca_has_grant (store, id, req->action))
    return g_strdup_printf ("officer %s is not authorised for %s", id, req->action);
  return NULL;
}

/* What the certificate's state allows: NULL when allowed. */
static char *
state_rule (CaStore *store, const CaActionRequest *req, const CaCertInfo *c, CaReason reason, gint64 now,
            gboolean internal)
{
  const char *a = req->action;
  g_autofree char *since = c->revocation_time ? tg_time_format (c->revocation_time) : NULL;
  g_autofree char *deadline = c->hold_deadline ? tg_time_format (c->hold_deadline) : NULL;

  if (internal)
    {
      if (c->state != CA_CERT_HELD)
        return g_strdup_printf ("certificate %s is %s, not held", c->serial, ca_cert_state_to_string (c->state));
      if (now < c->hold_deadline)
        return g_strdup_printf ("the suspension of %s runs until %s", c->serial, deadline);
      return NULL;
    }
  if (c->state == CA_CERT_REVOKED)
    {
      if (strcmp (a, "revocation") == 0 && reason == CA_REASON_KEY_COMPROMISE && c->reason != CA_REASON_KEY_COMPROMISE)
        return NULL; /* the upgrade to keyCompromise */
      if (strcmp (a, "renewal") == 0)
        return g_strdup_printf ("certificate %s is revoked: renewal refused", c->serial);
      return g_strdup_printf ("certificate %s is revoked (%s, since %s): revocation is final", c->serial,
                              ca_reason_to_string (c->reason), since);
    }
  if (strcmp (a, "suspension") == 0)
    {
      if (c->state == CA_CERT_HELD)
        return g_strdup_printf ("certificate %s is already held (since %s, until %s)", c->serial, since, deadline);
      if (c->state != CA_CERT_VALID)
        return g_strdup_printf ("certificate %s is %s: suspension refused", c->serial, ca_cert_state_to_string (c->state));
      return NULL;
    }
  if (strcmp (a, "reactivation") == 0)
    {
      if (c->state != CA_CERT_HELD)
        return g_strdup_printf ("certificate %s is %s, not held: nothing to reactivate", c->serial,
                                ca_cert_state_to_string (c->state));
      if (now >= c->hold_deadline)
        return g_strdup_printf ("reactivation after the deadline (%s): the suspension of %s ends in revocation",
                                deadline, c->serial);
      return NULL;
    }
  if (strcmp (a, "revocation") == 0)
    return NULL; /* valid, held, superseded, expired */
  /* renewal */
  if (c->state == CA_CERT_HELD)
    return g_strdup_printf ("certificate %s is held: renewal refused", c->serial);
  if (c->state == CA_CERT_SUPERSEDED)
    return g_strdup_printf ("certificate %s was already renewed (by %s)", c->serial, c->superseded_by);
  if (c->state != CA_CERT_VALID)
    return g_strdup_printf ("certificate %s is %s: renewal refused", c->serial, ca_cert_state_to_string (c->state));
  return NULL;
}

/* --------------------------------------------------------- the evidence */

static gboolean
check_evidence (CaStore *store, const CaActionRequest *req, Evidence *ev, gboolean dry_run, GError **error)
{
  g_autofree char *serial = ca_serial_normalise (req->serial);
  BundleVerifyOptions vo = { 0 };
  g_autoptr (GError) local = NULL;
  g_autoptr (JsonNode) record = NULL;
  guint8 digest[32], again[32];
  JsonObject *root;

  if (!g_file_test (req->bundle_path, G_FILE_TEST_IS_REGULAR))
    {
      refuse (store, req, NULL, dry_run, error, TG_ERROR_REFUSED, "the bundle cannot be read: %s is not a regular file",
              req->bundle_path);
      return FALSE;
    }
  if (!tg_sha256_file (req->bundle_path, digest, NULL, &local))
    {
      refuse (store, req, NULL, dry_run, error, TG_ERROR_REFUSED, "the bundle cannot be read: %s", local->message);
      return FALSE;
    }
  ev->sha256 = tg_hex (digest, 32);
  vo.ca_file = store->bundle_ca_file;
  vo.for_case = req->case_id;
  vo.for_action = req->action;
  vo.for_serial = req->serial;
  vo.quiet_progress = TRUE;
  ev->report = bundle_verify (req->bundle_path, &vo, &local);
  if (ev->report != NULL && ev->report->indication != BUNDLE_TOTAL_PASSED && ev->report->serial != NULL
      && g_strcmp0 (ev->report->case_id, req->case_id) == 0 && g_strcmp0 (ev->report->action, req->action) == 0
      && g_ascii_strcasecmp (ev->report->serial, req->serial) != 0)
    {
      /* the same serial written otherwise (leading zero byte, case): bind the record's spelling */
      g_autofree char *theirs = ca_serial_normalise (ev->report->serial);
      g_autofree char *record_serial = g_strdup (ev->report->serial);
      if (g_strcmp0 (theirs, serial) == 0)
        {
          g_clear_pointer (&ev->report, bundle_report_free);
          vo.for_serial = record_serial;
          ev->report = bundle_verify (req->bundle_path, &vo, &local);
        }
    }
  if (ev->report == NULL)
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "the bundle cannot be verified: %s",
              local->message);
      return FALSE;
    }
  ev->report_json = bundle_report_to_json (ev->report);
  if (ev->report->indication != BUNDLE_TOTAL_PASSED)
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "bundle failed verification: %s%s%s: %s",
              bundle_indication_to_string (ev->report->indication), ev->report->sub_indication ? "/" : "",
              ev->report->sub_indication ? ev->report->sub_indication : "",
              ev->report->message ? ev->report->message : "");
      return FALSE;
    }
  if (g_strcmp0 (ev->report->outcome, "approved") != 0)
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED,
              "outcome is %s: the validation did not approve the %s", ev->report->outcome ? ev->report->outcome : "missing",
              req->action);
      return FALSE;
    }
  if ((record = read_record (req->bundle_path, &local)) == NULL || !JSON_NODE_HOLDS_OBJECT (record))
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "the bundle's record cannot be read: %s",
              local ? local->message : "not an object");
      return FALSE;
    }
  /* the bytes read are the bytes verified */
  if (!tg_sha256_file (req->bundle_path, again, NULL, &local) || memcmp (digest, again, 32) != 0)
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "the bundle changed while it was being verified");
      return FALSE;
    }
  root = json_node_get_object (record);
  ev->officer_id = g_strdup (record_str (root, "officer", "id"));
  ev->officer_role = g_strdup (record_str (root, "officer", "role"));
  ev->holder_id = g_strdup (record_str (root, "holder", "national_id"));
  ev->case_reason = g_strdup (record_str (root, "case", "reason"));
  ev->channel = g_strdup (record_str (root, "case", "channel"));
  {
    JsonObject *c = json_object_has_member (root, "case") ? json_object_get_object_member (root, "case") : NULL;
    if (c != NULL && json_object_has_member (c, "suspension_days"))
      ev->suspension_days = (int) json_object_get_int_member (c, "suspension_days");
  }
  return TRUE;
}

/* ---------------------------------------------------------- apply core */

static gboolean
lookup_case (CaStore *store, const char *case_id, char **action, char **serial, char **state, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, "SELECT action, serial, state FROM cases WHERE id = ?1", error);

  *action = *serial = *state = NULL;
  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, case_id);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      *action = ca_db_column_text (st, 0);
      *serial = ca_db_column_text (st, 1);
      *state = ca_db_column_text (st, 2);
    }
  return TRUE;
}

static char *
replay_rule (CaStore *store, const char *sha)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "SELECT b.accepted_at, b.action_id, b.case_id, a.action FROM accepted_bundles b"
      " JOIN actions a ON a.id = b.action_id WHERE b.sha256 = ?1", NULL);

  if (st == NULL)
    return g_strdup ("cannot check the accepted bundles");
  ca_db_bind_text (st, 1, sha);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      g_autofree char *when = tg_time_format (sqlite3_column_int64 (st, 0));
      return g_strdup_printf ("bundle already accepted on %s for action %" G_GINT64_FORMAT " (%s, case %s)", when,
                              (gint64) sqlite3_column_int64 (st, 1), sqlite3_column_text (st, 3), sqlite3_column_text (st, 2));
    }
  return NULL;
}

static gboolean
exec_update (CaStore *store, sqlite3_stmt *st, GError **error)
{
  if (st == NULL)
    return FALSE;
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "update");
      return FALSE;
    }
  return TRUE;
}

static gboolean
upsert_case (CaStore *store, const char *case_id, const char *action, const char *serial, const char *channel,
             const char *state, const char *reason, int days, gint64 now, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "INSERT INTO cases (id, action, serial, channel, state, reason, suspension_days, created_at, updated_at)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
      " ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at", error);

  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, case_id);
  ca_db_bind_text (st, 2, action);
  ca_db_bind_text (st, 3, serial);
  ca_db_bind_text (st, 4, channel);
  ca_db_bind_text (st, 5, state);
  ca_db_bind_text (st, 6, reason);
  if (days > 0)
    sqlite3_bind_int (st, 7, days);
  else
    sqlite3_bind_null (st, 7);
  sqlite3_bind_int64 (st, 8, now);
  return exec_update (store, st, error);
}

static gint64
insert_action (CaStore *store, const CaActionResult *r, const char *actor, const char *officer,
               const char *bundle_path, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "INSERT INTO actions (case_id, action, serial, actor, officer, applied_at, revocation_time, deadline, reason,"
      " bundle_sha256, bundle_path, new_serial) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", error);

  if (st == NULL)
    return 0;
  ca_db_bind_text (st, 1, r->case_id);
  ca_db_bind_text (st, 2, r->action);
  ca_db_bind_text (st, 3, r->serial);
  ca_db_bind_text (st, 4, actor);
  ca_db_bind_text (st, 5, officer);
  sqlite3_bind_int64 (st, 6, r->applied_at);
  if (r->revocation_time)
    sqlite3_bind_int64 (st, 7, r->revocation_time);
  if (r->deadline)
    sqlite3_bind_int64 (st, 8, r->deadline);
  if (r->reason != CA_REASON_NONE)
    sqlite3_bind_int (st, 9, r->reason);
  ca_db_bind_text (st, 10, r->bundle_sha256);
  ca_db_bind_text (st, 11, bundle_path);
  ca_db_bind_text (st, 12, r->new_serial);
  if (!exec_update (store, st, error))
    return 0;
  return sqlite3_last_insert_rowid (store->db);
}

static gboolean
accept_bundle (CaStore *store, const char *sha, gint64 action_id, const char *case_id, gint64 now, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "INSERT INTO accepted_bundles (sha256, action_id, case_id, accepted_at) VALUES (?1, ?2, ?3, ?4)", error);

  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, sha);
  sqlite3_bind_int64 (st, 2, action_id);
  ca_db_bind_text (st, 3, case_id);
  sqlite3_bind_int64 (st, 4, now);
  return exec_update (store, st, error);
}

static gboolean
supersede (CaStore *store, const char *old_serial, const char *new_serial, gint64 now, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "UPDATE certs SET state = 'superseded', superseded_by = ?2, superseded_at = ?3, revocation_time = ?3,"
      " reason = 4 WHERE serial = ?1 AND state = 'valid'", error);

  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, old_serial);
  ca_db_bind_text (st, 2, new_serial);
  sqlite3_bind_int64 (st, 3, now);
  if (!exec_update (store, st, error))
    return FALSE;
  if (sqlite3_changes (store->db) != 1)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "certificate %s is no longer valid: renewal refused", old_serial);
      return FALSE;
    }
  return TRUE;
}

static char *
action_details (const CaActionResult *r, const char *officer, const char *channel)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "action_id");
  json_builder_add_int_value (b, r->action_id);
  ca_json_add_str (b, "case", r->case_id);
  ca_json_add_str (b, "action", r->action);
  ca_json_add_str (b, "serial", r->serial);
  ca_json_add_str (b, "officer", officer);
  ca_json_add_str (b, "channel", channel);
  ca_json_add_str (b, "bundle_sha256", r->bundle_sha256);
  ca_json_add_time (b, "revocation_time", r->revocation_time);
  ca_json_add_time (b, "deadline", r->deadline);
  ca_json_add_str (b, "reason", r->reason == CA_REASON_NONE ? NULL : ca_reason_to_string (r->reason));
  ca_json_add_str (b, "new_serial", r->new_serial);
  json_builder_end_object (b);
  return ca_json_builder_text (b, FALSE);
}

static gboolean
affects_crl (CaStore *store, const CaActionResult *r)
{
  return strcmp (r->action, "renewal") != 0 || (store->superseded_on_crl && r->new_serial != NULL);
}

/* The state part of the gate, inside BEGIN IMMEDIATE; with !dry_run also the
 * change. On refusal the transaction is rolled back and the refusal kept. */
static CaActionResult *
apply_locked (CaStore *store, const CaActionRequest *req, const Evidence *ev, gboolean dry_run, gboolean internal,
              GError **error)
{
  g_autoptr (CaCertInfo) cert = NULL;
  g_autoptr (CaActionResult) r = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *why = NULL, *case_action = NULL, *case_serial = NULL, *case_state = NULL;
  g_autofree char *actor = ca_actor_to_string (&req->actor);
  g_autofree char *details = NULL;
  g_autofree char *serial = ca_serial_normalise (req->serial);
  CaReason reason = req->reason;
  gint64 now;
  int days = 0;

  if (!ca_db_begin (store, error))
    return NULL;
  now = ca_store_now (store);
  if ((cert = ca_cert_get (store, serial, &local)) == NULL)
    {
      refuse (store, req, ev->sha256, dry_run, error, local->code, "%s", local->message);
      return NULL;
    }
  if (req->actor.role == CA_ROLE_HOLDER && !same_id (req->actor.id, cert->national_id))
    {
      refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "holder %s does not hold certificate %s",
              req->actor.id, cert->serial);
      return NULL;
    }
  if ((why = replay_rule (store, ev->sha256)) != NULL)
    goto refused;
  if (!lookup_case (store, req->case_id, &case_action, &case_serial, &case_state, error))
    goto fail;
  if (case_state != NULL)
    {
      if (strcmp (case_action, req->action) != 0 || strcmp (case_serial, serial) != 0)
        why = g_strdup_printf ("case %s is a %s of %s, not a %s of %s", req->case_id, case_action, case_serial,
                               req->action, serial);
      else if (strcmp (case_state, "open") != 0)
        why = g_strdup_printf ("case %s was already %s", req->case_id,
                               strcmp (case_state, "approved") == 0 ? "approved (complete it with the holder's CSR)" : "applied");
      if (why)
        goto refused;
    }
  if (ev->holder_id != NULL && cert->national_id != NULL && !same_id (ev->holder_id, cert->national_id))
    {
      why = g_strdup_printf ("the bundle is for holder %s, but certificate %s belongs to %s", ev->holder_id,
                             cert->serial, cert->national_id);
      goto refused;
    }
  if ((why = officer_rule (store, req, ev, cert, internal)) != NULL)
    goto refused;

  if (strcmp (req->action, "revocation") == 0)
    {
      if (internal)
        reason = CA_REASON_CESSATION_OF_OPERATION;
      else if (reason == CA_REASON_NONE)
        reason = ca_reason_from_text (ev->case_reason);
      if (!reason_allowed_for_holder (reason))
        {
          why = g_strdup_printf ("reason %s cannot be used to revoke a holder's certificate", ca_reason_to_string (reason));
          goto refused;
        }
      if (req->invalidity_time != 0 && reason != CA_REASON_KEY_COMPROMISE)
        {
          why = g_strdup ("an invalidity date goes only with keyCompromise");
          goto refused;
        }
      if (req->invalidity_time > now)
        {
          why = g_strdup ("the invalidity date is in the future");
          goto refused;
        }
    }
  if ((why = state_rule (store, req, cert, reason, now, internal)) != NULL)
    goto refused;
  if (strcmp (req->action, "suspension") == 0)
    {
      days = ev->suspension_days;
      if (days <= 0)
        {
          why = g_strdup ("the record gives no suspension duration");
          goto refused;
        }
      if (days > store->max_days)
        {
          why = g_strdup_printf ("a suspension of %d days exceeds the maximum of %d days", days, store->max_days);
          goto refused;
        }
    }

  r = g_new0 (CaActionResult, 1);
  r->case_id = g_strdup (req->case_id);
  r->action = g_strdup (req->action);
  r->serial = g_strdup (cert->serial);
  r->applied_at = now;
  r->reason = CA_REASON_NONE;
  r->bundle_sha256 = g_strdup (ev->sha256);

  if (strcmp (req->action, "suspension") == 0)
    {
      r->revocation_time = now;
      r->deadline = now + days * CA_DAY;
      r->reason = CA_REASON_CERTIFICATE_HOLD;
    }
  else if (strcmp (req->action, "revocation") == 0)
    {
      r->reason = reason;
      if (internal)
        {
          g_free (r->action);
          r->action = g_strdup ("automatic-revocation");
          r->revocation_time = cert->revocation_time; /* t0 of the hold */
        }
      else if (cert->state == CA_CERT_REVOKED)
        {
          g_free (r->action);
          r->action = g_strdup ("key-compromise-upgrade");
          r->revocation_time = cert->revocation_time; /* the original date stays */
        }
      else if (cert->state == CA_CERT_HELD)
        r->revocation_time = cert->revocation_time; /* revoked from hold: t0 stays */
      else
        r->revocation_time = now;
    }

  if (dry_run)
    {
      ca_db_rollback (store);
      return g_steal_pointer (&r);
    }

  /* the change */
  if (strcmp (req->action, "suspension") == 0)
    {
      g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
          "UPDATE certs SET state = 'held', revocation_time = ?2, reason = 6, invalidity_time = NULL,"
          " hold_deadline = ?3, hold_case = ?4 WHERE serial = ?1", error);
      if (st)
        {
          ca_db_bind_text (st, 1, cert->serial);
          sqlite3_bind_int64 (st, 2, r->revocation_time);
          sqlite3_bind_int64 (st, 3, r->deadline);
          ca_db_bind_text (st, 4, req->case_id);
        }
      if (!exec_update (store, st, error))
        goto fail;
    }
  else if (strcmp (req->action, "reactivation") == 0)
    {
      g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
          "UPDATE certs SET state = 'valid', revocation_time = NULL, reason = NULL, invalidity_time = NULL,"
          " hold_deadline = NULL, hold_case = NULL WHERE serial = ?1", error);
      if (st)
        ca_db_bind_text (st, 1, cert->serial);
      if (!exec_update (store, st, error))
        goto fail;
    }
  else if (strcmp (req->action, "revocation") == 0)
    {
      g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
          "UPDATE certs SET state = 'revoked', revocation_time = ?2, reason = ?3, invalidity_time = ?4,"
          " hold_deadline = NULL WHERE serial = ?1", error);
      if (st)
        {
          ca_db_bind_text (st, 1, cert->serial);
          sqlite3_bind_int64 (st, 2, r->revocation_time);
          sqlite3_bind_int (st, 3, r->reason);
          if (req->invalidity_time > 0)
            sqlite3_bind_int64 (st, 4, req->invalidity_time);
          else
            sqlite3_bind_null (st, 4);
        }
      if (!exec_update (store, st, error))
        goto fail;
    }
  else if (strcmp (req->action, "renewal") == 0 && req->csr_pem != NULL)
    {
      CaIssueRequest ir = { 0 };
      g_autoptr (CaCertInfo) nc = NULL;
      ir.csr_pem = req->csr_pem;
      ir.name = cert->name;
      ir.national_id = cert->national_id;
      ir.email = cert->email;
      ir.days = (int) CLAMP ((cert->not_after - cert->not_before + CA_DAY / 2) / CA_DAY, 1, 3650);
      if ((nc = ca_certs_issue_locked (store, &ir, cert->serial, NULL, error)) == NULL
          || !supersede (store, cert->serial, nc->serial, now, error))
        goto fail;
      r->new_serial = g_strdup (nc->serial);
      r->new_cert_pem = g_strdup (nc->pem);
    }

  if (!upsert_case (store, req->case_id, req->action, cert->serial, ev->channel,
                    strcmp (req->action, "renewal") == 0 && r->new_serial == NULL ? "approved"
                    : strcmp (req->action, "renewal") == 0 ? "completed" : "applied",
                    ev->case_reason, days, now, error))
    goto fail;
  if ((r->action_id = insert_action (store, r, actor, ev->officer_id, req->bundle_path, error)) == 0)
    goto fail;
  if (!accept_bundle (store, ev->sha256, r->action_id, req->case_id, now, error))
    goto fail;
  details = action_details (r, ev->officer_id, ev->channel);
  if (!ca_store_audit (store, "action", actor, details, error) || !ca_db_commit (store, error))
    goto fail;
  return g_steal_pointer (&r);

refused:
  refuse (store, req, ev->sha256, dry_run, error, TG_ERROR_REFUSED, "%s", why);
  return NULL;
fail:
  ca_db_rollback (store);
  return NULL;
}

/* Request syntax and the actor rule (cheap, before the bundle is read). */
static gboolean
check_request (CaStore *store, const CaActionRequest *req, gboolean dry_run, gboolean internal, GError **error)
{
  g_autofree char *why = NULL, *serial = NULL;

  if (req == NULL || !ca_is_identifier (req->case_id))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the case id must be 1-64 of A-Z a-z 0-9 . _ -");
      return FALSE;
    }
  if (!is_action (req->action))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "unknown action \"%s\" (suspension, reactivation, revocation or renewal)", req->action ? req->action : "");
      return FALSE;
    }
  if ((serial = ca_serial_normalise (req->serial)) == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial \"%s\" is not 1-40 hex digits", req->serial ? req->serial : "");
      return FALSE;
    }
  if (req->bundle_path == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "an evidence bundle is required");
      return FALSE;
    }
  if (req->csr_pem != NULL && strcmp (req->action, "renewal") != 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a CSR goes only with a renewal");
      return FALSE;
    }
  /* a zero-initialised request says "unspecified": tolerated for the other actions */
  if (((req->reason != CA_REASON_NONE && req->reason != CA_REASON_UNSPECIFIED) || req->invalidity_time != 0)
      && strcmp (req->action, "revocation") != 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a reason or invalidity date goes only with a revocation");
      return FALSE;
    }
  if ((why = actor_rule (store, req, internal)) != NULL)
    {
      refuse (store, req, NULL, dry_run, error, TG_ERROR_REFUSED, "%s", why);
      return FALSE;
    }
  return TRUE;
}

static CaActionResult *
gate (CaStore *store, const CaActionRequest *req, gboolean dry_run, gboolean internal, char **verdict_json,
      GError **error)
{
  Evidence ev = { 0 };
  CaActionResult *r = NULL;
  g_autoptr (GError) local = NULL;
  gboolean ok;

  ok = check_request (store, req, dry_run, internal, &local);
  if (ok)
    {
      ok = check_evidence (store, req, &ev, dry_run, &local);
      if (ok)
        r = apply_locked (store, req, &ev, dry_run, internal, &local);
      ok = r != NULL;
    }

  if (verdict_json != NULL)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "allowed");
      json_builder_add_boolean_value (b, ok);
      ca_json_add_str (b, "reason", ok ? NULL : local->message);
      ca_json_add_str (b, "case", req ? req->case_id : NULL);
      ca_json_add_str (b, "action", req ? req->action : NULL);
      ca_json_add_str (b, "serial", req ? req->serial : NULL);
      {
        g_autofree char *actor = req ? ca_actor_to_string (&req->actor) : NULL;
        ca_json_add_str (b, "actor", actor);
      }
      ca_json_add_str (b, "bundle_sha256", ev.sha256);
      ca_json_add_str (b, "officer", ev.officer_id);
      ca_json_add_str (b, "channel", ev.channel);
      if (r != NULL)
        {
          ca_json_add_time (b, "revocation_time", r->revocation_time);
          ca_json_add_time (b, "deadline", r->deadline);
          ca_json_add_str (b, "revocation_reason", r->reason == CA_REASON_NONE ? NULL : ca_reason_to_string (r->reason));
          ca_json_add_str (b, "applied_as", r->action);
        }
      json_builder_set_member_name (b, "bundle");
      if (ev.report_json)
        {
          JsonNode *n = json_from_string (ev.report_json, NULL);
          if (n)
            json_builder_add_value (b, n);
          else
            json_builder_add_null_value (b);
        }
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
      *verdict_json = ca_json_builder_text (b, TRUE);
    }
  evidence_clear (&ev);
  if (!ok)
    g_propagate_error (error, g_steal_pointer (&local));
  return r;
}

gboolean
ca_gate_check (CaStore *store, const CaActionRequest *request, char **verdict_json, GError **error)
{
  g_autoptr (CaActionResult) r = gate (store, request, TRUE, FALSE, verdict_json, error);
  return r != NULL;
}

static void
publish_after (CaStore *store, const CaActionResult *r)
{
  g_autoptr (GError) error = NULL;

  if (affects_crl (store, r) && !ca_publish (store, &error))
    g_warning ("action %" G_GINT64_FORMAT " applied, but the CRLs could not be published: %s", r->action_id,
               error->message);
}

CaActionResult *
ca_apply (CaStore *store, const CaActionRequest *request, GError **error)
{
  CaActionResult *r = gate (store, request, FALSE, FALSE, NULL, error);

  if (r != NULL)
    publish_after (store, r);
  return r;
}

/* ------------------------------------------------------------- renewal */

CaActionResult *
ca_renew_complete (CaStore *store, const char *case_id, const char *csr_pem, const CaActor *actor, GError **error)
{
  g_autofree char *case_action = NULL, *case_serial = NULL, *case_state = NULL, *who = NULL, *details = NULL;
  g_autofree char *why = NULL;
  g_autoptr (CaCertInfo) cert = NULL, nc = NULL;
  g_autoptr (CaActionResult) r = NULL;
  CaActionRequest req = { 0 };
  CaIssueRequest ir = { 0 };
  gint64 now;

  req.case_id = case_id;
  req.action = "renewal";
  req.actor = actor ? *actor : (CaActor) { CA_ROLE_SYSTEM, NULL };
  req.reason = CA_REASON_NONE;
  if (!ca_is_identifier (case_id) || csr_pem == NULL || actor == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a case id, a CSR and an actor are required");
      return NULL;
    }
  who = ca_actor_to_string (actor);
  if (actor->role == CA_ROLE_ADMIN && !ca_has_grant (store, actor->id, "admin"))
    why = g_strdup_printf ("account %s is not a CA administrator", actor->id);
  else if (actor->role != CA_ROLE_ADMIN && actor->role != CA_ROLE_HOLDER)
    why = g_strdup ("only the holder (in the portal) or the CA administrator completes a renewal");
  if (why)
    {
      refuse (store, &req, NULL, FALSE, error, TG_ERROR_REFUSED, "%s", why);
      return NULL;
    }
  if (!ca_db_begin (store, error))
    return NULL;
  now = ca_store_now (store);
  if (!lookup_case (store, case_id, &case_action, &case_serial, &case_state, error))
    goto fail;
  req.serial = case_serial;
  if (case_state == NULL)
    {
      refuse (store, &req, NULL, FALSE, error, TG_ERROR_NOT_FOUND, "no case %s in the CA store", case_id);
      return NULL;
    }
  if (strcmp (case_action, "renewal") != 0 || strcmp (case_state, "approved") != 0)
    {
      refuse (store, &req, NULL, FALSE, error, TG_ERROR_REFUSED, "case %s is not an approved renewal waiting for a CSR (%s, %s)",
              case_id, case_action, case_state);
      return NULL;
    }
  if ((cert = ca_cert_get (store, case_serial, error)) == NULL)
    goto fail;
  if (actor->role == CA_ROLE_HOLDER && !same_id (actor->id, cert->national_id))
    {
      refuse (store, &req, NULL, FALSE, error, TG_ERROR_REFUSED, "holder %s does not hold certificate %s", actor->id,
              cert->serial);
      return NULL;
    }
  if (cert->state != CA_CERT_VALID)
    {
      refuse (store, &req, NULL, FALSE, error, TG_ERROR_REFUSED, "certificate %s is %s: renewal refused", cert->serial,
              ca_cert_state_to_string (cert->state));
      return NULL;
    }
  ir.csr_pem = csr_pem;
  ir.name = cert->name;
  ir.national_id = cert->national_id;
  ir.email = cert->email;
  ir.days = (int) CLAMP ((cert->not_after - cert->not_before + CA_DAY / 2) / CA_DAY, 1, 3650);
  if ((nc = ca_certs_issue_locked (store, &ir, cert->serial, NULL, error)) == NULL
      || !supersede (store, cert->serial, nc->serial, now, error))
    goto fail;
  r = g_new0 (CaActionResult, 1);
  r->case_id = g_strdup (case_id);
  r->action = g_strdup ("renewal-issue");
  r->serial = g_strdup (cert->serial);
  r->applied_at = now;
  r->reason = CA_REASON_NONE;
  r->new_serial = g_strdup (nc->serial);
  r->new_cert_pem = g_strdup (nc->pem);
  if (!upsert_case (store, case_id, "renewal", cert->serial, NULL, "completed", NULL, 0, now, error)
      || (r->action_id = insert_action (store, r, who, NULL, NULL, error)) == 0)
    goto fail;
  details = action_details (r, NULL, NULL);
  if (!ca_store_audit (store, "action", who, details, error) || !ca_db_commit (store, error))
    goto fail;
  if (store->superseded_on_crl)
    publish_after (store, r);
  return g_steal_pointer (&r);
fail:
  ca_db_rollback (store);
  return NULL;
}

/* -------------------------------------------------------------- sweep */

CaActionResult *
ca_gate_apply_system (CaStore *store, const CaActionRequest *request, GError **error)
{
  return gate (store, request, FALSE, TRUE, NULL, error);
}

gint64
ca_store_next_deadline (CaStore *store)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, "SELECT min(hold_deadline) FROM certs WHERE state = 'held'", NULL);

  if (st == NULL || sqlite3_step (st) != SQLITE_ROW)
    return 0;
  return sqlite3_column_int64 (st, 0);
}

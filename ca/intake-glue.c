/* intake-glue.c — a signed e-mail request becomes a case: verified by
 * ca_intake_parse against the store's CA, matched to a certificate of the
 * store and its holder, refused on replay (message SHA-256), sealed as the
 * case's evidence bundle (the message as data/documents/message.eml). The
 * administrator then applies the action with that bundle through the gate. */
#include "config.h"
#include "ca-private.h"
#include "ca-intake.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>

void
ca_intake_case_free (CaIntakeCase *c)
{
  if (c == NULL)
    return;
  g_free (c->case_id);
  g_free (c->action);
  g_free (c->serial);
  g_free (c->national_id);
  g_free (c->reason);
  g_free (c->message_sha256);
  g_free (c->bundle_path);
  g_free (c);
}

/* A directory name from a national ID: [A-Za-z0-9_-], never "." or "..". */
static char *
holder_dir_name (const char *id)
{
  GString *s = g_string_new (NULL);

  for (const char *p = id ? id : ""; *p && s->len < 64; p++)
    g_string_append_c (s, g_ascii_isalnum (*p) || *p == '-' ? *p : '_');
  if (s->len == 0)
    g_string_append (s, "unknown");
  return g_string_free (s, FALSE);
}

static void
keep_refused (CaStore *store, GBytes *message, const char *sha, const char *why)
{
  g_autofree char *dir = g_build_filename (store->intake_dir, "refused", NULL);
  g_autofree char *name = g_strdup_printf ("%s.eml", sha);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *details = NULL;
  gsize len;
  const void *data = g_bytes_get_data (message, &len);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    g_warning ("cannot create %s: %s", dir, g_strerror (errno));
  else if (!g_file_test (path, G_FILE_TEST_EXISTS) && !tg_write_file_excl (path, data, len, 0600, &error))
    {
      g_warning ("cannot keep the refused message: %s", error->message);
      g_clear_error (&error);
    }
  json_builder_begin_object (b);
  ca_json_add_str (b, "channel", "signed-email");
  ca_json_add_str (b, "message_sha256", sha);
  ca_json_add_str (b, "kept_as", path);
  ca_json_add_str (b, "reason", why);
  json_builder_end_object (b);
  details = ca_json_builder_text (b, FALSE);
  ca_db_rollback (store);
  if (!ca_db_begin (store, &error))
    goto fail;
  st = ca_db_prepare (store, "INSERT INTO refusals (time, action, message_sha256, actor, reason)"
                             " VALUES (?1, 'intake', ?2, 'system:intake', ?3)", &error);
  if (st == NULL)
    goto fail;
  sqlite3_bind_int64 (st, 1, ca_store_now (store));
  ca_db_bind_text (st, 2, sha);
  ca_db_bind_text (st, 3, why);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, &error, "refusal");
      goto fail;
    }
  if (!ca_store_audit (store, "refusal", "system:intake", details, &error) || !ca_db_commit (store, &error))
    goto fail;
  return;
fail:
  ca_db_rollback (store);
  g_warning ("cannot record the intake refusal (%s): %s", why, error ? error->message : "?");
}

static CaIntakeCase *
refused (CaStore *store, GBytes *message, const char *sha, GError **error, int code, const char *fmt, ...)
  G_GNUC_PRINTF (6, 7);

static CaIntakeCase *
refused (CaStore *store, GBytes *message, const char *sha, GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  keep_refused (store, message, sha, msg);
  g_set_error_literal (error, TG_ERROR, code, msg);
  return NULL;
}

static char *
default_reason (const CaIntakeRequest *r)
{
  if (r->reason != NULL && *r->reason != '\0')
    return g_strdup (r->reason);
  return g_strdup_printf ("%c%s requested by signed e-mail.", g_ascii_toupper (r->action[0]), r->action + 1);
}

static char *
intake_record (const CaIntakeRequest *r, const CaCertInfo *cert, const char *case_id, const char *reason, gint64 now)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const CaRecordParts parts = {
    .holder_name = r->name,
    .national_id = r->national_id,
    .email = r->email,
    .serial = cert->serial,
    .issuer = cert->issuer,
    .officer_id = "intake",
    .officer_name = "Testigo signed e-mail intake",
    .officer_role = "automatic intake",
    .doc_name = "message.eml",
    .doc_sha256 = r->message_sha256,
    .doc_media_type = "message/rfc822",
    .doc_description = r->detached ? "The signed request as received (S/MIME, multipart/signed)."
                                   : "The signed request as received (S/MIME, application/pkcs7-mime).",
    .notes = "Signature and chain verified; the signer's certificate is the holder's certificate in the CA store; "
             "the template's ID is the certificate's.",
  };

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 2);
  json_builder_set_member_name (b, "case");
  json_builder_begin_object (b);
  ca_json_add_str (b, "id", case_id);
  ca_json_add_str (b, "action", r->action);
  ca_json_add_str (b, "reason", reason);
  if (strcmp (r->action, "suspension") == 0)
    {
      json_builder_set_member_name (b, "suspension_days");
      json_builder_add_int_value (b, r->suspension_days);
    }
  ca_json_add_str (b, "channel", "signed-email");
  json_builder_set_member_name (b, "email");
  json_builder_begin_object (b);
  ca_json_add_str (b, "message_sha256", r->message_sha256);
  ca_json_add_str (b, "signer_certificate", r->signer_cert_pem);
  json_builder_end_object (b);
  json_builder_end_object (b);
  ca_record_add_parts (b, &parts, now);
  return ca_json_builder_text (b, FALSE);
}

CaIntakeCase *
ca_intake_accept (CaStore *store, GBytes *message, GError **error)
{
  g_autofree char *sha = NULL, *case_id = NULL, *reason = NULL, *holder_dir = NULL, *file = NULL, *out = NULL;
  g_autofree char *scratch = NULL, *msg_path = NULL, *record = NULL, *details = NULL;
  g_autoptr (CaIntakeRequest) r = NULL;
  g_autoptr (CaCertInfo) cert = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  CaIntakeOptions io = { 0 };
  CaIntakeCase *c;
  const char *names[] = { "message.eml", NULL };
  const char *paths[] = { NULL, NULL };
  gsize len;
  const void *data;
  gint64 now = ca_store_now (store);
  gboolean sealed;

  if (message == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "no message");
      return NULL;
    }
  data = g_bytes_get_data (message, &len);
  if (len > CA_INTAKE_MAX_MESSAGE)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the message is over %u bytes", (guint) CA_INTAKE_MAX_MESSAGE);
      return NULL;
    }
  sha = tg_sha256_hex (data, len);
  if ((st = ca_db_prepare (store, "SELECT received_at, case_id FROM intake_messages WHERE sha256 = ?1", error)) == NULL)
    return NULL;
  ca_db_bind_text (st, 1, sha);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      g_autofree char *when = tg_time_format (sqlite3_column_int64 (st, 0));
      g_autofree char *prev = ca_db_column_text (st, 1);
      return refused (store, message, sha, error, TG_ERROR_REFUSED, "message already received on %s (case %s): replay refused",
                      when, prev ? prev : "none");
    }
  g_clear_pointer (&st, sqlite3_finalize);

  io.ca_file = ca_store_get_path (store, "ca.pem");
  io.now = now;
  if ((r = ca_intake_parse (message, &io, &local)) == NULL)
    return refused (store, message, sha, error, local->code == TG_ERROR_TOO_BIG ? TG_ERROR_TOO_BIG : TG_ERROR_REFUSED,
                    "%s", local->message);
  if ((st = ca_db_prepare (store, "SELECT received_at, case_id FROM intake_messages WHERE signature_sha256 = ?1",
                           error)) == NULL)
    return NULL;
  ca_db_bind_text (st, 1, r->signature_sha256);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      g_autofree char *when = tg_time_format (sqlite3_column_int64 (st, 0));
      g_autofree char *prev = ca_db_column_text (st, 1);
      return refused (store, message, sha, error, TG_ERROR_REFUSED,
                      "the same signed request was already received on %s (case %s), in another copy: replay refused",
                      when, prev ? prev : "none");
    }
  g_clear_pointer (&st, sqlite3_finalize);
  if ((cert = ca_cert_get (store, r->signer_serial_hex, &local)) == NULL)
    return refused (store, message, sha, error, TG_ERROR_REFUSED,
                    "the signer's certificate %s is not a certificate of this CA store", r->signer_serial_hex);
  /* The intake already matched the body's ID to the signer certificate's
   * serialNumber (normalised); here the certificate row must be that holder's. */
  g_autofree char *cert_key = cert->national_id ? ca_national_id_key (cert->national_id) : NULL;
  g_autofree char *req_key = ca_national_id_key (r->signer_national_id ? r->signer_national_id : r->national_id);
  if (cert_key == NULL || strcmp (cert_key, req_key) != 0)
    return refused (store, message, sha, error, TG_ERROR_REFUSED,
                    "the request is for holder %s, but it is signed with certificate %s of %s", r->national_id,
                    cert->serial, cert->national_id ? cert->national_id : "an unnamed holder");
  if (cert->state == CA_CERT_REVOKED)
    return refused (store, message, sha, error, TG_ERROR_REFUSED, "the signer's certificate %s is revoked", cert->serial);

  case_id = g_strdup_printf ("EM-%.16s", sha);
  for (char *p = case_id; *p; p++)
    *p = g_ascii_toupper (*p);
  reason = default_reason (r);
  holder_dir = holder_dir_name (cert->national_id);
  file = g_strdup_printf ("%s.tar", case_id);
  out = g_build_filename (store->evidence_dir, holder_dir, file, NULL);
  if ((scratch = ca_scratch_dir (store, error)) == NULL)
    return NULL;
  msg_path = g_build_filename (scratch, "message.eml", NULL);
  record = intake_record (r, cert, case_id, reason, now);
  paths[0] = msg_path;
  sealed = tg_write_file_excl (msg_path, data, len, 0600, &local)
           && ca_seal_documents (store, record, names, paths, out, now, scratch, &local);
  ca_scratch_remove (scratch);
  if (!sealed)
    return refused (store, message, sha, error, TG_ERROR_REFUSED, "the request cannot be sealed as evidence: %s",
                    local->message);

  if (!ca_db_begin (store, error))
    return NULL;
  st = ca_db_prepare (store, "INSERT INTO intake_messages (sha256, case_id, received_at, state, signature_sha256)"
                      " VALUES (?1, ?2, ?3, 'accepted', ?4)",
                      error);
  if (st == NULL)
    goto fail;
  ca_db_bind_text (st, 1, sha);
  ca_db_bind_text (st, 2, case_id);
  sqlite3_bind_int64 (st, 3, now);
  ca_db_bind_text (st, 4, r->signature_sha256);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "intake");
      goto fail;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  st = ca_db_prepare (store,
                      "INSERT INTO cases (id, action, serial, channel, state, reason, suspension_days, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, 'signed-email', 'open', ?4, ?5, ?6, ?6)", error);
  if (st == NULL)
    goto fail;
  ca_db_bind_text (st, 1, case_id);
  ca_db_bind_text (st, 2, r->action);
  ca_db_bind_text (st, 3, cert->serial);
  ca_db_bind_text (st, 4, reason);
  if (r->suspension_days > 0)
    sqlite3_bind_int (st, 5, r->suspension_days);
  else
    sqlite3_bind_null (st, 5);
  sqlite3_bind_int64 (st, 6, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "case");
      goto fail;
    }
  b = json_builder_new ();
  json_builder_begin_object (b);
  ca_json_add_str (b, "case", case_id);
  ca_json_add_str (b, "action", r->action);
  ca_json_add_str (b, "serial", cert->serial);
  ca_json_add_str (b, "national_id", cert->national_id);
  ca_json_add_str (b, "message_sha256", sha);
  ca_json_add_str (b, "bundle", out);
  json_builder_end_object (b);
  details = ca_json_builder_text (b, FALSE);
  if (!ca_store_audit (store, "intake", "system:intake", details, error) || !ca_db_commit (store, error))
    goto fail;

  c = g_new0 (CaIntakeCase, 1);
  c->case_id = g_steal_pointer (&case_id);
  c->action = g_strdup (r->action);
  c->serial = g_strdup (cert->serial);
  c->national_id = g_strdup (cert->national_id);
  c->reason = g_steal_pointer (&reason);
  c->suspension_days = r->suspension_days;
  c->message_sha256 = g_steal_pointer (&sha);
  c->bundle_path = g_steal_pointer (&out);
  return c;
fail:
  ca_db_rollback (store);
  return NULL;
}

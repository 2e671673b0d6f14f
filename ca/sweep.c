/* sweep.c — automatic revocation at the end of a suspension: every HELD
 * certificate whose deadline has passed is revoked (cessationOfOperation,
 * revocationDate kept at the hold's t0), each with its own sealed system
 * evidence bundle, through the same gate as every other action. Idempotent:
 * a second sweep finds nothing held past its deadline and changes nothing.
 * Shared with the document sealing of the intake (ca_seal_documents). */
#include "config.h"
#include "ca-private.h"
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/file.h>
#include <unistd.h>
#include <json-glib/json-glib.h>
#include <string.h>

static gboolean
write_private (const char *path, const char *text, gsize len, GError **error)
{
  return tg_write_file_excl (path, text, len, 0600, error);
}

void
ca_scratch_remove (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_unlink (p);
    }
  g_rmdir (dir);
}

char *
ca_scratch_dir (CaStore *store, GError **error)
{
  g_autofree char *base = g_build_filename (store->state_dir, "tmp", NULL);
  g_autofree char *tmpl = NULL;

  if (g_mkdir_with_parents (base, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", base);
      return NULL;
    }
  tmpl = g_build_filename (base, "seal-XXXXXX", NULL);
  if (g_mkdtemp_full (tmpl, 0700) == NULL)
    {
      tg_set_error_errno (error, errno, "cannot create a directory in %s", base);
      return NULL;
    }
  return g_steal_pointer (&tmpl);
}

gboolean
ca_seal_documents (CaStore *store, const char *record_json, const char *const *names, const char *const *paths,
                   const char *out_path, gint64 sealing_time, const char *scratch, GError **error)
{
  BundleSealOptions so = { 0 };
  g_autoptr (GArray) docs = g_array_new (FALSE, TRUE, sizeof (BundleInput));
  g_autofree char *record_path = g_build_filename (scratch, "record.json", NULL);
  g_autofree char *dir = g_path_get_dirname (out_path);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", dir);
      return FALSE;
    }
  if (!write_private (record_path, record_json, strlen (record_json), error))
    return FALSE;
  for (guint i = 0; names[i] != NULL; i++)
    {
      BundleInput in = { names[i], paths[i] };
      g_array_append_val (docs, in);
    }
  so.keys_dir = store->keys_dir;
  so.record_path = record_path;
  so.documents = docs;
  so.out_path = out_path;
  so.sealing_time = sealing_time;
  return bundle_seal (&so, error);
}

static gboolean
plain_email (const char *e)
{
  const char *at = e ? strchr (e, '@') : NULL;
  return at != NULL && at != e && strchr (at + 1, '.') != NULL && strchr (at + 1, '@') == NULL
         && strpbrk (e, " \t\r\n") == NULL && strlen (e) <= 254;
}

static char *
auto_case_id (const CaCertInfo *c)
{
  if (c->hold_case != NULL && strlen (c->hold_case) + strlen ("-auto-revocation") <= 64)
    return g_strdup_printf ("%s-auto-revocation", c->hold_case);
  return g_strdup_printf ("AR-%s", c->serial);
}

static char *
system_record (CaStore *store, const CaCertInfo *c, const char *case_id, const char *doc_sha, gint64 now)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *t0 = tg_time_format (c->revocation_time);
  g_autofree char *deadline = tg_time_format (c->hold_deadline);
  g_autofree char *reason = g_strdup_printf (
      "Suspension (case %s) from %s reached its deadline on %s without reactivation: revoked automatically "
      "(cessationOfOperation, revocation date kept at the start of the suspension).",
      c->hold_case ? c->hold_case : "unknown", t0, deadline);
  const CaRecordParts parts = {
    .holder_name = c->name && *c->name ? c->name : "unknown",
    .national_id = c->national_id ? c->national_id : "unknown",
    .email = plain_email (c->email) ? c->email : "unknown@unknown.invalid",
    .serial = c->serial,
    .issuer = c->issuer,
    .officer_id = "system",
    .officer_name = "Testigo RA automatic revocation",
    .officer_role = "system",
    .doc_name = "sweep.json",
    .doc_sha256 = doc_sha,
    .doc_media_type = "application/json",
    .doc_description = "The deadline sweep: the suspension it found expired and the revocation it applies.",
    .notes = "Revoked automatically at the end of the suspension.",
  };

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_int_value (b, 2);
  json_builder_set_member_name (b, "case");
  json_builder_begin_object (b);
  ca_json_add_str (b, "id", case_id);
  ca_json_add_str (b, "action", "revocation");
  ca_json_add_str (b, "reason", reason);
  ca_json_add_str (b, "channel", "system");
  json_builder_end_object (b);
  ca_record_add_parts (b, &parts, now);
  return ca_json_builder_text (b, FALSE);
}

static char *
sweep_document (const CaCertInfo *c, const char *case_id, gint64 now)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  ca_json_add_str (b, "kind", "testigo-deadline-sweep");
  ca_json_add_time (b, "sweep_time", now);
  ca_json_add_str (b, "case", case_id);
  ca_json_add_str (b, "serial", c->serial);
  ca_json_add_str (b, "issuer", c->issuer);
  ca_json_add_str (b, "suspension_case", c->hold_case ? c->hold_case : "unknown");
  ca_json_add_time (b, "suspended_at", c->revocation_time);
  ca_json_add_time (b, "deadline", c->hold_deadline);
  ca_json_add_str (b, "action", "automatic-revocation");
  ca_json_add_str (b, "reason", "cessationOfOperation");
  ca_json_add_time (b, "revocation_time", c->revocation_time);
  json_builder_end_object (b);
  return ca_json_builder_text (b, FALSE);
}

/* Seals (or finds, after an interrupted sweep) the system bundle for @c and applies it. */
static gboolean
revoke_one (CaStore *store, const CaCertInfo *c, gint64 now, GError **error)
{
  g_autofree char *case_id = auto_case_id (c);
  g_autofree char *file = g_strdup_printf ("%s.tar", case_id);
  g_autofree char *out = g_build_filename (store->evidence_dir, "system", file, NULL);
  g_autoptr (CaActionResult) r = NULL;
  CaActionRequest req = { 0 };

  if (!g_file_test (out, G_FILE_TEST_EXISTS))
    {
      g_autofree char *scratch = ca_scratch_dir (store, error);
      g_autofree char *doc = NULL, *doc_path = NULL, *sha = NULL, *record = NULL;
      const char *names[] = { "sweep.json", NULL };
      const char *paths[] = { NULL, NULL };
      gboolean ok;

      if (scratch == NULL)
        return FALSE;
      doc = sweep_document (c, case_id, now);
      doc_path = g_build_filename (scratch, "sweep.json", NULL);
      sha = tg_sha256_hex (doc, strlen (doc));
      record = system_record (store, c, case_id, sha, now);
      paths[0] = doc_path;
      ok = write_private (doc_path, doc, strlen (doc), error)
           && ca_seal_documents (store, record, names, paths, out, now, scratch, error);
      ca_scratch_remove (scratch);
      if (!ok)
        return FALSE;
    }
  req.case_id = case_id;
  req.action = "revocation";
  req.serial = c->serial;
  req.bundle_path = out;
  req.actor.role = CA_ROLE_SYSTEM;
  req.actor.id = "sweep";
  req.reason = CA_REASON_NONE;
  r = ca_gate_apply_system (store, &req, error);
  return r != NULL;
}

static gboolean sweep_locked (CaStore *store, guint *n_revoked, GError **error);

gboolean
ca_sweep (CaStore *store, guint *n_revoked, GError **error)
{
  int fd = ca_lock_state_file (store, "sweep.lock", error);
  gboolean ok;

  if (n_revoked)
    *n_revoked = 0;
  if (fd < 0)
    return FALSE;
  ok = sweep_locked (store, n_revoked, error);
  close (fd); /* releases the lock */
  return ok;
}

static gboolean
sweep_locked (CaStore *store, guint *n_revoked, GError **error)
{
  g_autoptr (GPtrArray) due = g_ptr_array_new_with_free_func ((GDestroyNotify) ca_cert_info_free);
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GString) failures = g_string_new (NULL);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *details = NULL;
  guint done = 0;
  gint64 now = ca_store_now (store);
  int rc, fail_code = TG_ERROR_FAILED;

  if (n_revoked)
    *n_revoked = 0;
  st = ca_db_prepare (store, "SELECT " CA_CERT_COLUMNS " FROM certs WHERE state = 'held' AND hold_deadline <= ?1"
                             " ORDER BY hold_deadline, serial", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_int64 (st, 1, now);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (due, ca_cert_info_from_stmt (store, st));
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "sweep");
      return FALSE;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  if (due->len == 0)
    return TRUE; /* nothing to do: nothing changes, nothing is written */

  json_builder_begin_object (b);
  ca_json_add_time (b, "sweep_time", now);
  json_builder_set_member_name (b, "revoked");
  json_builder_begin_array (b);
  for (guint i = 0; i < due->len; i++)
    {
      const CaCertInfo *c = g_ptr_array_index (due, i);
      g_autoptr (GError) local = NULL;
      if (revoke_one (store, c, now, &local))
        {
          done++;
          json_builder_add_string_value (b, c->serial);
        }
      else
        {
          g_string_append_printf (failures, "%s%s: %s", failures->len ? "; " : "", c->serial, local->message);
          if (local->domain == TG_ERROR)
            fail_code = local->code;
        }
    }
  json_builder_end_array (b);
  if (failures->len)
    ca_json_add_str (b, "failures", failures->str);
  json_builder_end_object (b);
  details = ca_json_builder_text (b, FALSE);
  {
    g_autoptr (GError) local = NULL;
    if (!ca_store_audit (store, "sweep", "system", details, &local))
      g_warning ("cannot audit the sweep: %s", local->message);
  }
  if (done > 0)
    {
      g_autoptr (GError) local = NULL;
      if (!ca_publish (store, &local))
        g_warning ("the sweep revoked %u certificate(s), but the CRLs could not be published: %s", done, local->message);
    }
  if (n_revoked)
    *n_revoked = done;
  if (failures->len)
    {
      g_set_error (error, TG_ERROR, fail_code, "the sweep revoked %u of %u: %s", done, due->len, failures->str);
      return FALSE;
    }
  return TRUE;
}

/* test-ca-audit.c — unit tests of the audit log's C API (ca/audit):
 * append and verify, refusals, the torn tail, genTime order, several
 * handles on one file. The CLI and the attacks are in test-audit.py. */
#include "config.h"
#include "ca-audit.h"
#include "ca-audit-private.h"
#include "bundle.h"
#include "tg-common.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *work;     /* temporary directory for the whole run */
static char *keys;     /* development PKI (built-in TSA) */
static char *root_pem;

static char *
new_log (const char *name)
{
  return g_build_filename (work, name, NULL);
}

static void
test_append_verify (void)
{
  g_autofree char *path = new_log ("basic.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) a = ca_audit_open (path, &error);
  g_autoptr (CaAuditReport) r = NULL;
  guint64 seq = 0;
  GStatBuf st;

  g_assert_no_error (error);
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (ca_audit_append (a, "login", "officer:ana", NULL, 1700000000123, &error));
  g_assert_no_error (error);
  g_assert_true (ca_audit_append_full (a, "action", "officer:ana", "{\"case\":\"C-1\",\"score\":0.25}", 0, &seq,
                                       &error));
  g_assert_no_error (error);
  g_assert_cmpuint (seq, ==, 2);

  r = ca_audit_verify (path, root_pem, &error);
  g_assert_no_error (error);
  g_assert_true (r->ok);
  g_assert_cmpuint (r->entries, ==, 2);
  g_assert_cmpuint (r->timestamps, ==, 0);
  g_assert_cmpuint (r->unstamped_tail, ==, 2);
  g_assert_cmpuint (r->first_bad, ==, 0);
  g_clear_pointer (&r, ca_audit_report_free);

  /* the first line, byte for byte (time given, so reproducible) */
  {
    g_autofree char *text = NULL;
    g_auto (GStrv) lines = NULL;
    g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
    lines = g_strsplit (text, "\n", -1);
    g_assert_true (g_str_has_prefix (lines[0], "{\"seq\":1,\"time\":\"2023-11-14T22:13:20.123Z\",\"kind\":\"login\","
                                               "\"actor\":\"officer:ana\",\"details\":{},\"prev\":\"0000"));
  }

  g_assert_true (ca_audit_timestamp_head_full (a, keys, NULL, NULL, &seq, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (seq, ==, 3);
  /* already stamped: nothing to do */
  g_assert_true (ca_audit_timestamp_head_full (a, keys, NULL, NULL, &seq, &error));
  g_assert_cmpuint (seq, ==, 0);
  r = ca_audit_verify (path, root_pem, &error);
  g_assert_no_error (error);
  g_assert_true (r->ok);
  g_assert_cmpuint (r->entries, ==, 3);
  g_assert_cmpuint (r->timestamps, ==, 1);
  g_assert_cmpuint (r->unstamped_tail, ==, 0);
  g_assert_cmpint (r->last_stamped_time, >, 0);
  g_clear_pointer (&r, ca_audit_report_free);

  /* without trust anchors, a time-stamp cannot be accepted */
  r = ca_audit_verify (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (r->ok);
  g_assert_cmpuint (r->first_bad, ==, 3);
}

static void
test_refusals (void)
{
  g_autofree char *path = new_log ("refuse.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) a = ca_audit_open (path, &error);
  g_autofree char *big = NULL;
  g_autofree char *text = NULL;
  gsize len = 1;
  static const char *const bad_details[] = { "[]", "1", "\"x\"", "{", "{\"a\":1,\"a\":2}", "{} {}", "{\"a\":-0.0}", NULL };

  g_assert_no_error (error);
  g_assert_false (ca_audit_append (a, "timestamp", "system", NULL, 0, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (ca_audit_append (a, "", "system", NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (ca_audit_append (a, "9lives", "system", NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (ca_audit_append (a, "action", "sys tem", NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (ca_audit_append (a, "action", "", NULL, 0, &error));
  g_clear_error (&error);
  g_assert_false (ca_audit_append (a, "action", "sys\"tem", NULL, 0, &error));
  g_clear_error (&error);
  for (int i = 0; bad_details[i]; i++)
    {
      g_assert_false (ca_audit_append (a, "action", "system", bad_details[i], 0, &error));
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
      g_clear_error (&error);
    }
  {
    /* nesting that the details alone may have, but the line (one level more) may not */
    GString *deep = g_string_new (NULL);
    for (int i = 0; i < 32; i++)
      g_string_append (deep, "{\"a\":");
    g_string_append (deep, "1");
    for (int i = 0; i < 32; i++)
      g_string_append_c (deep, '}');
    g_assert_false (ca_audit_append (a, "action", "system", deep->str, 0, &error));
    g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
    g_assert_nonnull (strstr (error->message, "would not read back"));
    g_clear_error (&error);
    g_string_free (deep, TRUE);
  }
  big = g_strdup_printf ("{\"a\":\"%0*d\"}", (int) CA_AUDIT_MAX_LINE, 0);
  g_assert_false (ca_audit_append (a, "action", "system", big, 0, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  g_assert_cmpuint (len, ==, 0);
  g_assert_true (ca_audit_kind_is_valid ("login-failed"));
  g_assert_false (ca_audit_kind_is_valid ("Login"));
  g_assert_true (ca_audit_actor_is_valid ("holder:V-1"));
}

static void
test_torn_tail (void)
{
  g_autofree char *path = new_log ("torn.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) a = ca_audit_open (path, &error);
  g_autoptr (CaAudit) b = NULL;
  g_autoptr (CaAuditReport) r = NULL;
  g_autofree char *text = NULL;
  gsize len;

  g_assert_no_error (error);
  for (int i = 0; i < 3; i++)
    g_assert_true (ca_audit_append (a, "action", "system", "{\"i\":1}", 0, &error));
  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  g_assert_cmpint (truncate (path, (off_t) len - 7), ==, 0); /* in place: the handle sees it */

  /* an open handle refuses too (the tail is re-read under the lock) */
  g_assert_false (ca_audit_append (a, "action", "system", NULL, 0, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "incomplete line"));
  g_clear_error (&error);
  b = ca_audit_open (path, &error);
  g_assert_null (b);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);

  r = ca_audit_verify (path, root_pem, &error);
  g_assert_no_error (error);
  g_assert_false (r->ok);
  g_assert_cmpuint (r->first_bad, ==, 3);
  g_assert_cmpuint (r->entries, ==, 2);
  g_assert_nonnull (strstr (r->message, "incomplete last line"));
}

static void
test_two_handles (void)
{
  g_autofree char *path = new_log ("two.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) a = ca_audit_open (path, &error);
  g_autoptr (CaAudit) b = ca_audit_open (path, &error);
  g_autoptr (CaAuditReport) r = NULL;

  g_assert_no_error (error);
  for (int i = 0; i < 20; i++)
    {
      g_assert_true (ca_audit_append (i % 2 ? a : b, "action", i % 2 ? "officer:a" : "officer:b", NULL, 0, &error));
      g_assert_no_error (error);
    }
  r = ca_audit_verify (path, root_pem, &error);
  g_assert_no_error (error);
  g_assert_true (r->ok);
  g_assert_cmpuint (r->entries, ==, 20);
}

static void
test_gen_time_order (void)
{
  g_autofree char *path = new_log ("gentime.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) a = ca_audit_open (path, &error);
  g_autoptr (CaAuditReport) r = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert_no_error (error);
  g_assert_true (ca_audit_append (a, "action", "system", NULL, 0, &error));
  g_assert_true (ca_audit_timestamp_head_at (a, keys, NULL, NULL, now - 60, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (ca_audit_append (a, "action", "system", NULL, 0, &error));
  g_assert_true (ca_audit_timestamp_head_at (a, keys, NULL, NULL, now - 120, NULL, &error));
  g_assert_no_error (error);
  r = ca_audit_verify (path, root_pem, &error);
  g_assert_no_error (error);
  g_assert_false (r->ok);
  g_assert_cmpuint (r->first_bad, ==, 4);
  g_assert_nonnull (strstr (r->message, "genTime is earlier"));
  g_assert_cmpint (r->last_stamped_time, ==, now - 60);
}

static void
test_unreadable (void)
{
  g_autofree char *path = new_log ("missing.log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAuditReport) r = ca_audit_verify (path, root_pem, &error);

  g_assert_null (r);
  g_assert_nonnull (error);
  g_clear_error (&error);
  r = ca_audit_verify (work, root_pem, &error); /* a directory */
  g_assert_null (r);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
}

int
main (int argc, char **argv)
{
  BundleKeysOptions ko = { .key_bits = 2048 };
  g_autoptr (GError) error = NULL;
  int rc;

  g_test_init (&argc, &argv, NULL);
  work = g_dir_make_tmp ("testigo-ca-audit-XXXXXX", &error);
  g_assert_no_error (error);
  keys = g_build_filename (work, "keys", NULL);
  root_pem = g_build_filename (keys, "root.pem", NULL);
  if (!bundle_keys_init (keys, &ko, &error))
    g_error ("keys init: %s", error->message);

  g_test_add_func ("/ca/audit/append-verify", test_append_verify);
  g_test_add_func ("/ca/audit/refusals", test_refusals);
  g_test_add_func ("/ca/audit/torn-tail", test_torn_tail);
  g_test_add_func ("/ca/audit/two-handles", test_two_handles);
  g_test_add_func ("/ca/audit/gen-time-order", test_gen_time_order);
  g_test_add_func ("/ca/audit/unreadable", test_unreadable);
  rc = g_test_run ();
  if (g_getenv ("TESTIGO_KEEP_TMP") == NULL)
    {
      g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", work);
      if (system (cmd) != 0)
        g_printerr ("cannot remove %s\n", work);
    }
  g_free (work);
  g_free (keys);
  g_free (root_pem);
  return rc;
}

/* test-ca-api.c — the CA core through its C API (ca/ca.h), as testigod uses
 * it: an injected clock function, serial spelling, the mapping of the
 * holders' causes to RFC 5280 reasons, role separation in grants, refusals
 * that need no bundle, and publication on an empty store. The lifecycle with
 * real bundles is in test-ca-store.py. */
#include "config.h"
#include "ca-private.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
  char *dir;
  gint64 now;
  CaStore *store;
} Fixture;

static gint64
test_clock (gpointer data)
{
  return ((Fixture *) data)->now;
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  CaStoreOptions o = { 0 };
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("testigo-ca-api-XXXXXX", &error);
  g_assert_no_error (error);
  f->now = 1893456000; /* 2030-01-01T00:00:00Z */
  o.state_dir = f->dir;
  o.clock = test_clock;
  o.clock_data = f;
  o.max_suspension_days = 40; /* clamped to 15 */
  o.dev_key_bits = 2048;
  f->store = ca_store_open (&o, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
remove_tree (const char *path)
{
  GDir *d = g_dir_open (path, 0, NULL);
  const char *name;

  if (d == NULL)
    {
      g_unlink (path);
      return;
    }
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *p = g_build_filename (path, name, NULL);
      remove_tree (p);
    }
  g_dir_close (d);
  g_rmdir (path);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  ca_store_free (f->store);
  remove_tree (f->dir);
  g_free (f->dir);
}

static void
test_serials (void)
{
  static const struct { const char *in, *out; } cases[] = {
    { "a3f1", "A3F1" }, { "00a3f1", "A3F1" }, { "0A3F1", "A3F1" }, { "A3F", "0A3F" },
    { "0000000F", "0F" }, { "0", "00" }, { "7fffffffffffffffffffffffffffffffffffffff", "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *n = ca_serial_normalise (cases[i].in);
      g_assert_cmpstr (n, ==, cases[i].out);
    }
  g_assert_null (ca_serial_normalise (""));
  g_assert_null (ca_serial_normalise ("12:34"));
  g_assert_null (ca_serial_normalise ("0x1234"));
  g_assert_null (ca_serial_normalise ("17fffffffffffffffffffffffffffffffffffffff"));
  g_assert_null (ca_serial_normalise (NULL));
}

static void
test_reasons (void)
{
  g_assert_cmpint (ca_reason_from_text ("Private key compromised: the laptop holding it was stolen."), ==, CA_REASON_KEY_COMPROMISE);
  g_assert_cmpint (ca_reason_from_text ("La clave privada fue comprometida"), ==, CA_REASON_KEY_COMPROMISE);
  g_assert_cmpint (ca_reason_from_text ("Robo del token"), ==, CA_REASON_KEY_COMPROMISE);
  g_assert_cmpint (ca_reason_from_text ("Holder left the company."), ==, CA_REASON_AFFILIATION_CHANGED);
  g_assert_cmpint (ca_reason_from_text ("Ya no trabaja en la empresa"), ==, CA_REASON_AFFILIATION_CHANGED);
  g_assert_cmpint (ca_reason_from_text ("La empresa DEJÓ DE EXISTIR"), ==, CA_REASON_CESSATION_OF_OPERATION);
  g_assert_cmpint (ca_reason_from_text ("Cesó en las actividades"), ==, CA_REASON_CESSATION_OF_OPERATION);
  g_assert_cmpint (ca_reason_from_text ("The holder ceased the activities"), ==, CA_REASON_CESSATION_OF_OPERATION);
  g_assert_cmpint (ca_reason_from_text ("Because."), ==, CA_REASON_UNSPECIFIED);
  g_assert_cmpint (ca_reason_from_text (NULL), ==, CA_REASON_UNSPECIFIED);
}

static void
test_clock_and_issue (Fixture *f, gconstpointer data)
{
  CaIssueRequest r = { 0 };
  g_autoptr (GError) error = NULL;
  g_autoptr (CaCertInfo) info = NULL, again = NULL;
  g_autoptr (GPtrArray) list = NULL;
  g_autofree char *key = NULL, *json = NULL;

  g_assert_cmpint (ca_store_now (f->store), ==, f->now);
  r.name = "Ana Pérez";
  r.national_id = "V-12345678";
  r.email = "ana@example.ve";
  r.days = 30;
  info = ca_cert_issue (f->store, &r, &key, &error);
  g_assert_no_error (error);
  g_assert_nonnull (key);
  g_assert_true (g_str_has_prefix (key, "-----BEGIN PRIVATE KEY-----"));
  g_assert_cmpint (info->state, ==, CA_CERT_VALID);
  g_assert_cmpint (info->not_after, ==, f->now + 30 * CA_DAY);
  g_assert_cmpstr (info->national_id, ==, "V-12345678");
  g_assert_cmpstr (info->name, ==, "Ana Pérez");
  g_assert_cmpint (info->reason, ==, CA_REASON_NONE);
  json = ca_cert_info_to_json (info, FALSE);
  g_assert_nonnull (strstr (json, "\"state\":\"valid\""));
  g_assert_null (strstr (json, "BEGIN CERTIFICATE"));

  /* the injected clock moves: the certificate expires */
  f->now += 31 * CA_DAY;
  again = ca_cert_get (f->store, info->serial, &error);
  g_assert_no_error (error);
  g_assert_cmpint (again->state, ==, CA_CERT_EXPIRED);
  list = ca_cert_list (f->store, "v-12345678", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (list->len, ==, 1);
  g_clear_pointer (&list, g_ptr_array_unref);
  list = ca_cert_list (f->store, "V-0", &error);
  g_assert_cmpuint (list->len, ==, 0);

  g_assert_null (ca_cert_get (f->store, "ABCDEF", &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_NOT_FOUND);
  g_clear_error (&error);
  r.email = "not an address";
  g_assert_null (ca_cert_issue (f->store, &r, NULL, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
}

static void
test_grants (Fixture *f, gconstpointer data)
{
  CaActor by = { CA_ROLE_ADMIN, "root" };
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;

  g_assert_true (ca_grant (f->store, "ana", "suspension", &by, &error));
  g_assert_true (ca_grant (f->store, "ana", "suspension", &by, &error)); /* idempotent */
  g_assert_true (ca_grant (f->store, "root", "admin", &by, &error));
  g_assert_no_error (error);
  g_assert_true (ca_has_grant (f->store, "ana", "suspension"));
  g_assert_false (ca_has_grant (f->store, "ana", "revocation"));
  g_assert_false (ca_grant (f->store, "ana", "admin", &by, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_clear_error (&error);
  g_assert_false (ca_grant (f->store, "root", "renewal", &by, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_clear_error (&error);
  g_assert_false (ca_grant (f->store, "system", "revocation", &by, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_clear_error (&error);
  g_assert_false (ca_grant (f->store, "ana", "everything", &by, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (ca_grant (f->store, "a b", "renewal", &by, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_true (ca_ungrant (f->store, "ana", "suspension", &by, &error));
  g_assert_false (ca_has_grant (f->store, "ana", "suspension"));
  json = ca_grants_to_json (f->store, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (json, "\"root\""));
  g_assert_null (strstr (json, "\"ana\""));
}

static void
test_refusals_without_bundle (Fixture *f, gconstpointer data)
{
  CaActionRequest req = { 0 };
  CaActor by = { CA_ROLE_ADMIN, "root" };
  g_autoptr (GError) error = NULL;
  g_autofree char *verdict = NULL;

  g_assert_true (ca_grant (f->store, "root", "admin", &by, &error));
  req.case_id = "RA-1";
  req.action = "suspension";
  req.serial = "00A3F1";
  req.bundle_path = "/nonexistent/bundle.tar";
  req.reason = CA_REASON_NONE;

  req.actor = (CaActor) { CA_ROLE_SYSTEM, "sweep" };
  g_assert_false (ca_gate_check (f->store, &req, &verdict, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_assert_nonnull (strstr (error->message, "system role"));
  g_assert_nonnull (strstr (verdict, "\"allowed\" : false"));
  g_clear_error (&error);
  g_clear_pointer (&verdict, g_free);

  req.actor = (CaActor) { CA_ROLE_HOLDER, "V-1" };
  g_assert_null (ca_apply (f->store, &req, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_assert_cmpstr (error->message, ==, "only the CA administrator may suspend (the holder asks; the administrator applies)");
  g_clear_error (&error);

  req.actor = by;
  g_assert_null (ca_apply (f->store, &req, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_REFUSED);
  g_assert_true (g_str_has_prefix (error->message, "the bundle cannot be read"));
  g_clear_error (&error);

  req.action = "hibernation";
  g_assert_null (ca_apply (f->store, &req, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  req.action = "suspension";
  req.reason = CA_REASON_KEY_COMPROMISE;
  g_assert_null (ca_apply (f->store, &req, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  req.reason = CA_REASON_NONE;
  req.case_id = "../etc";
  g_assert_null (ca_apply (f->store, &req, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
}

static void
test_empty_publication (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) full = NULL, delta = NULL, garbage = NULL, resp = NULL;
  guint n = 99;
  const guint8 *p;
  gsize len;

  g_assert_cmpint (ca_store_next_deadline (f->store), ==, 0);
  g_assert_true (ca_sweep (f->store, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 0);
  full = ca_store_get_crl (f->store, FALSE, &error);
  g_assert_no_error (error);
  delta = ca_store_get_crl (f->store, TRUE, &error);
  g_assert_no_error (error);
  p = g_bytes_get_data (full, &len);
  g_assert_cmpuint (len, >, 100);
  g_assert_cmpuint (p[0], ==, 0x30);
  garbage = g_bytes_new_static ("not an OCSP request", 19);
  resp = ca_store_ocsp_respond (f->store, garbage, &error);
  g_assert_no_error (error);
  g_assert_nonnull (resp); /* malformedRequest, as an OCSP response */
  g_assert_true (g_file_test (ca_store_get_path (f->store, "ocsp.pem"), G_FILE_TEST_IS_REGULAR));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/ca/serials", test_serials);
  g_test_add_func ("/ca/reasons", test_reasons);
  g_test_add ("/ca/clock-and-issue", Fixture, NULL, fixture_set_up, test_clock_and_issue, fixture_tear_down);
  g_test_add ("/ca/grants", Fixture, NULL, fixture_set_up, test_grants, fixture_tear_down);
  g_test_add ("/ca/refusals-without-bundle", Fixture, NULL, fixture_set_up, test_refusals_without_bundle, fixture_tear_down);
  g_test_add ("/ca/empty-publication", Fixture, NULL, fixture_set_up, test_empty_publication, fixture_tear_down);
  return g_test_run ();
}

/* test-publication-unit.c — ca/publication through its C API (g_test, TAP):
 * reason names, PEM, refusals, the serial form the lookup sees, and
 * ca_ocsp_respond from several threads with one signer. */
#include "config.h"
#include "ca-publication.h"
#include "tg-common.h"

#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

typedef struct {
  char *dir;
  char *ca_cert, *ca_key, *resp_cert, *resp_key;
  gint64 now;
} Fixture;

static Fixture fx;

static void
write_ca (void)
{
  EVP_PKEY *key = EVP_EC_gen ("P-256");
  X509 *cert = X509_new ();
  X509_NAME *name = X509_get_subject_name (cert);
  X509V3_CTX ctx;
  X509_EXTENSION *ext;
  FILE *f;

  g_assert_nonnull (key);
  X509_set_version (cert, X509_VERSION_3);
  ASN1_INTEGER_set (X509_get_serialNumber (cert), 1);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) "Unit CA", -1, -1, 0);
  X509_set_issuer_name (cert, name);
  ASN1_TIME_set (X509_getm_notBefore (cert), (time_t) (fx.now - 3600));
  ASN1_TIME_set (X509_getm_notAfter (cert), (time_t) (fx.now + 86400));
  X509_set_pubkey (cert, key);
  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, cert, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
  X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, NID_subject_key_identifier, "hash");
  X509_add_ext (cert, ext, -1);
  X509_EXTENSION_free (ext);
  g_assert_cmpint (X509_sign (cert, key, EVP_sha256 ()), >, 0);
  f = g_fopen (fx.ca_cert, "w");
  PEM_write_X509 (f, cert);
  fclose (f);
  f = g_fopen (fx.ca_key, "w");
  PEM_write_PrivateKey (f, key, NULL, NULL, 0, NULL, NULL);
  fclose (f);
  X509_free (cert);
  EVP_PKEY_free (key);
}

static void
test_reasons (void)
{
  CaReason r = CA_REASON_NONE;

  g_assert_cmpstr (ca_reason_to_string (CA_REASON_KEY_COMPROMISE), ==, "keyCompromise");
  g_assert_cmpstr (ca_reason_to_string (CA_REASON_REMOVE_FROM_CRL), ==, "removeFromCRL");
  g_assert_null (ca_reason_to_string (CA_REASON_NONE));
  g_assert_null (ca_reason_to_string ((CaReason) 7));
  g_assert_null (ca_reason_to_string ((CaReason) 11));
  for (int i = 0; i <= 10; i++)
    if (i != 7)
      {
        g_assert_true (ca_reason_from_string (ca_reason_to_string ((CaReason) i), &r));
        g_assert_cmpint (r, ==, i);
      }
  g_assert_true (ca_reason_from_string ("CERTIFICATEHOLD", &r));
  g_assert_cmpint (r, ==, CA_REASON_CERTIFICATE_HOLD);
  g_assert_false (ca_reason_from_string ("expired", &r));
  g_assert_false (ca_reason_from_string (NULL, &r));
}

static void
test_pem (void)
{
  guint8 data[90]; /* 120 base64 characters: lines of 64 and 56 */
  g_autoptr (GBytes) der = NULL;
  g_autofree char *pem = NULL;
  g_auto (GStrv) lines = NULL;
  GString *b64 = g_string_new (NULL);
  g_autofree guint8 *back = NULL;
  gsize len = 0;

  for (guint i = 0; i < sizeof data; i++)
    data[i] = (guint8) (i * 37);
  der = g_bytes_new (data, sizeof data);
  pem = ca_der_to_pem (der, "X509 CRL");
  lines = g_strsplit (pem, "\n", -1);
  g_assert_cmpstr (lines[0], ==, "-----BEGIN X509 CRL-----");
  g_assert_cmpuint (strlen (lines[1]), ==, 64);
  g_assert_cmpstr (lines[3], ==, "-----END X509 CRL-----");
  g_assert_cmpstr (lines[4], ==, "");
  g_string_append (b64, lines[1]);
  g_string_append (b64, lines[2]);
  back = g_base64_decode (b64->str, &len);
  g_assert_cmpmem (back, len, data, sizeof data);
  g_string_free (b64, TRUE);
}

static void
test_crl_refusals (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CaSigner) ca = ca_signer_load (fx.ca_cert, fx.ca_key, NULL, &error);
  g_autoptr (CaSigner) responder = NULL;
  CaCrlOptions full = { 5, 0, fx.now, fx.now + 3600, NULL };
  CaRevokedEntry remove = { "0A", fx.now, CA_REASON_REMOVE_FROM_CRL, 0, FALSE };
  CaRevokedEntry dup[] = { { "0A", fx.now, CA_REASON_SUPERSEDED, 0, FALSE },
                           { "00000a", fx.now, CA_REASON_SUPERSEDED, 0, FALSE } };
  CaRevokedEntry bad_reason = { "0B", fx.now, (CaReason) 7, 0, FALSE };
  GBytes *crl;

  g_assert_no_error (error);
  crl = ca_crl_build (ca, &full, &remove, 1, &error);
  g_assert_null (crl);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  crl = ca_crl_build (ca, &full, dup, 2, &error);
  g_assert_null (crl);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  crl = ca_crl_build (ca, &full, &bad_reason, 1, &error);
  g_assert_null (crl);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);

  /* A delegated OCSP responder does not sign CRLs. */
  responder = ca_signer_load (fx.resp_cert, fx.resp_key, fx.ca_cert, &error);
  g_assert_no_error (error);
  crl = ca_crl_build (responder, &full, dup, 1, &error);
  g_assert_null (crl);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);

  /* A delta with removeFromCRL is fine; OpenSSL reads it back. */
  {
    CaCrlOptions delta = { 6, 5, fx.now, fx.now + 3600, NULL };
    g_autoptr (GBytes) der = ca_crl_build (ca, &delta, &remove, 1, &error);
    const unsigned char *p;
    X509_CRL *x;

    g_assert_no_error (error);
    p = g_bytes_get_data (der, NULL);
    x = d2i_X509_CRL (NULL, &p, (long) g_bytes_get_size (der));
    g_assert_nonnull (x);
    g_assert_cmpint (sk_X509_REVOKED_num (X509_CRL_get_REVOKED (x)), ==, 1);
    g_assert_cmpint (X509_CRL_get_ext_by_NID (x, NID_delta_crl, -1), >=, 0);
    X509_CRL_free (x);
  }
}

/* ---- OCSP from several threads ---- */

typedef struct {
  GMutex lock;
  GPtrArray *seen; /* serials the lookup got */
} LookupLog;

static CaCertStatus
lookup (const char *serial_hex, CaRevokedEntry *entry, gpointer user_data)
{
  LookupLog *log = user_data;

  g_mutex_lock (&log->lock);
  if (log->seen->len < 16)
    g_ptr_array_add (log->seen, g_strdup (serial_hex));
  g_mutex_unlock (&log->lock);
  if (strcmp (serial_hex, "00FF") == 0 || strcmp (serial_hex, "FF") == 0)
    {
      entry->revocation_time = fx.now - 60;
      entry->reason = CA_REASON_CERTIFICATE_HOLD;
      return CA_STATUS_REVOKED;
    }
  return strcmp (serial_hex, "0102") == 0 ? CA_STATUS_GOOD : CA_STATUS_UNKNOWN;
}

static GBytes *
make_request (X509 *ca, long serial_a, long serial_b)
{
  OCSP_REQUEST *req = OCSP_REQUEST_new ();
  long serials[2] = { serial_a, serial_b };
  unsigned char *der = NULL;
  int len;
  GBytes *out;

  for (guint i = 0; i < 2; i++)
    {
      ASN1_INTEGER *sn = ASN1_INTEGER_new ();
      OCSP_CERTID *id;
      ASN1_INTEGER_set (sn, serials[i]);
      id = OCSP_cert_id_new (EVP_sha1 (), X509_get_subject_name (ca), X509_get0_pubkey_bitstr (ca), sn);
      ASN1_INTEGER_free (sn);
      g_assert_nonnull (OCSP_request_add0_id (req, id));
    }
  g_assert_cmpint (OCSP_request_add1_nonce (req, NULL, 16), ==, 1);
  len = i2d_OCSP_REQUEST (req, &der);
  out = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  OCSP_REQUEST_free (req);
  return out;
}

typedef struct {
  CaSigner *signer;
  GBytes *request;
  X509_STORE *store;
  LookupLog *log;
  int ok;
} Worker;

static gpointer
worker (gpointer data)
{
  Worker *w = data;
  CaOcspOptions o = { lookup, w->log, fx.now, 300, 0 };

  for (int i = 0; i < 100; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) resp = ca_ocsp_respond (w->signer, w->request, &o, &error);
      const unsigned char *p;
      OCSP_RESPONSE *r;
      OCSP_BASICRESP *bs;

      if (resp == NULL)
        continue;
      p = g_bytes_get_data (resp, NULL);
      r = d2i_OCSP_RESPONSE (NULL, &p, (long) g_bytes_get_size (resp));
      bs = r != NULL ? OCSP_response_get1_basic (r) : NULL;
      if (bs != NULL && OCSP_response_status (r) == OCSP_RESPONSE_STATUS_SUCCESSFUL
          && OCSP_resp_count (bs) == 2 && OCSP_basic_verify (bs, NULL, w->store, 0) == 1)
        w->ok++;
      ERR_clear_error ();
      OCSP_BASICRESP_free (bs);
      OCSP_RESPONSE_free (r);
    }
  return NULL;
}

static void
test_ocsp_threads (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CaSigner) signer = ca_signer_load (fx.resp_cert, fx.resp_key, fx.ca_cert, &error);
  g_autoptr (GBytes) request = NULL;
  X509_STORE *store = X509_STORE_new ();
  BIO *bio = BIO_new_file (fx.ca_cert, "r");
  X509 *ca = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  LookupLog log = { .seen = g_ptr_array_new_with_free_func (g_free) };
  Worker workers[4];
  GThread *threads[4];
  int total = 0;

  g_assert_no_error (error);
  g_assert_nonnull (ca);
  X509_STORE_add_cert (store, ca);
  g_mutex_init (&log.lock);
  request = make_request (ca, 0xff, 0x102);
  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      workers[i] = (Worker) { signer, request, store, &log, 0 };
      threads[i] = g_thread_new ("ocsp", worker, &workers[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (workers); i++)
    {
      g_thread_join (threads[i]);
      total += workers[i].ok;
    }
  g_assert_cmpint (total, ==, 400);
  /* The lookup sees two hex digits a byte, upper case, no leading zero bytes. */
  g_assert_cmpuint (log.seen->len, ==, 16);
  {
    guint ff = 0, other = 0;
    for (guint i = 0; i < log.seen->len; i++)
      if (strcmp (log.seen->pdata[i], "FF") == 0)
        ff++;
      else
        {
          g_assert_cmpstr (log.seen->pdata[i], ==, "0102");
          other++;
        }
    g_assert_cmpuint (ff, >, 0);
    g_assert_cmpuint (other, >, 0);
  }

  g_ptr_array_unref (log.seen);
  g_mutex_clear (&log.lock);
  X509_free (ca);
  BIO_free (bio);
  X509_STORE_free (store);
}

static void
test_responder_refuses_overwrite (void)
{
  g_autoptr (GError) error = NULL;
  gboolean ok = ca_ocsp_responder_create (fx.ca_cert, fx.ca_key, fx.resp_cert, fx.resp_key,
                                          fx.now, fx.now + 60, &error);
  g_assert_false (ok);
  g_assert_error (error, TG_ERROR, TG_ERROR_EXISTS);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int rc;

  g_test_init (&argc, &argv, NULL);
  fx.now = g_get_real_time () / G_USEC_PER_SEC;
  fx.dir = g_dir_make_tmp ("testigo-publication-unit-XXXXXX", &error);
  g_assert_no_error (error);
  fx.ca_cert = g_build_filename (fx.dir, "ca.pem", NULL);
  fx.ca_key = g_build_filename (fx.dir, "ca.key", NULL);
  fx.resp_cert = g_build_filename (fx.dir, "responder.pem", NULL);
  fx.resp_key = g_build_filename (fx.dir, "responder.key", NULL);
  write_ca ();
  if (!ca_ocsp_responder_create (fx.ca_cert, fx.ca_key, fx.resp_cert, fx.resp_key, fx.now - 60,
                                 fx.now + 3600, &error))
    g_error ("%s", error->message);

  g_test_add_func ("/ca/publication/reasons", test_reasons);
  g_test_add_func ("/ca/publication/pem", test_pem);
  g_test_add_func ("/ca/publication/crl-refusals", test_crl_refusals);
  g_test_add_func ("/ca/publication/ocsp-threads", test_ocsp_threads);
  g_test_add_func ("/ca/publication/responder-refuses-overwrite", test_responder_refuses_overwrite);
  rc = g_test_run ();

  for (const char *const *p = (const char *const[]) { fx.ca_cert, fx.ca_key, fx.resp_cert, fx.resp_key, NULL }; *p; p++)
    g_unlink (*p);
  g_rmdir (fx.dir);
  g_free (fx.ca_cert);
  g_free (fx.ca_key);
  g_free (fx.resp_cert);
  g_free (fx.resp_key);
  g_free (fx.dir);
  return rc;
}

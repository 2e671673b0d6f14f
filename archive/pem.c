/* pem.c — loading and canonical writing of keys, certificates and CRLs */
#include "config.h"
#include "bundle-private.h"

#include <openssl/pem.h>
#include <string.h>

void
bundle_cert_stack_free (BundleCertStack *sk)
{
  sk_X509_pop_free (sk, X509_free);
}

void
bundle_crl_stack_free (BundleCrlStack *sk)
{
  sk_X509_CRL_pop_free (sk, X509_CRL_free);
}

EVP_PKEY *
bundle_load_key (const char *path, GError **error)
{
  g_autofree char *pem = NULL;
  gsize len;
  g_autoptr (BIO) bio = NULL;
  EVP_PKEY *key;

  if (!tg_file_get_contents_capped (path, BUNDLE_MAX_SIGNATURE, &pem, &len, error))
    return NULL;
  bio = BIO_new_mem_buf (pem, (int) len);
  key = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  OPENSSL_cleanse (pem, len);
  if (key == NULL)
    tg_set_error_openssl (error, "cannot read private key %s", path);
  return key;
}

BundleCertStack *
bundle_parse_certs (const char *pem, gsize len, const char *what, GError **error)
{
  g_autoptr (BIO) bio = BIO_new_mem_buf (pem, (int) len);
  g_autoptr (BundleCertStack) certs = sk_X509_new_null ();
  X509 *cert;

  while ((cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL)) != NULL)
    sk_X509_push (certs, cert);
  ERR_clear_error ();
  if (sk_X509_num (certs) == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s holds no PEM certificate", what);
      return NULL;
    }
  return g_steal_pointer (&certs);
}

BundleCertStack *
bundle_load_certs (const char *path, GError **error)
{
  g_autofree char *pem = NULL;
  gsize len;

  if (!tg_file_get_contents_capped (path, BUNDLE_MAX_SIGNATURE, &pem, &len, error))
    return NULL;
  return bundle_parse_certs (pem, len, path, error);
}

X509 *
bundle_load_cert (const char *path, GError **error)
{
  g_autoptr (BundleCertStack) certs = bundle_load_certs (path, error);

  if (certs == NULL)
    return NULL;
  return X509_dup (sk_X509_value (certs, 0));
}

BundleCrlStack *
bundle_parse_crls (const char *pem, gsize len, const char *what, GError **error)
{
  g_autoptr (BIO) bio = BIO_new_mem_buf (pem, (int) len);
  g_autoptr (BundleCrlStack) crls = sk_X509_CRL_new_null ();
  X509_CRL *crl;

  while ((crl = PEM_read_bio_X509_CRL (bio, NULL, NULL, NULL)) != NULL)
    sk_X509_CRL_push (crls, crl);
  ERR_clear_error ();
  if (sk_X509_CRL_num (crls) == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s holds no PEM CRL", what);
      return NULL;
    }
  return g_steal_pointer (&crls);
}

BundleCrlStack *
bundle_load_crls (const char *path, GError **error)
{
  g_autofree char *pem = NULL;
  gsize len;

  if (!tg_file_get_contents_capped (path, BUNDLE_MAX_SIGNATURE, &pem, &len, error))
    return NULL;
  return bundle_parse_crls (pem, len, path, error);
}

static GBytes *
bio_to_bytes (BIO *bio)
{
  char *data = NULL;
  long len = BIO_get_mem_data (bio, &data);

  return g_bytes_new (data, (gsize) len);
}

GBytes *
bundle_certs_to_pem (BundleCertStack *certs)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());

  for (int i = 0; i < sk_X509_num (certs); i++)
    PEM_write_bio_X509 (bio, sk_X509_value (certs, i));
  return bio_to_bytes (bio);
}

GBytes *
bundle_crls_to_pem (BundleCrlStack *crls)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());

  for (int i = 0; i < sk_X509_CRL_num (crls); i++)
    PEM_write_bio_X509_CRL (bio, sk_X509_CRL_value (crls, i));
  return bio_to_bytes (bio);
}

char *
bundle_x509_subject (X509 *cert)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());
  char *data = NULL;
  long len;

  X509_NAME_print_ex (bio, X509_get_subject_name (cert), 0, XN_FLAG_RFC2253);
  len = BIO_get_mem_data (bio, &data);
  return g_strndup (data, (gsize) len);
}

gboolean
bundle_asn1_time_to_unix (const ASN1_TIME *t, gint64 *out)
{
  struct tm tm;

  if (t == NULL || !ASN1_TIME_to_tm (t, &tm))
    return FALSE;
  *out = (gint64) timegm (&tm);
  return TRUE;
}

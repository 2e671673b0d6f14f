/* keys.c — `testigo keys init`: the development PKI */
#include "config.h"
#include "bundle-private.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const key_files[] = {
  "root.pem", "root.key", "ra.pem", "ra.key", "tsa.pem", "tsa.key", "crl.pem",
};

static gboolean
add_ext (X509 *cert, X509 *issuer, int nid, const char *value, GError **error)
{
  X509V3_CTX ctx;
  X509_EXTENSION *ext;

  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL || !X509_add_ext (cert, ext, -1))
    {
      X509_EXTENSION_free (ext);
      tg_set_error_openssl (error, "cannot add extension %s = %s", OBJ_nid2sn (nid), value);
      return FALSE;
    }
  X509_EXTENSION_free (ext);
  return TRUE;
}


static gboolean
set_random_serial (X509 *cert, GError **error)
{
  guint8 raw[16];
  g_autoptr (BIGNUM) bn = NULL;

  if (RAND_bytes (raw, sizeof raw) != 1)
    {
      tg_set_error_openssl (error, "cannot draw a serial number");
      return FALSE;
    }
  raw[0] &= 0x7f; /* positive */
  raw[0] |= 0x40; /* and of full length */
  bn = BN_bin2bn (raw, sizeof raw, NULL);
  return BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert)) != NULL;
}

typedef struct {
  const char *cn;
  gint64 not_before, not_after;
  const char *const *exts; /* pairs: name, value */
} CertSpec;

static X509 *
make_cert (const CertSpec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, GError **error)
{
  g_autoptr (X509) cert = X509_new ();
  X509_NAME *name = X509_get_subject_name (cert);

  X509_set_version (cert, X509_VERSION_3);
  if (!set_random_serial (cert, error))
    return NULL;
  X509_NAME_add_entry_by_txt (name, "C", MBSTRING_UTF8, (const guint8 *) "VE", -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const guint8 *) "Testigo development PKI", -1, -1, 0);
  X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const guint8 *) spec->cn, -1, -1, 0);
  X509_set_issuer_name (cert, issuer ? X509_get_subject_name (issuer) : name);
  if (ASN1_TIME_set (X509_getm_notBefore (cert), (time_t) spec->not_before) == NULL
      || ASN1_TIME_set (X509_getm_notAfter (cert), (time_t) spec->not_after) == NULL)
    {
      tg_set_error_openssl (error, "cannot set validity of %s", spec->cn);
      return NULL;
    }
  X509_set_pubkey (cert, key);
  for (guint i = 0; spec->exts[i] != NULL; i += 2)
    if (!add_ext (cert, issuer ? issuer : cert, OBJ_txt2nid (spec->exts[i]), spec->exts[i + 1], error))
      return NULL;
  if (X509_sign (cert, issuer_key, EVP_sha256 ()) <= 0)
    {
      tg_set_error_openssl (error, "cannot sign certificate %s", spec->cn);
      return NULL;
    }
  return g_steal_pointer (&cert);
}

static gboolean
write_pem (const char *dir, const char *name, EVP_PKEY *key, X509 *cert, X509_CRL *crl,
           GError **error)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *data = NULL;
  long len;
  gboolean ok;

  if (key)
    PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL);
  else if (cert)
    PEM_write_bio_X509 (bio, cert);
  else
    PEM_write_bio_X509_CRL (bio, crl);
  len = BIO_get_mem_data (bio, &data);
  ok = tg_write_file_excl (path, data, (gsize) len, key ? 0600 : 0644, error);
  if (key)
    OPENSSL_cleanse (data, (size_t) len);
  return ok;
}

static X509_CRL *
make_crl (X509 *root, EVP_PKEY *root_key, gint64 last_update, gint64 next_update, GError **error)
{
  X509_CRL *crl = X509_CRL_new ();
  g_autoptr (ASN1_TIME) last = ASN1_TIME_set (NULL, (time_t) last_update);
  g_autoptr (ASN1_TIME) next = ASN1_TIME_set (NULL, (time_t) next_update);

  X509_CRL_set_version (crl, 1);
  X509_CRL_set_issuer_name (crl, X509_get_subject_name (root));
  X509_CRL_set1_lastUpdate (crl, last);
  X509_CRL_set1_nextUpdate (crl, next);
  if (X509_CRL_sign (crl, root_key, EVP_sha256 ()) <= 0)
    {
      X509_CRL_free (crl);
      tg_set_error_openssl (error, "cannot sign the CRL");
      return NULL;
    }
  return crl;
}
gboolean
bundle_keys_init (const char *dir, const BundleKeysOptions *options, GError **error)
{
  BundleKeysOptions defaults = { 0 };
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  int bits;
  g_autoptr (EVP_PKEY) root_key = NULL, ra_key = NULL, tsa_key = NULL;
  g_autoptr (X509) root = NULL, ra = NULL, tsa = NULL;
  g_autoptr (X509_CRL) crl = NULL;
  static const char *const root_exts[] = {
    "basicConstraints", "critical,CA:TRUE",
    "keyUsage", "critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier", "hash",
    NULL,
  };
  static const char *const ra_exts[] = {
    "basicConstraints", "critical,CA:FALSE",
    "keyUsage", "critical,digitalSignature,nonRepudiation",
    "subjectKeyIdentifier", "hash",
    "authorityKeyIdentifier", "keyid:always",
    NULL,
  };
  static const char *const tsa_exts[] = {
    "basicConstraints", "critical,CA:FALSE",
    "keyUsage", "critical,digitalSignature,nonRepudiation",
    "extendedKeyUsage", "critical,timeStamping",
    "subjectKeyIdentifier", "hash",
    "authorityKeyIdentifier", "keyid:always",
    NULL,
  };
  CertSpec root_spec = { "Testigo Development Root", now - 3600, now + 20 * 365 * 86400LL, root_exts };
  CertSpec ra_spec = { "Testigo RA Sealing", now - 3600, now + 2 * 365 * 86400LL, ra_exts };
  CertSpec tsa_spec = { "Testigo Development TSA", now - 3600, now + 10 * 365 * 86400LL, tsa_exts };

  if (options == NULL)
    options = &defaults;
  bits = options->key_bits > 0 ? options->key_bits : 3072;
  if (bits < 2048 || bits > 8192)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "key size %d is outside 2048..8192", bits);
      return FALSE;
    }
  if (options->ra_not_before > 0)
    ra_spec.not_before = options->ra_not_before;
  if (options->ra_not_after > 0)
    ra_spec.not_after = options->ra_not_after;
  if (ra_spec.not_after <= ra_spec.not_before)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "RA certificate would end before it starts");
      return FALSE;
    }
  /* The root and the TSA must cover the RA certificate's validity, so that a
   * bundle sealed at any time the RA certificate was valid can verify. */
  root_spec.not_before = tsa_spec.not_before = MIN (root_spec.not_before, ra_spec.not_before);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", dir);
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (key_files); i++)
    {
      g_autofree char *path = g_build_filename (dir, key_files[i], NULL);
      if (access (path, F_OK) == 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_EXISTS,
                       "%s already exists; refusing to overwrite keys", path);
          return FALSE;
        }
    }

  root_key = EVP_RSA_gen ((unsigned) bits);
  ra_key = EVP_RSA_gen ((unsigned) bits);
  tsa_key = EVP_RSA_gen ((unsigned) bits);
  if (root_key == NULL || ra_key == NULL || tsa_key == NULL)
    {
      tg_set_error_openssl (error, "cannot generate RSA keys");
      return FALSE;
    }
  if ((root = make_cert (&root_spec, root_key, NULL, root_key, error)) == NULL
      || (ra = make_cert (&ra_spec, ra_key, root, root_key, error)) == NULL
      || (tsa = make_cert (&tsa_spec, tsa_key, root, root_key, error)) == NULL
      || (crl = make_crl (root, root_key, root_spec.not_before, root_spec.not_after, error)) == NULL)
    return FALSE;

  /* Keys first, 0600; certificates are public. */
  return write_pem (dir, "root.key", root_key, NULL, NULL, error)
         && write_pem (dir, "ra.key", ra_key, NULL, NULL, error)
         && write_pem (dir, "tsa.key", tsa_key, NULL, NULL, error)
         && write_pem (dir, "root.pem", NULL, root, NULL, error)
         && write_pem (dir, "ra.pem", NULL, ra, NULL, error)
         && write_pem (dir, "tsa.pem", NULL, tsa, NULL, error)
         && write_pem (dir, "crl.pem", NULL, NULL, crl, error);
}

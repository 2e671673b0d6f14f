/* ca-signer.c — signing identities, reason names, serials, PEM, and the
 * delegated OCSP responder certificate. See ca-publication.h. */
#include "config.h"
#include "ca-publication-private.h"

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

static const char *const reason_names[] = {
  [CA_REASON_UNSPECIFIED] = "unspecified",
  [CA_REASON_KEY_COMPROMISE] = "keyCompromise",
  [CA_REASON_CA_COMPROMISE] = "cACompromise",
  [CA_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
  [CA_REASON_SUPERSEDED] = "superseded",
  [CA_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
  [CA_REASON_CERTIFICATE_HOLD] = "certificateHold",
  [CA_REASON_REMOVE_FROM_CRL] = "removeFromCRL",
  [CA_REASON_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
  [CA_REASON_AA_COMPROMISE] = "aACompromise",
};

const char *
ca_reason_to_string (CaReason reason)
{
  if ((int) reason < 0 || (gsize) reason >= G_N_ELEMENTS (reason_names))
    return NULL;
  return reason_names[reason]; /* NULL for the unused value 7 */
}

gboolean
ca_reason_from_string (const char *name, CaReason *out)
{
  if (name == NULL)
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (reason_names); i++)
    if (reason_names[i] != NULL && g_ascii_strcasecmp (name, reason_names[i]) == 0)
      {
        if (out != NULL)
          *out = (CaReason) i;
        return TRUE;
      }
  return FALSE;
}

gboolean
ca_serial_parse (const char *hex, guint8 out[CA_SERIAL_MAX_BYTES], guint *len, GError **error)
{
  gsize n = hex != NULL ? strlen (hex) : 0;
  guint8 raw[CA_SERIAL_MAX_BYTES + 1] = { 0 };
  guint nraw = (guint) ((n + 1) / 2), skip = 0;

  if (n == 0 || n > 2 * CA_SERIAL_MAX_BYTES)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "serial \"%.48s\" must have 1 to %d hex digits", hex ? hex : "",
                   2 * CA_SERIAL_MAX_BYTES);
      return FALSE;
    }
  for (gsize i = 0; i < n; i++)
    {
      int v = g_ascii_xdigit_value (hex[i]);
      gsize pos = i + (n & 1); /* an odd count gets a leading zero nibble */
      if (v < 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial \"%s\" is not hexadecimal", hex);
          return FALSE;
        }
      raw[pos / 2] |= (guint8) (pos % 2 == 0 ? v << 4 : v);
    }
  while (skip < nraw && raw[skip] == 0)
    skip++;
  if (skip == nraw)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial %s is zero", hex);
      return FALSE;
    }
  *len = nraw - skip;
  memcpy (out, raw + skip, *len);
  return TRUE;
}

void
ca_serial_format (const guint8 *bytes, guint len, char *out)
{
  static const char digits[] = "0123456789ABCDEF";
  for (guint i = 0; i < len; i++)
    {
      out[2 * i] = digits[bytes[i] >> 4];
      out[2 * i + 1] = digits[bytes[i] & 15];
    }
  out[2 * len] = '\0';
}

GBytes *
ca_bytes_from_openssl (unsigned char *der, int len)
{
  GBytes *bytes = g_bytes_new (der, (gsize) len);
  OPENSSL_free (der);
  return bytes;
}

char *
ca_der_to_pem (GBytes *der, const char *label)
{
  gsize len = 0;
  const guint8 *data = g_bytes_get_data (der, &len);
  g_autofree char *b64 = g_base64_encode (data, len);
  gsize b64len = strlen (b64);
  GString *out = g_string_sized_new (b64len + b64len / 64 + 2 * strlen (label) + 40);

  g_string_append_printf (out, "-----BEGIN %s-----\n", label);
  for (gsize i = 0; i < b64len; i += 64)
    {
      g_string_append_len (out, b64 + i, (gssize) MIN (64, b64len - i));
      g_string_append_c (out, '\n');
    }
  g_string_append_printf (out, "-----END %s-----\n", label);
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------ loading */

static X509 *
load_cert (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (BIO) bio = NULL;
  X509 *cert;

  if (!tg_file_get_contents_capped (path, CA_PEM_MAX, &data, &len, error))
    return NULL;
  bio = BIO_new_mem_buf (data, (int) len);
  cert = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  if (cert == NULL)
    tg_set_error_openssl (error, "%s: not a PEM certificate", path);
  return cert;
}

static EVP_PKEY *
load_key (const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (BIO) bio = NULL;
  EVP_PKEY *key;

  if (!tg_file_get_contents_capped (path, CA_PEM_MAX, &data, &len, error))
    return NULL;
  bio = BIO_new_mem_buf (data, (int) len);
  key = PEM_read_bio_PrivateKey (bio, NULL, NULL, (void *) "");
  OPENSSL_cleanse (data, len);
  if (key == NULL)
    tg_set_error_openssl (error, "%s: not an unencrypted PEM private key", path);
  return key;
}

/* The SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1), or the
 * certificate's own subjectKeyIdentifier when it has one. */
static ASN1_OCTET_STRING *
key_identifier (X509 *cert)
{
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id (cert);
  ASN1_OCTET_STRING *out;
  guint8 md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;

  if (skid != NULL)
    return ASN1_OCTET_STRING_dup (skid);
  if (!X509_pubkey_digest (cert, EVP_sha1 (), md, &mdlen))
    return NULL;
  out = ASN1_OCTET_STRING_new ();
  if (out != NULL && !ASN1_OCTET_STRING_set (out, md, (int) mdlen))
    g_clear_pointer (&out, ASN1_OCTET_STRING_free);
  return out;
}

static gboolean
certid_hashes (X509 *ca, CaCertIdHashes ids[CA_N_CERTID_HASHES])
{
  static const int nids[CA_N_CERTID_HASHES] = { NID_sha1, NID_sha256, NID_sha384, NID_sha512 };
  const ASN1_BIT_STRING *key_bits = X509_get0_pubkey_bitstr (ca);

  for (guint i = 0; i < CA_N_CERTID_HASHES; i++)
    {
      const EVP_MD *md = EVP_get_digestbynid (nids[i]);
      unsigned nlen = 0, klen = 0;

      ids[i].nid = nids[i];
      if (md == NULL || key_bits == NULL
          || !X509_NAME_digest (X509_get_subject_name (ca), md, ids[i].name_hash, &nlen)
          || !EVP_Digest (key_bits->data, (size_t) key_bits->length, ids[i].key_hash, &klen, md, NULL)
          || nlen != klen)
        return FALSE;
      ids[i].len = nlen;
    }
  return TRUE;
}

CaSigner *
ca_signer_load (const char *cert_path, const char *key_path, const char *issuer_path, GError **error)
{
  g_autoptr (CaSigner) signer = g_new0 (CaSigner, 1);
  int key_type;

  g_return_val_if_fail (cert_path != NULL && key_path != NULL, NULL);

  if ((signer->cert = load_cert (cert_path, error)) == NULL
      || (signer->key = load_key (key_path, error)) == NULL)
    return NULL;
  if (X509_check_private_key (signer->cert, signer->key) != 1)
    {
      tg_set_error_openssl (error, "%s does not belong to %s", key_path, cert_path);
      return NULL;
    }
  if (issuer_path != NULL)
    {
      EVP_PKEY *issuer_key;

      if ((signer->issuer = load_cert (issuer_path, error)) == NULL)
        return NULL;
      issuer_key = X509_get0_pubkey (signer->issuer);
      if (X509_check_issued (signer->issuer, signer->cert) != X509_V_OK || issuer_key == NULL
          || X509_verify (signer->cert, issuer_key) != 1)
        {
          ERR_clear_error ();
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s was not issued by %s", cert_path,
                       issuer_path);
          return NULL;
        }
      if ((X509_get_extension_flags (signer->cert) & EXFLAG_XKUSAGE) == 0
          || (X509_get_extended_key_usage (signer->cert) & XKU_OCSP_SIGN) == 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "%s lacks the OCSPSigning extended key usage a delegated responder needs",
                       cert_path);
          return NULL;
        }
    }

  key_type = EVP_PKEY_get_base_id (signer->key);
  if (key_type != EVP_PKEY_ED25519 && key_type != EVP_PKEY_ED448
      && (signer->md = EVP_MD_fetch (NULL, "SHA256", NULL)) == NULL)
    {
      tg_set_error_openssl (error, "SHA-256 is not available");
      return NULL;
    }
  /* Fetching the signature method on every response costs, and in OpenSSL
   * 3.0 it serializes threads on the method store's locks (openssl#17064,
   * #20286): initialise once, copy per response. */
  signer->sign_template = EVP_MD_CTX_new ();
  if (signer->sign_template == NULL
      || EVP_DigestSignInit (signer->sign_template, NULL, signer->md, NULL, signer->key) != 1)
    {
      tg_set_error_openssl (error, "%s: cannot sign with this key", key_path);
      return NULL;
    }
  if (!certid_hashes (ca_signer_ca_cert (signer), signer->ids)
      || (signer->ca_key_id = key_identifier (ca_signer_ca_cert (signer))) == NULL)
    {
      tg_set_error_openssl (error, "cannot hash the CA certificate's name and key");
      return NULL;
    }
  return g_steal_pointer (&signer);
}

void
ca_signer_free (CaSigner *signer)
{
  if (signer == NULL)
    return;
  X509_free (signer->cert);
  EVP_PKEY_free (signer->key);
  X509_free (signer->issuer);
  EVP_MD_free (signer->md);
  ASN1_OCTET_STRING_free (signer->ca_key_id);
  EVP_MD_CTX_free (signer->sign_template);
  g_free (signer);
}

EVP_MD_CTX *
ca_signer_sign_ctx (CaSigner *signer)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();

  if (ctx == NULL)
    return NULL;
  if (EVP_MD_CTX_copy_ex (ctx, signer->sign_template) == 1)
    return ctx;
  /* Not every key type can copy a signing context: start afresh. */
  ERR_clear_error ();
  EVP_MD_CTX_reset (ctx);
  if (EVP_DigestSignInit (ctx, NULL, signer->md, NULL, signer->key) == 1)
    return ctx;
  EVP_MD_CTX_free (ctx);
  return NULL;
}

/* ----------------------------------------------- OCSP responder certificate */

static gboolean
add_ext (X509 *cert, X509 *issuer, int nid, const char *value, GError **error)
{
  X509V3_CTX ctx;
  g_autoptr (X509_EXTENSION) ext = NULL;

  X509V3_set_ctx_nodb (&ctx);
  X509V3_set_ctx (&ctx, issuer, cert, NULL, NULL, 0);
  ext = X509V3_EXT_conf_nid (NULL, &ctx, nid, value);
  if (ext == NULL || !X509_add_ext (cert, ext, -1))
    {
      tg_set_error_openssl (error, "cannot add extension %s = %s", OBJ_nid2sn (nid), value);
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_pem (const char *path, EVP_PKEY *key, X509 *cert, GError **error)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());
  g_autoptr (TgAtomicFile) file = NULL;
  char *data = NULL;
  long len;
  gboolean ok;

  if (bio == NULL || !(key != NULL ? PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL)
                                   : PEM_write_bio_X509 (bio, cert)))
    {
      tg_set_error_openssl (error, "cannot encode %s", path);
      return FALSE;
    }
  len = BIO_get_mem_data (bio, &data);
  file = tg_atomic_file_new (path, key != NULL ? 0600 : 0644, FALSE, error);
  ok = file != NULL && tg_atomic_file_write (file, data, (gsize) len, error)
       && tg_atomic_file_commit (file, error);
  if (key != NULL)
    OPENSSL_cleanse (data, (size_t) len);
  return ok;
}

gboolean
ca_ocsp_responder_create (const char *ca_cert_path, const char *ca_key_path,
                          const char *out_cert_path, const char *out_key_path,
                          gint64 not_before, gint64 not_after, GError **error)
{
  g_autoptr (X509) ca = NULL, cert = NULL;
  g_autoptr (EVP_PKEY) ca_key = NULL, key = NULL;
  g_autoptr (X509_NAME) subject = NULL;
  g_autoptr (BIGNUM) bn = NULL;
  g_autoptr (EVP_MD) md = NULL;
  guint8 raw[16];
  int pos, ca_key_type;

  if (not_after <= not_before)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the responder certificate would end before it starts");
      return FALSE;
    }
  if ((ca = load_cert (ca_cert_path, error)) == NULL || (ca_key = load_key (ca_key_path, error)) == NULL)
    return FALSE;
  if (X509_check_private_key (ca, ca_key) != 1)
    {
      tg_set_error_openssl (error, "%s does not belong to %s", ca_key_path, ca_cert_path);
      return FALSE;
    }
  key = EVP_EC_gen ("P-256");
  cert = X509_new ();
  subject = X509_NAME_dup (X509_get_subject_name (ca));
  if (key == NULL || cert == NULL || subject == NULL || RAND_bytes (raw, sizeof raw) != 1)
    {
      tg_set_error_openssl (error, "cannot make an EC P-256 responder key");
      return FALSE;
    }
  /* The CA's name with the common name replaced. */
  while ((pos = X509_NAME_get_index_by_NID (subject, NID_commonName, -1)) >= 0)
    X509_NAME_ENTRY_free (X509_NAME_delete_entry (subject, pos));
  X509_NAME_add_entry_by_NID (subject, NID_commonName, MBSTRING_UTF8,
                              (const guint8 *) "Testigo OCSP Responder", -1, -1, 0);
  raw[0] = (guint8) ((raw[0] & 0x7f) | 0x40); /* positive, full length */
  bn = BN_bin2bn (raw, sizeof raw, NULL);
  if (bn == NULL || BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (cert)) == NULL
      || !X509_set_version (cert, X509_VERSION_3)
      || !X509_set_subject_name (cert, subject)
      || !X509_set_issuer_name (cert, X509_get_subject_name (ca))
      || ASN1_TIME_set (X509_getm_notBefore (cert), (time_t) not_before) == NULL
      || ASN1_TIME_set (X509_getm_notAfter (cert), (time_t) not_after) == NULL
      || !X509_set_pubkey (cert, key))
    {
      tg_set_error_openssl (error, "cannot fill in the responder certificate");
      return FALSE;
    }
  if (!add_ext (cert, ca, NID_basic_constraints, "critical,CA:FALSE", error)
      || !add_ext (cert, ca, NID_key_usage, "critical,digitalSignature", error)
      || !add_ext (cert, ca, NID_ext_key_usage, "OCSPSigning", error)
      || !add_ext (cert, ca, NID_id_pkix_OCSP_noCheck, "ignored", error)
      || !add_ext (cert, ca, NID_subject_key_identifier, "hash", error)
      || !add_ext (cert, ca, NID_authority_key_identifier, "keyid:always", error))
    return FALSE;
  ca_key_type = EVP_PKEY_get_base_id (ca_key);
  if (ca_key_type != EVP_PKEY_ED25519 && ca_key_type != EVP_PKEY_ED448)
    md = EVP_MD_fetch (NULL, "SHA256", NULL);
  if (X509_sign (cert, ca_key, md) <= 0)
    {
      tg_set_error_openssl (error, "cannot sign the responder certificate");
      return FALSE;
    }
  return write_pem (out_key_path, key, NULL, error) && write_pem (out_cert_path, NULL, cert, error);
}

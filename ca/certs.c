/* certs.c — the holders' issuing CA, its delegated OCSP responder, and the
 * certificates of the store: import, issue, get, list. */
#include "config.h"
#include "ca-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#define CA_VALIDITY_DAYS 3650
#define OCSP_VALIDITY_DAYS 365
#define OCSP_RENEW_BEFORE_DAYS 30

/* ------------------------------------------------------------- helpers */

static gint64
asn1_time_to_unix (const ASN1_TIME *t)
{
  struct tm tm = { 0 };

  if (t == NULL || !ASN1_TIME_to_tm (t, &tm))
    return 0;
  return (gint64) timegm (&tm);
}

static char *
name_to_string (const X509_NAME *name)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL, *out;
  long len;

  if (bio == NULL)
    return g_strdup ("");
  X509_NAME_print_ex (bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  len = BIO_get_mem_data (bio, &data);
  out = g_strndup (data, len > 0 ? (gsize) len : 0);
  BIO_free (bio);
  return out;
}

static char *
name_entry (const X509_NAME *name, int nid)
{
  int i = X509_NAME_get_index_by_NID (name, nid, -1);
  unsigned char *utf8 = NULL;
  int len;
  char *out;

  if (i < 0)
    return NULL;
  len = ASN1_STRING_to_UTF8 (&utf8, X509_NAME_ENTRY_get_data (X509_NAME_get_entry (name, i)));
  if (len < 0)
    return NULL;
  out = g_strndup ((const char *) utf8, (gsize) len);
  OPENSSL_free (utf8);
  return out;
}

static char *
san_email (X509 *x)
{
  GENERAL_NAMES *gens = X509_get_ext_d2i (x, NID_subject_alt_name, NULL, NULL);
  char *out = NULL;

  for (int i = 0; gens && i < sk_GENERAL_NAME_num (gens) && out == NULL; i++)
    {
      GENERAL_NAME *g = sk_GENERAL_NAME_value (gens, i);
      if (g->type == GEN_EMAIL)
        out = g_strndup ((const char *) ASN1_STRING_get0_data (g->d.rfc822Name),
                         (gsize) ASN1_STRING_length (g->d.rfc822Name));
    }
  GENERAL_NAMES_free (gens);
  return out;
}

static char *
serial_hex (X509 *x)
{
  BIGNUM *bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (x), NULL);
  char *hex, *out;

  if (bn == NULL)
    return NULL;
  hex = BN_bn2hex (bn);
  BN_free (bn);
  if (hex == NULL)
    return NULL;
  out = hex[0] == '-' ? NULL : ca_serial_normalise (hex);
  OPENSSL_free (hex);
  return out;
}

static char *
x509_to_pem (X509 *x)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL, *out = NULL;
  long len;

  if (bio == NULL)
    return NULL;
  if (PEM_write_bio_X509 (bio, x))
    {
      len = BIO_get_mem_data (bio, &data);
      out = g_strndup (data, (gsize) len);
    }
  BIO_free (bio);
  return out;
}

static char *
key_to_pem (EVP_PKEY *key)
{
  BIO *bio = BIO_new (BIO_s_mem ());
  char *data = NULL, *out = NULL;
  long len;

  if (bio == NULL)
    return NULL;
  if (PEM_write_bio_PrivateKey (bio, key, NULL, NULL, 0, NULL, NULL))
    {
      len = BIO_get_mem_data (bio, &data);
      out = g_strndup (data, (gsize) len);
    }
  BIO_free (bio);
  return out;
}

static X509 *
load_cert_file (const char *path, GError **error)
{
  BIO *bio = BIO_new_file (path, "r");
  X509 *x;

  if (bio == NULL)
    {
      tg_set_error_openssl (error, "cannot read %s", path);
      return NULL;
    }
  x = PEM_read_bio_X509 (bio, NULL, NULL, NULL);
  BIO_free (bio);
  if (x == NULL)
    tg_set_error_openssl (error, "%s holds no PEM certificate", path);
  return x;
}

static EVP_PKEY *
load_key_file (const char *path, GError **error)
{
  BIO *bio = BIO_new_file (path, "r");
  EVP_PKEY *k;

  if (bio == NULL)
    {
      tg_set_error_openssl (error, "cannot read %s", path);
      return NULL;
    }
  k = PEM_read_bio_PrivateKey (bio, NULL, NULL, NULL);
  BIO_free (bio);
  if (k == NULL)
    tg_set_error_openssl (error, "%s holds no PEM private key", path);
  return k;
}

static gboolean
add_ext (X509 *x, X509V3_CTX *ctx, int nid, const char *value, GError **error)
{
  X509_EXTENSION *ext = X509V3_EXT_conf_nid (NULL, ctx, nid, value);

  if (ext == NULL || !X509_add_ext (x, ext, -1))
    {
      X509_EXTENSION_free (ext);
      tg_set_error_openssl (error, "cannot add the %s extension", OBJ_nid2sn (nid));
      return FALSE;
    }
  X509_EXTENSION_free (ext);
  return TRUE;
}

static gboolean
set_random_serial (X509 *x, GError **error)
{
  BIGNUM *bn = BN_new ();
  gboolean ok = FALSE;

  /* 127 random bits: positive, at most 16 octets, never zero in practice */
  if (bn != NULL && BN_rand (bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
      && BN_to_ASN1_INTEGER (bn, X509_get_serialNumber (x)) != NULL)
    ok = TRUE;
  BN_free (bn);
  if (!ok)
    tg_set_error_openssl (error, "cannot draw a serial number");
  return ok;
}

static gboolean
set_validity (X509 *x, gint64 not_before, gint64 not_after, GError **error)
{
  if (ASN1_TIME_set (X509_getm_notBefore (x), (time_t) not_before) == NULL
      || ASN1_TIME_set (X509_getm_notAfter (x), (time_t) not_after) == NULL)
    {
      tg_set_error_openssl (error, "cannot set the validity");
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_pem_file (const char *path, const char *pem, mode_t mode, gboolean overwrite, GError **error)
{
  g_autoptr (TgAtomicFile) f = tg_atomic_file_new (path, mode, overwrite, error);

  return f != NULL && tg_atomic_file_write (f, pem, strlen (pem), error) && tg_atomic_file_commit (f, error);
}

/* A URL for a certificate extension: http(s), printable, no separators the config syntax would split. */
gboolean
ca_is_plain_url (const char *url)
{
  if (url == NULL || (!g_str_has_prefix (url, "http://") && !g_str_has_prefix (url, "https://")))
    return FALSE;
  for (const char *p = url; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || *p == ',' || *p == ';' || *p == '"')
      return FALSE;
  return strlen (url) < 1024;
}

/* ---------------------------------------------------------- CA + OCSP */

static gboolean
create_ca (CaStore *store, const char *cert_path, const char *key_path, GError **error)
{
  EVP_PKEY *key = NULL;
  X509 *x = NULL;
  X509_NAME *name = NULL;
  X509V3_CTX ctx;
  g_autofree char *pem = NULL, *key_pem = NULL;
  gint64 now = ca_store_now (store);
  gboolean ok = FALSE;

  if ((key = EVP_EC_gen ("P-256")) == NULL)
    {
      tg_set_error_openssl (error, "cannot generate the CA key");
      goto out;
    }
  x = X509_new ();
  name = X509_NAME_new ();
  if (x == NULL || name == NULL || !X509_set_version (x, X509_VERSION_3)
      || !X509_NAME_add_entry_by_txt (name, "C", MBSTRING_UTF8, (const unsigned char *) "VE", -1, -1, 0)
      || !X509_NAME_add_entry_by_txt (name, "O", MBSTRING_UTF8, (const unsigned char *) "Testigo (development)", -1, -1, 0)
      || !X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) "Testigo Holder CA", -1, -1, 0)
      || !X509_set_subject_name (x, name) || !X509_set_issuer_name (x, name) || !X509_set_pubkey (x, key))
    {
      tg_set_error_openssl (error, "cannot build the CA certificate");
      goto out;
    }
  if (!set_random_serial (x, error) || !set_validity (x, now - 3600, now + CA_VALIDITY_DAYS * CA_DAY, error))
    goto out;
  X509V3_set_ctx (&ctx, x, x, NULL, NULL, 0);
  if (!add_ext (x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", error)
      || !add_ext (x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature", error)
      || !add_ext (x, &ctx, NID_subject_key_identifier, "hash", error))
    goto out;
  if (!X509_sign (x, key, EVP_sha256 ()))
    {
      tg_set_error_openssl (error, "cannot sign the CA certificate");
      goto out;
    }
  pem = x509_to_pem (x);
  key_pem = key_to_pem (key);
  if (pem == NULL || key_pem == NULL)
    {
      tg_set_error_openssl (error, "cannot encode the CA");
      goto out;
    }
  if (!tg_write_file_excl (key_path, key_pem, strlen (key_pem), 0600, error)
      || !write_pem_file (cert_path, pem, 0644, FALSE, error))
    goto out;
  ok = TRUE;
out:
  if (key_pem)
    OPENSSL_cleanse (key_pem, strlen (key_pem));
  X509_NAME_free (name);
  X509_free (x);
  EVP_PKEY_free (key);
  return ok;
}

/* The delegated OCSP responder (RFC 6960 §4.2.2.2), made by
 * ca_ocsp_responder_create next to the old one, then renamed over it (key
 * first, then the certificate that names it). */
static gboolean
create_ocsp_responder (CaStore *store, const char *cert_path, const char *key_path, GError **error)
{
  g_autofree char *new_cert = g_strconcat (cert_path, ".new", NULL);
  g_autofree char *new_key = g_strconcat (key_path, ".new", NULL);
  gint64 now = ca_store_now (store);

  g_unlink (new_cert); /* left over by an interrupted renewal */
  g_unlink (new_key);
  if (!ca_ocsp_responder_create (ca_store_get_path (store, "ca.pem"), ca_store_get_path (store, "ca.key"),
                                 new_cert, new_key, now - 3600,
                                 MIN (now + OCSP_VALIDITY_DAYS * CA_DAY,
                                      asn1_time_to_unix (X509_get0_notAfter (store->ca_cert))),
                                 error))
    return FALSE;
  if (g_rename (new_key, key_path) != 0 || g_rename (new_cert, cert_path) != 0)
    {
      tg_set_error_errno (error, errno, "cannot put the new OCSP responder in place");
      return FALSE;
    }
  return TRUE;
}

static gboolean
ocsp_responder_is_fresh (CaStore *store, const char *cert_path, const char *key_path)
{
  g_autoptr (GError) ignored = NULL;
  X509 *x;
  EVP_PKEY *k;
  gboolean fresh = FALSE;

  if (!g_file_test (cert_path, G_FILE_TEST_EXISTS) || !g_file_test (key_path, G_FILE_TEST_EXISTS))
    return FALSE;
  x = load_cert_file (cert_path, &ignored);
  g_clear_error (&ignored);
  k = load_key_file (key_path, &ignored);
  if (x != NULL && k != NULL && X509_check_private_key (x, k) == 1
      && X509_check_issued (store->ca_cert, x) == X509_V_OK
      && X509_verify (x, X509_get0_pubkey (store->ca_cert)) == 1
      && asn1_time_to_unix (X509_get0_notAfter (x)) > ca_store_now (store) + OCSP_RENEW_BEFORE_DAYS * CA_DAY)
    fresh = TRUE;
  ERR_clear_error ();
  X509_free (x);
  EVP_PKEY_free (k);
  return fresh;
}

gboolean
ca_certs_ensure_ca (CaStore *store, GError **error)
{
  const char *cert_path = ca_store_get_path (store, "ca.pem");
  const char *key_path = ca_store_get_path (store, "ca.key");
  const char *ocsp_cert = ca_store_get_path (store, "ocsp.pem");
  const char *ocsp_key = ca_store_get_path (store, "ocsp.key");

  if (!g_file_test (cert_path, G_FILE_TEST_EXISTS))
    {
      if (g_file_test (key_path, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "%s exists without %s: an interrupted initialisation? remove the key to start over",
                       key_path, cert_path);
          return FALSE;
        }
      if (!create_ca (store, cert_path, key_path, error))
        return FALSE;
    }
  if ((store->ca_cert = load_cert_file (cert_path, error)) == NULL
      || (store->ca_key = load_key_file (key_path, error)) == NULL)
    return FALSE;
  if (X509_check_private_key (store->ca_cert, store->ca_key) != 1)
    {
      tg_set_error_openssl (error, "%s does not match %s", key_path, cert_path);
      return FALSE;
    }
  if (!ocsp_responder_is_fresh (store, ocsp_cert, ocsp_key)
      && !create_ocsp_responder (store, ocsp_cert, ocsp_key, error))
    return FALSE;
  return TRUE;
}

/* ------------------------------------------------------------ CaCertInfo */

const char *
ca_cert_state_to_string (CaCertState state)
{
  switch (state)
    {
    case CA_CERT_VALID: return "valid";
    case CA_CERT_HELD: return "held";
    case CA_CERT_REVOKED: return "revoked";
    case CA_CERT_SUPERSEDED: return "superseded";
    case CA_CERT_EXPIRED: return "expired";
    default: return "unknown";
    }
}

void
ca_cert_info_free (CaCertInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->serial);
  g_free (info->subject);
  g_free (info->issuer);
  g_free (info->name);
  g_free (info->national_id);
  g_free (info->email);
  g_free (info->hold_case);
  g_free (info->superseded_by);
  g_free (info->renewal_of);
  g_free (info->pem);
  g_free (info);
}

CaCertInfo *
ca_cert_info_from_stmt (CaStore *store, sqlite3_stmt *st)
{
  CaCertInfo *i = g_new0 (CaCertInfo, 1);
  const char *state = (const char *) sqlite3_column_text (st, 8);

  i->serial = ca_db_column_text (st, 0);
  i->subject = ca_db_column_text (st, 1);
  i->issuer = ca_db_column_text (st, 2);
  i->name = ca_db_column_text (st, 3);
  i->national_id = ca_db_column_text (st, 4);
  i->email = ca_db_column_text (st, 5);
  i->not_before = sqlite3_column_int64 (st, 6);
  i->not_after = sqlite3_column_int64 (st, 7);
  i->state = g_strcmp0 (state, "held") == 0 ? CA_CERT_HELD
             : g_strcmp0 (state, "revoked") == 0 ? CA_CERT_REVOKED
             : g_strcmp0 (state, "superseded") == 0 ? CA_CERT_SUPERSEDED : CA_CERT_VALID;
  if (i->state == CA_CERT_VALID && i->not_after < ca_store_now (store))
    i->state = CA_CERT_EXPIRED;
  i->revocation_time = sqlite3_column_int64 (st, 9);
  i->reason = sqlite3_column_type (st, 10) == SQLITE_NULL ? CA_REASON_NONE : (CaReason) sqlite3_column_int (st, 10);
  i->invalidity_time = sqlite3_column_int64 (st, 11);
  i->hold_deadline = sqlite3_column_int64 (st, 12);
  i->hold_case = ca_db_column_text (st, 13);
  i->superseded_by = ca_db_column_text (st, 14);
  i->renewal_of = ca_db_column_text (st, 15);
  i->pem = ca_db_column_text (st, 16);
  return i;
}

char *
ca_cert_info_to_json (const CaCertInfo *i, gboolean with_pem)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  ca_json_add_str (b, "serial", i->serial);
  ca_json_add_str (b, "state", ca_cert_state_to_string (i->state));
  ca_json_add_str (b, "subject", i->subject);
  ca_json_add_str (b, "issuer", i->issuer);
  ca_json_add_str (b, "name", i->name);
  ca_json_add_str (b, "national_id", i->national_id);
  ca_json_add_str (b, "email", i->email);
  ca_json_add_time (b, "not_before", i->not_before);
  ca_json_add_time (b, "not_after", i->not_after);
  ca_json_add_time (b, "revocation_time", i->revocation_time);
  ca_json_add_str (b, "reason", i->reason == CA_REASON_NONE ? NULL : ca_reason_to_string (i->reason));
  ca_json_add_time (b, "invalidity_time", i->invalidity_time);
  ca_json_add_time (b, "hold_deadline", i->hold_deadline);
  ca_json_add_str (b, "hold_case", i->hold_case);
  ca_json_add_str (b, "superseded_by", i->superseded_by);
  ca_json_add_str (b, "renewal_of", i->renewal_of);
  if (with_pem)
    ca_json_add_str (b, "pem", i->pem);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

/* ---------------------------------------------------------- get / list */

CaCertInfo *
ca_cert_get (CaStore *store, const char *serial, GError **error)
{
  g_autofree char *norm = ca_serial_normalise (serial);
  g_autoptr (sqlite3_stmt) st = NULL;
  int rc;

  if (norm == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial \"%s\" is not 1-40 hex digits", serial ? serial : "");
      return NULL;
    }
  if ((st = ca_db_prepare (store, "SELECT " CA_CERT_COLUMNS " FROM certs WHERE serial = ?1", error)) == NULL)
    return NULL;
  ca_db_bind_text (st, 1, norm);
  rc = sqlite3_step (st);
  if (rc == SQLITE_ROW)
    return ca_cert_info_from_stmt (store, st);
  if (rc == SQLITE_DONE)
    g_set_error (error, TG_ERROR, TG_ERROR_NOT_FOUND, "no certificate with serial %s in the store", norm);
  else
    ca_db_set_error (store, error, "certificate");
  return NULL;
}

GPtrArray *
ca_cert_list (CaStore *store, const char *national_id, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func ((GDestroyNotify) ca_cert_info_free);
  int rc;

  st = ca_db_prepare (store,
                      national_id ? "SELECT " CA_CERT_COLUMNS " FROM certs WHERE national_id = ?1 COLLATE NOCASE ORDER BY created_at, serial"
                                  : "SELECT " CA_CERT_COLUMNS " FROM certs ORDER BY created_at, serial",
                      error);
  if (st == NULL)
    return NULL;
  if (national_id)
    ca_db_bind_text (st, 1, national_id);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    g_ptr_array_add (out, ca_cert_info_from_stmt (store, st));
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "certificates");
      return NULL;
    }
  return g_steal_pointer (&out);
}

/* -------------------------------------------------------------- insert */

static CaCertInfo *
insert_cert (CaStore *store, X509 *x, const char *origin, const char *renewal_of, GError **error)
{
  g_autofree char *serial = serial_hex (x);
  g_autofree char *subject = name_to_string (X509_get_subject_name (x));
  g_autofree char *issuer = name_to_string (X509_get_issuer_name (x));
  g_autofree char *cn = name_entry (X509_get_subject_name (x), NID_commonName);
  g_autofree char *nid = name_entry (X509_get_subject_name (x), NID_serialNumber);
  g_autofree char *email = san_email (x);
  g_autofree char *pem = x509_to_pem (x);
  g_autoptr (sqlite3_stmt) st = NULL;
  gint64 nb = asn1_time_to_unix (X509_get0_notBefore (x));
  gint64 na = asn1_time_to_unix (X509_get0_notAfter (x));

  if (email == NULL)
    email = name_entry (X509_get_subject_name (x), NID_pkcs9_emailAddress);
  if (serial == NULL || pem == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the certificate's serial number is negative, zero-length or over 20 octets");
      return NULL;
    }
  st = ca_db_prepare (store,
                      "INSERT INTO certs (serial, subject, issuer, name, national_id, email, not_before, not_after,"
                      " pem, origin, renewal_of, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                      error);
  if (st == NULL)
    return NULL;
  ca_db_bind_text (st, 1, serial);
  ca_db_bind_text (st, 2, subject);
  ca_db_bind_text (st, 3, issuer);
  ca_db_bind_text (st, 4, cn);
  ca_db_bind_text (st, 5, nid);
  ca_db_bind_text (st, 6, email);
  sqlite3_bind_int64 (st, 7, nb);
  sqlite3_bind_int64 (st, 8, na);
  ca_db_bind_text (st, 9, pem);
  ca_db_bind_text (st, 10, origin);
  ca_db_bind_text (st, 11, renewal_of);
  sqlite3_bind_int64 (st, 12, ca_store_now (store));
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (store->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        g_set_error (error, TG_ERROR, TG_ERROR_EXISTS, "certificate %s is already in the store", serial);
      else
        ca_db_set_error (store, error, "insert certificate");
      return NULL;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return ca_cert_get (store, serial, error);
}

static char *
cert_event_json (const CaCertInfo *info, const char *extra_key, const char *extra_value)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  ca_json_add_str (b, "serial", info->serial);
  ca_json_add_str (b, "subject", info->subject);
  ca_json_add_str (b, "national_id", info->national_id);
  if (extra_key)
    ca_json_add_str (b, extra_key, extra_value);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

CaCertInfo *
ca_cert_import (CaStore *store, const char *pem, GError **error)
{
  BIO *bio;
  X509 *x, *extra;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *details = NULL;

  if (pem == NULL || strlen (pem) > CA_CERT_MAX)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the certificate is missing or over %u bytes", (guint) CA_CERT_MAX);
      return NULL;
    }
  bio = BIO_new_mem_buf (pem, -1);
  x = bio ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
  extra = x ? PEM_read_bio_X509 (bio, NULL, NULL, NULL) : NULL;
  BIO_free (bio);
  ERR_clear_error ();
  if (x == NULL || extra != NULL)
    {
      X509_free (x);
      X509_free (extra);
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, extra ? "more than one certificate given: import one at a time"
                                                            : "no PEM certificate");
      return NULL;
    }
  if (X509_check_issued (store->ca_cert, x) != X509_V_OK || X509_verify (x, X509_get0_pubkey (store->ca_cert)) != 1)
    {
      g_autofree char *issuer = name_to_string (X509_get_issuer_name (x));
      ERR_clear_error ();
      X509_free (x);
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "the certificate was not issued by this CA (issuer: %s)", issuer);
      return NULL;
    }
  if (X509_check_ca (x) != 0)
    {
      X509_free (x);
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "the certificate is a CA certificate, not a holder's");
      return NULL;
    }
  if (!ca_db_begin (store, error))
    {
      X509_free (x);
      return NULL;
    }
  info = insert_cert (store, x, "imported", NULL, error);
  X509_free (x);
  if (info == NULL)
    goto fail;
  details = cert_event_json (info, NULL, NULL);
  if (!ca_store_audit (store, "import", "admin", details, error) || !ca_db_commit (store, error))
    goto fail;
  return g_steal_pointer (&info);
fail:
  ca_db_rollback (store);
  return NULL;
}

/* -------------------------------------------------------------- issue */

static gboolean
valid_email (const char *email)
{
  const char *at;

  if (email == NULL || strlen (email) > 254 || (at = strchr (email, '@')) == NULL || at == email
      || at[1] == '\0' || strchr (at + 1, '@') != NULL || strchr (at + 1, '.') == NULL)
    return FALSE;
  for (const char *p = email; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || strchr ("<>(),;:\\\"[]", *p) != NULL)
      return FALSE;
  return TRUE;
}

static gboolean
valid_national_id (const char *id)
{
  gsize n = id ? strlen (id) : 0;

  if (n == 0 || n > 64)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (id[i]) && id[i] != '.' && id[i] != '/' && id[i] != '-')
      return FALSE;
  return TRUE;
}

static gboolean
acceptable_key (EVP_PKEY *key, GError **error)
{
  int bits = EVP_PKEY_get_bits (key);

  if (EVP_PKEY_is_a (key, "RSA") && bits >= 2048 && bits <= 8192)
    return TRUE;
  if (EVP_PKEY_is_a (key, "EC") && bits >= 256)
    return TRUE;
  g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
               "the CSR's key (%s, %d bits) is not accepted: RSA 2048-8192 or EC P-256 and larger",
               EVP_PKEY_get0_type_name (key) ? EVP_PKEY_get0_type_name (key) : "?", bits);
  return FALSE;
}

static EVP_PKEY *
key_from_csr (const char *csr_pem, GError **error)
{
  BIO *bio;
  X509_REQ *req;
  EVP_PKEY *key = NULL;

  if (strlen (csr_pem) > CA_CSR_MAX)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the CSR is over %u bytes", (guint) CA_CSR_MAX);
      return NULL;
    }
  bio = BIO_new_mem_buf (csr_pem, -1);
  req = bio ? PEM_read_bio_X509_REQ (bio, NULL, NULL, NULL) : NULL;
  BIO_free (bio);
  if (req == NULL)
    {
      ERR_clear_error ();
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "no PEM certificate request (CSR)");
      return NULL;
    }
  if (X509_REQ_get0_pubkey (req) == NULL || X509_REQ_verify (req, X509_REQ_get0_pubkey (req)) != 1)
    {
      ERR_clear_error ();
      X509_REQ_free (req);
      g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the CSR's signature does not verify (proof of possession failed)");
      return NULL;
    }
  key = X509_REQ_get_pubkey (req);
  X509_REQ_free (req);
  if (key != NULL && !acceptable_key (key, error))
    {
      EVP_PKEY_free (key);
      return NULL;
    }
  return key;
}

CaCertInfo *
ca_certs_issue_locked (CaStore *store, const CaIssueRequest *r, const char *renewal_of, char **key_pem,
                       GError **error)
{
  EVP_PKEY *pub = NULL, *generated = NULL;
  X509 *x = NULL;
  X509_NAME *name = NULL;
  X509V3_CTX ctx;
  GENERAL_NAMES *gens = NULL;
  GENERAL_NAME *gen = NULL;
  ASN1_IA5STRING *ia5 = NULL;
  CaCertInfo *info = NULL;
  gint64 now = ca_store_now (store);
  gint64 ca_end = asn1_time_to_unix (X509_get0_notAfter (store->ca_cert));
  int days = r->days == 0 ? 365 : r->days;

  if (r->name == NULL || *r->name == '\0' || !g_utf8_validate (r->name, -1, NULL) || g_utf8_strlen (r->name, -1) > 64)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the holder's name is required (1-64 characters, UTF-8)");
      return NULL;
    }
  if (!valid_national_id (r->national_id))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the national ID \"%s\" is not 1-64 of A-Z a-z 0-9 . / -",
                   r->national_id ? r->national_id : "");
      return NULL;
    }
  if (!valid_email (r->email))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "\"%s\" is not a plain e-mail address", r->email ? r->email : "");
      return NULL;
    }
  if (days < 1 || days > 3650)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "validity of %d days is outside 1-3650", days);
      return NULL;
    }
  if ((store->crl_url && !ca_is_plain_url (store->crl_url)) || (store->delta_crl_url && !ca_is_plain_url (store->delta_crl_url))
      || (store->ocsp_url && !ca_is_plain_url (store->ocsp_url)))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the CRL/OCSP URLs must be plain http(s) URLs");
      return NULL;
    }

  if (r->csr_pem != NULL)
    pub = key_from_csr (r->csr_pem, error);
  else if ((generated = EVP_EC_gen ("P-256")) == NULL)
    tg_set_error_openssl (error, "cannot generate the holder's key");
  else
    pub = EVP_PKEY_dup (generated);
  if (pub == NULL)
    goto out;

  x = X509_new ();
  name = X509_NAME_new ();
  if (x == NULL || name == NULL || !X509_set_version (x, X509_VERSION_3)
      || !X509_NAME_add_entry_by_txt (name, "C", MBSTRING_UTF8, (const unsigned char *) "VE", -1, -1, 0)
      || !X509_NAME_add_entry_by_txt (name, "CN", MBSTRING_UTF8, (const unsigned char *) r->name, -1, -1, 0)
      || !X509_NAME_add_entry_by_txt (name, "serialNumber", MBSTRING_ASC, (const unsigned char *) r->national_id, -1, -1, 0)
      || !X509_set_subject_name (x, name) || !X509_set_issuer_name (x, X509_get_subject_name (store->ca_cert))
      || !X509_set_pubkey (x, pub))
    {
      tg_set_error_openssl (error, "cannot build the certificate");
      goto out;
    }
  if (!set_random_serial (x, error) || !set_validity (x, now - 300, MIN (now + days * CA_DAY, ca_end), error))
    goto out;
  X509V3_set_ctx (&ctx, store->ca_cert, x, NULL, NULL, 0);
  if (!add_ext (x, &ctx, NID_basic_constraints, "critical,CA:FALSE", error)
      || !add_ext (x, &ctx, NID_key_usage, "critical,digitalSignature,nonRepudiation", error)
      || !add_ext (x, &ctx, NID_ext_key_usage, "emailProtection,clientAuth", error)
      || !add_ext (x, &ctx, NID_subject_key_identifier, "hash", error)
      || !add_ext (x, &ctx, NID_authority_key_identifier, "keyid:always", error))
    goto out;
  /* SAN rfc822Name built as a structure (the address is never parsed as config syntax) */
  gens = GENERAL_NAMES_new ();
  gen = GENERAL_NAME_new ();
  ia5 = ASN1_IA5STRING_new ();
  if (gens == NULL || gen == NULL || ia5 == NULL || !ASN1_STRING_set (ia5, r->email, -1))
    {
      tg_set_error_openssl (error, "cannot build the subjectAltName");
      goto out;
    }
  GENERAL_NAME_set0_value (gen, GEN_EMAIL, ia5);
  ia5 = NULL;
  if (!sk_GENERAL_NAME_push (gens, gen))
    goto out;
  gen = NULL;
  if (!X509_add1_ext_i2d (x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT))
    {
      tg_set_error_openssl (error, "cannot add the subjectAltName");
      goto out;
    }
  if (store->crl_url)
    {
      g_autofree char *v = g_strdup_printf ("URI:%s", store->crl_url);
      if (!add_ext (x, &ctx, NID_crl_distribution_points, v, error))
        goto out;
    }
  if (store->delta_crl_url)
    {
      g_autofree char *v = g_strdup_printf ("URI:%s", store->delta_crl_url);
      if (!add_ext (x, &ctx, NID_freshest_crl, v, error))
        goto out;
    }
  if (store->ocsp_url)
    {
      g_autofree char *v = g_strdup_printf ("OCSP;URI:%s", store->ocsp_url);
      if (!add_ext (x, &ctx, NID_info_access, v, error))
        goto out;
    }
  if (!X509_sign (x, store->ca_key, EVP_sha256 ()))
    {
      tg_set_error_openssl (error, "cannot sign the certificate");
      goto out;
    }
  if ((info = insert_cert (store, x, "issued", renewal_of, error)) == NULL)
    goto out;
  if (key_pem != NULL)
    *key_pem = generated ? key_to_pem (generated) : NULL;
out:
  ERR_clear_error ();
  ASN1_IA5STRING_free (ia5);
  GENERAL_NAME_free (gen);
  GENERAL_NAMES_free (gens);
  X509_NAME_free (name);
  X509_free (x);
  EVP_PKEY_free (pub);
  EVP_PKEY_free (generated);
  return info;
}

CaCertInfo *
ca_cert_issue (CaStore *store, const CaIssueRequest *request, char **key_pem, GError **error)
{
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *details = NULL;

  if (key_pem)
    *key_pem = NULL;
  if (!ca_db_begin (store, error))
    return NULL;
  if ((info = ca_certs_issue_locked (store, request, NULL, key_pem, error)) == NULL)
    goto fail;
  details = cert_event_json (info, "key", request->csr_pem ? "csr" : "generated");
  if (!ca_store_audit (store, "issue", "admin", details, error) || !ca_db_commit (store, error))
    goto fail;
  return g_steal_pointer (&info);
fail:
  ca_db_rollback (store);
  if (key_pem)
    g_clear_pointer (key_pem, g_free);
  return NULL;
}

/* intake.c — requests by signed e-mail: read the S/MIME message with
 * OpenSSL (SMIME_read_CMS_ex), verify the signature (CMS_verify) and the
 * signer's chain to the CA (X509_verify_cert, purpose smimesign, at
 * options->now), then read the template from the signed body only and match
 * it to the signer certificate.
 *
 * Line endings. A detached signature covers the canonical (CRLF) form of the
 * first part; mail clients sign that form. OpenSSL's reader hands back the
 * first part with CRLF line endings, and CMS_verify in text mode (no
 * CMS_BINARY) canonicalises it again, so messages stored with LF or CRLF
 * both verify. A signer that signed non-canonical bytes (`openssl cms -sign
 * -binary` on an LF file) is verified on a second reading that keeps the
 * bytes as they are (SMIME_BINARY / CMS_BINARY), and, when the message was
 * stored with CRLF since, with CRLF made LF again. Line endings are all that
 * these readings differ in, and the body that is read is always the content
 * that verified. See openssl issues #21420, #29492, #9336.
 */
#include "config.h"
#include "ca-intake-private.h"
#include "tg-common.h"

#include <json-glib/json-glib.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CMS_ContentInfo, CMS_ContentInfo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free_all)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)

static void
x509_stack_free (STACK_OF (X509) *sk)
{
  sk_X509_pop_free (sk, X509_free);
}

void
ca_intake_request_free (CaIntakeRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->name);
  g_free (request->national_id);
  g_free (request->email);
  g_free (request->action);
  g_free (request->reason);
  g_free (request->message_sha256);
  g_free (request->signature_sha256);
  g_free (request->signer_cert_pem);
  g_free (request->signer_serial_hex);
  g_free (request->signer_subject);
  g_free (request->signer_national_id);
  g_free (request->signer_email);
  g_free (request);
}

/* Sets @error (@code) to the message, then OpenSSL's first reason, if any;
 * the error queue is cleared. */
static void G_GNUC_PRINTF (3, 4)
set_error_ssl (GError **error, int code, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  unsigned long e = ERR_peek_error ();
  const char *reason = e != 0 ? ERR_reason_error_string (e) : NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (reason != NULL)
    g_set_error (error, TG_ERROR, code, "%s (%s)", msg, reason);
  else
    g_set_error_literal (error, TG_ERROR, code, msg);
  ERR_clear_error ();
}

/* Empties OpenSSL's error queue; TRUE when CMS reason @reason was in it.
 * @first: the first (deepest) error, for the message. */
static gboolean
ssl_drain_find (int reason, unsigned long *first)
{
  unsigned long e;
  gboolean found = FALSE;

  *first = 0;
  while ((e = ERR_get_error ()) != 0)
    {
      if (*first == 0)
        *first = e;
      if (ERR_GET_LIB (e) == ERR_LIB_CMS && ERR_GET_REASON (e) == reason)
        found = TRUE;
    }
  return found;
}

static char *
bio_to_string (BIO *bio)
{
  char *data = NULL;
  long n = BIO_get_mem_data (bio, &data);

  return g_strndup (data, n > 0 ? (gsize) n : 0);
}

static char *
asn1_to_utf8 (const ASN1_STRING *s)
{
  unsigned char *utf8 = NULL;
  int n = ASN1_STRING_to_UTF8 (&utf8, s);
  char *out;

  if (n < 0)
    return NULL;
  out = g_strndup ((const char *) utf8, (gsize) n);
  OPENSSL_free (utf8);
  if (strlen (out) != (gsize) n || !g_utf8_validate (out, -1, NULL))
    {
      g_free (out);
      return NULL; /* embedded NUL or not text */
    }
  return out;
}

/* The signer's e-mail addresses: SAN rfc822Name first, then the subject's
 * emailAddress attributes. */
static GPtrArray *
cert_emails (X509 *cert)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GENERAL_NAMES *names = X509_get_ext_d2i (cert, NID_subject_alt_name, NULL, NULL);
  const X509_NAME *subject = X509_get_subject_name (cert);
  int idx = -1;

  for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num (names); i++)
    {
      const GENERAL_NAME *gn = sk_GENERAL_NAME_value (names, i);
      char *s;
      if (gn->type != GEN_EMAIL)
        continue;
      s = asn1_to_utf8 (gn->d.rfc822Name);
      if (s != NULL)
        g_ptr_array_add (out, s);
    }
  GENERAL_NAMES_free (names);
  while ((idx = X509_NAME_get_index_by_NID (subject, NID_pkcs9_emailAddress, idx)) >= 0)
    {
      char *s = asn1_to_utf8 (X509_NAME_ENTRY_get_data (X509_NAME_get_entry (subject, idx)));
      if (s != NULL)
        g_ptr_array_add (out, s);
    }
  return out;
}

/* The subject's serialNumber attribute (the holder's national ID), or NULL. */
static char *
cert_national_id (X509 *cert)
{
  const X509_NAME *subject = X509_get_subject_name (cert);
  int idx = X509_NAME_get_index_by_NID (subject, NID_serialNumber, -1);

  if (idx < 0)
    return NULL;
  return asn1_to_utf8 (X509_NAME_ENTRY_get_data (X509_NAME_get_entry (subject, idx)));
}

static char *
cert_subject (X509 *cert)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());
  g_autofree char *s = NULL;

  if (bio == NULL
      || X509_NAME_print_ex (bio, X509_get_subject_name (cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
    return g_strdup ("");
  s = bio_to_string (bio);
  return g_utf8_make_valid (s, -1);
}

static char *
cert_serial_hex (X509 *cert)
{
  BIGNUM *bn = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
  char *hex = bn != NULL ? BN_bn2hex (bn) : NULL;
  char *out = g_strdup (hex != NULL ? hex : "");

  OPENSSL_free (hex);
  BN_free (bn);
  return out;
}

static char *
cert_pem (X509 *cert)
{
  g_autoptr (BIO) bio = BIO_new (BIO_s_mem ());

  if (bio == NULL || !PEM_write_bio_X509 (bio, cert))
    return g_strdup ("");
  return bio_to_string (bio);
}

/* The signingTime attribute (the signer's claim), or 0. */
static gint64
signing_time (CMS_SignerInfo *si)
{
  int idx = CMS_signed_get_attr_by_NID (si, NID_pkcs9_signingTime, -1);
  X509_ATTRIBUTE *attr;
  ASN1_TYPE *t;
  struct tm tm = { 0 };
  g_autoptr (GDateTime) dt = NULL;

  if (idx < 0 || (attr = CMS_signed_get_attr (si, idx)) == NULL
      || X509_ATTRIBUTE_count (attr) != 1 || (t = X509_ATTRIBUTE_get0_type (attr, 0)) == NULL)
    return 0;
  if (t->type != V_ASN1_UTCTIME && t->type != V_ASN1_GENERALIZEDTIME)
    return 0;
  if (!ASN1_TIME_to_tm ((const ASN1_TIME *) t->value.asn1_string, &tm))
    return 0;
  dt = g_date_time_new_utc (tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return dt != NULL ? g_date_time_to_unix (dt) : 0;
}

static X509_STORE *
load_store (const char *ca_file, GError **error)
{
  g_autoptr (X509_STORE) store = NULL;

  if (ca_file == NULL || ca_file[0] == '\0')
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "no CA file given (the trust anchors)");
      return NULL;
    }
  if (!g_file_test (ca_file, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the CA file %s does not exist or is not a file", ca_file);
      return NULL;
    }
  store = X509_STORE_new ();
  if (store == NULL || !X509_STORE_load_file (store, ca_file))
    {
      set_error_ssl (error, TG_ERROR_INVALID, "the CA file %s holds no PEM certificate", ca_file);
      return NULL;
    }
  return g_steal_pointer (&store);
}

/* Reads the message; @bcont is the detached content or NULL. */
static CMS_ContentInfo *
read_message (GBytes *message, int flags, BIO **bcont, GError **error)
{
  gsize len;
  const void *data = g_bytes_get_data (message, &len);
  g_autoptr (BIO) in = BIO_new_mem_buf (data, (int) len);
  CMS_ContentInfo *cms;

  *bcont = NULL;
  if (in == NULL)
    {
      set_error_ssl (error, TG_ERROR_CRYPTO, "out of memory");
      return NULL;
    }
  cms = SMIME_read_CMS_ex (in, flags, bcont, NULL);
  if (cms == NULL)
    {
      set_error_ssl (error, TG_ERROR_INVALID, "not an S/MIME signed message");
      g_clear_pointer (bcont, BIO_free);
      return NULL;
    }
  return cms;
}

/* CMS_verify without the chain (checked apart, for an exact reason);
 * the verified content into @out. */
static gboolean
verify_signature (CMS_ContentInfo *cms, X509_STORE *store, BIO *bcont, int flags, BIO **out)
{
  *out = BIO_new (BIO_s_mem ());
  if (*out == NULL)
    return FALSE;
  return CMS_verify (cms, NULL, store, bcont, *out, flags | CMS_NO_SIGNER_CERT_VERIFY) == 1;
}

static gboolean
verify_chain (X509 *signer, STACK_OF (X509) *untrusted, X509_STORE *store, gint64 now, GError **error)
{
  g_autoptr (X509_STORE_CTX) ctx = X509_STORE_CTX_new ();
  int err;

  if (ctx == NULL || !X509_STORE_CTX_init (ctx, store, signer, untrusted))
    {
      set_error_ssl (error, TG_ERROR_CRYPTO, "cannot check the signer certificate");
      return FALSE;
    }
  /* S/MIME signing: a keyUsage, if present, must allow digitalSignature or
   * nonRepudiation, an extendedKeyUsage must include emailProtection. */
  if (!X509_STORE_CTX_set_purpose (ctx, X509_PURPOSE_SMIME_SIGN))
    {
      set_error_ssl (error, TG_ERROR_CRYPTO, "cannot check the signer certificate");
      return FALSE;
    }
  X509_VERIFY_PARAM_set_time (X509_STORE_CTX_get0_param (ctx), (time_t) now);
  if (X509_verify_cert (ctx) == 1)
    {
      ERR_clear_error ();
      return TRUE;
    }
  err = X509_STORE_CTX_get_error (ctx);
  ERR_clear_error ();
  g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the signer certificate is not trusted: %s",
               X509_verify_cert_error_string (err));
  return FALSE;
}

CaIntakeRequest *
ca_intake_parse (GBytes *message, const CaIntakeOptions *options, GError **error)
{
  g_autoptr (CaIntakeRequest) req = g_new0 (CaIntakeRequest, 1);
  g_autoptr (X509_STORE) store = NULL;
  g_autoptr (CMS_ContentInfo) cms = NULL;
  g_autoptr (BIO) bcont = NULL;
  g_autoptr (BIO) out = NULL;
  g_autoptr (GError) first_error = NULL;
  STACK_OF (X509) *certs = NULL;
  STACK_OF (X509) *signers = NULL;
  STACK_OF (CMS_SignerInfo) *infos;
  X509 *signer;
  g_autoptr (GPtrArray) emails = NULL;
  g_autofree char *text = NULL;
  gsize len;
  gint64 now;
  const void *data;
  gboolean ok = FALSE;

  g_return_val_if_fail (message != NULL && options != NULL, NULL);
  ERR_clear_error ();
  data = g_bytes_get_data (message, &len);
  if (len == 0)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the message is empty");
      return NULL;
    }
  if (len > CA_INTAKE_MAX_MESSAGE)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the message is over %" G_GSIZE_FORMAT " MiB",
                   CA_INTAKE_MAX_MESSAGE / (1024 * 1024));
      return NULL;
    }
  now = options->now > 0 ? options->now : g_get_real_time () / G_USEC_PER_SEC;
  req->message_sha256 = tg_sha256_hex (data, len);
  store = load_store (options->ca_file, error);
  if (store == NULL)
    return NULL;

  cms = read_message (message, 0, &bcont, error);
  if (cms == NULL)
    return NULL;
  if (OBJ_obj2nid (CMS_get0_type (cms)) != NID_pkcs7_signed)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "the message is S/MIME but not signed (%s): sign it, do not encrypt it",
                   OBJ_nid2sn (OBJ_obj2nid (CMS_get0_type (cms))));
      return NULL;
    }
  if (OBJ_obj2nid (CMS_get0_eContentType (cms)) != NID_pkcs7_data)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the signed content is not data");
      return NULL;
    }
  infos = CMS_get0_SignerInfos (cms);
  if (infos == NULL || sk_CMS_SignerInfo_num (infos) != 1)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the message has %d signatures; one is needed",
                   infos != NULL ? sk_CMS_SignerInfo_num (infos) : 0);
      return NULL;
    }
  req->detached = bcont != NULL;

  if (!verify_signature (cms, store, bcont, 0, &out))
    {
      unsigned long first;
      const char *why;
      if (ssl_drain_find (CMS_R_SIGNER_CERTIFICATE_NOT_FOUND, &first))
        {
          g_set_error_literal (error, TG_ERROR, TG_ERROR_CRYPTO,
                               "the message does not include the signer certificate");
          return NULL;
        }
      why = first != 0 ? ERR_reason_error_string (first) : NULL;
      g_set_error (&first_error, TG_ERROR, TG_ERROR_CRYPTO,
                   "the signature does not verify: the message was altered after signing (%s)",
                   why != NULL ? why : "no reason given");
      if (!req->detached)
        {
          g_propagate_error (error, g_steal_pointer (&first_error));
          return NULL;
        }
      /* A signer that signed the bytes as they are (binary) rather than
       * their canonical form: read the part again without canonicalising. */
      g_clear_pointer (&cms, CMS_ContentInfo_free);
      g_clear_pointer (&bcont, BIO_free);
      g_clear_pointer (&out, BIO_free);
      cms = read_message (message, SMIME_BINARY, &bcont, NULL);
      if (cms == NULL || bcont == NULL)
        {
          ERR_clear_error ();
          g_propagate_error (error, g_steal_pointer (&first_error));
          return NULL;
        }
      {
        /* The same bytes as signed, or with CRLF made LF again (a binary
         * LF signature whose message was stored with CRLF: the reader
         * leaves the CR of the line before the boundary at the end). */
        char *bdata = NULL;
        long blen = BIO_get_mem_data (bcont, &bdata);
        g_autofree char *lf = g_malloc (blen > 0 ? (gsize) blen : 1);
        gsize lflen = 0;
        g_autoptr (BIO) bcont_lf = NULL;
        gboolean verified;

        for (long i = 0; i < blen; i++)
          if (!(bdata[i] == '\r' && (i + 1 == blen || bdata[i + 1] == '\n')))
            lf[lflen++] = bdata[i];
        bcont_lf = BIO_new_mem_buf (lf, (int) lflen);
        verified = verify_signature (cms, store, bcont, CMS_BINARY, &out);
        if (!verified && bcont_lf != NULL && lflen != (gsize) blen)
          {
            g_clear_pointer (&out, BIO_free);
            verified = verify_signature (cms, store, bcont_lf, CMS_BINARY, &out);
          }
        ERR_clear_error ();
        if (!verified)
          {
            g_propagate_error (error, g_steal_pointer (&first_error));
            return NULL;
          }
      }
    }

  signers = CMS_get0_signers (cms);
  if (signers == NULL || sk_X509_num (signers) != 1)
    {
      sk_X509_free (signers);
      set_error_ssl (error, TG_ERROR_CRYPTO, "the message does not include the signer certificate");
      return NULL;
    }
  signer = sk_X509_value (signers, 0);
  X509_up_ref (signer);
  sk_X509_free (signers);
  {
    g_autoptr (X509) signer_ref = signer;
    certs = CMS_get1_certs (cms);
    ok = verify_chain (signer_ref, certs, store, now, error);
    x509_stack_free (certs);
    if (!ok)
      return NULL;

    req->signer_cert_pem = cert_pem (signer_ref);
    req->signer_serial_hex = cert_serial_hex (signer_ref);
    req->signer_subject = cert_subject (signer_ref);
    req->signer_national_id = cert_national_id (signer_ref);
    emails = cert_emails (signer_ref);
    if (emails->len > 0)
      req->signer_email = g_strdup (g_ptr_array_index (emails, 0));
  }
  infos = CMS_get0_SignerInfos (cms); /* @cms may have been read again */
  if (infos == NULL || sk_CMS_SignerInfo_num (infos) != 1)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the message has more than one signature");
      return NULL;
    }
  {
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value (infos, 0);
    const ASN1_OCTET_STRING *sig = CMS_SignerInfo_get0_signature (si);
    req->signing_time = signing_time (si);
    req->signature_sha256 = tg_sha256_hex (ASN1_STRING_get0_data (sig), (gsize) ASN1_STRING_length (sig));
  }

  {
    char *cdata = NULL;
    long clen = BIO_get_mem_data (out, &cdata);
    if (clen < 0 || !ca_intake_body_text (cdata, (gsize) clen, &text, error))
      return NULL;
  }
  if (!ca_intake_read_template (text, req, error))
    return NULL;

  /* Identity comes from the certificate: the body must name its holder. */
  if (req->signer_national_id != NULL)
    {
      g_autofree char *a = ca_intake_id_key (req->national_id);
      g_autofree char *b = ca_intake_id_key (req->signer_national_id);
      if (strcmp (a, b) != 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                       "the national ID in the message (%s) is not the signer's (%s)", req->national_id,
                       req->signer_national_id);
          return NULL;
        }
    }
  if (emails->len > 0)
    {
      gboolean found = FALSE;
      for (guint i = 0; i < emails->len && !found; i++)
        found = g_ascii_strcasecmp (req->email, g_ptr_array_index (emails, i)) == 0;
      if (!found)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                       "the e-mail address in the message (%s) is not in the signer certificate (%s)",
                       req->email, req->signer_email);
          return NULL;
        }
    }
  return g_steal_pointer (&req);
}

char *
ca_intake_request_to_json (const CaIntakeRequest *request)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

#define STR(key, value)                                                                            \
  do                                                                                               \
    {                                                                                              \
      json_builder_set_member_name (b, key);                                                       \
      if ((value) != NULL)                                                                         \
        json_builder_add_string_value (b, value);                                                  \
      else                                                                                         \
        json_builder_add_null_value (b);                                                           \
    }                                                                                              \
  while (0)

  json_builder_begin_object (b);
  STR ("action", request->action);
  STR ("name", request->name);
  STR ("national_id", request->national_id);
  STR ("email", request->email);
  STR ("reason", request->reason);
  json_builder_set_member_name (b, "suspension_days");
  json_builder_add_int_value (b, request->suspension_days);
  STR ("message_sha256", request->message_sha256);
  STR ("signature_sha256", request->signature_sha256);
  STR ("signer_serial_hex", request->signer_serial_hex);
  STR ("signer_subject", request->signer_subject);
  STR ("signer_national_id", request->signer_national_id);
  STR ("signer_email", request->signer_email);
  json_builder_set_member_name (b, "detached");
  json_builder_add_boolean_value (b, request->detached);
  json_builder_set_member_name (b, "signing_time");
  if (request->signing_time != 0)
    {
      g_autofree char *t = tg_time_format (request->signing_time);
      json_builder_add_string_value (b, t);
    }
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
#undef STR

  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

/* tsa.c — RFC 3161: the built-in time-stamp authority, requests, and the
 * HTTP client for external authorities.
 *
 * The built-in TSA answers with OpenSSL's TS API (request checks, TSTInfo),
 * then signs the TSTInfo with CMS so that the signingTime is genTime and the
 * signature carries ESS signing-certificate-v2 (RFC 5816). With a fixed
 * genTime the reply is reproducible byte for byte.
 */
#include "config.h"
#include "bundle-private.h"

#include <libsoup/soup.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <string.h>

/* The development TSA's policy: an OID under 2.25 (UUID arc), not squatting. */
#define BUNDLE_DEV_TSA_POLICY "2.25.216977592416423456049318102386117370934"

struct _BundleTsa {
  EVP_PKEY *key;
  X509 *cert;
  BundleCertStack *chain; /* intermediates */
};

BundleTsa *
bundle_tsa_new (const char *keys_dir, GError **error)
{
  g_autofree char *key_path = g_build_filename (keys_dir, "tsa.key", NULL);
  g_autofree char *cert_path = g_build_filename (keys_dir, "tsa.pem", NULL);
  BundleTsa *tsa = g_new0 (BundleTsa, 1);

  tsa->key = bundle_load_key (key_path, error);
  if (tsa->key != NULL)
    tsa->cert = bundle_load_cert (cert_path, error);
  if (tsa->cert == NULL)
    {
      bundle_tsa_free (tsa);
      return NULL;
    }
  if (X509_check_private_key (tsa->cert, tsa->key) != 1)
    {
      tg_set_error_openssl (error, "%s does not match %s", key_path, cert_path);
      bundle_tsa_free (tsa);
      return NULL;
    }
  tsa->chain = sk_X509_new_null ();
  return tsa;
}

void
bundle_tsa_free (BundleTsa *tsa)
{
  if (tsa == NULL)
    return;
  EVP_PKEY_free (tsa->key);
  X509_free (tsa->cert);
  bundle_cert_stack_free (tsa->chain);
  g_free (tsa);
}

typedef struct {
  gint64 gen_time;
  GBytes *request;
} RespondCtx;

static int
tsa_time_cb (TS_RESP_CTX *ctx, void *data, long *sec, long *usec)
{
  RespondCtx *rc = data;

  *sec = (long) rc->gen_time;
  *usec = 0;
  return 1;
}

static ASN1_INTEGER *
tsa_serial_cb (TS_RESP_CTX *ctx, void *data)
{
  RespondCtx *rc = data;
  g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
  guint8 digest[32];
  gint64 t = GINT64_TO_BE (rc->gen_time);
  BIGNUM *bn;
  ASN1_INTEGER *serial;

  /* Unique per request and time, and reproducible. */
  EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
  EVP_DigestUpdate (md, g_bytes_get_data (rc->request, NULL), g_bytes_get_size (rc->request));
  EVP_DigestUpdate (md, &t, sizeof t);
  EVP_DigestFinal_ex (md, digest, NULL);
  digest[0] &= 0x7f;
  bn = BN_bin2bn (digest, 16, NULL);
  serial = BN_to_ASN1_INTEGER (bn, NULL);
  BN_free (bn);
  if (serial == NULL)
    TS_RESP_CTX_set_status_info (ctx, TS_STATUS_REJECTION, "cannot allocate serial");
  return serial;
}

/* Re-signs the TSTInfo of a granted response with CMS, signingTime = genTime. */
static gboolean
tsa_resign (BundleTsa *tsa, TS_RESP *resp, gint64 gen_time, gboolean cert_req, GError **error)
{
  TS_TST_INFO *tst = TS_RESP_get_tst_info (resp);
  g_autofree guint8 *tst_der = NULL;
  guint8 *p;
  int tst_len;
  g_autoptr (BIO) in = NULL;
  g_autoptr (CMS_ContentInfo) cms = NULL;
  CMS_SignerInfo *si;
  g_autoptr (ASN1_TIME) signing_time = NULL;
  guint8 *cms_der = NULL;
  const guint8 *cp;
  int cms_len;
  PKCS7 *token;
  TS_TST_INFO *tst_copy;

  tst_len = i2d_TS_TST_INFO (tst, NULL);
  if (tst_len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode TSTInfo");
      return FALSE;
    }
  tst_der = g_malloc ((gsize) tst_len);
  p = tst_der;
  i2d_TS_TST_INFO (tst, &p);
  in = BIO_new_mem_buf (tst_der, tst_len);

  cms = CMS_sign (NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
  if (cms == NULL || !CMS_set1_eContentType (cms, OBJ_nid2obj (NID_id_smime_ct_TSTInfo)))
    goto fail;
  si = CMS_add1_signer (cms, tsa->cert, tsa->key, EVP_sha256 (),
                        CMS_PARTIAL | CMS_BINARY | CMS_CADES | CMS_NOSMIMECAP
                            | (cert_req ? 0 : CMS_NOCERTS));
  if (si == NULL)
    goto fail;
  signing_time = ASN1_TIME_set (NULL, (time_t) gen_time);
  if (signing_time == NULL
      || !CMS_signed_add1_attr_by_NID (si, NID_pkcs9_signingTime, signing_time->type,
                                       signing_time, -1))
    goto fail;
  if (cert_req)
    for (int i = 0; i < sk_X509_num (tsa->chain); i++)
      CMS_add1_cert (cms, sk_X509_value (tsa->chain, i));
  if (!CMS_final (cms, in, NULL, CMS_BINARY))
    goto fail;

  cms_len = i2d_CMS_ContentInfo (cms, &cms_der);
  if (cms_len <= 0)
    goto fail;
  cp = cms_der;
  token = d2i_PKCS7 (NULL, &cp, cms_len);
  OPENSSL_free (cms_der);
  if (token == NULL)
    goto fail;
  tst_copy = TS_TST_INFO_dup (tst);
  TS_RESP_set_tst_info (resp, token, tst_copy);
  return TRUE;

fail:
  tg_set_error_openssl (error, "built-in TSA cannot sign the time-stamp token");
  return FALSE;
}

GBytes *
bundle_tsa_respond (BundleTsa *tsa, GBytes *request, gint64 gen_time, GError **error)
{
  g_autoptr (TS_RESP_CTX) ctx = TS_RESP_CTX_new ();
  g_autoptr (ASN1_OBJECT) policy = OBJ_txt2obj (BUNDLE_DEV_TSA_POLICY, 1);
  g_autoptr (BIO) req_bio = NULL;
  g_autoptr (TS_RESP) resp = NULL;
  g_autoptr (TS_REQ) req = NULL;
  RespondCtx rc;
  gsize req_len;
  const guint8 *req_data = g_bytes_get_data (request, &req_len);
  const guint8 *p = req_data;
  guint8 *der = NULL;
  int der_len;
  GBytes *out;

  if (req_len > BUNDLE_MAX_TSA_REPLY)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "time-stamp request of %" G_GSIZE_FORMAT
                   " bytes is over the limit", req_len);
      return NULL;
    }
  rc.gen_time = gen_time > 0 ? gen_time : g_get_real_time () / G_USEC_PER_SEC;
  rc.request = request;

  if (!TS_RESP_CTX_set_signer_cert (ctx, tsa->cert) || !TS_RESP_CTX_set_signer_key (ctx, tsa->key)
      || !TS_RESP_CTX_set_signer_digest (ctx, EVP_sha256 ())
      || !TS_RESP_CTX_set_ess_cert_id_digest (ctx, EVP_sha256 ())
      || !TS_RESP_CTX_set_def_policy (ctx, policy) || !TS_RESP_CTX_add_md (ctx, EVP_sha256 ())
      || !TS_RESP_CTX_add_md (ctx, EVP_sha384 ()) || !TS_RESP_CTX_add_md (ctx, EVP_sha512 ())
      || !TS_RESP_CTX_set_accuracy (ctx, 1, 0, 0))
    {
      tg_set_error_openssl (error, "cannot configure the built-in TSA");
      return NULL;
    }
  TS_RESP_CTX_set_time_cb (ctx, tsa_time_cb, &rc);
  TS_RESP_CTX_set_serial_cb (ctx, tsa_serial_cb, &rc);

  req_bio = BIO_new_mem_buf (req_data, (int) req_len);
  resp = TS_RESP_create_response (ctx, req_bio);
  if (resp == NULL)
    {
      tg_set_error_openssl (error, "built-in TSA failed");
      return NULL;
    }
  if (ASN1_INTEGER_get (TS_STATUS_INFO_get0_status (TS_RESP_get_status_info (resp)))
      == TS_STATUS_GRANTED)
    {
      req = d2i_TS_REQ (NULL, &p, (long) req_len);
      if (req == NULL || !tsa_resign (tsa, resp, rc.gen_time, TS_REQ_get_cert_req (req), error))
        {
          if (error && *error == NULL)
            tg_set_error_openssl (error, "cannot re-read the time-stamp request");
          return NULL;
        }
    }
  der_len = i2d_TS_RESP (resp, &der);
  if (der_len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the time-stamp response");
      return NULL;
    }
  out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

TS_REQ *
bundle_ts_request_new (const guint8 *data, gsize len, guint64 nonce, const char *policy,
                       GError **error)
{
  g_autoptr (TS_REQ) req = TS_REQ_new ();
  TS_MSG_IMPRINT *imprint = TS_MSG_IMPRINT_new ();
  X509_ALGOR *alg = X509_ALGOR_new ();
  guint8 digest[32];
  g_autoptr (ASN1_INTEGER) n = NULL;
  g_autoptr (BIGNUM) bn = NULL;
  guint64 be = GUINT64_TO_BE (nonce);

  EVP_Digest (data, len, digest, NULL, EVP_sha256 (), NULL);
  X509_ALGOR_set0 (alg, OBJ_nid2obj (NID_sha256), V_ASN1_NULL, NULL);
  TS_MSG_IMPRINT_set_algo (imprint, alg);
  TS_MSG_IMPRINT_set_msg (imprint, digest, sizeof digest);
  TS_REQ_set_version (req, 1);
  TS_REQ_set_msg_imprint (req, imprint);
  TS_MSG_IMPRINT_free (imprint);
  X509_ALGOR_free (alg);
  bn = BN_bin2bn ((const guint8 *) &be, sizeof be, NULL);
  n = BN_to_ASN1_INTEGER (bn, NULL);
  TS_REQ_set_nonce (req, n);
  TS_REQ_set_cert_req (req, 1);
  if (policy != NULL)
    {
      g_autoptr (ASN1_OBJECT) obj = OBJ_txt2obj (policy, 1);
      if (obj == NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "invalid TSA policy OID %s", policy);
          return NULL;
        }
      TS_REQ_set_policy_id (req, obj);
    }
  return g_steal_pointer (&req);
}

GBytes *
bundle_ts_response_token (GBytes *response_der, GError **error)
{
  gsize len;
  const guint8 *p = g_bytes_get_data (response_der, &len);
  g_autoptr (TS_RESP) resp = d2i_TS_RESP (NULL, &p, (long) len);
  PKCS7 *token;
  guint8 *der = NULL;
  int der_len;
  GBytes *out;

  if (resp == NULL)
    {
      tg_set_error_openssl (error, "time-stamp response is not valid DER");
      return NULL;
    }
  if (ASN1_INTEGER_get (TS_STATUS_INFO_get0_status (TS_RESP_get_status_info (resp)))
      != TS_STATUS_GRANTED)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the TSA did not grant the time-stamp");
      return NULL;
    }
  token = TS_RESP_get_token (resp);
  der_len = token ? i2d_PKCS7 (token, &der) : -1;
  if (der_len <= 0)
    {
      tg_set_error_openssl (error, "time-stamp response carries no token");
      return NULL;
    }
  out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

GBytes *
bundle_tsa_http_post (const char *url, GBytes *request, GError **error)
{
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (GByteArray) body = g_byte_array_new ();
  const char *ctype;
  guint8 buf[16384];

  if (!g_str_has_prefix (url, "http://") && !g_str_has_prefix (url, "https://"))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "TSA URL %s is not http(s)", url);
      return NULL;
    }
  session = soup_session_new_with_options ("timeout", 30, "user-agent", "testigo/" TESTIGO_VERSION,
                                           NULL);
  msg = soup_message_new ("POST", url);
  if (msg == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "invalid TSA URL %s", url);
      return NULL;
    }
  soup_message_set_request_body_from_bytes (msg, "application/timestamp-query", request);
  stream = soup_session_send (session, msg, NULL, error);
  if (stream == NULL)
    {
      g_prefix_error (error, "TSA %s: ", url);
      return NULL;
    }
  if (soup_message_get_status (msg) != SOUP_STATUS_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "TSA %s answered HTTP %u %s", url,
                   soup_message_get_status (msg), soup_message_get_reason_phrase (msg));
      return NULL;
    }
  ctype = soup_message_headers_get_content_type (soup_message_get_response_headers (msg), NULL);
  if (ctype == NULL || g_ascii_strcasecmp (ctype, "application/timestamp-reply") != 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "TSA %s answered with content type %s",
                   url, ctype ? ctype : "(none)");
      return NULL;
    }
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, sizeof buf, NULL, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (body->len + (gsize) n > BUNDLE_MAX_TSA_REPLY)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "TSA %s reply is over %u bytes", url,
                       BUNDLE_MAX_TSA_REPLY);
          return NULL;
        }
      g_byte_array_append (body, buf, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&body));
}

gboolean
bundle_ts_response_check_strict (GBytes *response_der, BundleCertStack *tsa_certs, GError **error)
{
  gsize len;
  const guint8 *der = g_bytes_get_data (response_der, &len);
  const guint8 *p = der;
  g_autoptr (TS_RESP) resp = d2i_TS_RESP (NULL, &p, (long) len);
  TS_STATUS_INFO *st;
  guint8 *again = NULL, *tok = NULL;
  int again_len, tok_len;
  const guint8 *tp;
  g_autoptr (CMS_ContentInfo) cms = NULL;
  g_autoptr (BundleCertStack) certs = NULL;
  g_autoptr (BundleCrlStack) crls = NULL;
  CMS_SignerInfo *si;
  const char *why = NULL;

  if (resp == NULL || p != der + len)
    why = "is not one DER TimeStampResp";
  else if ((again_len = i2d_TS_RESP (resp, &again)) != (int) len || memcmp (again, der, len) != 0)
    why = "is not in the DER encoding it re-encodes to";
  else if ((st = TS_RESP_get_status_info (resp)) == NULL
           || ASN1_INTEGER_get (TS_STATUS_INFO_get0_status (st)) != TS_STATUS_GRANTED
           || TS_STATUS_INFO_get0_text (st) != NULL || TS_STATUS_INFO_get0_failure_info (st) != NULL)
    why = "must be granted with no status text or failure info";
  else if (TS_RESP_get_token (resp) == NULL || (tok_len = i2d_PKCS7 (TS_RESP_get_token (resp), &tok)) <= 0)
    why = "carries no token";
  else
    {
      tp = tok;
      cms = d2i_CMS_ContentInfo (NULL, &tp, tok_len);
      if (cms == NULL || sk_CMS_SignerInfo_num (CMS_get0_SignerInfos (cms)) != 1)
        why = "token is not SignedData with one signer";
      else
        {
          si = sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (cms), 0);
          certs = CMS_get1_certs (cms);
          crls = CMS_get1_crls (cms);
          if (CMS_unsigned_get_attr_count (si) > 0)
            why = "token carries unsigned attributes";
          else if (CMS_signed_get_attr_by_NID (si, NID_id_smime_aa_signingCertificateV2, -1) < 0)
            why = "token has no ESS signing-certificate-v2 (RFC 5816)";
          else if (crls != NULL && sk_X509_CRL_num (crls) > 0)
            why = "token embeds CRLs";
          for (int i = 0; why == NULL && certs && i < sk_X509_num (certs); i++)
            {
              gboolean known = FALSE;
              for (int k = 0; k < sk_X509_num (tsa_certs); k++)
                known |= X509_cmp (sk_X509_value (certs, i), sk_X509_value (tsa_certs, k)) == 0;
              for (int j = i + 1; j < sk_X509_num (certs); j++)
                if (X509_cmp (sk_X509_value (certs, i), sk_X509_value (certs, j)) == 0)
                  known = FALSE;
              if (!known)
                why = "token embeds a certificate twice or one outside the TSA chain given with --tsa-cert";
            }
        }
    }
  OPENSSL_free (again);
  OPENSSL_free (tok);
  ERR_clear_error ();
  if (why != NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the time-stamp reply %s; Testigo's verifier would refuse it", why);
      return FALSE;
    }
  return TRUE;
}

/* ca-ocsp.c — OCSP responses (RFC 6960). See ca-publication.h. */
#include "config.h"
#include "ca-publication-private.h"

#include <string.h>

#define CA_OCSP_DEFAULT_SINGLES 16
#define CA_OCSP_NONCE_MAX 32 /* RFC 8954 §2.1: longer nonces are not echoed */

static GBytes *
encode_response (OCSP_RESPONSE *resp, GError **error)
{
  unsigned char *der = NULL;
  int len = resp != NULL ? i2d_OCSP_RESPONSE (resp, &der) : -1;

  if (len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the OCSP response");
      return NULL;
    }
  return ca_bytes_from_openssl (der, len);
}

static GBytes *
error_response (int status, GError **error)
{
  g_autoptr (OCSP_RESPONSE) resp = OCSP_response_create (status, NULL);
  return encode_response (resp, error);
}

/* Does @cid name a certificate of the signer's CA? */
static gboolean
certid_matches (CaSigner *signer, OCSP_CERTID *cid, ASN1_INTEGER **serial)
{
  ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
  ASN1_OBJECT *md_obj = NULL;
  int nid;

  if (!OCSP_id_get0_info (&name_hash, &md_obj, &key_hash, serial, cid)
      || name_hash == NULL || key_hash == NULL || md_obj == NULL || *serial == NULL)
    return FALSE;
  nid = OBJ_obj2nid (md_obj);
  for (guint i = 0; i < CA_N_CERTID_HASHES; i++)
    {
      const CaCertIdHashes *h = &signer->ids[i];
      if (h->nid != nid)
        continue;
      return ASN1_STRING_length (name_hash) == (int) h->len
             && ASN1_STRING_length (key_hash) == (int) h->len
             && memcmp (ASN1_STRING_get0_data (name_hash), h->name_hash, h->len) == 0
             && memcmp (ASN1_STRING_get0_data (key_hash), h->key_hash, h->len) == 0;
    }
  return FALSE;
}

/* The serial as the lookup gets it: upper-case hex, two digits per byte, no
 * leading zero bytes. FALSE for negative or over-long serials. */
static gboolean
serial_to_hex (const ASN1_INTEGER *serial, char out[2 * CA_SERIAL_MAX_BYTES + 1])
{
  const guint8 *p = ASN1_STRING_get0_data (serial);
  int len = ASN1_STRING_length (serial);

  if (ASN1_STRING_type (serial) != V_ASN1_INTEGER)
    return FALSE; /* V_ASN1_NEG_INTEGER */
  while (len > 1 && *p == 0)
    p++, len--;
  if (len <= 0 || len > CA_SERIAL_MAX_BYTES)
    return FALSE;
  ca_serial_format (p, (guint) len, out);
  return TRUE;
}

/* Echo the request's nonce when it is 1..32 octets (RFC 8954). */
static gboolean
copy_nonce (OCSP_BASICRESP *bs, OCSP_REQUEST *req)
{
  int pos = OCSP_REQUEST_get_ext_by_NID (req, NID_id_pkix_OCSP_Nonce, -1);
  X509_EXTENSION *ext;
  const ASN1_OCTET_STRING *value;

  if (pos < 0)
    return TRUE;
  ext = OCSP_REQUEST_get_ext (req, pos);
  value = X509_EXTENSION_get_data (ext);
  /* The value is (normally) a DER OCTET STRING around the nonce: 2 bytes of header. */
  if (value == NULL || ASN1_STRING_length (value) < 1 || ASN1_STRING_length (value) > CA_OCSP_NONCE_MAX + 2)
    return TRUE;
  return OCSP_BASICRESP_add_ext (bs, ext, -1) == 1;
}

static gboolean
add_single (OCSP_BASICRESP *bs, CaSigner *signer, OCSP_CERTID *cid, const CaOcspOptions *options,
            ASN1_TIME *this_update, ASN1_TIME *next_update, GError **error)
{
  ASN1_INTEGER *serial = NULL;
  char hex[2 * CA_SERIAL_MAX_BYTES + 1];
  CaRevokedEntry entry = { 0 };
  CaCertStatus status = CA_STATUS_UNKNOWN;
  g_autoptr (ASN1_TIME) revoked_at = NULL;
  OCSP_SINGLERESP *single;
  int reason = OCSP_REVOKED_STATUS_NOSTATUS;

  if (certid_matches (signer, cid, &serial) && serial_to_hex (serial, hex))
    {
      entry.reason = CA_REASON_NONE;
      status = options->lookup (hex, &entry, options->user_data);
    }
  switch (status)
    {
    case CA_STATUS_GOOD:
      single = OCSP_basic_add1_status (bs, cid, V_OCSP_CERTSTATUS_GOOD, 0, NULL, this_update, next_update);
      break;
    case CA_STATUS_REVOKED:
      if (entry.revocation_time <= 0 || entry.reason == CA_REASON_REMOVE_FROM_CRL
          || (entry.reason != CA_REASON_NONE && ca_reason_to_string (entry.reason) == NULL))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "the status lookup gave serial %s an impossible revocation (time %" G_GINT64_FORMAT
                       ", reason %d)", hex, entry.revocation_time, (int) entry.reason);
          return FALSE;
        }
      if (entry.reason != CA_REASON_NONE && entry.reason != CA_REASON_UNSPECIFIED)
        reason = (int) entry.reason;
      revoked_at = ASN1_GENERALIZEDTIME_set (NULL, (time_t) entry.revocation_time);
      if (revoked_at == NULL)
        {
          tg_set_error_openssl (error, "cannot encode a revocation time");
          return FALSE;
        }
      single = OCSP_basic_add1_status (bs, cid, V_OCSP_CERTSTATUS_REVOKED, reason, revoked_at,
                                       this_update, next_update);
      /* RFC 6960 §4.4.7: CRL entry extensions may be single extensions. */
      if (single != NULL && entry.hold_reject && entry.reason == CA_REASON_CERTIFICATE_HOLD
          && OCSP_SINGLERESP_add1_ext_i2d (single, NID_hold_instruction_code,
                                           (void *) OBJ_nid2obj (NID_hold_instruction_reject), 0, 0) != 1)
        single = NULL;
      if (single != NULL && entry.invalidity_time > 0)
        {
          g_autoptr (ASN1_TIME) inv = ASN1_GENERALIZEDTIME_set (NULL, (time_t) entry.invalidity_time);
          if (inv == NULL || OCSP_SINGLERESP_add1_ext_i2d (single, NID_invalidity_date, inv, 0, 0) != 1)
            single = NULL;
        }
      break;
    case CA_STATUS_UNKNOWN:
    default:
      single = OCSP_basic_add1_status (bs, cid, V_OCSP_CERTSTATUS_UNKNOWN, 0, NULL, this_update, next_update);
      break;
    }
  if (single == NULL)
    {
      tg_set_error_openssl (error, "cannot add a single response");
      return FALSE;
    }
  return TRUE;
}

GBytes *
ca_ocsp_respond (CaSigner *signer, GBytes *request, const CaOcspOptions *options, GError **error)
{
  g_autoptr (OCSP_REQUEST) req = NULL;
  g_autoptr (OCSP_BASICRESP) bs = NULL;
  g_autoptr (OCSP_RESPONSE) resp = NULL;
  g_autoptr (ASN1_TIME) this_update = NULL, next_update = NULL;
  g_autoptr (EVP_MD_CTX) ctx = NULL;
  const unsigned char *p;
  gsize len = 0;
  guint max = options->max_requests > 0 ? options->max_requests : CA_OCSP_DEFAULT_SINGLES;
  int n;
  unsigned long flags = OCSP_RESPID_KEY;

  g_return_val_if_fail (signer != NULL && request != NULL && options != NULL, NULL);
  g_return_val_if_fail (options->lookup != NULL, NULL);

  p = g_bytes_get_data (request, &len);
  if (len == 0 || len > CA_OCSP_MAX_REQUEST)
    return error_response (OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, error);
  req = d2i_OCSP_REQUEST (NULL, &p, (long) len);
  if (req == NULL || p != (const unsigned char *) g_bytes_get_data (request, NULL) + len)
    {
      ERR_clear_error ();
      return error_response (OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, error);
    }
  n = OCSP_request_onereq_count (req);
  if (n <= 0 || (guint) n > max)
    return error_response (OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, error);

  bs = OCSP_BASICRESP_new ();
  this_update = ASN1_GENERALIZEDTIME_set (NULL, (time_t) options->now);
  if (options->validity > 0)
    next_update = ASN1_GENERALIZEDTIME_set (NULL, (time_t) (options->now + options->validity));
  if (bs == NULL || this_update == NULL || (options->validity > 0 && next_update == NULL))
    {
      tg_set_error_openssl (error, "cannot start an OCSP response");
      return NULL;
    }
  for (int i = 0; i < n; i++)
    {
      g_autoptr (GError) local = NULL;
      OCSP_CERTID *cid = OCSP_onereq_get0_id (OCSP_request_onereq_get0 (req, i));

      if (!add_single (bs, signer, cid, options, this_update, next_update, &local))
        {
          if (local->code == TG_ERROR_INVALID)
            {
              /* The store answered nonsense: tell the client, log it. */
              g_warning ("OCSP: %s", local->message);
              return error_response (OCSP_RESPONSE_STATUS_INTERNALERROR, error);
            }
          g_propagate_error (error, g_steal_pointer (&local));
          return NULL;
        }
    }
  if (!copy_nonce (bs, req))
    {
      tg_set_error_openssl (error, "cannot echo the OCSP nonce");
      return NULL;
    }

  /* A delegated responder sends its certificate; the CA itself sends none. */
  if (signer->issuer == NULL)
    flags |= OCSP_NOCERTS;
  ctx = ca_signer_sign_ctx (signer);
  if (ctx == NULL || OCSP_basic_sign_ctx (bs, signer->cert, ctx, NULL, flags) != 1)
    {
      tg_set_error_openssl (error, "cannot sign the OCSP response");
      return NULL;
    }
  resp = OCSP_response_create (OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
  return encode_response (resp, error);
}

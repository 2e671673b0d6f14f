/* ca-crl.c — full and delta CRLs (RFC 5280 §5). See ca-publication.h. */
#include "config.h"
#include "ca-publication-private.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CA_CRL_URI_MAX 2048
#define CA_TIME_MAX G_GINT64_CONSTANT (253402300799) /* 9999-12-31T23:59:59Z */
#define CA_CRL_MAX_ENTRIES (10 * 1000 * 1000) /* ~700 MB of DER */

typedef struct {
  guint8 len;
  guint8 bytes[CA_SERIAL_MAX_BYTES];
  const CaRevokedEntry *entry;
} CrlItem;

/* Integer order of positive serials without leading zero bytes: shorter
 * first, then bytewise (the order ASN1_STRING_cmp gives). */
static int
item_cmp (const void *a, const void *b)
{
  const CrlItem *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return memcmp (x->bytes, y->bytes, x->len);
}

static gboolean
reason_valid (CaReason reason)
{
  return reason == CA_REASON_NONE || ca_reason_to_string (reason) != NULL;
}

static gboolean
check_entry (const CaRevokedEntry *e, gboolean delta, GError **error)
{
  if (!reason_valid (e->reason))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial %s: reason code %d is not a CRLReason",
                   e->serial_hex, (int) e->reason);
      return FALSE;
    }
  if (e->reason == CA_REASON_REMOVE_FROM_CRL && !delta)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "serial %s: removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1)", e->serial_hex);
      return FALSE;
    }
  if (e->revocation_time <= 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "serial %s: revocation time %" G_GINT64_FORMAT " is not after 1970-01-01",
                   e->serial_hex, e->revocation_time);
      return FALSE;
    }
  if (e->invalidity_time < 0 || e->invalidity_time > CA_TIME_MAX || e->revocation_time > CA_TIME_MAX)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial %s: a time is outside 1970..9999", e->serial_hex);
      return FALSE;
    }
  if (e->hold_reject && e->reason != CA_REASON_CERTIFICATE_HOLD)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "serial %s: a hold instruction needs reason certificateHold", e->serial_hex);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_options (CaSigner *signer, const CaCrlOptions *o, GError **error)
{
  if (signer->issuer != NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "a CRL is signed by the CA itself, not by a delegated responder (no indirect CRLs)");
      return FALSE;
    }
  if ((X509_get_key_usage (signer->cert) & KU_CRL_SIGN) == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "the CA certificate's keyUsage does not allow cRLSign");
      return FALSE;
    }
  if (o->crl_number == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the CRL number must be positive");
      return FALSE;
    }
  if (o->base_crl_number != 0 && o->base_crl_number >= o->crl_number)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "a delta CRL's base CRL number (%" G_GUINT64_FORMAT ") must be below its own (%" G_GUINT64_FORMAT ")",
                   o->base_crl_number, o->crl_number);
      return FALSE;
    }
  if (o->this_update <= 0 || o->next_update <= o->this_update || o->next_update > CA_TIME_MAX)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "nextUpdate must come after thisUpdate, after 1970");
      return FALSE;
    }
  if (o->delta_uri != NULL && o->base_crl_number == 0)
    {
      gsize n = strlen (o->delta_uri);
      if (n == 0 || n > CA_CRL_URI_MAX || strchr (o->delta_uri, ':') == NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "delta CRL URI \"%.64s\" is not a URI", o->delta_uri);
          return FALSE;
        }
      for (gsize i = 0; i < n; i++)
        if (o->delta_uri[i] <= ' ' || o->delta_uri[i] >= 0x7f)
          {
            g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                         "delta CRL URI \"%.64s\" must be printable ASCII without spaces", o->delta_uri);
            return FALSE;
          }
    }
  return TRUE;
}

static gboolean
add_freshest (X509_CRL *crl, const char *uri)
{
  g_autoptr (CRL_DIST_POINTS) dps = sk_DIST_POINT_new_null ();
  DIST_POINT *dp = DIST_POINT_new ();
  GENERAL_NAME *gn = GENERAL_NAME_new ();
  ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new ();
  gboolean ok;

  if (dps == NULL || dp == NULL || gn == NULL || ia5 == NULL
      || !sk_DIST_POINT_push (dps, dp))
    {
      DIST_POINT_free (dp);
      GENERAL_NAME_free (gn);
      ASN1_IA5STRING_free (ia5);
      return FALSE;
    }
  if (!ASN1_STRING_set (ia5, uri, -1))
    {
      GENERAL_NAME_free (gn);
      ASN1_IA5STRING_free (ia5);
      return FALSE;
    }
  GENERAL_NAME_set0_value (gn, GEN_URI, ia5);
  if ((dp->distpoint = DIST_POINT_NAME_new ()) == NULL)
    {
      GENERAL_NAME_free (gn);
      return FALSE;
    }
  dp->distpoint->type = 0;
  if ((dp->distpoint->name.fullname = sk_GENERAL_NAME_new_null ()) == NULL
      || !sk_GENERAL_NAME_push (dp->distpoint->name.fullname, gn))
    {
      GENERAL_NAME_free (gn);
      return FALSE;
    }
  ok = X509_CRL_add1_ext_i2d (crl, NID_freshest_crl, dps, 0, 0) == 1;
  return ok;
}

static gboolean
add_crl_extensions (X509_CRL *crl, CaSigner *signer, const CaCrlOptions *o)
{
  g_autoptr (AUTHORITY_KEYID) akid = AUTHORITY_KEYID_new ();
  g_autoptr (ASN1_INTEGER) number = ASN1_INTEGER_new ();
  g_autoptr (ASN1_INTEGER) base = NULL;

  if (akid == NULL || number == NULL
      || (akid->keyid = ASN1_OCTET_STRING_dup (signer->ca_key_id)) == NULL
      || X509_CRL_add1_ext_i2d (crl, NID_authority_key_identifier, akid, 0, 0) != 1
      || !ASN1_INTEGER_set_uint64 (number, o->crl_number)
      || X509_CRL_add1_ext_i2d (crl, NID_crl_number, number, 0, 0) != 1)
    return FALSE;
  if (o->base_crl_number != 0)
    {
      base = ASN1_INTEGER_new ();
      if (base == NULL || !ASN1_INTEGER_set_uint64 (base, o->base_crl_number)
          || X509_CRL_add1_ext_i2d (crl, NID_delta_crl, base, 1, 0) != 1)
        return FALSE;
    }
  else if (o->delta_uri != NULL && !add_freshest (crl, o->delta_uri))
    return FALSE;
  return TRUE;
}

/* One revokedCertificates entry, built with OpenSSL (which also encodes and
 * signs the whole CRL). Times: UTCTime up to 2049, GeneralizedTime after
 * (ASN1_TIME_set), invalidityDate always GeneralizedTime (RFC 5280 §5.3.2). */
static X509_REVOKED *
revoked_new (const CrlItem *item)
{
  const CaRevokedEntry *e = item->entry;
  g_autoptr (X509_REVOKED) r = X509_REVOKED_new ();
  g_autoptr (BIGNUM) bn = BN_bin2bn (item->bytes, item->len, NULL);
  g_autoptr (ASN1_INTEGER) serial = bn != NULL ? BN_to_ASN1_INTEGER (bn, NULL) : NULL;
  g_autoptr (ASN1_TIME) when = ASN1_TIME_set (NULL, (time_t) e->revocation_time);

  if (r == NULL || serial == NULL || when == NULL
      || !X509_REVOKED_set_serialNumber (r, serial)
      || !X509_REVOKED_set_revocationDate (r, when))
    return NULL;
  if (e->reason != CA_REASON_NONE && e->reason != CA_REASON_UNSPECIFIED)
    {
      g_autoptr (ASN1_ENUMERATED) reason = ASN1_ENUMERATED_new ();
      if (reason == NULL || !ASN1_ENUMERATED_set (reason, e->reason)
          || X509_REVOKED_add1_ext_i2d (r, NID_crl_reason, reason, 0, 0) != 1)
        return NULL;
    }
  if (e->hold_reject
      && X509_REVOKED_add1_ext_i2d (r, NID_hold_instruction_code,
                                    (void *) OBJ_nid2obj (NID_hold_instruction_reject), 0, 0) != 1)
    return NULL;
  if (e->invalidity_time > 0)
    {
      g_autoptr (ASN1_GENERALIZEDTIME) inv = ASN1_GENERALIZEDTIME_set (NULL, (time_t) e->invalidity_time);
      if (inv == NULL || X509_REVOKED_add1_ext_i2d (r, NID_invalidity_date, inv, 0, 0) != 1)
        return NULL;
    }
  return g_steal_pointer (&r);
}

GBytes *
ca_crl_build (CaSigner *signer, const CaCrlOptions *options,
              const CaRevokedEntry *entries, gsize n_entries, GError **error)
{
  g_autofree CrlItem *items = NULL;
  g_autoptr (X509_CRL) crl = NULL;
  g_autoptr (ASN1_TIME) this_update = NULL, next_update = NULL;
  g_autoptr (EVP_MD_CTX) ctx = NULL;
  unsigned char *der = NULL;
  int der_len;
  GBytes *out;
  gboolean delta;

  g_return_val_if_fail (signer != NULL && options != NULL, NULL);
  g_return_val_if_fail (entries != NULL || n_entries == 0, NULL);

  if (!check_options (signer, options, error))
    return NULL;
  delta = options->base_crl_number != 0;
  if (n_entries > CA_CRL_MAX_ENTRIES)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "%" G_GSIZE_FORMAT " CRL entries are more than %d",
                   n_entries, CA_CRL_MAX_ENTRIES);
      return NULL;
    }

  /* Parse and check every entry, then sort by serial and refuse duplicates. */
  items = g_new (CrlItem, MAX (n_entries, 1));
  for (gsize i = 0; i < n_entries; i++)
    {
      guint len = 0;
      if (!check_entry (&entries[i], delta, error)
          || !ca_serial_parse (entries[i].serial_hex, items[i].bytes, &len, error))
        return NULL;
      items[i].len = (guint8) len;
      items[i].entry = &entries[i];
    }
  qsort (items, n_entries, sizeof *items, item_cmp);
  for (gsize i = 1; i < n_entries; i++)
    if (item_cmp (&items[i - 1], &items[i]) == 0)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "serial %s is listed twice",
                     items[i].entry->serial_hex);
        return NULL;
      }

  crl = X509_CRL_new ();
  this_update = ASN1_TIME_set (NULL, (time_t) options->this_update);
  next_update = ASN1_TIME_set (NULL, (time_t) options->next_update);
  if (crl == NULL || this_update == NULL || next_update == NULL
      || !X509_CRL_set_version (crl, X509_CRL_VERSION_2)
      || !X509_CRL_set_issuer_name (crl, X509_get_subject_name (signer->cert))
      || !X509_CRL_set1_lastUpdate (crl, this_update)
      || !X509_CRL_set1_nextUpdate (crl, next_update)
      || !add_crl_extensions (crl, signer, options))
    {
      tg_set_error_openssl (error, "cannot set up the CRL");
      return NULL;
    }
  /* Added in serial order, so X509_CRL_sort finds them sorted. */
  for (gsize i = 0; i < n_entries; i++)
    {
      X509_REVOKED *r = revoked_new (&items[i]);
      if (r == NULL || !X509_CRL_add0_revoked (crl, r))
        {
          X509_REVOKED_free (r);
          tg_set_error_openssl (error, "cannot add serial %s to the CRL", items[i].entry->serial_hex);
          return NULL;
        }
    }
  ctx = EVP_MD_CTX_new ();
  if (!X509_CRL_sort (crl) || ctx == NULL
      || EVP_DigestSignInit (ctx, NULL, signer->md, NULL, signer->key) != 1
      || X509_CRL_sign_ctx (crl, ctx) <= 0)
    {
      tg_set_error_openssl (error, "cannot sign the CRL");
      return NULL;
    }
  if ((der_len = i2d_X509_CRL (crl, &der)) <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the CRL");
      return NULL;
    }
  out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

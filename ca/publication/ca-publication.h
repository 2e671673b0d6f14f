/* ca-publication.h — revocation data for relying parties: full and delta
 * CRLs (RFC 5280 §5) and OCSP responses (RFC 6960). Pure builders: the
 * caller (ca/ store) says what is revoked; nothing here touches a database.
 * Errors are in the TG_ERROR domain. Symbols carry the ca_ prefix.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* RFC 5280 CRLReason codes. */
typedef enum {
  CA_REASON_NONE = -1,               /* no reasonCode extension */
  CA_REASON_UNSPECIFIED = 0,
  CA_REASON_KEY_COMPROMISE = 1,
  CA_REASON_CA_COMPROMISE = 2,
  CA_REASON_AFFILIATION_CHANGED = 3,
  CA_REASON_SUPERSEDED = 4,
  CA_REASON_CESSATION_OF_OPERATION = 5,
  CA_REASON_CERTIFICATE_HOLD = 6,
  CA_REASON_REMOVE_FROM_CRL = 8,     /* delta CRLs only */
  CA_REASON_PRIVILEGE_WITHDRAWN = 9,
  CA_REASON_AA_COMPROMISE = 10,
} CaReason;

/** ca_reason_to_string / ca_reason_from_string: RFC 5280 names ("keyCompromise", "certificateHold", …). */
const char *ca_reason_to_string (CaReason reason);
gboolean ca_reason_from_string (const char *name, CaReason *out);

typedef struct {
  const char *serial_hex;    /* upper-case hex digits, no separators, at most 40 */
  gint64 revocation_time;    /* unix seconds; never 0 (RFC 6960 reserves 1970-01-01) */
  CaReason reason;
  gint64 invalidity_time;    /* unix seconds, 0 = no invalidityDate extension */
  gboolean hold_reject;      /* holdInstructionCode id-holdinstruction-reject (with certificateHold only) */
} CaRevokedEntry;

/* A loaded signing identity: certificate + private key (PEM files), with the
 * issuing CA's certificate when the signer is a delegated OCSP responder. */
typedef struct _CaSigner CaSigner;

/** ca_signer_load: (transfer full) loads @cert_path + @key_path; @issuer_path is NULL when the signer is the CA itself. */
CaSigner *ca_signer_load (const char *cert_path, const char *key_path, const char *issuer_path, GError **error);
void ca_signer_free (CaSigner *signer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaSigner, ca_signer_free)

typedef struct {
  guint64 crl_number;        /* cRLNumber, > 0, increasing across full and delta CRLs */
  guint64 base_crl_number;   /* 0: a full CRL; otherwise a delta CRL (deltaCRLIndicator = this base) */
  gint64 this_update;        /* unix seconds */
  gint64 next_update;        /* unix seconds, > this_update */
  const char *delta_uri;     /* full CRLs: Freshest CRL (deltaCRL distribution point) URI; optional */
} CaCrlOptions;

/**
 * ca_crl_build:
 * Signs a CRL over @entries (any order; sorted by serial in the output) with
 * @signer (the CA). Returns: (transfer full) the DER encoding. A delta CRL may
 * hold CA_REASON_REMOVE_FROM_CRL entries; a full CRL may not.
 * Meant for 100,000 entries in well under a second.
 */
GBytes *ca_crl_build (CaSigner *signer, const CaCrlOptions *options,
                      const CaRevokedEntry *entries, gsize n_entries, GError **error);

/** ca_der_to_pem: (transfer full) @der wrapped as PEM with @label ("X509 CRL", …). */
char *ca_der_to_pem (GBytes *der, const char *label);

typedef enum { CA_STATUS_GOOD, CA_STATUS_REVOKED, CA_STATUS_UNKNOWN } CaCertStatus;

/**
 * CaStatusLookup:
 * Answers for one serial (upper-case hex) of the CA's certificates. For
 * CA_STATUS_REVOKED it fills @entry (serial_hex may be left NULL).
 * Called on the caller's thread, once per single request.
 */
typedef CaCertStatus (*CaStatusLookup) (const char *serial_hex, CaRevokedEntry *entry, gpointer user_data);

typedef struct {
  CaStatusLookup lookup;
  gpointer user_data;
  gint64 now;                /* producedAt / thisUpdate, unix seconds */
  gint64 validity;           /* nextUpdate = now + validity seconds (keep it short) */
  guint max_requests;        /* singles per request; 0 means 16 */
} CaOcspOptions;

#define CA_OCSP_MAX_REQUEST ((gsize) 16 * 1024)

/**
 * ca_ocsp_respond:
 * Answers a DER OCSPRequest. Malformed, oversized or unsupported requests get
 * the proper OCSP error response (malformedRequest, …), not a GError; a
 * request for another issuer gets "unknown". The nonce is echoed.
 * Returns: (transfer full) a DER OCSPResponse, NULL only on internal errors.
 */
GBytes *ca_ocsp_respond (CaSigner *signer, GBytes *request, const CaOcspOptions *options, GError **error);

G_END_DECLS

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

/**
 * ca_reason_to_string / ca_reason_from_string: RFC 5280 names ("keyCompromise",
 * "certificateHold", …). to_string returns NULL for CA_REASON_NONE and for
 * values that are not reasons (7); from_string ignores ASCII case.
 * Note: CA_REASON_UNSPECIFIED is published as an absent reasonCode (CRL) and
 * an absent revocationReason (OCSP), as RFC 5280 §5.3.1 recommends.
 */
const char *ca_reason_to_string (CaReason reason);
gboolean ca_reason_from_string (const char *name, CaReason *out);

typedef struct {
  const char *serial_hex;    /* upper-case hex digits, no separators, at most 40 (lower case and
                                leading zeros are accepted; zero is not a serial) */
  gint64 revocation_time;    /* unix seconds; never 0 (RFC 6960 reserves 1970-01-01) */
  CaReason reason;
  gint64 invalidity_time;    /* unix seconds, 0 = no invalidityDate extension */
  gboolean hold_reject;      /* holdInstructionCode id-holdinstruction-reject (with certificateHold only) */
} CaRevokedEntry;

/* A loaded signing identity: certificate + private key (PEM files), with the
 * issuing CA's certificate when the signer is a delegated OCSP responder. */
typedef struct _CaSigner CaSigner;

/**
 * ca_signer_load: (transfer full) loads @cert_path + @key_path (unencrypted
 * PEM); @issuer_path is NULL when the signer is the CA itself. With an
 * issuer, the certificate must be issued by it and carry the OCSPSigning
 * extended key usage (a delegated OCSP responder). Any key type works (RSA,
 * EC, Ed25519); signatures use SHA-256. A loaded signer is read-only: it may
 * be used by several threads at once.
 */
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
 * hold CA_REASON_REMOVE_FROM_CRL entries; a full CRL may not. Refused with
 * TG_ERROR_INVALID: a delegated signer (no indirect CRLs), a CA certificate
 * whose keyUsage lacks cRLSign, a bad or repeated
 * serial, revocation_time ≤ 0, times after 9999, hold_reject without
 * certificateHold, crl_number 0, base_crl_number ≥ crl_number. Entry
 * extensions, in this order: reasonCode, holdInstructionCode, invalidityDate
 * (as `openssl ca` writes them); times are UTCTime before 2050, then
 * GeneralizedTime (invalidityDate always GeneralizedTime). CRL extensions:
 * authorityKeyIdentifier, cRLNumber, then deltaCRLIndicator (critical) or
 * Freshest CRL.
 * 100,000 entries take ~0.15 s (the entries are encoded directly, not
 * through OpenSSL's template encoder; see bench/ca).
 */
GBytes *ca_crl_build (CaSigner *signer, const CaCrlOptions *options,
                      const CaRevokedEntry *entries, gsize n_entries, GError **error);

/** ca_der_to_pem: (transfer full) @der wrapped as PEM with @label ("X509 CRL", …). */
char *ca_der_to_pem (GBytes *der, const char *label);

typedef enum { CA_STATUS_GOOD, CA_STATUS_REVOKED, CA_STATUS_UNKNOWN } CaCertStatus;

/**
 * CaStatusLookup:
 * Answers for one serial of the CA's certificates: upper-case hex, two digits
 * per byte, no leading zero bytes (as `openssl x509 -serial` prints it). For
 * CA_STATUS_REVOKED it fills @entry (serial_hex may be left NULL).
 * Called on the caller's thread, once per single request.
 */
typedef CaCertStatus (*CaStatusLookup) (const char *serial_hex, CaRevokedEntry *entry, gpointer user_data);

typedef struct {
  CaStatusLookup lookup;
  gpointer user_data;
  gint64 now;                /* thisUpdate, unix seconds (producedAt is the clock at signing) */
  gint64 validity;           /* nextUpdate = now + validity seconds (keep it short); ≤ 0: no nextUpdate */
  guint max_requests;        /* singles per request; 0 means 16 */
} CaOcspOptions;

#define CA_OCSP_MAX_REQUEST ((gsize) 16 * 1024)

/**
 * ca_ocsp_respond:
 * Answers a DER OCSPRequest. Malformed, oversized or unsupported requests get
 * the proper OCSP error response (malformedRequest, …), not a GError; a
 * request for another issuer gets "unknown". The nonce is echoed (when it is
 * 1..32 octets, RFC 8954). Request signatures are not required nor checked.
 * A lookup that answers an impossible revocation (time ≤ 0, removeFromCRL)
 * gets internalError, with a g_warning. The responderID is by key hash; a
 * delegated responder includes its certificate. Safe to call from several
 * threads with the same signer.
 *
 * Speed: the signature dominates. On the 2-core development VM an RSA-3072
 * CA key gives ~500 responses per CPU-second; an EC P-256 delegated
 * responder (see ca_ocsp_responder_create) ~23,000, which is what the store
 * should use (bench/ca/README.md).
 * Returns: (transfer full) a DER OCSPResponse, NULL only on internal errors.
 */
GBytes *ca_ocsp_respond (CaSigner *signer, GBytes *request, const CaOcspOptions *options, GError **error);

/**
 * ca_ocsp_responder_create:
 * Makes a delegated OCSP responder: a fresh EC P-256 key (@out_key_path, mode
 * 0600) and a certificate for it (@out_cert_path) signed by the CA
 * (@ca_cert_path, @ca_key_path) with basicConstraints CA:FALSE, keyUsage
 * digitalSignature, extendedKeyUsage OCSPSigning and id-pkix-ocsp-nocheck,
 * valid from @not_before to @not_after (unix seconds; keep it short, since
 * nocheck means relying parties never check its revocation). The subject is
 * the CA's name with CN "Testigo OCSP Responder". Refuses to overwrite
 * either file; both are written atomically.
 */
gboolean ca_ocsp_responder_create (const char *ca_cert_path, const char *ca_key_path,
                                   const char *out_cert_path, const char *out_key_path,
                                   gint64 not_before, gint64 not_after, GError **error);

G_END_DECLS

/* ca-publication-private.h — internals shared by the publication builders. */
#pragma once

#include "ca-publication.h"
#include "tg-common.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_CRL, X509_CRL_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD, EVP_MD_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free_all)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_INTEGER, ASN1_INTEGER_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_TIME, ASN1_TIME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_GENERALIZEDTIME, ASN1_GENERALIZEDTIME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_ENUMERATED, ASN1_ENUMERATED_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_REVOKED, X509_REVOKED_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AUTHORITY_KEYID, AUTHORITY_KEYID_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CRL_DIST_POINTS, CRL_DIST_POINTS_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OCSP_REQUEST, OCSP_REQUEST_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OCSP_RESPONSE, OCSP_RESPONSE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OCSP_BASICRESP, OCSP_BASICRESP_free)

#define CA_PEM_MAX ((gsize) 1024 * 1024)   /* certificate and key files */
#define CA_SERIAL_MAX_BYTES 20             /* RFC 5280 §4.1.2.2 */
#define CA_N_CERTID_HASHES 4

/* The CA's identity as an OCSP CertID names it, for one hash algorithm. */
typedef struct {
  int nid;
  guint len;
  guint8 name_hash[EVP_MAX_MD_SIZE];
  guint8 key_hash[EVP_MAX_MD_SIZE];
} CaCertIdHashes;

struct _CaSigner {
  X509 *cert;
  EVP_PKEY *key;
  X509 *issuer;      /* NULL: the signer is the CA */
  EVP_MD *md;        /* SHA-256, fetched once; NULL for EdDSA keys */
  CaCertIdHashes ids[CA_N_CERTID_HASHES]; /* of the CA (issuer, or cert itself) */
  ASN1_OCTET_STRING *ca_key_id;           /* the CA's key identifier, for authorityKeyIdentifier */
  EVP_MD_CTX *sign_template;              /* DigestSignInit done once; copied per OCSP response */
};

/* ca_signer_sign_ctx: (transfer full) a fresh signing context for @signer. */
EVP_MD_CTX *ca_signer_sign_ctx (CaSigner *signer);

/* The CA certificate: the issuer of a delegated responder, else the signer. */
static inline X509 *
ca_signer_ca_cert (CaSigner *signer)
{
  return signer->issuer != NULL ? signer->issuer : signer->cert;
}

/* ca_serial_parse: hex (either case, 1..40 digits, not zero) → big-endian
 * magnitude without leading zero bytes. */
gboolean ca_serial_parse (const char *hex, guint8 out[CA_SERIAL_MAX_BYTES], guint *len, GError **error);

/* ca_serial_format: magnitude → upper-case hex, two digits per byte;
 * @out holds at least 2 * CA_SERIAL_MAX_BYTES + 1 bytes. */
void ca_serial_format (const guint8 *bytes, guint len, char *out);

GBytes *ca_bytes_from_openssl (unsigned char *der, int len);

G_END_DECLS

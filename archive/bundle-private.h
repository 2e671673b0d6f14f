/* bundle-private.h — archive/ internals shared between its source files. */
#pragma once

#include "bundle.h"
#include "tg-common.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Size caps for members read into memory. */
#define BUNDLE_MAX_SMALL        (64u * 1024)        /* bagit.txt, bag-info.txt */
#define BUNDLE_MAX_MANIFEST     (1u * 1024 * 1024)
#define BUNDLE_MAX_SIGNATURE    (1u * 1024 * 1024)  /* .p7s, .tsr, certs/ files */
#define BUNDLE_MAX_RECORD       (1u * 1024 * 1024)
#define BUNDLE_MAX_EVENTS       (64u * 1024 * 1024)
#define BUNDLE_MAX_EVENT_LINE   (64u * 1024)
#define BUNDLE_MAX_DOCUMENT     (64u * 1024 * 1024) /* each file under data/documents/ (streamed) */
#define BUNDLE_MAX_MEMBERS      4096
#define BUNDLE_MAX_TSA_REPLY    (256u * 1024)

#define BUNDLE_TAR_BLOCK 512
#define BUNDLE_GENTIME_SLACK 3600 /* genTime may differ from Sealing-Date by this much (s) */
#define BUNDLE_BAGIT_TXT "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_CRL, X509_CRL_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIO, BIO_free_all)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CMS_ContentInfo, CMS_ContentInfo_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TS_REQ, TS_REQ_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TS_RESP, TS_RESP_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TS_TST_INFO, TS_TST_INFO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TS_VERIFY_CTX, TS_VERIFY_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_INTEGER, ASN1_INTEGER_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_TIME, ASN1_TIME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ASN1_OBJECT, ASN1_OBJECT_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TS_RESP_CTX, TS_RESP_CTX_free)

typedef STACK_OF (X509) BundleCertStack;
void bundle_cert_stack_free (BundleCertStack *sk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleCertStack, bundle_cert_stack_free)
typedef STACK_OF (X509_CRL) BundleCrlStack;
void bundle_crl_stack_free (BundleCrlStack *sk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleCrlStack, bundle_crl_stack_free)

/* ---- pem.c: loading and writing PEM ---- */
EVP_PKEY *bundle_load_key (const char *path, GError **error);
X509 *bundle_load_cert (const char *path, GError **error);
/* All certificates in a PEM file (or memory); empty stacks are an error. */
BundleCertStack *bundle_load_certs (const char *path, GError **error);
BundleCertStack *bundle_parse_certs (const char *pem, gsize len, const char *what, GError **error);
BundleCrlStack *bundle_parse_crls (const char *pem, gsize len, const char *what, GError **error);
BundleCrlStack *bundle_load_crls (const char *path, GError **error);
/* Canonical PEM of a stack: each certificate re-encoded by PEM_write_bio_X509. */
GBytes *bundle_certs_to_pem (BundleCertStack *certs);
GBytes *bundle_crls_to_pem (BundleCrlStack *crls);
char *bundle_x509_subject (X509 *cert);
gboolean bundle_asn1_time_to_unix (const ASN1_TIME *t, gint64 *out);

/* ---- tar.c: the canonical member encoding shared by writer and reader ---- */
/* Header bytes (pax extended header, if any, plus ustar header) that the
 * sealer writes for a member; the reader compares them byte for byte. */
GBytes *bundle_tar_header (const char *name, gboolean is_dir, guint64 size, gint64 mtime,
                           GError **error);
#define BUNDLE_TAR_PAD(n) ((BUNDLE_TAR_BLOCK - ((n) % BUNDLE_TAR_BLOCK)) % BUNDLE_TAR_BLOCK)
/* Names: [A-Za-z0-9._/-], no empty, "." or ".." component, not absolute. */
gboolean bundle_name_is_safe (const char *name);

/* ---- tsa.c ---- */
/* Builds a request over SHA-256(@data) with a nonce and certReq. */
TS_REQ *bundle_ts_request_new (const guint8 *data, gsize len, guint64 nonce, const char *policy,
                               GError **error);
/* Refuses a reply Testigo's verifier would refuse: non-DER, status text or
 * failure info, unsigned attributes, no ESS v2, foreign or repeated certs. */
gboolean bundle_ts_response_check_strict (GBytes *response_der, BundleCertStack *tsa_certs, GError **error);
/* The token (a DER ContentInfo) from a TimeStampResp after checking status. */
GBytes *bundle_ts_response_token (GBytes *response_der, GError **error);

G_END_DECLS

G_BEGIN_DECLS

/* ---- chain.c: the events.jsonl hash chain checked against recording bytes ---- */
typedef struct _BundleChain BundleChain;
/* Parses and schema-checks every line of events.jsonl and collects its
 * segment entries, checking each chain link. */
BundleChain *bundle_chain_new (const char *events, gsize len, GError **error);
void bundle_chain_free (BundleChain *chain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleChain, bundle_chain_free)
/* Does any segment name this file (a name under data/)? */
gboolean bundle_chain_covers (BundleChain *chain, const char *file);
/* Stream the bytes of @file in order; FALSE when a segment hash differs. */
void bundle_chain_begin_file (BundleChain *chain, const char *file);
gboolean bundle_chain_feed (BundleChain *chain, const guint8 *data, gsize len, GError **error);
/* After the last byte: segments past the end are an error; returns the
 * number of bytes after the last chained segment in @unchained. */
gboolean bundle_chain_end_file (BundleChain *chain, guint64 size, guint64 *unchained,
                                GError **error);
/* Files named by segments that were never streamed. */
gboolean bundle_chain_check_all_seen (BundleChain *chain, GError **error);
/* The last session-end time in the log, 0 if none. */
gint64 bundle_chain_session_end (BundleChain *chain);

/* Document member names (under data/documents/); recording and still names:
 * bundle.h. */
gboolean bundle_document_name_ok (const char *name);

/* ---- record.c: what the schema-checked record says about the payload ---- */
typedef struct {
  gint64 version;          /* /version */
  char *channel;           /* /case/channel */
  GHashTable *documents;   /* /documents: name -> lower-case hex SHA-256 */
  char *email_sha256;      /* /case/email/message_sha256, or NULL */
} BundleRecordInfo;
/* @record must already have passed tg_schema_check_record(); fails on a
 * document listed twice. */
BundleRecordInfo *bundle_record_info_new (JsonNode *record, GError **error);
void bundle_record_info_free (BundleRecordInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleRecordInfo, bundle_record_info_free)
/* TRUE when the payload must hold a recording (a teleconference, or any
 * version 1 record); otherwise it must hold a document. */
gboolean bundle_record_needs_recording (const BundleRecordInfo *info);
/* FALSE when a version 2 record's case.email.message_sha256 is the SHA-256
 * of none of its documents (the signed message must be one of them). */
gboolean bundle_record_email_listed (const BundleRecordInfo *info);

G_END_DECLS

G_BEGIN_DECLS

/* ---- worker.c: a ring of read buffers and the chain hashed on a worker ---- */
typedef struct _BundleRing BundleRing;
BundleRing *bundle_ring_new (guint n, gsize size);
void bundle_ring_free (BundleRing *ring);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleRing, bundle_ring_free)
/* The next buffer, once the worker no longer reads it. */
guint8 *bundle_ring_next (BundleRing *ring, gsize *size);

typedef struct _BundleChainWorker BundleChainWorker;
BundleChainWorker *bundle_chain_worker_new (BundleChain *chain, BundleRing *ring);
void bundle_chain_worker_begin (BundleChainWorker *w, const char *file);
/* Data inside a ring buffer is used in place; anything else is copied. */
void bundle_chain_worker_feed (BundleChainWorker *w, const guint8 *data, gsize len);
gboolean bundle_chain_worker_end (BundleChainWorker *w, guint64 size, guint64 *unchained, GError **error);
void bundle_chain_worker_free (BundleChainWorker *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleChainWorker, bundle_chain_worker_free)

G_END_DECLS

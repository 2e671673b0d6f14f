/* bundle.h — Testigo evidence bundles: development PKI, sealing, strict
 * verification, inspection, and the RFC 3161 time-stamp authority.
 *
 * The format is specified in docs/bundle-format.md. Every symbol carries the
 * bundle_ prefix; errors are in the TG_ERROR domain (common/tg-common.h).
 */
#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

/* ------------------------------------------------------------------ keys */

typedef struct {
  /* Validity of the RA sealing certificate; 0 means the default (now - 1 h
   * to now + 2 years). Used by tests for "expired today, valid at genTime". */
  gint64 ra_not_before;
  gint64 ra_not_after;
  int key_bits; /* RSA modulus size; 0 means 3072 */
} BundleKeysOptions;

/**
 * bundle_keys_init:
 * Creates the development PKI in @dir: root.pem + root.key (one root for the
 * RA and the TSA), ra.pem + ra.key (digitalSignature, nonRepudiation),
 * tsa.pem + tsa.key (critical timeStamping EKU), crl.pem (the root's CRL).
 * Keys are written mode 0600. Refuses to overwrite any of them.
 */
gboolean bundle_keys_init (const char *dir, const BundleKeysOptions *options, GError **error);

/* ------------------------------------------------------------------ seal */

typedef struct {
  const char *name; /* member name under data/ (data/stills/ for stills, data/documents/ for documents) */
  const char *path; /* file to read */
} BundleInput;

typedef struct {
  /* Sealing identity: either keys_dir (development PKI, built-in TSA), or
   * key_path + cert_path (+ chain_path) with tsa_url. */
  const char *keys_dir;
  const char *key_path;
  const char *cert_path;
  const char *chain_path;    /* intermediates, PEM; optional */
  const char *crl_path;      /* revocation data to capture, PEM CRLs; optional */
  const char *tsa_url;       /* external RFC 3161 TSA over HTTP; optional */
  const char *tsa_policy;    /* required TSA policy OID; optional */
  const char *tsa_cert_path; /* the TSA's certificate (+ intermediates), PEM; needed with tsa_url */
  const char *tsa_ca_path;   /* roots to check the TSA reply against; default keys_dir/root.pem */

  const char *record_path;
  const char *events_path;   /* optional */
  GArray *recordings;        /* BundleInput; at least one for a teleconference (and any version 1 record) */
  GArray *stills;            /* BundleInput, optional */
  /* BundleInput, stored as data/documents/NAME: the signed e-mail, the
   * officer's attestation and scans, the portal request, the sweep of an
   * automatic revocation. Names: [A-Za-z0-9][A-Za-z0-9._-]*, at most 64
   * bytes; each file at most 64 MiB. The record's "documents" must list
   * exactly these files with their SHA-256 (checked while sealing). At least
   * one for a version 2 record on any channel but the teleconference, which
   * may then have no recording. NULL or empty: none. */
  GArray *documents;

  const char *out_path;
  gint64 sealing_time;       /* unix seconds; <= 0 means now (SOURCE_DATE_EPOCH honoured) */
} BundleSealOptions;

/**
 * bundle_seal:
 * Writes the bundle to @out_path atomically (.partial, fsync, rename, fsync
 * of the directory) in one streaming pass over the inputs. With the built-in
 * TSA and a fixed sealing time the output is byte-for-byte reproducible.
 * Refuses what bundle_verify() would refuse about the payload: a record that
 * fails the schema, no recording for a teleconference (or a version 1
 * record), no document for the other channels, documents that differ from
 * the record's "documents" list (names or SHA-256).
 */
gboolean bundle_seal (const BundleSealOptions *options, GError **error);

/* Names bundle_seal () accepts for a recording (recording[-N].mkv|webm, one
 * file per part, or recording[-N]-PARTY-KIND.mkv|webm, one per track) and
 * for a still (*.png of [A-Za-z0-9._-], at most 64 bytes). */
gboolean bundle_recording_name_ok (const char *name);
gboolean bundle_still_name_ok (const char *name);

/* ---------------------------------------------------------------- verify */

typedef enum {
  BUNDLE_TOTAL_PASSED = 0,
  BUNDLE_TOTAL_FAILED = 1,
  BUNDLE_INDETERMINATE = 2,
} BundleIndication;

typedef struct {
  const char *ca_file;       /* trust anchors for the sealing signature (required) */
  const char *tsa_ca_file;   /* trust anchors for the time-stamp; default ca_file */
  const char *for_case;      /* binding checks; all three or none */
  const char *for_action;
  const char *for_serial;
  const char *tsa_policy;    /* require this TSA policy OID; optional */
  gboolean quiet_progress;
} BundleVerifyOptions;

typedef struct {
  BundleIndication indication;
  char *sub_indication;      /* ETSI TS 119 102-1 sub-indication; NULL when passed */
  char *member;              /* the failing member, when one is to blame */
  char *message;             /* human-readable reason */
  GPtrArray *warnings;       /* char * */
  /* what was found (may be NULL on early failures) */
  char *case_id, *action, *serial, *officer, *outcome;
  char *channel;             /* record case.channel: teleconference, in-person, signed-email, portal, system */
  char *signer;              /* subject of the sealing certificate */
  char *tsa;                 /* subject of the TSA certificate */
  char *tsa_policy;
  gint64 gen_time;           /* 0 when unknown */
  gint64 sealing_time;
  guint64 bytes;
  guint n_members;
} BundleReport;

void bundle_report_free (BundleReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleReport, bundle_report_free)

const char *bundle_indication_to_string (BundleIndication indication);

/**
 * bundle_verify:
 * One strict pass over the tar at @path, without extracting.
 * Returns: (transfer full): a report, or NULL with @error set when the bundle
 * or the trust anchors cannot be read at all (I/O, usage).
 */
BundleReport *bundle_verify (const char *path, const BundleVerifyOptions *options, GError **error);

/** bundle_report_to_json: (transfer full) the report as a JSON object text. */
char *bundle_report_to_json (const BundleReport *report);

/**
 * bundle_inspect:
 * Prints members, sizes, the record summary, signer and genTime to @out
 * without judging trust (use bundle_verify for that).
 */
gboolean bundle_inspect (const char *path, FILE *out, GError **error);

/* ------------------------------------------------------------------- TSA */

typedef struct _BundleTsa BundleTsa;

/** bundle_tsa_new: the built-in TSA with tsa.key/tsa.pem from @keys_dir. */
BundleTsa *bundle_tsa_new (const char *keys_dir, GError **error);
void bundle_tsa_free (BundleTsa *tsa);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BundleTsa, bundle_tsa_free)

/**
 * bundle_tsa_respond:
 * Answers a DER TimeStampReq with a DER TimeStampResp (granted or rejection)
 * at @gen_time (unix seconds; <= 0 means now). NULL only on internal errors.
 */
GBytes *bundle_tsa_respond (BundleTsa *tsa, GBytes *request, gint64 gen_time, GError **error);

/** bundle_tsa_http_post: POSTs a TimeStampReq to @url; the reply is size-capped. */
GBytes *bundle_tsa_http_post (const char *url, GBytes *request, GError **error);

G_END_DECLS

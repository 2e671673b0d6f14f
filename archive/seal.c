/* seal.c — `testigo seal`: writes the bundle of docs/bundle-format.md in one
 * streaming pass: data members are hashed as they are copied into the tar,
 * the manifests follow them (byte order puts them after data/), then the
 * detached CMS signature over the tag manifest and its RFC 3161 token. */
#define _GNU_SOURCE /* sync_file_range */
#include "config.h"
#include "bundle-private.h"
#include "tg-schema.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK (1u << 20)

typedef enum {
  SRC_DIR,
  SRC_BYTES,   /* contents known before writing starts */
  SRC_FILE,    /* streamed from a path */
  SRC_LATE,    /* produced when reached: manifests and signatures */
} SourceKind;

typedef struct {
  char *name;        /* member name, "<case>/..." */
  SourceKind kind;
  GBytes *bytes;     /* SRC_BYTES */
  char *path;        /* SRC_FILE */
  int fd;
  guint64 size;
  gboolean chained;  /* a recording the events chain covers */
  gboolean tag;      /* listed in the tag manifest */
  gboolean payload;  /* listed in the manifest */
  char *sha256;      /* hex, once written */
  char *expect_sha256; /* a document: the SHA-256 the record lists for it */
} Member;

typedef struct {
  const BundleSealOptions *opt;
  char *case_id;
  gint64 sealing_time;
  GPtrArray *members;       /* Member* */
  BundleChain *chain;
  EVP_PKEY *key;
  X509 *cert;
  BundleCertStack *chain_certs;  /* intermediates of the sealing certificate */
  BundleCertStack *tsa_certs;    /* TSA certificate + intermediates */
  BundleCertStack *tsa_roots;
  BundleTsa *tsa;                /* built-in, or NULL for --tsa-url */
  guint64 nonce;
  GBytes *p7s, *tsr;
  TgProgress *progress;
  guint64 progress_total, progress_done;
  BundleRing *ring;
  BundleChainWorker *worker;
} Sealer;

static void
member_free (gpointer p)
{
  Member *m = p;

  if (m->fd >= 0)
    close (m->fd);
  g_clear_pointer (&m->bytes, g_bytes_unref);
  g_free (m->name);
  g_free (m->path);
  g_free (m->sha256);
  g_free (m->expect_sha256);
  g_free (m);
}

static Member *
add_member (Sealer *s, const char *rel, SourceKind kind)
{
  Member *m = g_new0 (Member, 1);

  m->name = g_strconcat (s->case_id, "/", rel, NULL);
  m->kind = kind;
  m->fd = -1;
  g_ptr_array_add (s->members, m);
  return m;
}

static Member *
add_bytes (Sealer *s, const char *rel, GBytes *bytes, gboolean tag)
{
  Member *m = add_member (s, rel, SRC_BYTES);

  m->bytes = bytes;
  m->size = g_bytes_get_size (bytes);
  m->tag = tag;
  return m;
}

static gboolean
add_file (Sealer *s, const char *rel, const char *path, GError **error)
{
  Member *m = add_member (s, rel, SRC_FILE);
  struct stat st;

  m->path = g_strdup (path);
  m->payload = TRUE;
  m->fd = open (path, O_RDONLY | O_CLOEXEC);
  if (m->fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return FALSE;
    }
  if (fstat (m->fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s is not a regular file", path);
      return FALSE;
    }
  m->size = (guint64) st.st_size;
  (void) posix_fadvise (m->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return TRUE;
}

static int
member_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(Member *const *) a)->name, (*(Member *const *) b)->name);
}

static const char *
json_string_at (JsonNode *root, const char *a, const char *b)
{
  JsonObject *o = json_node_get_object (root);

  if (o == NULL || !json_object_has_member (o, a))
    return NULL;
  o = json_object_get_object_member (o, a);
  if (o == NULL || !json_object_has_member (o, b))
    return NULL;
  return json_object_get_string_member (o, b);
}

static gboolean
value_ok (const char *v)
{
  if (v == NULL || *v == '\0' || strlen (v) > 256 || !g_utf8_validate (v, -1, NULL))
    return FALSE;
  for (const char *p = v; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

/* The bag-info.txt text; every value comes from the schema-checked record. */
static GBytes *
make_bag_info (Sealer *s, JsonNode *record, GError **error)
{
  GString *t = g_string_new (NULL);
  guint64 oxum_bytes = 0, oxum_count = 0;
  g_autofree char *date = tg_time_format (s->sealing_time);
  const char *fields[][3] = {
    { "Case-ID", "case", "id" },
    { "Action", "case", "action" },
    { "Certificate-Serial", "certificate", "serial" },
    { "Officer", "officer", "id" },
    { "Outcome", "outcome", "result" },
    { "Session-End", "session", "ended_at" },
  };

  for (guint i = 0; i < s->members->len; i++)
    {
      Member *m = g_ptr_array_index (s->members, i);
      if (m->payload)
        {
          oxum_bytes += m->size;
          oxum_count++;
        }
    }
  g_string_append_printf (t, "Bagging-Date: %.10s\n", date);
  g_string_append_printf (t, "Payload-Oxum: %" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT "\n",
                          oxum_bytes, oxum_count);
  g_string_append (t, "Bag-Software-Agent: testigo " TESTIGO_VERSION "\n");
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      const char *v = json_string_at (record, fields[i][1], fields[i][2]);
      if (v == NULL)
        continue;
      if (!value_ok (v))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "record field /%s/%s cannot go in bag-info.txt",
                       fields[i][1], fields[i][2]);
          g_string_free (t, TRUE);
          return NULL;
        }
      g_string_append_printf (t, "%s: %s\n", fields[i][0], v);
    }
  g_string_append_printf (t, "Sealing-Date: %s\n", date);
  g_string_append_printf (t, "Timestamp-Nonce: %016" G_GINT64_MODIFIER "x\n", s->nonce);
  return g_string_free_to_bytes (t);
}

static void
replace_str (char **slot, const char *value)
{
  g_free (*slot);
  *slot = g_strdup (value);
}

static gboolean
load_identity (Sealer *s, GError **error)
{
  const BundleSealOptions *o = s->opt;
  g_autofree char *key_path = NULL, *cert_path = NULL, *crl_path = NULL, *root_path = NULL;
  g_autofree char *tsa_cert_path = NULL;
  g_autoptr (BundleCertStack) certs = NULL;

  if (o->keys_dir != NULL)
    {
      key_path = g_build_filename (o->keys_dir, "ra.key", NULL);
      cert_path = g_build_filename (o->keys_dir, "ra.pem", NULL);
      crl_path = g_build_filename (o->keys_dir, "crl.pem", NULL);
      root_path = g_build_filename (o->keys_dir, "root.pem", NULL);
      tsa_cert_path = g_build_filename (o->keys_dir, "tsa.pem", NULL);
    }
  if (o->key_path)
    replace_str (&key_path, o->key_path);
  if (o->cert_path)
    replace_str (&cert_path, o->cert_path);
  if (o->crl_path)
    replace_str (&crl_path, o->crl_path);
  if (o->tsa_ca_path)
    replace_str (&root_path, o->tsa_ca_path);
  if (o->tsa_cert_path)
    replace_str (&tsa_cert_path, o->tsa_cert_path);
  if (key_path == NULL || cert_path == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a sealing key is needed: --keys DIR or --key and --cert");
      return FALSE;
    }
  if (o->tsa_url == NULL && o->keys_dir == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a time-stamp authority is needed: --keys DIR (built-in) or --tsa-url");
      return FALSE;
    }
  if (o->tsa_url != NULL && (tsa_cert_path == NULL || root_path == NULL))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "--tsa-url needs --tsa-cert (the TSA's certificate chain) and --tsa-ca-file");
      return FALSE;
    }
  if ((s->key = bundle_load_key (key_path, error)) == NULL
      || (certs = bundle_load_certs (cert_path, error)) == NULL)
    return FALSE;
  s->cert = X509_dup (sk_X509_value (certs, 0));
  if (X509_check_private_key (s->cert, s->key) != 1)
    {
      tg_set_error_openssl (error, "%s does not match %s", key_path, cert_path);
      return FALSE;
    }
  {
    /* A seal by a certificate that is not valid when sealing never verifies. */
    time_t t = (time_t) s->sealing_time;
    if (X509_cmp_time (X509_get0_notBefore (s->cert), &t) >= 0 || X509_cmp_time (X509_get0_notAfter (s->cert), &t) <= 0)
      {
        g_autofree char *when = tg_time_format (s->sealing_time);
        g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the sealing certificate %s is not valid at the sealing time %s",
                     cert_path, when);
        return FALSE;
      }
  }
  s->chain_certs = sk_X509_new_null ();
  for (int i = 1; i < sk_X509_num (certs); i++)
    sk_X509_push (s->chain_certs, X509_dup (sk_X509_value (certs, i)));
  if (o->chain_path)
    {
      g_autoptr (BundleCertStack) more = bundle_load_certs (o->chain_path, error);
      if (more == NULL)
        return FALSE;
      while (sk_X509_num (more) > 0)
        sk_X509_push (s->chain_certs, sk_X509_shift (more));
    }
  if ((s->tsa_certs = bundle_load_certs (tsa_cert_path, error)) == NULL
      || (s->tsa_roots = bundle_load_certs (root_path, error)) == NULL)
    return FALSE;
  if (o->tsa_url == NULL && (s->tsa = bundle_tsa_new (o->keys_dir, error)) == NULL)
    return FALSE;

  /* Revocation data captured at sealing. */
  if (crl_path != NULL && (o->crl_path != NULL || g_file_test (crl_path, G_FILE_TEST_EXISTS)))
    {
      g_autoptr (BundleCrlStack) crls = bundle_load_crls (crl_path, error);
      if (crls == NULL)
        return FALSE;
      for (int i = 0; i < sk_X509_CRL_num (crls); i++)
        {
          X509_REVOKED *rev = NULL;
          X509_CRL *crl = sk_X509_CRL_value (crls, i);
          if (X509_NAME_cmp (X509_CRL_get_issuer (crl), X509_get_issuer_name (s->cert)) == 0
              && X509_CRL_get0_by_cert (crl, &rev, s->cert) == 1)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the sealing certificate is revoked in %s", crl_path);
              return FALSE;
            }
        }
      add_bytes (s, "certs/revocation.pem", bundle_crls_to_pem (crls), TRUE);
    }
  {
    g_autoptr (BundleCertStack) sealing = sk_X509_new_null ();
    sk_X509_push (sealing, X509_dup (s->cert));
    for (int i = 0; i < sk_X509_num (s->chain_certs); i++)
      sk_X509_push (sealing, X509_dup (sk_X509_value (s->chain_certs, i)));
    add_bytes (s, "certs/sealing.pem", bundle_certs_to_pem (sealing), TRUE);
  }
  add_bytes (s, "certs/tsa.pem", bundle_certs_to_pem (s->tsa_certs), TRUE);
  return TRUE;
}

/* ---- writing ---- */

typedef struct {
  struct archive *a;
  const char *out_path;
  int fd;              /* the .partial file libarchive writes to */
  off_t synced;        /* writeback started up to here */
} Writer;

#define WRITEBACK_WINDOW (8 << 20)

/* Starts writeback of what was written since the last call, every 8 MiB, so
 * the final fsync does not have to write the whole bundle at once (measured:
 * fsync of 1 GiB 0.3 s -> 2 ms, seal 0.2 s faster). The fsync at commit stays
 * the durability point; errors here are only a lost optimisation. */
static void
start_writeback (Writer *w)
{
  off_t pos = lseek (w->fd, 0, SEEK_CUR);

  if (pos > 0 && pos - w->synced >= WRITEBACK_WINDOW)
    {
      (void) sync_file_range (w->fd, w->synced, pos - w->synced, SYNC_FILE_RANGE_WRITE);
      w->synced = pos;
    }
}

static gboolean
write_header (Sealer *s, Writer *w, Member *m, GError **error)
{
  struct archive_entry *e = archive_entry_new ();
  gboolean is_dir = m->kind == SRC_DIR;
  int r;

  archive_entry_set_pathname (e, m->name);
  archive_entry_set_filetype (e, is_dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm (e, is_dir ? 0555 : 0444);
  archive_entry_set_size (e, is_dir ? 0 : (la_int64_t) m->size);
  archive_entry_set_mtime (e, (time_t) s->sealing_time, 0);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  archive_entry_set_uname (e, "root");
  archive_entry_set_gname (e, "root");
  r = archive_write_header (w->a, e);
  archive_entry_free (e);
  if (r != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, archive_errno (w->a) == ENOSPC ? TG_ERROR_NOSPACE : TG_ERROR_IO,
                   "cannot write %s to %s: %s", m->name, w->out_path, archive_error_string (w->a));
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_data (Writer *w, Member *m, const void *buf, gsize len, GError **error)
{
  la_ssize_t n = archive_write_data (w->a, buf, len);

  if (n < 0 || (gsize) n != len)
    {
      g_set_error (error, TG_ERROR, archive_errno (w->a) == ENOSPC ? TG_ERROR_NOSPACE : TG_ERROR_IO,
                   "cannot write %s to %s: %s", m->name, w->out_path,
                   archive_error_string (w->a) ? archive_error_string (w->a) : g_strerror (archive_errno (w->a)));
      return FALSE;
    }
  return TRUE;
}

static gboolean
stream_file (Sealer *s, Writer *w, Member *m, GError **error)
{
  guint8 *buf = NULL;
  gsize buf_size;
  g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
  guint8 digest[32];
  guint64 left = m->size;
  const char *rel = m->name + strlen (s->case_id) + 1 + strlen ("data/");

  EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
  if (m->chained)
    {
      if (s->worker == NULL)
        s->worker = bundle_chain_worker_new (s->chain, s->ring);
      bundle_chain_worker_begin (s->worker, rel);
    }
  while (left > 0)
    {
      ssize_t n;
      buf = bundle_ring_next (s->ring, &buf_size);
      n = read (m->fd, buf, (size_t) MIN ((guint64) buf_size, left));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          tg_set_error_errno (error, errno, "cannot read %s", m->path);
          return FALSE;
        }
      if (n == 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_IO, "%s shrank while being sealed", m->path);
          return FALSE;
        }
      if (m->chained)
        bundle_chain_worker_feed (s->worker, buf, (gsize) n);
      EVP_DigestUpdate (md, buf, (size_t) n);
      if (!write_data (w, m, buf, (gsize) n, error))
        {
          if (m->chained)
            bundle_chain_worker_end (s->worker, m->size - left, NULL, NULL);
          return FALSE;
        }
      start_writeback (w);
      left -= (guint64) n;
      s->progress_done += (guint64) n;
      tg_progress_update (s->progress, s->progress_done);
    }
  if (m->chained && !bundle_chain_worker_end (s->worker, m->size, NULL, error))
    {
      g_prefix_error (error, "%s: ", m->path);
      return FALSE;
    }
  {
    guint8 extra;
    if (read (m->fd, &extra, 1) != 0)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_IO, "%s grew while being sealed", m->path);
        return FALSE;
      }
  }
  EVP_DigestFinal_ex (md, digest, NULL);
  m->sha256 = tg_hex (digest, sizeof digest);
  return TRUE;
}

/* "<hex>  <path relative to the bag>\n" for each member with @flag set. */
static GBytes *
make_manifest (Sealer *s, gboolean tag)
{
  GString *t = g_string_new (NULL);
  gsize prefix = strlen (s->case_id) + 1;

  for (guint i = 0; i < s->members->len; i++)
    {
      Member *m = g_ptr_array_index (s->members, i);
      if ((tag ? m->tag : m->payload) && m->sha256 != NULL)
        g_string_append_printf (t, "%s  %s\n", m->sha256, m->name + prefix);
    }
  return g_string_free_to_bytes (t);
}

static gboolean
sign_tag_manifest (Sealer *s, GBytes *tagmanifest, GError **error)
{
  g_autoptr (BIO) in = BIO_new_mem_buf (g_bytes_get_data (tagmanifest, NULL),
                                        (int) g_bytes_get_size (tagmanifest));
  g_autoptr (CMS_ContentInfo) cms = CMS_sign (NULL, NULL, NULL, NULL,
                                              CMS_PARTIAL | CMS_DETACHED | CMS_BINARY);
  g_autoptr (ASN1_TIME) signing_time = ASN1_TIME_set (NULL, (time_t) s->sealing_time);
  g_autoptr (TS_REQ) req = NULL;
  g_autoptr (GBytes) req_der = NULL, resp_der = NULL, token = NULL;
  g_autoptr (TS_VERIFY_CTX) vctx = NULL;
  g_autoptr (TS_RESP) resp = NULL;
  CMS_SignerInfo *si;
  ASN1_OCTET_STRING *sig;
  guint8 *der = NULL;
  int der_len;
  const guint8 *p;

  if (cms == NULL)
    goto fail;
  si = CMS_add1_signer (cms, s->cert, s->key, EVP_sha256 (),
                        CMS_PARTIAL | CMS_BINARY | CMS_CADES | CMS_NOSMIMECAP);
  if (si == NULL
      || !CMS_signed_add1_attr_by_NID (si, NID_pkcs9_signingTime, signing_time->type, signing_time, -1))
    goto fail;
  for (int i = 0; i < sk_X509_num (s->chain_certs); i++)
    if (!CMS_add1_cert (cms, sk_X509_value (s->chain_certs, i)))
      goto fail;
  if (!CMS_final (cms, in, NULL, CMS_BINARY | CMS_DETACHED))
    goto fail;

  /* RFC 3161 token over the signature value (CAdES-B-T). */
  sig = CMS_SignerInfo_get0_signature (si);
  req = bundle_ts_request_new (ASN1_STRING_get0_data (sig), (gsize) ASN1_STRING_length (sig),
                               s->nonce, s->opt->tsa_policy, error);
  if (req == NULL)
    return FALSE;
  der_len = i2d_TS_REQ (req, &der);
  req_der = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  der = NULL;
  if (s->tsa != NULL)
    resp_der = bundle_tsa_respond (s->tsa, req_der, s->sealing_time, error);
  else
    resp_der = bundle_tsa_http_post (s->opt->tsa_url, req_der, error);
  if (resp_der == NULL)
    return FALSE;

  /* Check the reply before trusting it: status, imprint, nonce, policy,
   * signer chain to the TSA roots, and a signer from --tsa-cert. */
  p = g_bytes_get_data (resp_der, NULL);
  resp = d2i_TS_RESP (NULL, &p, (long) g_bytes_get_size (resp_der));
  if (resp == NULL)
    {
      tg_set_error_openssl (error, "the TSA reply is not a TimeStampResp");
      return FALSE;
    }
  vctx = TS_REQ_to_TS_VERIFY_CTX (req, NULL);
  {
    X509_STORE *store = X509_STORE_new ();
    for (int i = 0; i < sk_X509_num (s->tsa_roots); i++)
      X509_STORE_add_cert (store, sk_X509_value (s->tsa_roots, i));
    /* The built-in TSA signs at the sealing time; an external TSA's chain is
     * judged now, by its own clock. */
    if (s->tsa != NULL)
      X509_VERIFY_PARAM_set_time (X509_STORE_get0_param (store), (time_t) s->sealing_time);
    TS_VERIFY_CTX_set_store (vctx, store);
    TS_VERIFY_CTX_set_certs (vctx, X509_chain_up_ref (s->tsa_certs));
    TS_VERIFY_CTX_add_flags (vctx, TS_VFY_SIGNER | TS_VFY_SIGNATURE);
  }
  if (TS_RESP_verify_response (vctx, resp) != 1)
    {
      tg_set_error_openssl (error, "the time-stamp reply does not verify");
      return FALSE;
    }
  if (!bundle_ts_response_check_strict (resp_der, s->tsa_certs, error))
    return FALSE;
  {
    gint64 gen_time = 0;
    TS_TST_INFO *tst = TS_RESP_get_tst_info (resp);
    if (tst == NULL || !bundle_asn1_time_to_unix (TS_TST_INFO_get_time (tst), &gen_time)
        || gen_time < s->sealing_time - BUNDLE_GENTIME_SLACK || gen_time > s->sealing_time + BUNDLE_GENTIME_SLACK)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO,
                     "the TSA's genTime is more than %d s away from the sealing time; check both clocks",
                     BUNDLE_GENTIME_SLACK);
        return FALSE;
      }
  }
  token = bundle_ts_response_token (resp_der, error);
  if (token == NULL)
    return FALSE;
  if (!CMS_unsigned_add1_attr_by_NID (si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE,
                                      g_bytes_get_data (token, NULL), (int) g_bytes_get_size (token)))
    goto fail;
  der_len = i2d_CMS_ContentInfo (cms, &der);
  if (der_len <= 0)
    goto fail;
  s->p7s = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  s->tsr = g_steal_pointer (&resp_der);
  return TRUE;

fail:
  tg_set_error_openssl (error, "cannot sign the tag manifest");
  return FALSE;
}

static gboolean
write_member (Sealer *s, Writer *w, Member *m, GError **error)
{
  const char *rel = m->name + strlen (s->case_id) + 1;

  if (m->kind == SRC_LATE)
    {
      if (strcmp (rel, "manifest-sha256.txt") == 0)
        m->bytes = make_manifest (s, FALSE);
      else if (strcmp (rel, "tagmanifest-sha256.txt") == 0)
        {
          m->bytes = make_manifest (s, TRUE);
          if (!sign_tag_manifest (s, m->bytes, error))
            return FALSE;
        }
      else if (strcmp (rel, "tagmanifest-sha256.txt.p7s") == 0)
        m->bytes = g_bytes_ref (s->p7s);
      else
        m->bytes = g_bytes_ref (s->tsr);
      m->size = g_bytes_get_size (m->bytes);
      m->kind = SRC_BYTES;
    }
  if (!write_header (s, w, m, error))
    return FALSE;
  if (m->kind == SRC_FILE)
    {
      if (!stream_file (s, w, m, error))
        return FALSE;
      if (m->expect_sha256 != NULL && strcmp (m->sha256, m->expect_sha256) != 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "document %s (%s) has SHA-256 %s; the record lists %s", rel + strlen ("data/documents/"),
                       m->path, m->sha256, m->expect_sha256);
          return FALSE;
        }
      return TRUE;
    }
  if (m->kind == SRC_BYTES)
    {
      gsize len;
      const void *data = g_bytes_get_data (m->bytes, &len);
      m->sha256 = tg_sha256_hex (data, len);
      return len == 0 || write_data (w, m, data, len, error);
    }
  return TRUE;
}

static void
sealer_clear (Sealer *s)
{
  g_clear_pointer (&s->members, g_ptr_array_unref);
  g_clear_pointer (&s->chain, bundle_chain_free);
  g_clear_pointer (&s->key, EVP_PKEY_free);
  g_clear_pointer (&s->cert, X509_free);
  g_clear_pointer (&s->chain_certs, bundle_cert_stack_free);
  g_clear_pointer (&s->tsa_certs, bundle_cert_stack_free);
  g_clear_pointer (&s->tsa_roots, bundle_cert_stack_free);
  g_clear_pointer (&s->tsa, bundle_tsa_free);
  g_clear_pointer (&s->p7s, g_bytes_unref);
  g_clear_pointer (&s->tsr, g_bytes_unref);
  g_clear_pointer (&s->progress, tg_progress_free);
  g_clear_pointer (&s->worker, bundle_chain_worker_free);
  g_clear_pointer (&s->ring, bundle_ring_free);
  g_free (s->case_id);
}

static gboolean
check_names (const BundleSealOptions *o, GError **error)
{
  g_autoptr (GHashTable) names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; o->recordings && i < o->recordings->len; i++)
    {
      BundleInput *in = &g_array_index (o->recordings, BundleInput, i);
      if (!bundle_recording_name_ok (in->name))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "recording name %s is not recording[-N][-PARTY-KIND].mkv|webm "
                       "(PARTY signatory or officer, KIND audio or video)", in->name);
          return FALSE;
        }
      if (!g_hash_table_add (names, g_strdup (in->name)))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "recording %s given twice", in->name);
          return FALSE;
        }
    }
  for (guint i = 0; o->stills && i < o->stills->len; i++)
    {
      BundleInput *in = &g_array_index (o->stills, BundleInput, i);
      g_autofree char *key = g_strconcat ("stills/", in->name, NULL);
      if (!bundle_still_name_ok (in->name))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "still name %s must be letters, digits, '.', '_' or '-' ending in .png", in->name);
          return FALSE;
        }
      if (g_hash_table_contains (names, key))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "still %s given twice", in->name);
          return FALSE;
        }
      g_hash_table_add (names, g_steal_pointer (&key));
    }
  for (guint i = 0; o->documents && i < o->documents->len; i++)
    {
      BundleInput *in = &g_array_index (o->documents, BundleInput, i);
      g_autofree char *key = g_strconcat ("documents/", in->name, NULL);
      if (in->name == NULL || in->path == NULL || !bundle_document_name_ok (in->name))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "document name %s must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                       in->name ? in->name : "(none)");
          return FALSE;
        }
      if (g_hash_table_contains (names, key))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "document %s given twice", in->name);
          return FALSE;
        }
      g_hash_table_add (names, g_steal_pointer (&key));
    }
  return TRUE;
}

/* The payload the record's channel calls for, and the documents it lists. */
static gboolean
check_payload (const BundleSealOptions *o, BundleRecordInfo *info, GError **error)
{
  guint n_documents = o->documents ? o->documents->len : 0;

  if (bundle_record_needs_recording (info) && (o->recordings == NULL || o->recordings->len == 0))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "at least one --recording is needed (a %s record%s)",
                   info->channel ? info->channel : "(no channel)", info->version < 2 ? " of version 1" : "");
      return FALSE;
    }
  if (!bundle_record_needs_recording (info) && n_documents == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "at least one --document is needed (a %s record)",
                   info->channel ? info->channel : "(no channel)");
      return FALSE;
    }
  for (guint i = 0; i < n_documents; i++)
    {
      BundleInput *in = &g_array_index (o->documents, BundleInput, i);
      if (!g_hash_table_contains (info->documents, in->name))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "document %s is not listed in the record's documents",
                       in->name);
          return FALSE;
        }
    }
  if (g_hash_table_size (info->documents) != n_documents)
    {
      GHashTableIter it;
      gpointer name;
      g_hash_table_iter_init (&it, info->documents);
      while (g_hash_table_iter_next (&it, &name, NULL))
        {
          gboolean given = FALSE;
          for (guint i = 0; !given && i < n_documents; i++)
            given = strcmp (g_array_index (o->documents, BundleInput, i).name, name) == 0;
          if (!given)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the record lists document %s, which was not given",
                           (char *) name);
              return FALSE;
            }
        }
    }
  if (!bundle_record_email_listed (info))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "case.email.message_sha256 is the SHA-256 of none of the record's documents "
                   "(the signed message must be one of them)");
      return FALSE;
    }
  return TRUE;
}

gboolean
bundle_seal (const BundleSealOptions *o, GError **error)
{
  Sealer s = { 0 };
  g_autofree char *record_text = NULL, *events_text = NULL;
  gsize record_len = 0, events_len = 0;
  g_autoptr (JsonNode) record = NULL;
  g_autoptr (BundleRecordInfo) info = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (TgAtomicFile) out = NULL;
  const char *env;
  Writer w = { NULL, o->out_path, -1, 0 };
  gboolean ok = FALSE;
  static const char *const late[] = {
    "manifest-sha256.txt", "tagmanifest-sha256.txt", "tagmanifest-sha256.txt.p7s",
    "tagmanifest-sha256.txt.p7s.tsr",
  };

  s.opt = o;
  s.members = g_ptr_array_new_with_free_func (member_free);
  if (o->record_path == NULL || o->out_path == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "--record and --out are required");
      goto out;
    }
  if (!check_names (o, error))
    goto out;

  /* Sealing time: explicit, SOURCE_DATE_EPOCH, or now. */
  s.sealing_time = o->sealing_time;
  if (s.sealing_time <= 0 && (env = g_getenv ("SOURCE_DATE_EPOCH")) != NULL)
    {
      guint64 v;
      if (!g_ascii_string_to_unsigned (env, 10, 1, G_MAXINT64, &v, NULL))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "SOURCE_DATE_EPOCH=%s is not a positive integer", env);
          goto out;
        }
      s.sealing_time = (gint64) v;
    }
  if (s.sealing_time <= 0)
    s.sealing_time = g_get_real_time () / G_USEC_PER_SEC;

  /* The record: strict JSON, closed schema. */
  if (!tg_file_get_contents_capped (o->record_path, BUNDLE_MAX_RECORD, &record_text, &record_len, error))
    goto out;
  record = tg_json_parse_strict (record_text, record_len, BUNDLE_MAX_RECORD, &local);
  if (record == NULL || !tg_schema_check_record (record, &local))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s fails the validation-record schema: %s",
                   o->record_path, local->message);
      goto out;
    }
  info = bundle_record_info_new (record, error);
  if (info == NULL || !check_payload (o, info, error))
    goto out;
  s.case_id = g_strdup (json_string_at (record, "case", "id"));
  {
    g_autofree char *top = g_strconcat (s.case_id ? s.case_id : "", "/", NULL);
    if (s.case_id == NULL || strchr (s.case_id, '/') != NULL || !bundle_name_is_safe (top))
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "case id %s cannot name the bag directory",
                     s.case_id ? s.case_id : "(none)");
        goto out;
      }
  }
  /* Sealing comes after the session: a seal dated before its end never verifies. */
  {
    gint64 ended = 0;
    const char *ended_at = json_string_at (record, "session", "ended_at");
    if (ended_at != NULL && tg_time_parse (ended_at, &ended) && s.sealing_time < ended)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the sealing time is before the session end (%s)", ended_at);
        goto out;
      }
  }

  if (o->events_path != NULL)
    {
      if (!tg_file_get_contents_capped (o->events_path, BUNDLE_MAX_EVENTS, &events_text, &events_len, error))
        goto out;
      s.chain = bundle_chain_new (events_text, events_len, &local);
      if (s.chain == NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s: %s", o->events_path, local->message);
          goto out;
        }
      if (s.sealing_time < bundle_chain_session_end (s.chain))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the sealing time is before the session-end event of %s",
                       o->events_path);
          goto out;
        }
    }

  /* Nonce: reproducible for the built-in TSA, random for an external one. */
  if (o->tsa_url != NULL)
    {
      if (RAND_bytes ((guint8 *) &s.nonce, sizeof s.nonce) != 1)
        {
          tg_set_error_openssl (error, "cannot draw a nonce");
          goto out;
        }
    }
  else
    {
      guint8 d[32];
      g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
      gint64 t = GINT64_TO_BE (s.sealing_time);
      EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
      EVP_DigestUpdate (md, "testigo-nonce", 13);
      EVP_DigestUpdate (md, record_text, record_len);
      EVP_DigestUpdate (md, &t, sizeof t);
      EVP_DigestFinal_ex (md, d, NULL);
      memcpy (&s.nonce, d, sizeof s.nonce);
      s.nonce = GUINT64_FROM_BE (s.nonce); /* the first 8 bytes, big-endian, on any host */
    }
  s.nonce &= G_GUINT64_CONSTANT (0x7fffffffffffffff);

  /* Members. */
  add_member (&s, "", SRC_DIR);
  add_member (&s, "certs/", SRC_DIR);
  add_member (&s, "data/", SRC_DIR);
  if (!load_identity (&s, error))
    goto out;
  add_bytes (&s, "bagit.txt", g_bytes_new_static (BUNDLE_BAGIT_TXT, strlen (BUNDLE_BAGIT_TXT)), TRUE);
  if (!add_file (&s, "data/record.json", o->record_path, error))
    goto out;
  if (o->events_path != NULL && !add_file (&s, "data/events.jsonl", o->events_path, error))
    goto out;
  for (guint i = 0; o->recordings && i < o->recordings->len; i++)
    {
      BundleInput *in = &g_array_index (o->recordings, BundleInput, i);
      g_autofree char *rel = g_strconcat ("data/", in->name, NULL);
      Member *m;
      if (!add_file (&s, rel, in->path, error))
        goto out;
      m = g_ptr_array_index (s.members, s.members->len - 1);
      m->chained = s.chain != NULL && bundle_chain_covers (s.chain, in->name);
      s.progress_total += m->size;
    }
  if (o->stills && o->stills->len > 0)
    add_member (&s, "data/stills/", SRC_DIR);
  for (guint i = 0; o->stills && i < o->stills->len; i++)
    {
      BundleInput *in = &g_array_index (o->stills, BundleInput, i);
      g_autofree char *rel = g_strconcat ("data/stills/", in->name, NULL);
      if (!add_file (&s, rel, in->path, error))
        goto out;
    }
  if (o->documents && o->documents->len > 0)
    add_member (&s, "data/documents/", SRC_DIR);
  for (guint i = 0; o->documents && i < o->documents->len; i++)
    {
      BundleInput *in = &g_array_index (o->documents, BundleInput, i);
      g_autofree char *rel = g_strconcat ("data/documents/", in->name, NULL);
      Member *m;
      if (!add_file (&s, rel, in->path, error))
        goto out;
      m = g_ptr_array_index (s.members, s.members->len - 1);
      if (m->size > BUNDLE_MAX_DOCUMENT)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "document %s (%s) is %" G_GUINT64_FORMAT
                       " bytes, over the limit of %u", in->name, in->path, m->size, BUNDLE_MAX_DOCUMENT);
          goto out;
        }
      m->expect_sha256 = g_strdup (g_hash_table_lookup (info->documents, in->name));
      s.progress_total += m->size;
    }
  for (guint i = 0; i < G_N_ELEMENTS (late); i++)
    add_member (&s, late[i], SRC_LATE)->tag = i == 0;
  /* bag-info.txt needs the payload sizes, so it is added last, then sorted in. */
  {
    GBytes *bag_info = make_bag_info (&s, record, error);
    if (bag_info == NULL)
      goto out;
    add_bytes (&s, "bag-info.txt", bag_info, TRUE);
  }
  if (s.chain != NULL)
    {
      /* every file the chain names must be a recording of this bundle */
      for (guint i = 0; i < s.members->len; i++)
        {
          Member *m = g_ptr_array_index (s.members, i);
          if (m->chained)
            bundle_chain_begin_file (s.chain, m->name + strlen (s.case_id) + 6);
        }
      if (!bundle_chain_check_all_seen (s.chain, error))
        goto out;
    }
  g_ptr_array_sort (s.members, member_cmp);

  /* Write. */
  out = tg_atomic_file_new (o->out_path, 0444, FALSE, error);
  if (out == NULL)
    goto out;
  w.a = archive_write_new ();
  archive_write_set_format_pax_restricted (w.a);
  archive_write_set_bytes_per_block (w.a, 0); /* no blocking: data goes straight from our buffers */
  archive_write_set_bytes_in_last_block (w.a, 1);
  w.fd = tg_atomic_file_get_fd (out);
  if (archive_write_open_fd (w.a, w.fd) != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot start %s: %s", o->out_path, archive_error_string (w.a));
      goto out;
    }
  s.ring = bundle_ring_new (4, COPY_CHUNK);
  s.progress = tg_progress_new ("sealing", s.progress_total);
  for (guint i = 0; i < s.members->len; i++)
    if (!write_member (&s, &w, g_ptr_array_index (s.members, i), error))
      goto out;
  if (archive_write_close (w.a) != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, archive_errno (w.a) == ENOSPC ? TG_ERROR_NOSPACE : TG_ERROR_IO,
                   "cannot finish %s: %s", o->out_path, archive_error_string (w.a));
      goto out;
    }
  ok = tg_atomic_file_commit (out, error);

out:
  if (w.a != NULL)
    archive_write_free (w.a);
  sealer_clear (&s);
  return ok;
}

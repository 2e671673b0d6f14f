/* verify.c — `testigo verify`: one strict pass over the tar, without
 * extracting, then the signature, time-stamp, chains and bindings.
 *
 * Findings are judged in a fixed order so that the sub-indication does not
 * depend on where in the stream a fault sits: structure (FORMAT_FAILURE),
 * then everything cryptographic that can prove tampering (HASH_FAILURE,
 * SIG_CRYPTO_FAILURE: TOTAL-FAILED), then trust in the certificates
 * (INDETERMINATE), then times and bindings. The first finding wins.
 */
#include "config.h"
#include "bundle-private.h"
#include "tg-schema.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/pem.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK (1u << 20)

typedef struct {
  char *rel;          /* name relative to the bag root */
  guint64 size;
  guint8 sha256[32];
  GBytes *contents;   /* kept for small members */
} VMember;

typedef struct {
  const BundleVerifyOptions *opt;
  BundleReport *r;
  gboolean failed;      /* a finding is recorded */
  int fd;
  guint64 file_size;
  struct archive *a;
  BundleRing *ring;             /* read buffers, shared with the chain worker */
  BundleChainWorker *worker;
  guint64 read_total;
  TgProgress *progress;

  char *top;            /* "<case>/" */
  gint64 mtime;
  guint64 next_pos;     /* where the next header must start */
  char *prev_name;
  GHashTable *members;  /* rel -> VMember* */
  GHashTable *dirs;     /* rel dirs present */

  BundleChain *chain;
  GError *chain_error;  /* first chain finding, judged after hashes */
  char *chain_member;
  GError *events_error;
} Verifier;

static void
vmember_free (gpointer p)
{
  VMember *m = p;

  g_free (m->rel);
  g_clear_pointer (&m->contents, g_bytes_unref);
  g_free (m);
}

void
bundle_report_free (BundleReport *r)
{
  if (r == NULL)
    return;
  g_free (r->sub_indication);
  g_free (r->member);
  g_free (r->message);
  g_ptr_array_unref (r->warnings);
  g_free (r->case_id);
  g_free (r->action);
  g_free (r->serial);
  g_free (r->officer);
  g_free (r->outcome);
  g_free (r->channel);
  g_free (r->signer);
  g_free (r->tsa);
  g_free (r->tsa_policy);
  g_free (r);
}

const char *
bundle_indication_to_string (BundleIndication i)
{
  switch (i)
    {
    case BUNDLE_TOTAL_PASSED: return "TOTAL-PASSED";
    case BUNDLE_TOTAL_FAILED: return "TOTAL-FAILED";
    case BUNDLE_INDETERMINATE: return "INDETERMINATE";
    }
  return "INDETERMINATE";
}

static gboolean fail (Verifier *v, BundleIndication ind, const char *sub, const char *member,
                      const char *fmt, ...) G_GNUC_PRINTF (5, 6);

/* Records the first finding; always returns FALSE so callers can `return fail (…)`. */
static gboolean
fail (Verifier *v, BundleIndication ind, const char *sub, const char *member, const char *fmt, ...)
{
  va_list ap;

  if (v->failed)
    return FALSE;
  v->failed = TRUE;
  v->r->indication = ind;
  v->r->sub_indication = g_strdup (sub);
  v->r->member = member ? g_strdup (member) : NULL;
  va_start (ap, fmt);
  v->r->message = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return FALSE;
}

#define FORMAT(v, m, ...) fail (v, BUNDLE_TOTAL_FAILED, "FORMAT_FAILURE", m, __VA_ARGS__)
#define HASH(v, m, ...) fail (v, BUNDLE_TOTAL_FAILED, "HASH_FAILURE", m, __VA_ARGS__)
#define SIGCRYPTO(v, m, ...) fail (v, BUNDLE_TOTAL_FAILED, "SIG_CRYPTO_FAILURE", m, __VA_ARGS__)

static void
warn (Verifier *v, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
static void
warn (Verifier *v, const char *fmt, ...)
{
  va_list ap;

  va_start (ap, fmt);
  g_ptr_array_add (v->r->warnings, g_strdup_vprintf (fmt, ap));
  va_end (ap);
}

static char *
openssl_reason (void)
{
  unsigned long e = ERR_peek_last_error ();
  char buf[256] = "unknown OpenSSL error";

  if (e != 0)
    ERR_error_string_n (e, buf, sizeof buf);
  ERR_clear_error ();
  return g_strdup (buf);
}

/* ------------------------------------------------------------- the pass */

static la_ssize_t
read_cb (struct archive *a, void *data, const void **out)
{
  Verifier *v = data;

  gsize size;
  guint8 *buf = bundle_ring_next (v->ring, &size);

  for (;;)
    {
      ssize_t n = read (v->fd, buf, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          archive_set_error (a, errno, "read error");
          return -1;
        }
      v->read_total += (guint64) n;
      tg_progress_update (v->progress, v->read_total);
      *out = buf;
      return n;
    }
}

static gboolean
pread_exact (Verifier *v, guint8 *buf, gsize len, guint64 off)
{
  gsize done = 0;

  while (done < len)
    {
      ssize_t n = pread (v->fd, buf + done, len - done, (off_t) (off + done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      done += (gsize) n;
    }
  return TRUE;
}

static gboolean
zeros_at (Verifier *v, guint64 off, gsize len)
{
  guint8 buf[1024];

  g_assert (len <= sizeof buf);
  if (!pread_exact (v, buf, len, off))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (buf[i] != 0)
      return FALSE;
  return TRUE;
}

typedef enum { KIND_DIR, KIND_SMALL, KIND_EVENTS, KIND_RECORDING, KIND_STILL, KIND_DOCUMENT } MemberKind;

static gboolean
classify (const char *rel, gboolean is_dir, MemberKind *kind, gsize *cap)
{
  static const char *const dirs[] = { "", "certs/", "data/", "data/documents/", "data/stills/" };
  static const struct { const char *name; gsize cap; } small[] = {
    { "bagit.txt", BUNDLE_MAX_SMALL },
    { "bag-info.txt", BUNDLE_MAX_SMALL },
    { "manifest-sha256.txt", BUNDLE_MAX_MANIFEST },
    { "tagmanifest-sha256.txt", BUNDLE_MAX_MANIFEST },
    { "tagmanifest-sha256.txt.p7s", BUNDLE_MAX_SIGNATURE },
    { "tagmanifest-sha256.txt.p7s.tsr", BUNDLE_MAX_SIGNATURE },
    { "certs/sealing.pem", BUNDLE_MAX_SIGNATURE },
    { "certs/tsa.pem", BUNDLE_MAX_SIGNATURE },
    { "certs/revocation.pem", BUNDLE_MAX_SIGNATURE },
    { "data/record.json", BUNDLE_MAX_RECORD },
  };

  if (is_dir)
    {
      for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
        if (strcmp (rel, dirs[i]) == 0)
          {
            *kind = KIND_DIR;
            return TRUE;
          }
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (small); i++)
    if (strcmp (rel, small[i].name) == 0)
      {
        *kind = KIND_SMALL;
        *cap = small[i].cap;
        return TRUE;
      }
  if (strcmp (rel, "data/events.jsonl") == 0)
    {
      *kind = KIND_EVENTS;
      *cap = BUNDLE_MAX_EVENTS;
      return TRUE;
    }
  if (g_str_has_prefix (rel, "data/stills/") && bundle_still_name_ok (rel + 12))
    {
      *kind = KIND_STILL;
      return TRUE;
    }
  if (g_str_has_prefix (rel, "data/documents/") && bundle_document_name_ok (rel + 15))
    {
      *kind = KIND_DOCUMENT;
      *cap = BUNDLE_MAX_DOCUMENT;
      return TRUE;
    }
  if (g_str_has_prefix (rel, "data/") && bundle_recording_name_ok (rel + 5))
    {
      *kind = KIND_RECORDING;
      return TRUE;
    }
  return FALSE;
}

static void
chain_finding (Verifier *v, const char *member, GError *error)
{
  if (v->chain_error == NULL)
    {
      v->chain_error = error;
      v->chain_member = g_strdup (member);
    }
  else
    g_error_free (error);
}

/* Reads one member's data: hashes it, keeps small ones, feeds the chain. */
static gboolean
read_member_data (Verifier *v, const char *name, VMember *m, MemberKind kind, gsize cap)
{
  g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
  g_autoptr (GByteArray) keep = NULL;
  const void *block;
  size_t len;
  la_int64_t offset;
  guint64 expect = 0;
  gboolean chained = FALSE;
  int r;

  if (kind == KIND_SMALL || kind == KIND_EVENTS)
    {
      if (m->size > cap)
        return FORMAT (v, name, "member %s is %" G_GUINT64_FORMAT " bytes, over its limit of %" G_GSIZE_FORMAT,
                       name, m->size, cap);
      keep = g_byte_array_sized_new ((guint) m->size);
    }
  if (kind == KIND_DOCUMENT && m->size > cap)
    return FORMAT (v, name, "member %s is %" G_GUINT64_FORMAT " bytes, over its limit of %" G_GSIZE_FORMAT,
                   name, m->size, cap);
  if (kind == KIND_RECORDING && v->chain != NULL && bundle_chain_covers (v->chain, m->rel + 5))
    {
      if (v->worker == NULL)
        v->worker = bundle_chain_worker_new (v->chain, v->ring);
      bundle_chain_worker_begin (v->worker, m->rel + 5);
      chained = TRUE;
    }
  else if (kind == KIND_RECORDING && g_hash_table_contains (v->members, "data/events.jsonl"))
    warn (v, "%s is not covered by the events hash chain", m->rel);
  else if (kind == KIND_RECORDING)
    warn (v, "the bundle has no data/events.jsonl: %s is not hash-chained from capture", m->rel);

  EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
  while ((r = archive_read_data_block (v->a, &block, &len, &offset)) == ARCHIVE_OK)
    {
      if ((guint64) offset != expect)
        return FORMAT (v, name, "member %s has a hole at offset %" G_GUINT64_FORMAT " (sparse data)",
                       name, expect);
      EVP_DigestUpdate (md, block, len);
      if (keep)
        g_byte_array_append (keep, block, (guint) len);
      if (chained)
        bundle_chain_worker_feed (v->worker, block, len);
      expect += len;
    }
  if (chained)
    {
      GError *e = NULL;
      guint64 unchained = 0;
      if (!bundle_chain_worker_end (v->worker, expect, &unchained, &e))
        chain_finding (v, name, e);
      else if (unchained > 0 && r == ARCHIVE_EOF && expect == m->size)
        warn (v, "the last %" G_GUINT64_FORMAT " bytes of %s are after the last hash-chain entry",
              unchained, m->rel);
    }
  if (r != ARCHIVE_EOF)
    return FORMAT (v, name, "cannot read member %s: %s", name,
                   archive_error_string (v->a) ? archive_error_string (v->a) : "truncated");
  if (expect != m->size)
    return FORMAT (v, name, "member %s holds %" G_GUINT64_FORMAT " bytes, its header says %" G_GUINT64_FORMAT,
                   name, expect, m->size);
  EVP_DigestFinal_ex (md, m->sha256, NULL);
  if (keep)
    m->contents = g_byte_array_free_to_bytes (g_steal_pointer (&keep));
  if (kind == KIND_EVENTS)
    {
      gsize elen;
      const char *etext = g_bytes_get_data (m->contents, &elen);
      v->chain = bundle_chain_new (etext ? etext : "", elen, &v->events_error);
    }
  return TRUE;
}

static gboolean
check_entry (Verifier *v, struct archive_entry *e)
{
  const char *name = archive_entry_pathname (e);
  la_int64_t pos = archive_read_header_position (v->a);
  mode_t type = archive_entry_filetype (e);
  gboolean is_dir = type == AE_IFDIR;
  g_autoptr (GBytes) canon = NULL;
  g_autofree guint8 *raw = NULL;
  gsize canon_len;
  const char *rel;
  MemberKind kind;
  gsize cap = 0;
  VMember *m;
  guint64 data_end;

  if (name == NULL)
    return FORMAT (v, NULL, "a member at offset %" G_GINT64_FORMAT " has no name", (gint64) pos);
  if (archive_entry_hardlink (e) != NULL)
    return FORMAT (v, name, "member %s is a hard link", name);
  if (type == AE_IFLNK || archive_entry_symlink (e) != NULL)
    return FORMAT (v, name, "member %s is a symbolic link", name);
  if (type != AE_IFREG && type != AE_IFDIR)
    return FORMAT (v, name, "member %s is not a regular file or directory (type %o)", name, (unsigned) type);
  if (!bundle_name_is_safe (name))
    return FORMAT (v, name, "member name %s is unsafe (absolute, '..', or characters outside [A-Za-z0-9._/-])", name);
  if (is_dir != g_str_has_suffix (name, "/"))
    return FORMAT (v, name, "member %s: directory names end in '/' and only they do", name);
  if (g_hash_table_size (v->members) + g_hash_table_size (v->dirs) >= BUNDLE_MAX_MEMBERS)
    return FORMAT (v, name, "more than %d members", BUNDLE_MAX_MEMBERS);
  if (archive_entry_sparse_count (e) > 0 || archive_entry_xattr_count (e) > 0)
    return FORMAT (v, name, "member %s carries sparse maps or extended attributes", name);

  if (v->top == NULL)
    {
      g_autofree char *case_id = NULL;
      if (!is_dir || strchr (name, '/') != name + strlen (name) - 1)
        return FORMAT (v, name, "the first member must be the bag directory, not %s", name);
      v->top = g_strdup (name);
      v->mtime = archive_entry_mtime (e);
      case_id = g_strndup (name, strlen (name) - 1);
      v->r->case_id = g_strdup (case_id);
    }
  else
    {
      if (g_hash_table_contains (v->members, name + (g_str_has_prefix (name, v->top) ? strlen (v->top) : 0))
          || g_hash_table_contains (v->dirs, name + (g_str_has_prefix (name, v->top) ? strlen (v->top) : 0)))
        return FORMAT (v, name, "member %s appears twice", name);
      if (!g_str_has_prefix (name, v->top))
        return FORMAT (v, name, "member %s is outside the bag directory %s", name, v->top);
      if (strcmp (v->prev_name, name) >= 0)
        return FORMAT (v, name, "member %s is out of order (members are in byte order of name)", name);
    }
  rel = name + strlen (v->top);
  if (!classify (rel, is_dir, &kind, &cap))
    return FORMAT (v, name, "member %s is not part of the bundle layout", name);
  {
    g_autofree char *parent = NULL;
    if (*rel != '\0')
      {
        gsize plen = strlen (rel) - (is_dir ? 1 : 0);
        const char *end = g_strrstr_len (rel, (gssize) plen, "/");
        parent = end ? g_strndup (rel, (gsize) (end - rel) + 1) : g_strdup ("");
        if (!g_hash_table_contains (v->dirs, parent))
          return FORMAT (v, name, "member %s comes without its directory", name);
      }
  }

  /* Canonical header: byte for byte what the sealer writes. */
  if ((guint64) pos != v->next_pos)
    return FORMAT (v, name, "member %s starts at offset %" G_GINT64_FORMAT ", expected %" G_GUINT64_FORMAT,
                   name, (gint64) pos, v->next_pos);
  if (archive_entry_mtime (e) != v->mtime)
    return FORMAT (v, name, "member %s has a different modification time from the bag", name);
  canon = bundle_tar_header (name, is_dir, (guint64) archive_entry_size (e), v->mtime, NULL);
  if (canon == NULL)
    return FORMAT (v, name, "member %s cannot be encoded canonically", name);
  canon_len = g_bytes_get_size (canon);
  raw = g_malloc (canon_len);
  if (!pread_exact (v, raw, canon_len, (guint64) pos)
      || memcmp (raw, g_bytes_get_data (canon, NULL), canon_len) != 0)
    return FORMAT (v, name, "the tar header of %s is not in canonical form (pax/ustar fields, mode, owner or "
                   "extra keys differ from what the sealer writes)", name);
  data_end = (guint64) pos + canon_len + (guint64) archive_entry_size (e);
  v->next_pos = data_end + BUNDLE_TAR_PAD (data_end);
  if (v->next_pos > v->file_size)
    return FORMAT (v, name, "member %s runs past the end of the file (truncated)", name);
  if (v->next_pos > data_end && !zeros_at (v, data_end, (gsize) (v->next_pos - data_end)))
    return FORMAT (v, name, "padding after %s is not zero", name);

  g_free (v->prev_name);
  v->prev_name = g_strdup (name);
  v->r->n_members++;
  if (is_dir)
    {
      g_hash_table_add (v->dirs, g_strdup (rel));
      return TRUE;
    }
  m = g_new0 (VMember, 1);
  m->rel = g_strdup (rel);
  m->size = (guint64) archive_entry_size (e);
  g_hash_table_insert (v->members, m->rel, m);
  return read_member_data (v, name, m, kind, cap);
}

static gboolean
read_tar (Verifier *v)
{
  struct archive_entry *e;
  int r;

  v->a = archive_read_new ();
  archive_read_support_format_tar (v->a);
  if (archive_read_open (v->a, v, NULL, read_cb, NULL) != ARCHIVE_OK)
    return FORMAT (v, NULL, "not a tar archive: %s", archive_error_string (v->a));
  while ((r = archive_read_next_header (v->a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      if (r == ARCHIVE_WARN)
        return FORMAT (v, archive_entry_pathname (e), "tar header problem: %s", archive_error_string (v->a));
      if (!check_entry (v, e))
        return FALSE;
    }
  if (r != ARCHIVE_EOF)
    return FORMAT (v, v->prev_name, "tar structure broken after %s: %s", v->prev_name ? v->prev_name : "the start",
                   archive_error_string (v->a) ? archive_error_string (v->a) : "truncated");
  if (v->top == NULL)
    return FORMAT (v, NULL, "the archive is empty");
  /* End of archive: two zero blocks, then nothing. */
  if (v->file_size != v->next_pos + 2 * BUNDLE_TAR_BLOCK)
    return FORMAT (v, NULL, "the file is %" G_GUINT64_FORMAT " bytes; the archive ends at %" G_GUINT64_FORMAT
                   " (trailing data or missing end blocks)", v->file_size, v->next_pos + 2 * BUNDLE_TAR_BLOCK);
  if (!zeros_at (v, v->next_pos, 2 * BUNDLE_TAR_BLOCK))
    return FORMAT (v, NULL, "the end-of-archive blocks are not zero");
  return TRUE;
}

/* ---------------------------------------------------------- after the pass */

static int
strcmp_ptr (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The keys of @h in byte order. */
static gpointer *
sorted_keys (GHashTable *h, guint *n)
{
  gpointer *keys = g_hash_table_get_keys_as_array (h, n);

  qsort (keys, *n, sizeof (gpointer), strcmp_ptr);
  return keys;
}

static VMember *
member (Verifier *v, const char *rel)
{
  return g_hash_table_lookup (v->members, rel);
}

static char *
mname (Verifier *v, const char *rel)
{
  return g_strconcat (v->top, rel, NULL);
}

static gboolean
require_members (Verifier *v)
{
  static const char *const required[] = {
    "bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt",
    "tagmanifest-sha256.txt.p7s", "tagmanifest-sha256.txt.p7s.tsr", "certs/sealing.pem",
    "certs/tsa.pem", "data/record.json",
  };
  gboolean recording = FALSE, document = FALSE;
  GHashTableIter it;
  gpointer key;

  for (guint i = 0; i < G_N_ELEMENTS (required); i++)
    if (member (v, required[i]) == NULL)
      {
        g_autofree char *n = mname (v, required[i]);
        return FORMAT (v, n, "member %s is missing", n);
      }
  g_hash_table_iter_init (&it, v->members);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      if (g_str_has_prefix (key, "data/") && bundle_recording_name_ok ((char *) key + 5))
        recording = TRUE;
      if (g_str_has_prefix (key, "data/documents/"))
        document = TRUE;
    }
  /* Which of the two the channel needs is judged with the record (phase 7). */
  if (!recording && !document)
    return FORMAT (v, NULL, "the bundle holds no recording and no document");
  return TRUE;
}

/* Key: value lines, no duplicates; NULL on a malformed text. */
static GHashTable *
parse_bag_info (GBytes *bytes)
{
  g_autoptr (GHashTable) h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gsize len;
  const char *text = g_bytes_get_data (bytes, &len);
  g_autofree char *copy = g_strndup (text, len);
  g_auto (GStrv) lines = NULL;

  if (len == 0 || strlen (copy) != len || text[len - 1] != '\n' || !g_utf8_validate (copy, -1, NULL))
    return NULL;
  copy[len - 1] = '\0';
  lines = g_strsplit (copy, "\n", -1);
  for (guint i = 0; lines[i]; i++)
    {
      char *colon = strstr (lines[i], ": ");
      if (colon == NULL || colon == lines[i])
        return NULL;
      *colon = '\0';
      if (g_hash_table_contains (h, lines[i]))
        return NULL;
      g_hash_table_insert (h, g_strdup (lines[i]), g_strdup (colon + 2));
    }
  return g_steal_pointer (&h);
}

/* "<64 hex>  <path>\n" lines; returns path -> 32-byte digest. */
static GHashTable *
parse_manifest (GBytes *bytes, char **why)
{
  g_autoptr (GHashTable) h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gsize len;
  const char *text = g_bytes_get_data (bytes, &len);
  gsize start = 0;
  guint line = 0;

  if (len > 0 && text[len - 1] != '\n')
    {
      *why = g_strdup ("does not end with a newline");
      return NULL;
    }
  while (start < len)
    {
      const char *nl = memchr (text + start, '\n', len - start);
      gsize l = (gsize) (nl - (text + start));
      const char *s = text + start;
      guint8 *digest;
      char *path;

      line++;
      if (l < 67 || s[64] != ' ' || s[65] != ' ')
        {
          *why = g_strdup_printf ("line %u is not '<sha256>  <path>'", line);
          return NULL;
        }
      digest = g_malloc (32);
      for (int i = 0; i < 32; i++)
        {
          int hi = g_ascii_xdigit_value (s[2 * i]), lo = g_ascii_xdigit_value (s[2 * i + 1]);
          if (hi < 0 || lo < 0 || g_ascii_isupper (s[2 * i]) || g_ascii_isupper (s[2 * i + 1]))
            {
              g_free (digest);
              *why = g_strdup_printf ("line %u has a malformed digest", line);
              return NULL;
            }
          digest[i] = (guint8) (hi << 4 | lo);
        }
      path = g_strndup (s + 66, l - 66);
      if (!bundle_name_is_safe (path) || g_str_has_suffix (path, "/") || g_hash_table_contains (h, path))
        {
          *why = g_strdup_printf ("line %u names %s, which is unsafe or listed twice", line, path);
          g_free (path);
          g_free (digest);
          return NULL;
        }
      g_hash_table_insert (h, path, digest);
      start += l + 1;
    }
  return g_steal_pointer (&h);
}

/* Checks a manifest against the members it must cover, both ways. */
static gboolean
check_manifest (Verifier *v, const char *rel, gboolean tag)
{
  VMember *man = member (v, rel);
  g_autofree char *why = NULL;
  g_autofree char *mn = mname (v, rel);
  g_autoptr (GHashTable) h = parse_manifest (man->contents, &why);
  GHashTableIter it;
  gpointer key, value;

  if (h == NULL)
    return FORMAT (v, mn, "%s %s", mn, why);
  g_hash_table_iter_init (&it, v->members);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const char *path = key;
      VMember *m = value;
      gboolean covered;
      guint8 *want;
      if (tag)
        covered = strcmp (path, "bagit.txt") == 0 || strcmp (path, "bag-info.txt") == 0
                  || strcmp (path, "manifest-sha256.txt") == 0 || g_str_has_prefix (path, "certs/");
      else
        covered = g_str_has_prefix (path, "data/");
      if (!covered)
        continue;
      want = g_hash_table_lookup (h, path);
      if (want == NULL)
        {
          g_autofree char *n = mname (v, path);
          return FORMAT (v, n, "%s is not listed in %s", n, rel);
        }
      if (memcmp (want, m->sha256, 32) != 0)
        {
          g_autofree char *n = mname (v, path);
          return HASH (v, n, "%s does not match its SHA-256 in %s", n, rel);
        }
      g_hash_table_remove (h, path);
    }
  if (g_hash_table_size (h) > 0)
    {
      GList *left = g_hash_table_get_keys (h);
      g_autofree char *n = mname (v, left->data);
      g_list_free (left);
      return FORMAT (v, n, "%s lists %s, which is not in the bundle or not in its scope", rel, n);
    }
  return TRUE;
}

/* Every attribute must be one we know; no value twice. */
static gboolean
check_attributes (Verifier *v, const char *mn, const char *what, CMS_SignerInfo *si,
                  gboolean tst)
{
  static const int signed_ok[] = {
    NID_pkcs9_contentType, NID_pkcs9_messageDigest, NID_pkcs9_signingTime,
    NID_id_smime_aa_signingCertificateV2, NID_id_smime_aa_signingCertificate,
  };
  gboolean v2 = FALSE;
  int n = CMS_signed_get_attr_count (si);

  for (int i = 0; i < n; i++)
    {
      X509_ATTRIBUTE *at = CMS_signed_get_attr (si, i);
      int nid = OBJ_obj2nid (X509_ATTRIBUTE_get0_object (at));
      gboolean known = FALSE;
      for (guint k = 0; k < G_N_ELEMENTS (signed_ok); k++)
        known |= nid == signed_ok[k];
      if (!known || X509_ATTRIBUTE_count (at) != 1 || CMS_signed_get_attr_by_NID (si, nid, i) >= 0)
        return FORMAT (v, mn, "%s carries an unexpected or repeated signed attribute (%s)", what,
                       OBJ_nid2sn (nid));
      if (nid == NID_id_smime_aa_signingCertificateV2)
        v2 = TRUE;
      if (nid == NID_id_smime_aa_signingCertificate && !tst)
        return FORMAT (v, mn, "%s uses ESSCertID v1; Testigo bundles use v2 (RFC 5816)", what);
    }
  if (!v2)
    return FORMAT (v, mn, "%s has no signing-certificate-v2 attribute", what);
  n = MAX (CMS_unsigned_get_attr_count (si), 0); /* -1 means none */
  if (tst && n != 0)
    return FORMAT (v, mn, "%s carries unsigned attributes", what);
  if (!tst)
    {
      X509_ATTRIBUTE *at;
      if (n != 1 || (at = CMS_unsigned_get_attr (si, 0)) == NULL
          || OBJ_obj2nid (X509_ATTRIBUTE_get0_object (at)) != NID_id_smime_aa_timeStampToken
          || X509_ATTRIBUTE_count (at) != 1)
        return FORMAT (v, mn, "%s must carry exactly one unsigned attribute, the signature time-stamp", what);
    }
  return TRUE;
}

/* PEM file of certificates in canonical form, no duplicates. */
static BundleCertStack *
read_cert_member (Verifier *v, const char *rel)
{
  VMember *m = member (v, rel);
  g_autofree char *mn = mname (v, rel);
  gsize len;
  const char *text = g_bytes_get_data (m->contents, &len);
  g_autoptr (BundleCertStack) certs = bundle_parse_certs (text ? text : "", len, mn, NULL);
  g_autoptr (GBytes) again = NULL;

  if (certs == NULL)
    {
      FORMAT (v, mn, "%s holds no certificate", mn);
      return NULL;
    }
  again = bundle_certs_to_pem (certs);
  if (!g_bytes_equal (again, m->contents))
    {
      FORMAT (v, mn, "%s is not canonical PEM (extra bytes or re-encoded certificates)", mn);
      return NULL;
    }
  for (int i = 0; i < sk_X509_num (certs); i++)
    for (int j = i + 1; j < sk_X509_num (certs); j++)
      if (X509_cmp (sk_X509_value (certs, i), sk_X509_value (certs, j)) == 0)
        {
          FORMAT (v, mn, "%s holds a certificate twice", mn);
          return NULL;
        }
  return g_steal_pointer (&certs);
}

static gboolean
in_stack (BundleCertStack *sk, X509 *cert)
{
  for (int i = 0; i < sk_X509_num (sk); i++)
    if (X509_cmp (sk_X509_value (sk, i), cert) == 0)
      return TRUE;
  return FALSE;
}

/* Certificates embedded in a SignedData: each from @allowed, none twice, no CRLs. */
static gboolean
check_embedded (Verifier *v, const char *mn, const char *what, CMS_ContentInfo *cms,
                BundleCertStack *allowed)
{
  g_autoptr (BundleCertStack) certs = CMS_get1_certs (cms);
  g_autoptr (BundleCrlStack) crls = CMS_get1_crls (cms);

  if (crls != NULL && sk_X509_CRL_num (crls) > 0)
    return FORMAT (v, mn, "%s embeds CRLs; revocation data belongs in certs/revocation.pem", what);
  for (int i = 0; certs && i < sk_X509_num (certs); i++)
    {
      X509 *c = sk_X509_value (certs, i);
      if (!in_stack (allowed, c))
        return FORMAT (v, mn, "%s embeds a certificate that is not part of its chain", what);
      for (int j = i + 1; j < sk_X509_num (certs); j++)
        if (X509_cmp (c, sk_X509_value (certs, j)) == 0)
          return FORMAT (v, mn, "%s embeds a certificate twice", what);
    }
  return TRUE;
}

/* Reads the next DER header; FALSE on malformed input. */
static gboolean
der_next (const guint8 **p, const guint8 *end, long *len, int *tag, int *klass)
{
  int r;

  if (*p >= end)
    return FALSE;
  r = ASN1_get_object (p, len, tag, klass, end - *p);
  return (r & 0x80) == 0 && *len <= end - *p;
}

/* The version INTEGERs of a SignedData and its one SignerInfo. They are
 * covered by no signature, so RFC 5652 §5.1/§5.3 fixes them and we check:
 * otherwise a flipped version byte would leave a bundle that still verifies. */
static gboolean
cms_versions (const guint8 *der, gsize len, long *sd_version, long *si_version)
{
  const guint8 *p = der, *end = der + len, *sd_end;
  long l;
  int tag, klass;
  ASN1_INTEGER *ai;

  /* ContentInfo { contentType OID, [0] EXPLICIT SignedData } */
  if (!der_next (&p, end, &l, &tag, &klass) || tag != V_ASN1_SEQUENCE)
    return FALSE;
  if (!der_next (&p, end, &l, &tag, &klass) || tag != V_ASN1_OBJECT)
    return FALSE;
  p += l;
  if (!der_next (&p, end, &l, &tag, &klass) || klass != V_ASN1_CONTEXT_SPECIFIC || tag != 0)
    return FALSE;
  if (!der_next (&p, end, &l, &tag, &klass) || tag != V_ASN1_SEQUENCE)
    return FALSE;
  sd_end = p + l;
  ai = d2i_ASN1_INTEGER (NULL, &p, sd_end - p);
  if (ai == NULL)
    return FALSE;
  *sd_version = ASN1_INTEGER_get (ai);
  ASN1_INTEGER_free (ai);
  /* digestAlgorithms SET, encapContentInfo SEQUENCE, [0] certificates, [1] crls */
  for (;;)
    {
      const guint8 *here = p;
      if (!der_next (&p, sd_end, &l, &tag, &klass))
        return FALSE;
      if (klass == V_ASN1_UNIVERSAL && tag == V_ASN1_SET && here != der && p + l == sd_end)
        break; /* the last SET is signerInfos */
      p += l;
    }
  if (!der_next (&p, sd_end, &l, &tag, &klass) || tag != V_ASN1_SEQUENCE)
    return FALSE;
  ai = d2i_ASN1_INTEGER (NULL, &p, sd_end - p);
  if (ai == NULL)
    return FALSE;
  *si_version = ASN1_INTEGER_get (ai);
  ASN1_INTEGER_free (ai);
  return TRUE;
}

/* Fields of a SignedData no signature covers and DER leaves free: versions
 * and algorithm parameters. Each must be the one value RFC 5652 / RFC 4055
 * allow for what the structure holds. */
static gboolean
check_unsigned_fields (Verifier *v, const char *mn, const char *what, CMS_ContentInfo *cms,
                       const guint8 *der, gsize len)
{
  CMS_SignerInfo *si = sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (cms), 0);
  ASN1_OCTET_STRING *keyid = NULL;
  X509_ALGOR *dig = NULL, *sig = NULL;
  const ASN1_OBJECT *obj;
  int ptype;
  const void *pval;
  long sd_version = -1, si_version = -1, want_si, want_sd;

  if (!cms_versions (der, len, &sd_version, &si_version))
    return FORMAT (v, mn, "%s: cannot read the SignedData structure", what);
  CMS_SignerInfo_get0_signer_id (si, &keyid, NULL, NULL);
  want_si = keyid != NULL ? 3 : 1;
  want_sd = (want_si == 3 || OBJ_obj2nid (CMS_get0_eContentType (cms)) != NID_pkcs7_data) ? 3 : 1;
  if (si_version != want_si || sd_version != want_sd)
    return FORMAT (v, mn, "%s: SignedData version %ld and SignerInfo version %ld, RFC 5652 requires %ld and %ld",
                   what, sd_version, si_version, want_sd, want_si);
  CMS_SignerInfo_get0_algs (si, NULL, NULL, &dig, &sig);
  X509_ALGOR_get0 (&obj, &ptype, &pval, dig);
  if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL)
    return FORMAT (v, mn, "%s: the digest algorithm has parameters", what);
  X509_ALGOR_get0 (&obj, &ptype, &pval, sig);
  switch (OBJ_obj2nid (obj))
    {
    case NID_rsaEncryption:
    case NID_sha256WithRSAEncryption:
    case NID_sha384WithRSAEncryption:
    case NID_sha512WithRSAEncryption:
      if (ptype != V_ASN1_NULL)
        return FORMAT (v, mn, "%s: RSA signature parameters must be NULL (RFC 4055)", what);
      break;
    default:
      if (ptype != V_ASN1_UNDEF)
        return FORMAT (v, mn, "%s: the signature algorithm %s takes no parameters here", what,
                       OBJ_nid2sn (OBJ_obj2nid (obj)));
    }
  return TRUE;
}

static CMS_ContentInfo *
parse_der_cms (Verifier *v, const char *mn, const char *what, const guint8 *der, gsize len)
{
  const guint8 *p = der;
  CMS_ContentInfo *cms = d2i_CMS_ContentInfo (NULL, &p, (long) len);
  guint8 *again = NULL;
  int alen;

  if (cms == NULL || p != der + len)
    {
      CMS_ContentInfo_free (cms);
      ERR_clear_error ();
      FORMAT (v, mn, "%s is not a DER CMS ContentInfo", what);
      return NULL;
    }
  alen = i2d_CMS_ContentInfo (cms, &again);
  if (alen != (int) len || memcmp (again, der, len) != 0)
    {
      OPENSSL_free (again);
      CMS_ContentInfo_free (cms);
      FORMAT (v, mn, "%s is not in the DER encoding it re-encodes to", what);
      return NULL;
    }
  OPENSSL_free (again);
  if (OBJ_obj2nid (CMS_get0_type (cms)) != NID_pkcs7_signed
      || sk_CMS_SignerInfo_num (CMS_get0_SignerInfos (cms)) != 1)
    {
      CMS_ContentInfo_free (cms);
      FORMAT (v, mn, "%s is not SignedData with exactly one signer", what);
      return NULL;
    }
  if (!check_unsigned_fields (v, mn, what, cms, der, len))
    {
      CMS_ContentInfo_free (cms);
      return NULL;
    }
  return cms;
}

static gboolean
get_message_digest (CMS_SignerInfo *si, const guint8 **md, int *len)
{
  ASN1_OCTET_STRING *os = CMS_signed_get0_data_by_OBJ (si, OBJ_nid2obj (NID_pkcs9_messageDigest), -3,
                                                       V_ASN1_OCTET_STRING);
  if (os == NULL)
    return FALSE;
  *md = ASN1_STRING_get0_data (os);
  *len = ASN1_STRING_length (os);
  return TRUE;
}

/* ESS signing-certificate-v2 (RFC 5035/5816) must name @signer. */
static gboolean
check_ess_v2 (Verifier *v, const char *mn, const char *what, CMS_SignerInfo *si, X509 *signer)
{
  ASN1_STRING *seq = CMS_signed_get0_data_by_OBJ (si, OBJ_nid2obj (NID_id_smime_aa_signingCertificateV2), -3,
                                                  V_ASN1_SEQUENCE);
  const guint8 *p;
  ESS_SIGNING_CERT_V2 *ss;
  g_autoptr (BundleCertStack) chain = sk_X509_new_null ();
  int ok;

  if (seq == NULL)
    return FORMAT (v, mn, "%s has no signing-certificate-v2 attribute", what);
  p = ASN1_STRING_get0_data (seq);
  ss = d2i_ESS_SIGNING_CERT_V2 (NULL, &p, ASN1_STRING_length (seq));
  if (ss == NULL)
    {
      ERR_clear_error ();
      return FORMAT (v, mn, "the signing-certificate-v2 attribute of %s is malformed", what);
    }
  sk_X509_push (chain, X509_dup (signer));
  ok = OSSL_ESS_check_signing_certs (NULL, ss, chain, 1);
  ESS_SIGNING_CERT_V2_free (ss);
  if (ok <= 0)
    {
      g_autofree char *why = openssl_reason ();
      return fail (v, BUNDLE_TOTAL_FAILED, "SIG_CRYPTO_FAILURE", mn,
                   "the signing-certificate-v2 attribute of %s does not name its signer: %s", what, why);
    }
  return TRUE;
}

typedef struct {
  CMS_ContentInfo *cms;
  CMS_SignerInfo *si;
  BundleCertStack *sealing;     /* certs/sealing.pem */
  BundleCertStack *tsa_certs;   /* certs/tsa.pem */
  BundleCrlStack *crls;
  CMS_ContentInfo *token;       /* the TST as CMS */
  TS_TST_INFO *tst;
  PKCS7 *token_p7;
  gint64 gen_time;
  GHashTable *info;             /* bag-info.txt */
} Sig;

static void
sig_clear (Sig *s)
{
  CMS_ContentInfo_free (s->cms);
  bundle_cert_stack_free (s->sealing);
  bundle_cert_stack_free (s->tsa_certs);
  if (s->crls)
    bundle_crl_stack_free (s->crls);
  CMS_ContentInfo_free (s->token);
  TS_TST_INFO_free (s->tst);
  PKCS7_free (s->token_p7);
  g_clear_pointer (&s->info, g_hash_table_unref);
}

/* Structure and cryptography of the signature and its time-stamp (the
 * TOTAL-FAILED class); trust in certificates comes later. */
static gboolean
check_signature_crypto (Verifier *v, Sig *s)
{
  g_autofree char *p7s_name = mname (v, "tagmanifest-sha256.txt.p7s");
  g_autofree char *tsr_name = mname (v, "tagmanifest-sha256.txt.p7s.tsr");
  g_autofree char *tm_name = mname (v, "tagmanifest-sha256.txt");
  VMember *p7s = member (v, "tagmanifest-sha256.txt.p7s");
  VMember *tsr = member (v, "tagmanifest-sha256.txt.p7s.tsr");
  VMember *tm = member (v, "tagmanifest-sha256.txt");
  gsize len;
  const guint8 *der;
  const guint8 *md;
  int md_len;
  guint8 tm_digest[32], sig_digest[32];
  X509 *signer;
  ASN1_OCTET_STRING *sigval;
  X509_ATTRIBUTE *tsattr;
  ASN1_TYPE *tstype;
  g_autoptr (BIO) content = NULL;
  g_autoptr (TS_RESP) resp = NULL;
  g_autofree guint8 *again = NULL;
  const ASN1_OCTET_STRING *imprint;
  const guint8 *tokder;
  gsize toklen;
  guint8 *tmp = NULL;
  int tmplen;

  /* The CMS signature over the tag manifest. */
  der = g_bytes_get_data (p7s->contents, &len);
  if ((s->cms = parse_der_cms (v, p7s_name, p7s_name, der, len)) == NULL)
    return FALSE;
  if (CMS_get0_content (s->cms) != NULL && *CMS_get0_content (s->cms) != NULL)
    return FORMAT (v, p7s_name, "%s is not detached", p7s_name);
  if (OBJ_obj2nid (CMS_get0_eContentType (s->cms)) != NID_pkcs7_data)
    return FORMAT (v, p7s_name, "%s does not sign id-data", p7s_name);
  s->si = sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (s->cms), 0);
  {
    X509_ALGOR *dig = NULL, *sigalg = NULL;
    CMS_SignerInfo_get0_algs (s->si, NULL, NULL, &dig, &sigalg);
    if (OBJ_obj2nid (dig->algorithm) != NID_sha256 && OBJ_obj2nid (dig->algorithm) != NID_sha384
        && OBJ_obj2nid (dig->algorithm) != NID_sha512)
      return FORMAT (v, p7s_name, "%s uses digest %s; SHA-2 is required", p7s_name,
                     OBJ_nid2sn (OBJ_obj2nid (dig->algorithm)));
  }
  /* message digest first: a changed tag manifest is a HASH_FAILURE */
  if (!get_message_digest (s->si, &md, &md_len))
    return FORMAT (v, p7s_name, "%s has no message-digest attribute", p7s_name);
  {
    X509_ALGOR *dig = NULL;
    const EVP_MD *evp;
    unsigned int dlen = 0;
    guint8 d[EVP_MAX_MD_SIZE];
    CMS_SignerInfo_get0_algs (s->si, NULL, NULL, &dig, NULL);
    evp = EVP_get_digestbyobj (dig->algorithm);
    EVP_Digest (g_bytes_get_data (tm->contents, NULL), g_bytes_get_size (tm->contents), d, &dlen, evp, NULL);
    if ((int) dlen != md_len || memcmp (d, md, dlen) != 0)
      return HASH (v, tm_name, "%s does not match the digest its signature covers", tm_name);
    (void) tm_digest;
  }
  /* The tag manifest is authentic if the signature verifies below; check
   * what it lists now, so that a changed certificate or bag-info.txt is a
   * HASH_FAILURE rather than whatever parsing it would say. */
  if (!check_manifest (v, "tagmanifest-sha256.txt", TRUE))
    return FALSE;

  if ((s->sealing = read_cert_member (v, "certs/sealing.pem")) == NULL
      || (s->tsa_certs = read_cert_member (v, "certs/tsa.pem")) == NULL)
    return FALSE;
  if (member (v, "certs/revocation.pem") != NULL)
    {
      VMember *m = member (v, "certs/revocation.pem");
      g_autofree char *mn = mname (v, "certs/revocation.pem");
      g_autoptr (GBytes) canon = NULL;
      der = g_bytes_get_data (m->contents, &len);
      s->crls = bundle_parse_crls ((const char *) (der ? der : (const guint8 *) ""), len, mn, NULL);
      if (s->crls == NULL)
        return FORMAT (v, mn, "%s holds no CRL", mn);
      canon = bundle_crls_to_pem (s->crls);
      if (!g_bytes_equal (canon, m->contents))
        return FORMAT (v, mn, "%s is not canonical PEM", mn);
    }

  if (!check_attributes (v, p7s_name, p7s_name, s->si, FALSE)
      || !check_embedded (v, p7s_name, p7s_name, s->cms, s->sealing))
    return FALSE;
  signer = sk_X509_value (s->sealing, 0);
  if (CMS_SignerInfo_cert_cmp (s->si, signer) != 0)
    return fail (v, BUNDLE_INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND", p7s_name,
                 "the signer of %s is not the first certificate of certs/sealing.pem", p7s_name);
  v->r->signer = bundle_x509_subject (signer);

  content = BIO_new_mem_buf (g_bytes_get_data (tm->contents, NULL), (int) g_bytes_get_size (tm->contents));
  {
    g_autoptr (BundleCertStack) signers = sk_X509_new_null ();
    sk_X509_push (signers, X509_dup (signer));
    if (CMS_verify (s->cms, signers, NULL, content, NULL,
                    CMS_BINARY | CMS_DETACHED | CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN) != 1)
      {
        g_autofree char *why = openssl_reason ();
        return SIGCRYPTO (v, p7s_name, "the signature in %s does not verify: %s", p7s_name, why);
      }
    if (!check_ess_v2 (v, p7s_name, p7s_name, s->si, signer))
      return FALSE;
  }

  /* The time-stamp: embedded token == .tsr token, response status granted. */
  tsattr = CMS_unsigned_get_attr (s->si, 0);
  tstype = X509_ATTRIBUTE_get0_type (tsattr, 0);
  if (tstype == NULL || ASN1_TYPE_get (tstype) != V_ASN1_SEQUENCE)
    return FORMAT (v, p7s_name, "the signature time-stamp attribute of %s is not a token", p7s_name);
  tokder = ASN1_STRING_get0_data (tstype->value.sequence);
  toklen = (gsize) ASN1_STRING_length (tstype->value.sequence);
  der = g_bytes_get_data (tsr->contents, &len);
  {
    const guint8 *p = der;
    resp = d2i_TS_RESP (NULL, &p, (long) len);
    if (resp == NULL || p != der + len)
      {
        ERR_clear_error ();
        return FORMAT (v, tsr_name, "%s is not a DER TimeStampResp", tsr_name);
      }
  }
  tmplen = i2d_TS_RESP (resp, &tmp);
  if (tmplen != (int) len || memcmp (tmp, der, len) != 0)
    {
      OPENSSL_free (tmp);
      return FORMAT (v, tsr_name, "%s is not in the DER encoding it re-encodes to", tsr_name);
    }
  OPENSSL_free (tmp);
  tmp = NULL;
  {
    TS_STATUS_INFO *st = TS_RESP_get_status_info (resp);
    if (ASN1_INTEGER_get (TS_STATUS_INFO_get0_status (st)) != TS_STATUS_GRANTED
        || TS_STATUS_INFO_get0_text (st) != NULL || TS_STATUS_INFO_get0_failure_info (st) != NULL)
      return FORMAT (v, tsr_name, "%s: the status must be granted, with no text or failure info", tsr_name);
  }
  tmplen = TS_RESP_get_token (resp) ? i2d_PKCS7 (TS_RESP_get_token (resp), &tmp) : -1;
  if (tmplen != (int) toklen || memcmp (tmp, tokder, toklen) != 0)
    {
      OPENSSL_free (tmp);
      return FORMAT (v, tsr_name, "the token in %s differs from the one embedded in %s", tsr_name, p7s_name);
    }
  OPENSSL_free (tmp);
  if ((s->token = parse_der_cms (v, tsr_name, "the time-stamp token", tokder, toklen)) == NULL)
    return FALSE;
  if (OBJ_obj2nid (CMS_get0_eContentType (s->token)) != NID_id_smime_ct_TSTInfo)
    return FORMAT (v, tsr_name, "the time-stamp token does not hold a TSTInfo");
  {
    CMS_SignerInfo *tsi = sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (s->token), 0);
    if (!check_attributes (v, tsr_name, "the time-stamp token", tsi, TRUE)
        || !check_embedded (v, tsr_name, "the time-stamp token", s->token, s->tsa_certs))
      return FALSE;
    if (CMS_SignerInfo_cert_cmp (tsi, sk_X509_value (s->tsa_certs, 0)) != 0)
      return fail (v, BUNDLE_INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND", tsr_name,
                   "the time-stamp token is not signed by the first certificate of certs/tsa.pem");
  }
  s->token_p7 = PKCS7_dup (TS_RESP_get_token (resp));
  s->tst = TS_TST_INFO_dup (TS_RESP_get_tst_info (resp));
  if (s->tst == NULL || !bundle_asn1_time_to_unix (TS_TST_INFO_get_time (s->tst), &s->gen_time))
    return FORMAT (v, tsr_name, "%s has no readable TSTInfo", tsr_name);
  v->r->gen_time = s->gen_time;
  v->r->tsa = bundle_x509_subject (sk_X509_value (s->tsa_certs, 0));
  {
    char buf[128];
    OBJ_obj2txt (buf, sizeof buf, TS_TST_INFO_get_policy_id (s->tst), 1);
    v->r->tsa_policy = g_strdup (buf);
  }

  /* Imprint: SHA-256 (or SHA-384/512) of this signature's value. */
  sigval = CMS_SignerInfo_get0_signature (s->si);
  {
    TS_MSG_IMPRINT *mi = TS_TST_INFO_get_msg_imprint (s->tst);
    X509_ALGOR *alg = TS_MSG_IMPRINT_get_algo (mi);
    const EVP_MD *evp = EVP_get_digestbyobj (alg->algorithm);
    unsigned int dlen = 0;
    guint8 d[EVP_MAX_MD_SIZE];
    imprint = TS_MSG_IMPRINT_get_msg (mi);
    if (evp == NULL || (EVP_MD_get_type (evp) != NID_sha256 && EVP_MD_get_type (evp) != NID_sha384
                        && EVP_MD_get_type (evp) != NID_sha512))
      return FORMAT (v, tsr_name, "the time-stamp imprint uses an unaccepted digest");
    EVP_Digest (ASN1_STRING_get0_data (sigval), (size_t) ASN1_STRING_length (sigval), d, &dlen, evp, NULL);
    if ((int) dlen != ASN1_STRING_length (imprint) || memcmp (d, ASN1_STRING_get0_data (imprint), dlen) != 0)
      return HASH (v, tsr_name, "the time-stamp in %s is over other data, not over the signature of %s",
                   tsr_name, p7s_name);
    (void) sig_digest;
  }
  /* The token's own signature, without trust yet (ESS v2 checked by CMS_CADES). */
  {
    g_autoptr (BundleCertStack) signers = sk_X509_new_null ();
    g_autoptr (BIO) out = BIO_new (BIO_s_mem ());
    sk_X509_push (signers, X509_dup (sk_X509_value (s->tsa_certs, 0)));
    if (CMS_verify (s->token, signers, NULL, NULL, out,
                    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN) != 1)
      {
        g_autofree char *why = openssl_reason ();
        return SIGCRYPTO (v, tsr_name, "the time-stamp token's signature does not verify: %s", why);
      }
    if (!check_ess_v2 (v, tsr_name, "the time-stamp token", sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (s->token), 0),
                       sk_X509_value (s->tsa_certs, 0)))
      return FALSE;
  }
  (void) again;
  return TRUE;
}

/* X509 verification of @leaf at genTime; maps the outcome to ETSI terms. */
static gboolean
check_chain (Verifier *v, Sig *s, const char *mn, const char *what, X509 *leaf,
             BundleCertStack *untrusted, BundleCertStack *roots, int purpose, gboolean crl_check)
{
  g_autoptr (X509_STORE) store = X509_STORE_new ();
  g_autoptr (X509_STORE_CTX) ctx = X509_STORE_CTX_new ();
  X509_VERIFY_PARAM *param;
  int err;
  const char *errs;
  STACK_OF (X509) *chain;

  for (int i = 0; i < sk_X509_num (roots); i++)
    X509_STORE_add_cert (store, sk_X509_value (roots, i));
  X509_STORE_CTX_init (ctx, store, leaf, untrusted);
  param = X509_STORE_CTX_get0_param (ctx);
  X509_VERIFY_PARAM_set_time (param, (time_t) s->gen_time);
  X509_STORE_CTX_set_purpose (ctx, purpose);
  if (crl_check && s->crls != NULL)
    {
      X509_STORE_CTX_set0_crls (ctx, s->crls);
      X509_VERIFY_PARAM_set_flags (param, X509_V_FLAG_CRL_CHECK);
    }
  if (X509_verify_cert (ctx) == 1)
    {
      /* every certificate we were given must be in the chain built */
      chain = X509_STORE_CTX_get0_chain (ctx);
      for (int i = 0; i < sk_X509_num (untrusted); i++)
        if (!in_stack (chain, sk_X509_value (untrusted, i)))
          return FORMAT (v, mn, "%s holds a certificate that is not part of the %s chain", mn, what);
      return TRUE;
    }
  err = X509_STORE_CTX_get_error (ctx);
  errs = X509_verify_cert_error_string (err);
  ERR_clear_error ();
  switch (err)
    {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
      return fail (v, BUNDLE_INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND", mn,
                   "the %s certificate does not chain to a trusted root: %s", what, errs);
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return fail (v, BUNDLE_INDETERMINATE, "OUT_OF_BOUNDS_NO_POE", mn,
                   "a certificate of the %s chain had expired at genTime: %s", what, errs);
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return fail (v, BUNDLE_INDETERMINATE, "NOT_YET_VALID", mn,
                   "a certificate of the %s chain was not yet valid at genTime: %s", what, errs);
    case X509_V_ERR_CERT_REVOKED:
      return fail (v, BUNDLE_TOTAL_FAILED, "REVOKED", mn, "the %s certificate is revoked", what);
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
      return fail (v, BUNDLE_INDETERMINATE, "REVOCATION_OUT_OF_BOUNDS_NO_POE", mn,
                   "the captured revocation data does not cover genTime: %s", errs);
    case X509_V_ERR_INVALID_PURPOSE:
      return fail (v, BUNDLE_INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE", mn,
                   "the %s certificate is not fit for its purpose: %s", what, errs);
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return fail (v, BUNDLE_TOTAL_FAILED, "SIG_CRYPTO_FAILURE", mn, "a %s chain signature fails: %s", what, errs);
    default:
      return fail (v, BUNDLE_INDETERMINATE, "CERTIFICATE_CHAIN_GENERAL_FAILURE", mn,
                   "the %s chain does not validate: %s", what, errs);
    }
}

static BundleCertStack *
load_roots (Verifier *v, const char *path, GError **error)
{
  return bundle_load_certs (path, error);
}

static gboolean
check_trust (Verifier *v, Sig *s, BundleCertStack *roots, BundleCertStack *tsa_roots)
{
  g_autofree char *sealing_name = mname (v, "certs/sealing.pem");
  g_autofree char *tsa_name = mname (v, "certs/tsa.pem");
  g_autofree char *tsr_name = mname (v, "tagmanifest-sha256.txt.p7s.tsr");
  g_autoptr (BundleCertStack) sealing_rest = sk_X509_new_null ();
  g_autoptr (BundleCertStack) tsa_rest = sk_X509_new_null ();
  g_autoptr (TS_VERIFY_CTX) vctx = NULL;
  X509_STORE *store;

  for (int i = 1; i < sk_X509_num (s->tsa_certs); i++)
    sk_X509_push (tsa_rest, X509_dup (sk_X509_value (s->tsa_certs, i)));
  if (!check_chain (v, s, tsa_name, "TSA", sk_X509_value (s->tsa_certs, 0), tsa_rest, tsa_roots,
                    X509_PURPOSE_TIMESTAMP_SIGN, FALSE))
    return FALSE;

  /* OpenSSL's own RFC 3161 check, as a second opinion (EKU, ESS, signer). */
  vctx = TS_VERIFY_CTX_new ();
  store = X509_STORE_new ();
  for (int i = 0; i < sk_X509_num (tsa_roots); i++)
    X509_STORE_add_cert (store, sk_X509_value (tsa_roots, i));
  X509_VERIFY_PARAM_set_time (X509_STORE_get0_param (store), (time_t) s->gen_time);
  TS_VERIFY_CTX_set_store (vctx, store);
  TS_VERIFY_CTX_set_certs (vctx, X509_chain_up_ref (s->tsa_certs));
  TS_VERIFY_CTX_add_flags (vctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_SIGNER);
  if (TS_RESP_verify_token (vctx, s->token_p7) != 1)
    {
      g_autofree char *why = openssl_reason ();
      return fail (v, BUNDLE_INDETERMINATE, "CERTIFICATE_CHAIN_GENERAL_FAILURE", tsr_name,
                   "OpenSSL does not accept the time-stamp token: %s", why);
    }

  for (int i = 1; i < sk_X509_num (s->sealing); i++)
    sk_X509_push (sealing_rest, X509_dup (sk_X509_value (s->sealing, i)));
  if (!check_chain (v, s, sealing_name, "sealing", sk_X509_value (s->sealing, 0), sealing_rest, roots,
                    X509_PURPOSE_SMIME_SIGN, TRUE))
    return FALSE;
  if (s->crls == NULL)
    warn (v, "no revocation data was captured at sealing; revocation of the sealing certificate was not checked");
  else
    {
      /* every CRL must be issued by a certificate we hold and verify */
      for (int i = 0; i < sk_X509_CRL_num (s->crls); i++)
        {
          X509_CRL *crl = sk_X509_CRL_value (s->crls, i);
          gboolean ok = FALSE;
          for (int k = 0; !ok && k < sk_X509_num (roots); k++)
            ok = X509_CRL_verify (crl, X509_get0_pubkey (sk_X509_value (roots, k))) == 1;
          for (int k = 0; !ok && k < sk_X509_num (s->sealing); k++)
            ok = X509_CRL_verify (crl, X509_get0_pubkey (sk_X509_value (s->sealing, k))) == 1;
          ERR_clear_error ();
          if (!ok)
            {
              g_autofree char *mn = mname (v, "certs/revocation.pem");
              return FORMAT (v, mn, "%s holds a CRL from no issuer of the sealing chain", mn);
            }
        }
    }
  return TRUE;
}

static const char *
record_string (JsonNode *root, const char *a, const char *b)
{
  JsonObject *o = json_node_get_object (root);

  if (o == NULL || !json_object_has_member (o, a))
    return NULL;
  o = json_object_get_object_member (o, a);
  if (o == NULL || !json_object_has_member (o, b))
    return NULL;
  return json_object_get_string_member (o, b);
}

/* What the record's channel calls for: a recording (teleconference, any
 * version 1 record) or documents, and exactly the documents the record lists,
 * each with its SHA-256. */
static gboolean
check_payload (Verifier *v, JsonNode *record, const char *record_name)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (BundleRecordInfo) info = bundle_record_info_new (record, &local);
  gboolean recording = FALSE, document = FALSE;

  if (info == NULL)
    return FORMAT (v, record_name, "%s: %s", record_name, local->message);
  /* Members in byte order, so that the first finding does not depend on hashing. */
  {
    guint n;
    g_autofree gpointer *keys = sorted_keys (v->members, &n);
    for (guint i = 0; i < n; i++)
      {
        const char *rel = keys[i];
        VMember *m = member (v, rel);
        const char *want;
        g_autofree char *have = NULL;
        g_autofree char *mn = NULL;
        if (g_str_has_prefix (rel, "data/") && bundle_recording_name_ok (rel + 5))
          recording = TRUE;
        if (!g_str_has_prefix (rel, "data/documents/"))
          continue;
        document = TRUE;
        mn = mname (v, rel);
        want = g_hash_table_lookup (info->documents, rel + 15);
        if (want == NULL)
          return FORMAT (v, mn, "%s is not listed in the record's documents", mn);
        have = tg_hex (m->sha256, sizeof m->sha256);
        if (strcmp (have, want) != 0)
          return HASH (v, mn, "%s does not match the SHA-256 the record lists for it", mn);
      }
  }
  {
    guint n;
    g_autofree gpointer *keys = sorted_keys (info->documents, &n);
    for (guint i = 0; i < n; i++)
      {
        g_autofree char *rel = g_strconcat ("data/documents/", (char *) keys[i], NULL);
        if (member (v, rel) == NULL)
          {
            g_autofree char *mn = mname (v, rel);
            return FORMAT (v, mn, "the record lists the document %s, which is not in the bundle", mn);
          }
      }
  }
  if (bundle_record_needs_recording (info) && !recording)
    return FORMAT (v, NULL, "the bundle holds no recording (a %s record%s needs one)",
                   info->channel ? info->channel : "(no channel)", info->version < 2 ? " of version 1" : "");
  if (!bundle_record_needs_recording (info) && !document)
    return FORMAT (v, NULL, "the bundle holds no document (a %s record needs one)",
                   info->channel ? info->channel : "(no channel)");
  if (!bundle_record_email_listed (info))
    return FORMAT (v, record_name, "%s: case.email.message_sha256 is the SHA-256 of none of its documents "
                   "(the signed message must be one of them)", record_name);
  return TRUE;
}

static gboolean
check_content (Verifier *v, Sig *s)
{
  g_autofree char *bagit_name = mname (v, "bagit.txt");
  g_autofree char *info_name = mname (v, "bag-info.txt");
  g_autofree char *record_name = mname (v, "data/record.json");
  g_autofree char *events_name = mname (v, "data/events.jsonl");
  VMember *bagit = member (v, "bagit.txt");
  VMember *rec = member (v, "data/record.json");
  g_autoptr (JsonNode) record = NULL;
  g_autoptr (GError) local = NULL;
  static const char bagit_text[] = BUNDLE_BAGIT_TXT;
  static const char *const info_keys[] = {
    "Bagging-Date", "Payload-Oxum", "Bag-Software-Agent", "Case-ID", "Action", "Certificate-Serial",
    "Officer", "Outcome", "Session-End", "Sealing-Date", "Timestamp-Nonce",
  };
  const char *bindings[][3] = {
    { "Case-ID", "case", "id" },
    { "Action", "case", "action" },
    { "Certificate-Serial", "certificate", "serial" },
    { "Officer", "officer", "id" },
    { "Outcome", "outcome", "result" },
    { "Session-End", "session", "ended_at" },
  };
  GHashTableIter it;
  gpointer key, value;
  guint64 oxum_bytes = 0, oxum_count = 0;
  g_autofree char *oxum = NULL;
  const char *val;
  gint64 t;

  if (g_bytes_get_size (bagit->contents) != sizeof bagit_text - 1
      || memcmp (g_bytes_get_data (bagit->contents, NULL), bagit_text, sizeof bagit_text - 1) != 0)
    return FORMAT (v, bagit_name, "%s is not the BagIt 1.0 declaration", bagit_name);
  s->info = parse_bag_info (member (v, "bag-info.txt")->contents);
  if (s->info == NULL)
    return FORMAT (v, info_name, "%s is not 'Key: value' lines with unique keys", info_name);
  g_hash_table_iter_init (&it, s->info);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      gboolean known = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (info_keys); i++)
        known |= strcmp (key, info_keys[i]) == 0;
      if (!known)
        return FORMAT (v, info_name, "%s has an unknown key %s", info_name, (char *) key);
    }
  g_hash_table_iter_init (&it, v->members);
  while (g_hash_table_iter_next (&it, &key, &value))
    if (g_str_has_prefix (key, "data/"))
      {
        oxum_bytes += ((VMember *) value)->size;
        oxum_count++;
      }
  oxum = g_strdup_printf ("%" G_GUINT64_FORMAT ".%" G_GUINT64_FORMAT, oxum_bytes, oxum_count);
  if (g_strcmp0 (g_hash_table_lookup (s->info, "Payload-Oxum"), oxum) != 0)
    return FORMAT (v, info_name, "Payload-Oxum in %s is not %s", info_name, oxum);

  /* The record. */
  record = tg_json_parse_strict (g_bytes_get_data (rec->contents, NULL), g_bytes_get_size (rec->contents),
                                 BUNDLE_MAX_RECORD, &local);
  if (record == NULL || !tg_schema_check_record (record, &local))
    return FORMAT (v, record_name, "%s fails the validation-record schema: %s", record_name, local->message);
  for (guint i = 0; i < G_N_ELEMENTS (bindings); i++)
    {
      const char *rv = record_string (record, bindings[i][1], bindings[i][2]);
      const char *iv = g_hash_table_lookup (s->info, bindings[i][0]);
      if (g_strcmp0 (rv, iv) != 0)
        return FORMAT (v, info_name, "%s says %s is %s, the record says %s", info_name, bindings[i][0],
                       iv ? iv : "(absent)", rv ? rv : "(absent)");
    }
  if (g_strcmp0 (record_string (record, "case", "id"), v->r->case_id) != 0)
    return FORMAT (v, record_name, "the bag directory is not named after the record's case id");
  if (!check_payload (v, record, record_name))
    return FALSE;
  v->r->action = g_strdup (record_string (record, "case", "action"));
  v->r->serial = g_strdup (record_string (record, "certificate", "serial"));
  v->r->officer = g_strdup (record_string (record, "officer", "id"));
  v->r->outcome = g_strdup (record_string (record, "outcome", "result"));
  v->r->channel = g_strdup (record_string (record, "case", "channel"));

  /* The events log and its hash chain over the recording. */
  if (v->events_error != NULL)
    return FORMAT (v, events_name, "%s", v->events_error->message);
  if (v->chain_error != NULL)
    return HASH (v, v->chain_member, "%s", v->chain_error->message);
  if (v->chain != NULL && !bundle_chain_check_all_seen (v->chain, &local))
    return FORMAT (v, events_name, "%s", local->message);

  /* Times: members, signingTime, genTime, session end. */
  val = g_hash_table_lookup (s->info, "Sealing-Date");
  if (val == NULL || !tg_time_parse (val, &t))
    return FORMAT (v, info_name, "%s has no valid Sealing-Date", info_name);
  v->r->sealing_time = t;
  if (t != v->mtime)
    return FORMAT (v, NULL, "member times differ from the Sealing-Date");
  {
    const ASN1_TIME *st = NULL;
    int idx = CMS_signed_get_attr_by_NID (s->si, NID_pkcs9_signingTime, -1);
    ASN1_TYPE *at = idx >= 0 ? X509_ATTRIBUTE_get0_type (CMS_signed_get_attr (s->si, idx), 0) : NULL;
    gint64 signing = 0;
    if (at != NULL && (ASN1_TYPE_get (at) == V_ASN1_UTCTIME || ASN1_TYPE_get (at) == V_ASN1_GENERALIZEDTIME))
      st = (const ASN1_TIME *) at->value.asn1_string;
    if (st == NULL || !bundle_asn1_time_to_unix (st, &signing) || signing != t)
      return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                   "the signingTime of the seal is not the Sealing-Date");
  }
  if (s->gen_time < t - BUNDLE_GENTIME_SLACK || s->gen_time > t + BUNDLE_GENTIME_SLACK)
    return fail (v, BUNDLE_INDETERMINATE, "TIMESTAMP_ORDER_FAILURE", NULL,
                 "genTime is more than %d s away from the Sealing-Date", BUNDLE_GENTIME_SLACK);
  val = record_string (record, "session", "ended_at");
  if (val != NULL && tg_time_parse (val, &t) && s->gen_time < t)
    return fail (v, BUNDLE_INDETERMINATE, "TIMESTAMP_ORDER_FAILURE", NULL,
                 "genTime is before the end of the session (%s)", val);
  if (v->chain != NULL && s->gen_time < bundle_chain_session_end (v->chain))
    return fail (v, BUNDLE_INDETERMINATE, "TIMESTAMP_ORDER_FAILURE", NULL,
                 "genTime is before the session-end event");
  {
    uint64_t nonce = 0;
    g_autofree char *want = NULL;
    if (TS_TST_INFO_get_nonce (s->tst) == NULL || !ASN1_INTEGER_get_uint64 (&nonce, TS_TST_INFO_get_nonce (s->tst)))
      return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL, "the time-stamp carries no nonce");
    want = g_strdup_printf ("%016" G_GINT64_MODIFIER "x", (guint64) nonce);
    if (g_strcmp0 (g_hash_table_lookup (s->info, "Timestamp-Nonce"), want) != 0)
      return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                   "the time-stamp nonce does not match the Timestamp-Nonce the seal declares");
  }
  return TRUE;
}

static gboolean
check_bindings (Verifier *v)
{
  const BundleVerifyOptions *o = v->opt;

  if (o->tsa_policy != NULL && g_strcmp0 (o->tsa_policy, v->r->tsa_policy) != 0)
    return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                 "the time-stamp policy is %s, not %s", v->r->tsa_policy, o->tsa_policy);
  if (o->for_case && g_strcmp0 (o->for_case, v->r->case_id) != 0)
    return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                 "the bundle is for case %s, not %s", v->r->case_id, o->for_case);
  if (o->for_action && g_strcmp0 (o->for_action, v->r->action) != 0)
    return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                 "the bundle is for action %s, not %s", v->r->action, o->for_action);
  if (o->for_serial && g_ascii_strcasecmp (o->for_serial, v->r->serial ? v->r->serial : "") != 0)
    return fail (v, BUNDLE_INDETERMINATE, "SIG_CONSTRAINTS_FAILURE", NULL,
                 "the bundle is for certificate %s, not %s", v->r->serial, o->for_serial);
  return TRUE;
}

BundleReport *
bundle_verify (const char *path, const BundleVerifyOptions *o, GError **error)
{
  Verifier v = { 0 };
  Sig s = { 0 };
  BundleReport *r;
  struct stat st;
  g_autoptr (BundleCertStack) roots = NULL, tsa_roots = NULL;

  if (o->ca_file == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "--ca-file is required");
      return NULL;
    }
  if ((o->for_case != NULL) != (o->for_action != NULL) || (o->for_case != NULL) != (o->for_serial != NULL))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "--for-case, --action and --serial go together");
      return NULL;
    }
  if ((roots = load_roots (&v, o->ca_file, error)) == NULL
      || (tsa_roots = load_roots (&v, o->tsa_ca_file ? o->tsa_ca_file : o->ca_file, error)) == NULL)
    return NULL;
  v.fd = open (path, O_RDONLY | O_CLOEXEC);
  if (v.fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return NULL;
    }
  if (fstat (v.fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s is not a regular file", path);
      close (v.fd);
      return NULL;
    }
  (void) posix_fadvise (v.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  r = g_new0 (BundleReport, 1);
  r->warnings = g_ptr_array_new_with_free_func (g_free);
  v.r = r;
  v.opt = o;
  v.file_size = (guint64) st.st_size;
  r->bytes = v.file_size;
  v.ring = bundle_ring_new (4, READ_CHUNK);
  v.members = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, vmember_free);
  v.dirs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!o->quiet_progress)
    v.progress = tg_progress_new ("verifying", v.file_size);

  (void) (read_tar (&v)
          && require_members (&v)
          && check_signature_crypto (&v, &s)
          && check_manifest (&v, "manifest-sha256.txt", FALSE)
          && (v.chain_error == NULL
              || HASH (&v, v.chain_member, "%s", v.chain_error->message))
          && check_trust (&v, &s, roots, tsa_roots)
          && check_content (&v, &s)
          && check_bindings (&v));
  if (!v.failed)
    r->indication = BUNDLE_TOTAL_PASSED;

  sig_clear (&s);
  if (v.a)
    archive_read_free (v.a);
  close (v.fd);
  bundle_chain_worker_free (v.worker);
  bundle_ring_free (v.ring);
  g_free (v.top);
  g_free (v.prev_name);
  g_free (v.chain_member);
  g_clear_error (&v.chain_error);
  g_clear_error (&v.events_error);
  bundle_chain_free (v.chain);
  g_hash_table_unref (v.members);
  g_hash_table_unref (v.dirs);
  tg_progress_free (v.progress);
  return r;
}

char *
bundle_report_to_json (const BundleReport *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

#define ADD_STR(k, val)                                                                            \
  do {                                                                                             \
    json_builder_set_member_name (b, k);                                                           \
    if (val)                                                                                       \
      json_builder_add_string_value (b, val);                                                      \
    else                                                                                           \
      json_builder_add_null_value (b);                                                             \
  } while (0)

  json_builder_begin_object (b);
  ADD_STR ("indication", bundle_indication_to_string (r->indication));
  ADD_STR ("subIndication", r->sub_indication);
  ADD_STR ("member", r->member);
  ADD_STR ("message", r->message);
  ADD_STR ("caseId", r->case_id);
  ADD_STR ("action", r->action);
  ADD_STR ("certificateSerial", r->serial);
  ADD_STR ("officer", r->officer);
  ADD_STR ("outcome", r->outcome);
  ADD_STR ("channel", r->channel);
  ADD_STR ("signer", r->signer);
  ADD_STR ("tsa", r->tsa);
  ADD_STR ("tsaPolicy", r->tsa_policy);
  {
    g_autofree char *gt = r->gen_time ? tg_time_format (r->gen_time) : NULL;
    g_autofree char *sd = r->sealing_time ? tg_time_format (r->sealing_time) : NULL;
    ADD_STR ("genTime", gt);
    ADD_STR ("sealingDate", sd);
  }
  json_builder_set_member_name (b, "bytes");
  json_builder_add_int_value (b, (gint64) r->bytes);
  json_builder_set_member_name (b, "members");
  json_builder_add_int_value (b, r->n_members);
  json_builder_set_member_name (b, "warnings");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->warnings->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (r->warnings, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
#undef ADD_STR
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

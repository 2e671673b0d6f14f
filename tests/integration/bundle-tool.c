/* bundle-tool.c — test-only helper for tests/integration/test-bundle.py.
 *
 * Crafts precise attacks on evidence bundles so that each one reaches the
 * verifier check it targets instead of failing earlier on tar structure:
 *
 *   repack DIR OUT.tar MTIME
 *       the canonical tar of the bag directory DIR, written exactly as
 *       archive/seal.c writes it (members in byte order of name, directories
 *       with a trailing '/', pax_restricted, 0444/0555, root:root, MTIME,
 *       bytes_in_last_block 1). Symbolic links and extra hard links found in
 *       DIR are written as link members (for link attacks).
 *   append IN.tar OUT.tar NAME DATAFILE MTIME
 *       IN.tar with one more regular member NAME (any name, even unsafe)
 *       holding DATAFILE's bytes, written with the sealer's settings, before
 *       the end-of-archive blocks.
 *   token-over KEYS_DIR DATAFILE OUT.tsr GENTIME [NONCE_HEX]
 *       asks the built-in TSA of KEYS_DIR for a time-stamp over DATAFILE.
 *   replace-token IN.p7s TOKEN.tsr OUT.p7s
 *       replaces the signature-time-stamp unsigned attribute of the CMS with
 *       the token of a TimeStampResp.
 *   resign KEYS_DIR BAGDIR SEALING_TIME [GENTIME]
 *       re-creates BAGDIR/tagmanifest-sha256.txt.p7s and .p7s.tsr with the
 *       RA key and the built-in TSA of KEYS_DIR, the same steps as
 *       archive/seal.c's sign_tag_manifest (nonce from bag-info.txt,
 *       signingTime SEALING_TIME, genTime GENTIME or SEALING_TIME).
 *
 * Times are unix seconds or RFC 3339. Exit 0 on success, 1 on failure, 2 on
 * usage errors. Not installed; never used outside the tests.
 */
#include "config.h"
#include "bundle-private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
die (const char *what, GError *error)
{
  fprintf (stderr, "bundle-tool %s: %s\n", what, error ? error->message : "failed");
  g_clear_error (&error);
  return 1;
}

static gboolean
parse_time (const char *text, gint64 *out)
{
  guint64 v;

  if (g_ascii_string_to_unsigned (text, 10, 0, G_MAXINT64, &v, NULL))
    {
      *out = (gint64) v;
      return TRUE;
    }
  return tg_time_parse (text, out);
}

static gboolean
write_file (const char *path, const void *data, gsize len, GError **error)
{
  /* the extracted bag is read-only (0444): replace, don't rewrite in place */
  if (unlink (path) != 0 && errno != ENOENT)
    {
      tg_set_error_errno (error, errno, "cannot remove %s", path);
      return FALSE;
    }
  return g_file_set_contents (path, data, (gssize) len, error);
}

/* ------------------------------------------------------------- repack */

typedef struct {
  char *name; /* member name, directories end in '/' */
  char *path; /* file on disk */
  struct stat st;
} Entry;

static void
entry_free (gpointer p)
{
  Entry *e = p;

  g_free (e->name);
  g_free (e->path);
  g_free (e);
}

static int
entry_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(Entry *const *) a)->name, (*(Entry *const *) b)->name);
}

static gboolean
collect (const char *path, const char *name, GPtrArray *out, GError **error)
{
  Entry *e = g_new0 (Entry, 1);
  DIR *d;
  struct dirent *de;

  e->path = g_strdup (path);
  if (lstat (path, &e->st) != 0)
    {
      tg_set_error_errno (error, errno, "cannot stat %s", path);
      entry_free (e);
      return FALSE;
    }
  e->name = S_ISDIR (e->st.st_mode) ? g_strconcat (name, "/", NULL) : g_strdup (name);
  g_ptr_array_add (out, e);
  if (!S_ISDIR (e->st.st_mode))
    return TRUE;
  d = opendir (path);
  if (d == NULL)
    {
      tg_set_error_errno (error, errno, "cannot open directory %s", path);
      return FALSE;
    }
  while ((de = readdir (d)) != NULL)
    {
      g_autofree char *child_path = NULL, *child_name = NULL;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      child_path = g_build_filename (path, de->d_name, NULL);
      child_name = g_strconcat (name, "/", de->d_name, NULL);
      if (!collect (child_path, child_name, out, error))
        {
          closedir (d);
          return FALSE;
        }
    }
  closedir (d);
  return TRUE;
}

/* The sealer's writer settings (archive/seal.c, bundle_seal). */
static struct archive *
open_writer (int fd, GError **error)
{
  struct archive *a = archive_write_new ();

  archive_write_set_format_pax_restricted (a);
  archive_write_set_bytes_per_block (a, 64 * 1024);
  archive_write_set_bytes_in_last_block (a, 1);
  if (archive_write_open_fd (a, fd) != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot start the tar: %s", archive_error_string (a));
      archive_write_free (a);
      return NULL;
    }
  return a;
}

/* The sealer's header settings (archive/seal.c, write_header), plus links. */
static gboolean
write_entry (struct archive *a, const char *name, mode_t type, guint64 size, gint64 mtime,
             const char *symlink, const char *hardlink, GError **error)
{
  struct archive_entry *e = archive_entry_new ();
  int r;

  archive_entry_set_pathname (e, name);
  archive_entry_set_filetype (e, type);
  archive_entry_set_perm (e, type == AE_IFDIR ? 0555 : type == AE_IFLNK ? 0777 : 0444);
  archive_entry_set_size (e, type == AE_IFREG && hardlink == NULL ? (la_int64_t) size : 0);
  archive_entry_set_mtime (e, (time_t) mtime, 0);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  archive_entry_set_uname (e, "root");
  archive_entry_set_gname (e, "root");
  if (symlink)
    archive_entry_set_symlink (e, symlink);
  if (hardlink)
    archive_entry_set_hardlink (e, hardlink);
  r = archive_write_header (a, e);
  archive_entry_free (e);
  if (r != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot write header of %s: %s", name,
                   archive_error_string (a));
      return FALSE;
    }
  return TRUE;
}

static gboolean
write_file_data (struct archive *a, const char *name, const char *path, guint64 size, GError **error)
{
  g_autofree guint8 *buf = g_malloc (1 << 20);
  guint64 done = 0;
  int fd = open (path, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return FALSE;
    }
  for (;;)
    {
      ssize_t n = read (fd, buf, 1 << 20);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          tg_set_error_errno (error, errno, "cannot read %s", path);
          close (fd);
          return FALSE;
        }
      if (n == 0)
        break;
      if (archive_write_data (a, buf, (size_t) n) != n)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot write %s: %s", name, archive_error_string (a));
          close (fd);
          return FALSE;
        }
      done += (guint64) n;
    }
  close (fd);
  if (done != size)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "%s changed size while being packed", path);
      return FALSE;
    }
  return TRUE;
}

static int
cmd_repack (const char *dir, const char *out_path, const char *mtime_text)
{
  g_autoptr (GPtrArray) entries = g_ptr_array_new_with_free_func (entry_free);
  g_autoptr (GHashTable) inodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *clean = g_strdup (dir);
  g_autofree char *top = NULL;
  GError *error = NULL;
  struct archive *a;
  gint64 mtime;
  int fd;

  if (!parse_time (mtime_text, &mtime))
    {
      fprintf (stderr, "bundle-tool repack: bad MTIME %s\n", mtime_text);
      return 2;
    }
  while (strlen (clean) > 1 && g_str_has_suffix (clean, "/"))
    clean[strlen (clean) - 1] = '\0';
  top = g_path_get_basename (clean);
  if (!collect (clean, top, entries, &error))
    return die ("repack", error);
  g_ptr_array_sort (entries, entry_cmp);

  fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      tg_set_error_errno (&error, errno, "cannot create %s", out_path);
      return die ("repack", error);
    }
  if ((a = open_writer (fd, &error)) == NULL)
    {
      close (fd);
      return die ("repack", error);
    }
  for (guint i = 0; i < entries->len; i++)
    {
      Entry *e = g_ptr_array_index (entries, i);
      gboolean ok;
      if (S_ISDIR (e->st.st_mode))
        ok = write_entry (a, e->name, AE_IFDIR, 0, mtime, NULL, NULL, &error);
      else if (S_ISLNK (e->st.st_mode))
        {
          char target[4096];
          ssize_t n = readlink (e->path, target, sizeof target - 1);
          if (n < 0)
            {
              tg_set_error_errno (&error, errno, "cannot read link %s", e->path);
              ok = FALSE;
            }
          else
            {
              target[n] = '\0';
              ok = write_entry (a, e->name, AE_IFLNK, 0, mtime, target, NULL, &error);
            }
        }
      else if (S_ISREG (e->st.st_mode))
        {
          g_autofree char *key = g_strdup_printf ("%ju:%ju", (uintmax_t) e->st.st_dev,
                                                  (uintmax_t) e->st.st_ino);
          const char *first = e->st.st_nlink > 1 ? g_hash_table_lookup (inodes, key) : NULL;
          if (first != NULL)
            ok = write_entry (a, e->name, AE_IFREG, 0, mtime, NULL, first, &error);
          else
            {
              if (e->st.st_nlink > 1)
                g_hash_table_insert (inodes, g_steal_pointer (&key), g_strdup (e->name));
              ok = write_entry (a, e->name, AE_IFREG, (guint64) e->st.st_size, mtime, NULL, NULL, &error)
                   && write_file_data (a, e->name, e->path, (guint64) e->st.st_size, &error);
            }
        }
      else
        {
          g_set_error (&error, TG_ERROR, TG_ERROR_INVALID, "%s is not a file, directory or link", e->path);
          ok = FALSE;
        }
      if (!ok)
        {
          archive_write_fail (a);
          archive_write_free (a);
          close (fd);
          return die ("repack", error);
        }
    }
  if (archive_write_close (a) != ARCHIVE_OK)
    {
      g_set_error (&error, TG_ERROR, TG_ERROR_IO, "cannot finish %s: %s", out_path, archive_error_string (a));
      archive_write_free (a);
      close (fd);
      return die ("repack", error);
    }
  archive_write_free (a);
  if (close (fd) != 0)
    {
      tg_set_error_errno (&error, errno, "cannot close %s", out_path);
      return die ("repack", error);
    }
  return 0;
}

/* ------------------------------------------------------------- append */

static int
cmd_append (const char *in_path, const char *out_path, const char *name, const char *data_path,
            const char *mtime_text)
{
  g_autofree char *tar = NULL;
  gsize tar_len;
  GError *error = NULL;
  struct archive *a;
  struct stat st;
  gint64 mtime;
  int fd;

  if (!parse_time (mtime_text, &mtime))
    {
      fprintf (stderr, "bundle-tool append: bad MTIME %s\n", mtime_text);
      return 2;
    }
  if (!g_file_get_contents (in_path, &tar, &tar_len, &error))
    return die ("append", error);
  if (tar_len < 2 * BUNDLE_TAR_BLOCK || tar_len % BUNDLE_TAR_BLOCK != 0)
    {
      fprintf (stderr, "bundle-tool append: %s does not end in tar blocks\n", in_path);
      return 1;
    }
  for (gsize i = tar_len - 2 * BUNDLE_TAR_BLOCK; i < tar_len; i++)
    if (tar[i] != 0)
      {
        fprintf (stderr, "bundle-tool append: %s does not end with two zero blocks\n", in_path);
        return 1;
      }
  if (stat (data_path, &st) != 0)
    {
      tg_set_error_errno (&error, errno, "cannot stat %s", data_path);
      return die ("append", error);
    }
  fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      tg_set_error_errno (&error, errno, "cannot create %s", out_path);
      return die ("append", error);
    }
  /* everything but the end blocks, then the new member and new end blocks */
  if (!tg_write_all (fd, tar, tar_len - 2 * BUNDLE_TAR_BLOCK, out_path, &error)
      || (a = open_writer (fd, &error)) == NULL)
    {
      close (fd);
      return die ("append", error);
    }
  if (!write_entry (a, name, AE_IFREG, (guint64) st.st_size, mtime, NULL, NULL, &error)
      || !write_file_data (a, name, data_path, (guint64) st.st_size, &error))
    {
      archive_write_fail (a);
      archive_write_free (a);
      close (fd);
      return die ("append", error);
    }
  if (archive_write_close (a) != ARCHIVE_OK)
    {
      g_set_error (&error, TG_ERROR, TG_ERROR_IO, "cannot finish %s: %s", out_path, archive_error_string (a));
      archive_write_free (a);
      close (fd);
      return die ("append", error);
    }
  archive_write_free (a);
  close (fd);
  return 0;
}

/* ------------------------------------------------------------- tokens */

static GBytes *
request_der (const guint8 *data, gsize len, guint64 nonce, GError **error)
{
  g_autoptr (TS_REQ) req = bundle_ts_request_new (data, len, nonce, NULL, error);
  guint8 *der = NULL;
  int der_len;
  GBytes *out;

  if (req == NULL)
    return NULL;
  der_len = i2d_TS_REQ (req, &der);
  if (der_len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the time-stamp request");
      return NULL;
    }
  out = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  return out;
}

static int
cmd_token_over (const char *keys, const char *data_path, const char *out_path, const char *gen_text,
                const char *nonce_text)
{
  g_autofree char *data = NULL;
  gsize len;
  GError *error = NULL;
  g_autoptr (BundleTsa) tsa = NULL;
  g_autoptr (GBytes) req = NULL, resp = NULL;
  gint64 gen_time;
  guint64 nonce = 1;

  if (!parse_time (gen_text, &gen_time)
      || (nonce_text && !g_ascii_string_to_unsigned (nonce_text, 16, 0, G_MAXUINT64, &nonce, NULL)))
    {
      fprintf (stderr, "bundle-tool token-over: bad GENTIME or NONCE_HEX\n");
      return 2;
    }
  if (!g_file_get_contents (data_path, &data, &len, &error)
      || (tsa = bundle_tsa_new (keys, &error)) == NULL
      || (req = request_der ((const guint8 *) data, len, nonce, &error)) == NULL
      || (resp = bundle_tsa_respond (tsa, req, gen_time, &error)) == NULL
      || !write_file (out_path, g_bytes_get_data (resp, NULL), g_bytes_get_size (resp), &error))
    return die ("token-over", error);
  return 0;
}

static CMS_ContentInfo *
read_cms (const char *path, GError **error)
{
  g_autofree char *der = NULL;
  gsize len;
  const guint8 *p;
  CMS_ContentInfo *cms;

  if (!g_file_get_contents (path, &der, &len, error))
    return NULL;
  p = (const guint8 *) der;
  cms = d2i_CMS_ContentInfo (NULL, &p, (long) len);
  if (cms == NULL)
    tg_set_error_openssl (error, "%s is not a DER CMS ContentInfo", path);
  return cms;
}

static gboolean
write_cms (CMS_ContentInfo *cms, const char *path, GError **error)
{
  guint8 *der = NULL;
  int len = i2d_CMS_ContentInfo (cms, &der);
  gboolean ok;

  if (len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the CMS for %s", path);
      return FALSE;
    }
  ok = write_file (path, der, (gsize) len, error);
  OPENSSL_free (der);
  return ok;
}

static int
cmd_replace_token (const char *in_path, const char *tsr_path, const char *out_path)
{
  GError *error = NULL;
  g_autoptr (CMS_ContentInfo) cms = NULL;
  g_autofree char *tsr = NULL;
  gsize tsr_len;
  g_autoptr (GBytes) tsr_bytes = NULL, token = NULL;
  CMS_SignerInfo *si;
  int idx;

  if ((cms = read_cms (in_path, &error)) == NULL || !g_file_get_contents (tsr_path, &tsr, &tsr_len, &error))
    return die ("replace-token", error);
  tsr_bytes = g_bytes_new (tsr, tsr_len);
  if ((token = bundle_ts_response_token (tsr_bytes, &error)) == NULL)
    return die ("replace-token", error);
  si = sk_CMS_SignerInfo_value (CMS_get0_SignerInfos (cms), 0);
  if (si == NULL)
    {
      fprintf (stderr, "bundle-tool replace-token: %s has no signer\n", in_path);
      return 1;
    }
  while ((idx = CMS_unsigned_get_attr_by_NID (si, NID_id_smime_aa_timeStampToken, -1)) >= 0)
    X509_ATTRIBUTE_free (CMS_unsigned_delete_attr (si, idx));
  if (!CMS_unsigned_add1_attr_by_NID (si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE,
                                      g_bytes_get_data (token, NULL), (int) g_bytes_get_size (token)))
    {
      tg_set_error_openssl (&error, "cannot add the time-stamp attribute");
      return die ("replace-token", error);
    }
  if (!write_cms (cms, out_path, &error))
    return die ("replace-token", error);
  return 0;
}

/* ------------------------------------------------------------- resign */

/* The same steps as sign_tag_manifest in archive/seal.c, without checking the
 * TSA reply (the built-in TSA is ours). */
static int
cmd_resign (const char *keys, const char *bag, const char *time_text, const char *gen_text)
{
  g_autofree char *key_path = g_build_filename (keys, "ra.key", NULL);
  g_autofree char *cert_path = g_build_filename (keys, "ra.pem", NULL);
  g_autofree char *tm_path = g_build_filename (bag, "tagmanifest-sha256.txt", NULL);
  g_autofree char *info_path = g_build_filename (bag, "bag-info.txt", NULL);
  g_autofree char *p7s_path = g_build_filename (bag, "tagmanifest-sha256.txt.p7s", NULL);
  g_autofree char *tsr_path = g_build_filename (bag, "tagmanifest-sha256.txt.p7s.tsr", NULL);
  g_autofree char *tm = NULL, *info = NULL, *nonce_hex = NULL;
  gsize tm_len, info_len;
  GError *error = NULL;
  g_autoptr (EVP_PKEY) key = NULL;
  g_autoptr (BundleCertStack) certs = NULL;
  g_autoptr (BundleTsa) tsa = NULL;
  g_autoptr (BIO) in = NULL;
  g_autoptr (CMS_ContentInfo) cms = NULL;
  g_autoptr (ASN1_TIME) signing_time = NULL;
  g_autoptr (GBytes) req = NULL, resp = NULL, token = NULL;
  CMS_SignerInfo *si;
  ASN1_OCTET_STRING *sig;
  const char *nonce_line;
  guint64 nonce;
  gint64 sealing_time, gen_time;

  if (!parse_time (time_text, &sealing_time) || !parse_time (gen_text ? gen_text : time_text, &gen_time))
    {
      fprintf (stderr, "bundle-tool resign: bad SEALING_TIME or GENTIME\n");
      return 2;
    }
  if (!g_file_get_contents (tm_path, &tm, &tm_len, &error)
      || !g_file_get_contents (info_path, &info, &info_len, &error)
      || (key = bundle_load_key (key_path, &error)) == NULL
      || (certs = bundle_load_certs (cert_path, &error)) == NULL
      || (tsa = bundle_tsa_new (keys, &error)) == NULL)
    return die ("resign", error);
  nonce_line = strstr (info, "\nTimestamp-Nonce: ");
  if (nonce_line != NULL)
    nonce_hex = g_strndup (nonce_line + 18, 16);
  if (nonce_hex == NULL || !g_ascii_string_to_unsigned (nonce_hex, 16, 0, G_MAXUINT64, &nonce, NULL))
    {
      fprintf (stderr, "bundle-tool resign: %s has no Timestamp-Nonce\n", info_path);
      return 1;
    }

  in = BIO_new_mem_buf (tm, (int) tm_len);
  cms = CMS_sign (NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_DETACHED | CMS_BINARY);
  signing_time = ASN1_TIME_set (NULL, (time_t) sealing_time);
  if (cms == NULL || signing_time == NULL)
    goto fail;
  si = CMS_add1_signer (cms, sk_X509_value (certs, 0), key, EVP_sha256 (),
                        CMS_PARTIAL | CMS_BINARY | CMS_CADES | CMS_NOSMIMECAP);
  if (si == NULL
      || !CMS_signed_add1_attr_by_NID (si, NID_pkcs9_signingTime, signing_time->type, signing_time, -1))
    goto fail;
  for (int i = 1; i < sk_X509_num (certs); i++)
    if (!CMS_add1_cert (cms, sk_X509_value (certs, i)))
      goto fail;
  if (!CMS_final (cms, in, NULL, CMS_BINARY | CMS_DETACHED))
    goto fail;
  sig = CMS_SignerInfo_get0_signature (si);
  if ((req = request_der (ASN1_STRING_get0_data (sig), (gsize) ASN1_STRING_length (sig), nonce, &error)) == NULL
      || (resp = bundle_tsa_respond (tsa, req, gen_time, &error)) == NULL
      || (token = bundle_ts_response_token (resp, &error)) == NULL)
    return die ("resign", error);
  if (!CMS_unsigned_add1_attr_by_NID (si, NID_id_smime_aa_timeStampToken, V_ASN1_SEQUENCE,
                                      g_bytes_get_data (token, NULL), (int) g_bytes_get_size (token)))
    goto fail;
  if (!write_cms (cms, p7s_path, &error)
      || !write_file (tsr_path, g_bytes_get_data (resp, NULL), g_bytes_get_size (resp), &error))
    return die ("resign", error);
  return 0;

fail:
  tg_set_error_openssl (&error, "cannot sign %s", tm_path);
  return die ("resign", error);
}

/* --------------------------------------------------------------- main */

static int
usage (void)
{
  fprintf (stderr,
           "usage: bundle-tool repack DIR OUT.tar MTIME\n"
           "       bundle-tool append IN.tar OUT.tar NAME DATAFILE MTIME\n"
           "       bundle-tool token-over KEYS_DIR DATAFILE OUT.tsr GENTIME [NONCE_HEX]\n"
           "       bundle-tool replace-token IN.p7s TOKEN.tsr OUT.p7s\n"
           "       bundle-tool resign KEYS_DIR BAGDIR SEALING_TIME [GENTIME]\n");
  return 2;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return usage ();
  if (strcmp (argv[1], "repack") == 0 && argc == 5)
    return cmd_repack (argv[2], argv[3], argv[4]);
  if (strcmp (argv[1], "append") == 0 && argc == 7)
    return cmd_append (argv[2], argv[3], argv[4], argv[5], argv[6]);
  if (strcmp (argv[1], "token-over") == 0 && (argc == 6 || argc == 7))
    return cmd_token_over (argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
  if (strcmp (argv[1], "replace-token") == 0 && argc == 5)
    return cmd_replace_token (argv[2], argv[3], argv[4]);
  if (strcmp (argv[1], "resign") == 0 && (argc == 5 || argc == 6))
    return cmd_resign (argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
  return usage ();
}

/* tg-common.c — see tg-common.h */
#include "config.h"
#include "tg-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

G_DEFINE_QUARK (tg-error-quark, tg_error)

void
tg_set_error_openssl (GError **error, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  char reason[256] = "";
  unsigned long e;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);

  e = ERR_peek_last_error ();
  if (e != 0)
    ERR_error_string_n (e, reason, sizeof reason);
  ERR_clear_error ();
  if (reason[0] != '\0')
    g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "%s: %s", msg, reason);
  else
    g_set_error_literal (error, TG_ERROR, TG_ERROR_CRYPTO, msg);
}

void
tg_set_error_errno (GError **error, int errsv, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  int code = TG_ERROR_IO;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (errsv == ENOSPC || errsv == EDQUOT)
    code = TG_ERROR_NOSPACE;
  else if (errsv == EEXIST)
    code = TG_ERROR_EXISTS;
  g_set_error (error, TG_ERROR, code, "%s: %s", msg, g_strerror (errsv));
}

gboolean
tg_write_all (int fd, const void *buf, gsize len, const char *what, GError **error)
{
  const guint8 *p = buf;

  while (len > 0)
    {
      ssize_t n = write (fd, p, MIN (len, (gsize) 1 << 30));
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          tg_set_error_errno (error, errno, "cannot write %s", what);
          return FALSE;
        }
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

struct _TgAtomicFile {
  char *path;
  char *partial;
  int fd;
  mode_t mode;
  gboolean committed;
};

TgAtomicFile *
tg_atomic_file_new (const char *path, mode_t mode, gboolean overwrite, GError **error)
{
  g_autoptr (TgAtomicFile) file = g_new0 (TgAtomicFile, 1);

  file->fd = -1;
  file->path = g_strdup (path);
  file->partial = g_strconcat (path, ".partial", NULL);
  file->mode = mode;
  if (!overwrite && access (path, F_OK) == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_EXISTS, "%s already exists; refusing to overwrite", path);
      file->committed = TRUE; /* nothing of ours to remove */
      return NULL;
    }
  file->fd = open (file->partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (file->fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", file->partial);
      file->committed = TRUE; /* the partial is not ours: never unlink it */
      return NULL;
    }
  return g_steal_pointer (&file);
}

int
tg_atomic_file_get_fd (TgAtomicFile *file)
{
  return file->fd;
}

gboolean
tg_atomic_file_write (TgAtomicFile *file, const void *buf, gsize len, GError **error)
{
  return tg_write_all (file->fd, buf, len, file->partial, error);
}

static gboolean
fsync_parent_dir (const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (dfd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open directory %s", dir);
      return FALSE;
    }
  if (fsync (dfd) != 0 && errno != EINVAL)
    {
      tg_set_error_errno (error, errno, "cannot fsync directory %s", dir);
      close (dfd);
      return FALSE;
    }
  close (dfd);
  return TRUE;
}

gboolean
tg_atomic_file_commit (TgAtomicFile *file, GError **error)
{
  g_return_val_if_fail (!file->committed, FALSE);

  if (fsync (file->fd) != 0)
    {
      tg_set_error_errno (error, errno, "cannot fsync %s", file->partial);
      return FALSE;
    }
  if (fchmod (file->fd, file->mode) != 0)
    {
      tg_set_error_errno (error, errno, "cannot chmod %s", file->partial);
      return FALSE;
    }
  if (close (file->fd) != 0)
    {
      file->fd = -1;
      tg_set_error_errno (error, errno, "cannot close %s", file->partial);
      return FALSE;
    }
  file->fd = -1;
  if (rename (file->partial, file->path) != 0)
    {
      tg_set_error_errno (error, errno, "cannot rename %s to %s", file->partial, file->path);
      return FALSE;
    }
  file->committed = TRUE;
  return fsync_parent_dir (file->path, error);
}

void
tg_atomic_file_free (TgAtomicFile *file)
{
  if (file == NULL)
    return;
  if (file->fd >= 0)
    close (file->fd);
  if (!file->committed)
    (void) unlink (file->partial);
  g_free (file->path);
  g_free (file->partial);
  g_free (file);
}

gboolean
tg_file_get_contents_capped (const char *path, gsize max_size, char **contents, gsize *len,
                             GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  g_autofree char *buf = NULL;
  gsize have = 0;

  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return FALSE;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s is not a regular file", path);
      close (fd);
      return FALSE;
    }
  if ((guint64) st.st_size > max_size)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "%s is %" G_GUINT64_FORMAT
                   " bytes, over the limit of %" G_GSIZE_FORMAT, path, (guint64) st.st_size, max_size);
      close (fd);
      return FALSE;
    }
  buf = g_malloc ((gsize) st.st_size + 1);
  for (;;)
    {
      ssize_t n;
      if (have == (gsize) st.st_size)
        {
          /* Make sure the file did not grow past what we sized for. */
          char extra;
          n = read (fd, &extra, 1);
          if (n > 0)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s changed while being read", path);
              close (fd);
              return FALSE;
            }
          break;
        }
      n = read (fd, buf + have, (gsize) st.st_size - have);
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
      have += (gsize) n;
    }
  close (fd);
  buf[have] = '\0';
  *contents = g_steal_pointer (&buf);
  if (len)
    *len = have;
  return TRUE;
}

gboolean
tg_write_file_excl (const char *path, const void *buf, gsize len, mode_t mode, GError **error)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", path);
      return FALSE;
    }
  if (!tg_write_all (fd, buf, len, path, error))
    {
      close (fd);
      (void) unlink (path);
      return FALSE;
    }
  if (fsync (fd) != 0)
    {
      tg_set_error_errno (error, errno, "cannot fsync %s", path);
      close (fd);
      return FALSE;
    }
  close (fd);
  return TRUE;
}

char *
tg_hex (const guint8 *buf, gsize len)
{
  static const char digits[] = "0123456789abcdef";
  char *out = g_malloc (len * 2 + 1);

  for (gsize i = 0; i < len; i++)
    {
      out[2 * i] = digits[buf[i] >> 4];
      out[2 * i + 1] = digits[buf[i] & 0xf];
    }
  out[len * 2] = '\0';
  return out;
}

char *
tg_sha256_hex (const void *buf, gsize len)
{
  guint8 md[32];

  EVP_Digest (buf, len, md, NULL, EVP_sha256 (), NULL);
  return tg_hex (md, sizeof md);
}

gboolean
tg_sha256_file (const char *path, guint8 out[32], guint64 *size, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  EVP_MD_CTX *ctx;
  g_autofree guint8 *buf = NULL;
  guint64 total = 0;
  gboolean ok = TRUE;

  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return FALSE;
    }
  buf = g_malloc (1 << 20);
  ctx = EVP_MD_CTX_new ();
  EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
  for (;;)
    {
      ssize_t n = read (fd, buf, 1 << 20);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          tg_set_error_errno (error, errno, "cannot read %s", path);
          ok = FALSE;
          break;
        }
      if (n == 0)
        break;
      EVP_DigestUpdate (ctx, buf, (size_t) n);
      total += (guint64) n;
    }
  if (ok)
    EVP_DigestFinal_ex (ctx, out, NULL);
  EVP_MD_CTX_free (ctx);
  close (fd);
  if (size)
    *size = total;
  return ok;
}

char *
tg_time_format (gint64 unix_seconds)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);

  if (dt == NULL)
    return g_strdup ("invalid-time");
  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

gboolean
tg_time_parse (const char *text, gint64 *unix_seconds)
{
  g_autoptr (GDateTime) dt = NULL;
  gsize len;

  if (text == NULL)
    return FALSE;
  len = strlen (text);
  /* RFC 3339: date 'T' time with an explicit offset; GLib's ISO 8601 parser is
   * laxer (it takes lowercase t, missing seconds), so check the shape first. */
  if (len < 20 || len > 40 || text[4] != '-' || text[7] != '-' || text[10] != 'T'
      || text[13] != ':' || text[16] != ':')
    return FALSE;
  dt = g_date_time_new_from_iso8601 (text, NULL);
  if (dt == NULL)
    return FALSE;
  *unix_seconds = g_date_time_to_unix (dt);
  return TRUE;
}

struct _TgProgress {
  char *label;
  guint64 total;
  gint64 last_us;
  int last_pct;
};

TgProgress *
tg_progress_new (const char *label, guint64 total)
{
  TgProgress *p;

  if (total < (64u << 20) || !isatty (STDERR_FILENO))
    return NULL;
  p = g_new0 (TgProgress, 1);
  p->label = g_strdup (label);
  p->total = total;
  p->last_pct = -1;
  return p;
}

void
tg_progress_update (TgProgress *p, guint64 done)
{
  gint64 now;
  int pct;

  if (p == NULL)
    return;
  now = g_get_monotonic_time ();
  pct = (int) (done * 100 / p->total);
  if (pct == p->last_pct || (now - p->last_us < 200000 && pct < 100))
    return;
  p->last_pct = pct;
  p->last_us = now;
  fprintf (stderr, "\r%s: %3d%% (%" G_GUINT64_FORMAT " / %" G_GUINT64_FORMAT " MiB)", p->label,
           pct, done >> 20, p->total >> 20);
  fflush (stderr);
}

void
tg_progress_free (TgProgress *p)
{
  if (p == NULL)
    return;
  fputc ('\n', stderr);
  g_free (p->label);
  g_free (p);
}

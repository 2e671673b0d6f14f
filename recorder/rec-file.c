/* rec-file.c — one recording part on disk: append with write(2), hash every
 * byte, fdatasync, then chain the durable range into events.jsonl. */
#include "config.h"
#include "recorder-private.h"
#include "tg-common.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

struct _RecPartFile {
  GMutex lock;
  RecLog *log;        /* not owned */
  char *name;
  char *path;
  int fd;
  guint64 size;       /* bytes written */
  guint64 chained;    /* bytes covered by segment entries */
  GChecksum *pending; /* hash of bytes chained..size */
  gint64 pending_since;
  gboolean failed;
};

RecPartFile *
rec_part_file_new (const char *dir, const char *name, RecLog *log, GError **error)
{
  g_autoptr (RecPartFile) f = g_new0 (RecPartFile, 1);

  g_mutex_init (&f->lock);
  f->log = log;
  f->name = g_strdup (name);
  f->path = g_build_filename (dir, name, NULL);
  f->pending = g_checksum_new (G_CHECKSUM_SHA256);
  f->fd = open (f->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (f->fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", f->path);
      return NULL;
    }
  return g_steal_pointer (&f);
}

gboolean
rec_part_file_write (RecPartFile *f, const guint8 *data, gsize len, GError **error)
{
  gboolean ok = TRUE;

  g_mutex_lock (&f->lock);
  if (f->failed)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_FAILED, "%s: writing stopped after an error", f->name);
      ok = FALSE;
      goto out;
    }
  while (len > 0)
    {
      ssize_t n = write (f->fd, data, MIN (len, (gsize) 1 << 30));
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          tg_set_error_errno (error, errno, "cannot write %s", f->name);
          f->failed = TRUE;
          ok = FALSE;
          goto out;
        }
      /* Bytes on disk are hashed even if a later write fails: they may be chained. */
      g_checksum_update (f->pending, data, (gssize) n);
      if (f->size == f->chained)
        f->pending_since = g_get_monotonic_time ();
      f->size += (guint64) n;
      data += n;
      len -= (gsize) n;
    }
out:
  g_mutex_unlock (&f->lock);
  return ok;
}

gboolean
rec_part_file_flush (RecPartFile *f, guint64 running_time_ns, GError **error)
{
  gboolean ok = TRUE;
  guint8 digest[32];
  gsize dlen = sizeof digest;

  g_mutex_lock (&f->lock);
  if (f->size == f->chained || f->fd < 0)
    goto out;
  if (fdatasync (f->fd) != 0)
    {
      tg_set_error_errno (error, errno, "cannot fdatasync %s", f->name);
      f->failed = TRUE;
      ok = FALSE;
      goto out;
    }
  {
    /* Digest a copy: if the log cannot take the entry (disk full), the
     * pending range stays open and is chained by a later flush. */
    GChecksum *copy = g_checksum_copy (f->pending);
    g_checksum_get_digest (copy, digest, &dlen);
    g_checksum_free (copy);
  }
  if (!rec_log_append_segment (f->log, f->name, f->chained, f->size - f->chained, digest,
                               running_time_ns, error))
    {
      ok = FALSE;
      goto out;
    }
  f->chained = f->size;
  g_checksum_reset (f->pending);
out:
  g_mutex_unlock (&f->lock);
  return ok;
}

gboolean
rec_part_file_due (RecPartFile *f, gint64 interval_us)
{
  gboolean due;
  g_mutex_lock (&f->lock);
  due = f->size > f->chained && !f->failed
        && g_get_monotonic_time () - f->pending_since >= interval_us;
  g_mutex_unlock (&f->lock);
  return due;
}

guint64
rec_part_file_size (RecPartFile *f)
{
  guint64 v;
  g_mutex_lock (&f->lock);
  v = f->size;
  g_mutex_unlock (&f->lock);
  return v;
}

const char *
rec_part_file_name (RecPartFile *f)
{
  return f->name;
}

gboolean
rec_part_file_failed (RecPartFile *f)
{
  gboolean v;
  g_mutex_lock (&f->lock);
  v = f->failed;
  g_mutex_unlock (&f->lock);
  return v;
}

void
rec_part_file_free (RecPartFile *f)
{
  if (f == NULL)
    return;
  if (f->fd >= 0)
    close (f->fd);
  g_checksum_free (f->pending);
  g_mutex_clear (&f->lock);
  g_free (f->name);
  g_free (f->path);
  g_free (f);
}

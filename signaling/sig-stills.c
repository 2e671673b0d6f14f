/* sig-stills.c — serves the recorder's stills of a session to the officer
 * console: GET /api/sessions/<id>/stills/<name>.png (docs/protocol.md).
 *
 * The still is read from <state>/sessions/<id>/stills/<name>, where the
 * recorder commits it atomically before it reports still-saved. Every path
 * component is opened with O_NOFOLLOW relative to the previous one, so a
 * symbolic link planted anywhere below sessions/ is never followed. */
#include "sig-stills.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const guint8 png_signature[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

gboolean
sig_still_name_ok (const char *name)
{
  gsize n;

  if (name == NULL || !g_ascii_isalnum (name[0]))
    return FALSE;
  n = strlen (name);
  if (n > 64 || n < 5 || !g_str_has_suffix (name, ".png"))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static gboolean
session_exists (SigServer *srv, const char *session_id, gboolean *db_error)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT 1 FROM sessions WHERE id = ?", NULL);

  *db_error = st == NULL;
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  return sqlite3_step (st) == SQLITE_ROW;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Opens sessions/<session_id>/stills/<name> without following links; -1
 * with errno set when it is absent or not reachable that way. */
static int
open_still (SigServer *srv, const char *session_id, const char *name)
{
  int top = -1, dir = -1, stills = -1, fd = -1, errsv;

  top = open (srv->sessions_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (top >= 0)
    dir = openat (top, session_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir >= 0)
    stills = openat (dir, "stills", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (stills >= 0)
    fd = openat (stills, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  errsv = errno;
  close_fd (&stills);
  close_fd (&dir);
  close_fd (&top);
  errno = errsv;
  return fd;
}

/* Reads the whole of @fd (a regular file of @size bytes, at most
 * SIG_MAX_STILL); NULL with @error set when it cannot or the file changed size. */
static GBytes *
read_all (int fd, goffset size, GError **error)
{
  g_autofree guint8 *buf = g_malloc (size + 1);
  gsize got = 0;

  while (got <= (gsize) size)
    {
      ssize_t r = read (fd, buf + got, (gsize) size + 1 - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          tg_set_error_errno (error, errno, "cannot read the still");
          return NULL;
        }
      if (r == 0)
        break;
      got += (gsize) r;
    }
  if (got != (gsize) size)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "the still changed size while being read");
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&buf), got);
}

void
sig_stills_serve (SigServer *srv, SoupServerMessage *msg, const char *session_id, const char *name)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  gboolean db_error = FALSE;
  struct stat st;
  int fd;

  if (!sig_identifier_ok (session_id) || !session_exists (srv, session_id, &db_error))
    {
      if (db_error)
        sig_reply_error (msg, 500, NULL, "database error");
      else
        sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no session %s",
                         sig_identifier_ok (session_id) ? session_id : "(bad id)");
      return;
    }
  if (!sig_still_name_ok (name))
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, NULL,
                       "a still is named by letters, digits, '.', '_' or '-' ending in .png (at most 64 bytes)");
      return;
    }
  fd = open_still (srv, session_id, name);
  if (fd < 0)
    {
      if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
        g_warning ("session %s: still %s: %s", session_id, name, g_strerror (errno));
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "session %s has no still %s", session_id, name);
      return;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "session %s has no still %s", session_id, name);
      return;
    }
  if (st.st_size > SIG_MAX_STILL || st.st_size < (goffset) sizeof png_signature)
    {
      close (fd);
      g_warning ("session %s: still %s has %" G_GINT64_FORMAT " bytes; not served", session_id, name,
                 (gint64) st.st_size);
      sig_reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "still %s has %" G_GINT64_FORMAT
                       " bytes, outside 8..%" G_GINT64_FORMAT, name, (gint64) st.st_size, (gint64) SIG_MAX_STILL);
      return;
    }
  bytes = read_all (fd, st.st_size, &error);
  close (fd);
  if (bytes == NULL)
    {
      g_warning ("session %s: still %s: %s", session_id, name, error->message);
      sig_reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "still %s: %s", name, error->message);
      return;
    }
  if (memcmp (g_bytes_get_data (bytes, NULL), png_signature, sizeof png_signature) != 0)
    {
      g_warning ("session %s: still %s is not a PNG; not served", session_id, name);
      sig_reply_error (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "still %s is not a PNG", name);
      return;
    }
  /* evidence of an identity check: never cached, never sniffed as anything else */
  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_message_headers_set_content_type (h, "image/png", NULL);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

/* tar.c — the canonical tar encoding of one member, shared by the sealer and
 * the verifier: the verifier accepts only headers that are byte-for-byte what
 * the sealer writes, which closes every two-parsers-disagree trick (pax/ustar
 * size disagreement, unknown or malformed pax keys, odd modes, owners). */
#include "config.h"
#include "bundle-private.h"

#include <string.h>

typedef struct {
  GByteArray *out;
  gboolean header_done; /* later writes (the data's zero filler) are dropped */
} CaptureCtx;

static la_ssize_t
capture_write (struct archive *a, void *data, const void *buf, size_t len)
{
  CaptureCtx *ctx = data;

  if (!ctx->header_done)
    g_byte_array_append (ctx->out, buf, (guint) len);
  return (la_ssize_t) len;
}

gboolean
bundle_name_is_safe (const char *name)
{
  g_auto (GStrv) parts = NULL;
  gsize len;

  if (name == NULL || (len = strlen (name)) == 0 || len > 255 || name[0] == '/')
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '/' && *p != '-')
      return FALSE;
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    {
      gboolean last = parts[i + 1] == NULL;
      /* a trailing '/' (directory) leaves one empty last part */
      if (parts[i][0] == '\0' && !(last && i > 0))
        return FALSE;
      if (strcmp (parts[i], ".") == 0 || strcmp (parts[i], "..") == 0)
        return FALSE;
    }
  return TRUE;
}

GBytes *
bundle_tar_header (const char *name, gboolean is_dir, guint64 size, gint64 mtime, GError **error)
{
  struct archive *a = archive_write_new ();
  struct archive_entry *e = archive_entry_new ();
  CaptureCtx ctx = { g_byte_array_new (), FALSE };
  GBytes *result = NULL;

  archive_write_set_format_pax_restricted (a);
  archive_write_set_bytes_per_block (a, 0); /* unbuffered: we see each header as written */
  if (archive_write_open (a, &ctx, NULL, capture_write, NULL) != ARCHIVE_OK)
    goto out;
  archive_entry_set_pathname (e, name);
  archive_entry_set_filetype (e, is_dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm (e, is_dir ? 0555 : 0444);
  archive_entry_set_size (e, is_dir ? 0 : (la_int64_t) size);
  archive_entry_set_mtime (e, (time_t) mtime, 0);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  archive_entry_set_uname (e, "root");
  archive_entry_set_gname (e, "root");
  if (archive_write_header (a, e) != ARCHIVE_OK)
    goto out;
  result = g_bytes_new (ctx.out->data, ctx.out->len);
  ctx.header_done = TRUE;

out:
  if (result == NULL)
    g_set_error (error, TG_ERROR, TG_ERROR_FAILED, "cannot encode tar header for %s: %s", name,
                 archive_error_string (a) ? archive_error_string (a) : "unknown error");
  /* Not archive_write_fail(): libarchive 3.6 leaks the client state on that
   * path. Closing writes the entry's zero filler, which capture_write drops. */
  archive_write_free (a);
  archive_entry_free (e);
  g_byte_array_unref (ctx.out);
  return result;
}

/* rec-log.c — events.jsonl writer: append-only, one fsync'ed line per event,
 * seq contiguous from 0, every line checked against event.schema.json, and the
 * rolling SHA-256 chain over the recording bytes (docs: archive/chain.c):
 * chain_i = SHA-256 (chain_{i-1} || sha256_i), chain_{-1} = 32 zero bytes. */
#include "config.h"
#include "recorder-private.h"
#include "tg-common.h"
#include "tg-schema.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

GST_DEBUG_CATEGORY (rec_debug);

G_DEFINE_QUARK (rec-error-quark, rec_error)

void
rec_debug_init (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once))
    {
      GST_DEBUG_CATEGORY_INIT (rec_debug, "testigo-recorder", 0, "Testigo session recorder");
      g_once_init_leave (&once, 1);
    }
}

char *
rec_time_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *base = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%03dZ", base, g_date_time_get_microsecond (now) / 1000);
}

struct _RecLog {
  GMutex lock;
  char *path;
  char *session_id;
  int fd;
  guint64 next_seq;
  guint8 chain[32];
  guint max_part;
};

static gboolean
hex_to_32 (const char *hex, guint8 out[32])
{
  if (hex == NULL || strlen (hex) != 64)
    return FALSE;
  for (int i = 0; i < 32; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

/* Reads an existing log back: seq, chain head, highest part. */
static gboolean
recover (RecLog *log, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0, start = 0, keep;
  guint line_no = 0;

  if (!tg_file_get_contents_capped (log->path, 64 * 1024 * 1024, &text, &len, error))
    return FALSE;
  keep = len;
  while (keep > 0 && text[keep - 1] != '\n')
    keep--;
  if (keep != len)
    {
      REC_WARN (log->session_id, "events.jsonl: cutting a torn last line of %" G_GSIZE_FORMAT " bytes",
                len - keep);
      if (ftruncate (log->fd, (off_t) keep) != 0 || fsync (log->fd) != 0)
        {
          tg_set_error_errno (error, errno, "cannot cut the torn line of %s", log->path);
          return FALSE;
        }
    }
  while (start < keep)
    {
      const char *nl = memchr (text + start, '\n', keep - start);
      gsize line_len = (gsize) (nl - (text + start));
      g_autoptr (JsonNode) node = NULL;
      g_autoptr (GError) local = NULL;
      JsonObject *obj;
      const char *type;

      line_no++;
      node = tg_json_parse_strict (text + start, line_len, TG_SCHEMA_EVENT_MAX_SIZE, &local);
      if (node == NULL || !tg_schema_check_event (node, &local))
        {
          g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "%s line %u: %s", log->path, line_no,
                       local->message);
          return FALSE;
        }
      obj = json_node_get_object (node);
      if ((guint64) json_object_get_int_member (obj, "seq") != log->next_seq)
        {
          g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "%s line %u: seq is not %" G_GUINT64_FORMAT,
                       log->path, line_no, log->next_seq);
          return FALSE;
        }
      log->next_seq++;
      type = json_object_get_string_member (obj, "type");
      if (strcmp (type, "segment") == 0)
        hex_to_32 (json_object_get_string_member (obj, "chain"), log->chain);
      else if (strcmp (type, "part-start") == 0)
        log->max_part = MAX (log->max_part, (guint) json_object_get_int_member (obj, "part"));
      start += line_len + 1;
    }
  return TRUE;
}

RecLog *
rec_log_open (const char *path, const char *session_id, GError **error)
{
  g_autoptr (RecLog) log = g_new0 (RecLog, 1);
  struct stat st;

  g_mutex_init (&log->lock);
  log->path = g_strdup (path);
  log->session_id = g_strdup (session_id);
  log->fd = open (path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (log->fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return NULL;
    }
  if (fstat (log->fd, &st) == 0 && st.st_size > 0 && !recover (log, error))
    return NULL;
  REC_INFO (session_id, "events.jsonl open, next seq %" G_GUINT64_FORMAT, log->next_seq);
  return g_steal_pointer (&log);
}

static gboolean
append_locked (RecLog *log, JsonObject *event, GError **error)
{
  g_autoptr (JsonObject) line = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (GList) members = NULL;
  g_autoptr (GError) local = NULL;
  g_autofree char *text = NULL;
  g_autofree char *now = rec_time_now ();
  gsize len;
  off_t end;

  if (log->fd < 0)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_FAILED, "events.jsonl is closed after a write error");
      return FALSE;
    }
  if (json_object_has_member (event, "seq"))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "an event to log must not carry seq");
      return FALSE;
    }
  /* seq, time, type first; then the rest in the order given. */
  json_object_set_int_member (line, "seq", (gint64) log->next_seq);
  if (json_object_has_member (event, "time"))
    json_object_set_member (line, "time", json_node_copy (json_object_get_member (event, "time")));
  else
    json_object_set_string_member (line, "time", now);
  members = json_object_get_members (event);
  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "time") != 0)
      json_object_set_member (line, l->data, json_node_copy (json_object_get_member (event, l->data)));
  json_node_set_object (node, line);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, &len);
  {
    /* What is written is what a reader will parse: check that text. */
    g_autoptr (JsonNode) back = tg_json_parse_strict (text, len, TG_SCHEMA_EVENT_MAX_SIZE, &local);
    if (back == NULL || !tg_schema_check_event (back, &local))
      {
        g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "event refused: %s", local->message);
        return FALSE;
      }
  }
  text = g_realloc (text, len + 1);
  text[len] = '\n';
  end = lseek (log->fd, 0, SEEK_END);
  if (end < 0)
    {
      tg_set_error_errno (error, errno, "cannot seek events.jsonl");
      return FALSE;
    }
  if (!tg_write_all (log->fd, text, len + 1, "events.jsonl", error) || fsync (log->fd) != 0)
    {
      if (error && *error == NULL)
        tg_set_error_errno (error, errno, "cannot fsync events.jsonl");
      /* Never leave half a line (ENOSPC): cut back to the last whole line,
       * which frees space; a later entry may succeed. */
      if (ftruncate (log->fd, end) != 0 || fsync (log->fd) != 0)
        {
          REC_ERR (log->session_id, "events.jsonl: cannot cut a failed write: %s", g_strerror (errno));
          close (log->fd);
          log->fd = -1;
        }
      return FALSE;
    }
  log->next_seq++;
  return TRUE;
}

gboolean
rec_log_append (RecLog *log, JsonObject *event, GError **error)
{
  gboolean ok;
  g_mutex_lock (&log->lock);
  ok = append_locked (log, event, error);
  g_mutex_unlock (&log->lock);
  return ok;
}

gboolean
rec_log_append_segment (RecLog *log, const char *file, guint64 offset, guint64 length,
                        const guint8 sha256[32], guint64 running_time_ns, GError **error)
{
  g_autoptr (JsonObject) ev = json_object_new ();
  g_autoptr (GChecksum) ck = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *sha_hex = tg_hex (sha256, 32);
  g_autofree char *chain_hex = NULL;
  guint8 next[32];
  gsize dlen = 32;
  gboolean ok;

  g_mutex_lock (&log->lock);
  g_checksum_update (ck, log->chain, 32);
  g_checksum_update (ck, sha256, 32);
  g_checksum_get_digest (ck, next, &dlen);
  chain_hex = tg_hex (next, 32);
  json_object_set_string_member (ev, "type", "segment");
  json_object_set_string_member (ev, "file", file);
  json_object_set_int_member (ev, "offset", (gint64) offset);
  json_object_set_int_member (ev, "length", (gint64) length);
  json_object_set_string_member (ev, "sha256", sha_hex);
  json_object_set_string_member (ev, "chain", chain_hex);
  json_object_set_int_member (ev, "running_time_ns", (gint64) MIN (running_time_ns, G_GUINT64_CONSTANT (9007199254740991)));
  ok = append_locked (log, ev, error);
  if (ok)
    memcpy (log->chain, next, 32);
  g_mutex_unlock (&log->lock);
  return ok;
}

guint64
rec_log_next_seq (RecLog *log)
{
  guint64 v;
  g_mutex_lock (&log->lock);
  v = log->next_seq;
  g_mutex_unlock (&log->lock);
  return v;
}

char *
rec_log_chain_hex (RecLog *log)
{
  char *v;
  g_mutex_lock (&log->lock);
  v = tg_hex (log->chain, 32);
  g_mutex_unlock (&log->lock);
  return v;
}

guint
rec_log_max_part (RecLog *log)
{
  return log->max_part;
}

void
rec_log_free (RecLog *log)
{
  if (log == NULL)
    return;
  if (log->fd >= 0)
    close (log->fd);
  g_mutex_clear (&log->lock);
  g_free (log->path);
  g_free (log->session_id);
  g_free (log);
}

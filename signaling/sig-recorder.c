/* sig-recorder.c — one testigo-recorder process per session: started with
 * GSubprocess, one JSON object per line each way (at most 64 KiB), watched
 * so that a crash marks the session interrupted and tells the officer. */
#include "sig-private.h"

#include <string.h>
#include <signal.h>
#include <sys/wait.h>

struct _SigRecorder {
  int refs;
  SigServer *srv;
  char *session_id;
  GSubprocess *proc;
  GOutputStream *in;
  GInputStream *out;
  GCancellable *cancel;
  GByteArray *buf;
  gboolean discarding;       /* an over-long line is being skipped */
  GQueue queue;              /* GBytes waiting to be written */
  gboolean writing, ready, stopping, stopped_msg, exited, detached;
  guint kill_id;
  GCallback stop_done;
  gpointer stop_data;
};

static SigRecorder *
rec_ref (SigRecorder *rec)
{
  rec->refs++;
  return rec;
}

static void
rec_unref (SigRecorder *rec)
{
  if (--rec->refs > 0)
    return;
  if (rec->kill_id)
    g_source_remove (rec->kill_id);
  g_queue_clear_full (&rec->queue, (GDestroyNotify) g_bytes_unref);
  g_clear_object (&rec->cancel);
  g_clear_object (&rec->proc);
  g_byte_array_unref (rec->buf);
  g_free (rec->session_id);
  g_free (rec);
}

gboolean
sig_recorder_available (SigServer *srv, char **why)
{
  const char *path = srv->cfg->recorder;

  if (path == NULL || *path == '\0' || strcmp (path, "none") == 0)
    {
      *why = g_strdup ("no recorder configured");
      return FALSE;
    }
  if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) || g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      *why = g_strdup_printf ("testigo-recorder not found at %s (build the recorder or pass --recorder PATH)", path);
      return FALSE;
    }
  return TRUE;
}

gboolean
sig_recorder_running (SigRecorder *rec)
{
  return rec != NULL && !rec->exited && !rec->detached;
}

/* stun:host:port → stun://host:port; turn:host:port?q → turn://user:pass@host:port?q (webrtcbin) */
static char *
gst_ice_url (const char *url, const char *user, const char *pass)
{
  const char *colon = strchr (url, ':');
  g_autofree char *scheme = g_strndup (url, (gsize) (colon - url));

  if (g_str_has_prefix (url, "turn"))
    {
      g_autofree char *u = g_uri_escape_string (user ? user : "", NULL, FALSE);
      g_autofree char *p = g_uri_escape_string (pass ? pass : "", NULL, FALSE);
      return g_strdup_printf ("%s://%s:%s@%s", scheme, u, p, colon + 1);
    }
  return g_strdup_printf ("%s://%s", scheme, colon + 1);
}

static void write_next (SigRecorder *rec);

static void
write_done (GObject *source, GAsyncResult *res, gpointer data)
{
  SigRecorder *rec = data;
  g_autoptr (GError) error = NULL;

  rec->writing = FALSE;
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), res, NULL, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("session %s: writing to the recorder: %s", rec->session_id, error->message);
      g_queue_clear_full (&rec->queue, (GDestroyNotify) g_bytes_unref);
    }
  else
    {
      g_bytes_unref (g_queue_pop_head (&rec->queue));
      write_next (rec);
    }
  rec_unref (rec);
}

static void
write_next (SigRecorder *rec)
{
  GBytes *b;

  if (rec->writing || rec->exited || !rec->ready || (b = g_queue_peek_head (&rec->queue)) == NULL)
    return;
  rec->writing = TRUE;
  g_output_stream_write_all_async (rec->in, g_bytes_get_data (b, NULL), g_bytes_get_size (b), G_PRIORITY_DEFAULT,
                                   rec->cancel, write_done, rec_ref (rec));
}

void
sig_recorder_send (SigRecorder *rec, JsonObject *obj)
{
  g_autofree char *text = NULL;
  gsize len;

  if (rec == NULL || rec->exited)
    return;
  text = sig_object_to_string (obj);
  len = strlen (text);
  if (len + 1 > SIG_MAX_RECORDER_LINE)
    {
      g_warning ("session %s: a %zu-byte message to the recorder is over the cap; dropped", rec->session_id, len);
      return;
    }
  g_queue_push_tail (&rec->queue, g_bytes_new_take (g_strconcat (text, "\n", NULL), len + 1));
  write_next (rec);
}

static SigLive *
rec_live (SigRecorder *rec)
{
  SigLive *live;

  if (rec->detached)
    return NULL;
  live = g_hash_table_lookup (rec->srv->live, rec->session_id);
  return live != NULL && live->rec == rec ? live : NULL;
}

static const char *
str_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                          : NULL;
}

static SigPeer *
peer_by_name (SigLive *live, const char *name)
{
  if (g_strcmp0 (name, "officer") == 0)
    return live->officer;
  if (g_strcmp0 (name, "signatory") == 0)
    return live->signatory;
  return NULL;
}

/* One line from the recorder. */
static void
handle_line (SigRecorder *rec, const char *line, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = tg_json_parse_strict (line, len, SIG_MAX_RECORDER_LINE, &error);
  SigLive *live = rec_live (rec);
  JsonObject *m;
  const char *type;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)
      || (type = str_member (json_node_get_object (node), "type")) == NULL)
    {
      g_warning ("session %s: malformed line from the recorder: %s", rec->session_id,
                 error ? error->message : "not an object with a type");
      return;
    }
  m = json_node_get_object (node);
  g_debug ("session %s: recorder says %s", rec->session_id, type);
  if (strcmp (type, "ready") == 0)
    {
      rec->ready = TRUE;
      write_next (rec);
      return;
    }
  if (strcmp (type, "stopped") == 0)
    {
      rec->stopped_msg = TRUE;
      return;
    }
  if (live == NULL)
    return;
  if (strcmp (type, "answer") == 0 || strcmp (type, "ice") == 0)
    {
      SigPeer *to = peer_by_name (live, str_member (m, "peer"));
      if (to == NULL)
        return;
      json_object_remove_member (m, "peer");
      sig_peer_send (to, m);
    }
  else if (strcmp (type, "part-started") == 0)
    {
      JsonNode *p = json_object_get_member (m, "part");
      live->part = p && JSON_NODE_HOLDS_VALUE (p) && json_node_get_value_type (p) == G_TYPE_INT64
                     ? (int) json_node_get_int (p) : live->part + 1;
      live->part_wall_ms = sig_now_ms ();
      sig_live_notify (live, SIG_ROLE_OFFICER, m);
    }
  else if (strcmp (type, "first-keyframe") == 0 || strcmp (type, "track") == 0
           || strcmp (type, "still-saved") == 0)
    sig_live_notify (live, SIG_ROLE_OFFICER, m);
  else if (strcmp (type, "error") == 0)
    {
      g_autoptr (JsonObject) e = json_object_new ();
      const char *text = str_member (m, "message");
      json_object_set_string_member (e, "type", "error");
      json_object_set_string_member (e, "code", "recorder");
      json_object_set_string_member (e, "message", text ? text : "recorder error");
      if (str_member (m, "code"))
        json_object_set_string_member (e, "recorder_code", str_member (m, "code"));
      if (str_member (m, "request"))
        json_object_set_string_member (e, "request", str_member (m, "request"));
      g_warning ("session %s: recorder error: %s", rec->session_id, text ? text : "?");
      sig_live_notify (live, SIG_ROLE_OFFICER, e);
      /* a refused offer or candidate is also the sender's business */
      if (g_strcmp0 (str_member (m, "peer"), "signatory") == 0 && str_member (m, "request") != NULL)
        sig_peer_send (live->signatory, e);
    }
  else if (strcmp (type, "disk-full") == 0)
    {
      g_autoptr (JsonObject) e = json_object_new ();
      json_object_set_string_member (e, "type", "error");
      json_object_set_string_member (e, "code", "disk-full");
      json_object_set_string_member (e, "message", "The recording disk is full. What was recorded is kept; "
                                                   "close the session (it can still be sealed once space is freed).");
      g_warning ("session %s: recorder reports a full disk", rec->session_id);
      sig_live_notify (live, SIG_ROLE_OFFICER, e);
    }
  else
    g_message ("session %s: ignoring recorder message %s", rec->session_id, type);
}

static void
read_done (GObject *source, GAsyncResult *res, gpointer data)
{
  SigRecorder *rec = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, &error);
  const guint8 *p;
  gsize n;

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      rec_unref (rec);
      return;
    }
  p = g_bytes_get_data (bytes, &n);
  for (gsize i = 0; i < n; i++)
    {
      if (p[i] == '\n')
        {
          if (!rec->discarding)
            handle_line (rec, (const char *) rec->buf->data, rec->buf->len);
          rec->discarding = FALSE;
          g_byte_array_set_size (rec->buf, 0);
        }
      else if (!rec->discarding)
        {
          if (rec->buf->len >= SIG_MAX_RECORDER_LINE)
            {
              g_warning ("session %s: recorder line over %zu bytes; skipped", rec->session_id,
                         (gsize) SIG_MAX_RECORDER_LINE);
              rec->discarding = TRUE;
              g_byte_array_set_size (rec->buf, 0);
            }
          else
            g_byte_array_append (rec->buf, &p[i], 1);
        }
    }
  g_input_stream_read_bytes_async (rec->out, 16384, G_PRIORITY_DEFAULT, rec->cancel, read_done, rec);
}

static void
finish_stop (SigRecorder *rec)
{
  GCallback done = rec->stop_done;

  rec->stop_done = NULL;
  if (done != NULL)
    ((void (*) (gpointer)) done) (rec->stop_data);
}

static void
wait_done (GObject *source, GAsyncResult *res, gpointer data)
{
  SigRecorder *rec = data;
  SigLive *live;
  g_autofree char *how = NULL;
  int status;

  (void) g_subprocess_wait_finish (G_SUBPROCESS (source), res, NULL);
  rec->exited = TRUE;
  if (rec->kill_id)
    {
      g_source_remove (rec->kill_id);
      rec->kill_id = 0;
    }
  status = g_subprocess_get_status (rec->proc);
  if (g_subprocess_get_if_signaled (rec->proc))
    how = g_strdup_printf ("killed by signal %d", g_subprocess_get_term_sig (rec->proc));
  else
    how = g_strdup_printf ("exited with status %d", WIFEXITED (status) ? WEXITSTATUS (status) : status);
  live = rec_live (rec);
  if (rec->stopping && rec->stopped_msg)
    g_message ("session %s: recorder stopped (%s)", rec->session_id, how);
  else if (live != NULL)
    {
      /* an unexpected end: keep what was recorded, tell the officer */
      g_autoptr (JsonObject) ev = json_object_new ();
      g_autoptr (JsonObject) note = json_object_new ();
      g_autofree char *detail = g_strdup_printf ("The recorder process %s.", how);

      g_warning ("session %s: recorder %s%s", rec->session_id, how, rec->stopping ? " before confirming the stop" : "");
      live->rec = NULL; /* from here events go to events.jsonl directly */
      if (!rec->stopping)
        {
          json_object_set_string_member (ev, "type", "interruption");
          json_object_set_string_member (ev, "cause", "server");
          json_object_set_string_member (ev, "detail", detail);
          json_object_set_string_member (ev, "told_signatory",
                                         "The recording stopped because of a server problem; the officer will tell you how to go on.");
          sig_server_event (live, ev);
          sig_session_set_state (rec->srv, live->id, "interrupted");
          json_object_set_string_member (note, "type", "session-interrupted");
          json_object_set_string_member (note, "reason", detail);
          json_object_set_string_member (note, "message",
                                         "The recording of this session stopped. What was recorded is kept and can be "
                                         "sealed: close the session.");
          sig_live_notify (live, SIG_ROLE_NONE, note);
        }
      rec->detached = TRUE;
      rec_unref (rec); /* the live session's reference */
    }
  g_cancellable_cancel (rec->cancel);
  finish_stop (rec);
  rec_unref (rec);
}

SigRecorder *
sig_recorder_start (SigLive *live, GError **error)
{
  SigServer *srv = live->srv;
  SigConfig *cfg = srv->cfg;
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *why = NULL;
  SigRecorder *rec;

  if (!sig_recorder_available (srv, &why))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_FAILED, "%s", why);
      return NULL;
    }
  g_ptr_array_add (argv, g_strdup (cfg->recorder));
  g_ptr_array_add (argv, g_strdup ("--session-dir"));
  g_ptr_array_add (argv, g_strdup (live->dir));
  g_ptr_array_add (argv, g_strdup ("--session-id"));
  g_ptr_array_add (argv, g_strdup (live->id));
  for (guint i = 0; cfg->stun && cfg->stun[i]; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--stun"));
      g_ptr_array_add (argv, gst_ice_url (cfg->stun[i], NULL, NULL));
    }
  for (guint i = 0; cfg->turn && cfg->turn[i]; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--turn"));
      g_ptr_array_add (argv, gst_ice_url (cfg->turn[i], cfg->turn_username, cfg->turn_credential));
    }
  if (cfg->recorder_loopback)
    g_ptr_array_add (argv, g_strdup ("--loopback"));
  if (cfg->recorder_jitter_ms > 0)
    {
      g_ptr_array_add (argv, g_strdup ("--jitter-buffer-ms"));
      g_ptr_array_add (argv, g_strdup_printf ("%d", cfg->recorder_jitter_ms));
    }
  g_ptr_array_add (argv, NULL);

  rec = g_new0 (SigRecorder, 1);
  rec->refs = 1; /* the live session's */
  rec->srv = srv;
  rec->session_id = g_strdup (live->id);
  rec->buf = g_byte_array_new ();
  rec->cancel = g_cancellable_new ();
  g_queue_init (&rec->queue);
  rec->proc = g_subprocess_newv ((const char *const *) argv->pdata,
                                 G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, error);
  if (rec->proc == NULL)
    {
      g_prefix_error (error, "cannot start %s: ", cfg->recorder);
      rec_unref (rec);
      return NULL;
    }
  rec->in = g_subprocess_get_stdin_pipe (rec->proc);
  rec->out = g_subprocess_get_stdout_pipe (rec->proc);
  g_message ("session %s: recorder started (pid %s)", live->id, g_subprocess_get_identifier (rec->proc));
  g_input_stream_read_bytes_async (rec->out, 16384, G_PRIORITY_DEFAULT, rec->cancel, read_done, rec_ref (rec));
  g_subprocess_wait_async (rec->proc, NULL, wait_done, rec_ref (rec));
  return rec;
}

static gboolean
kill_recorder (gpointer data)
{
  SigRecorder *rec = data;

  rec->kill_id = 0;
  g_warning ("session %s: the recorder did not stop in time; killing it", rec->session_id);
  g_subprocess_force_exit (rec->proc);
  return G_SOURCE_REMOVE;
}

void
sig_recorder_stop (SigRecorder *rec, GCallback done, gpointer data)
{
  g_autoptr (JsonObject) stop = json_object_new ();

  rec->stop_done = done;
  rec->stop_data = data;
  if (rec->exited)
    {
      finish_stop (rec);
      return;
    }
  rec->stopping = TRUE;
  if (!rec->ready)
    rec->ready = TRUE; /* it may still read its stdin */
  json_object_set_string_member (stop, "type", "stop");
  sig_recorder_send (rec, stop);
  rec->kill_id = g_timeout_add_seconds ((guint) rec->srv->cfg->stop_timeout, kill_recorder, rec);
}

/* The live session lets go of its recorder (session closed or freed); a
 * process still running is stopped and reaped in the background. */
void
sig_recorder_detach (SigRecorder *rec)
{
  if (rec->detached)
    return;
  rec->detached = TRUE;
  if (!rec->exited && !rec->stopping)
    {
      rec->stopping = TRUE;
      g_subprocess_send_signal (rec->proc, SIGTERM);
      rec->kill_id = g_timeout_add_seconds ((guint) rec->srv->cfg->stop_timeout, kill_recorder, rec);
    }
  rec_unref (rec);
}

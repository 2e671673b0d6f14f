/* testigo-recorder — one session's recorder process, driven by testigod over
 * stdin/stdout, one JSON object per line (recorder/README.md).
 *
 *   testigo-recorder --session-dir DIR --session-id ID [--stun URL] [--turn URL] [--loopback]
 *
 * Exit status: 0 stopped cleanly (stop, end of stdin, SIGTERM or SIGINT);
 * 2 usage error; 3 the session could not start. */
#include "config.h"
#include "recorder.h"

#include <gst/gst.h>
#include <glib-unix.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_USAGE = 2, EXIT_START = 3 };

typedef struct {
  RecSession *session;
  GMainLoop *loop;
  GString *buf;
  gboolean discarding;   /* inside an over-long line */
} App;

static void
emit_stdout (const char *line, gpointer user_data)
{
  /* One write per line: a reader never sees half a message. */
  g_autofree char *text = g_strconcat (line, "\n", NULL);
  gsize len = strlen (text), off = 0;
  while (off < len)
    {
      ssize_t n = write (STDOUT_FILENO, text + off, len - off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;   /* the server is gone: nothing to tell */
      off += (gsize) n;
    }
}

static void
finish (App *app)
{
  if (app->session != NULL)
    rec_session_stop (app->session);
  g_main_loop_quit (app->loop);
}

static void
too_long (void)
{
  g_autofree char *msg = g_strdup_printf ("{\"type\":\"error\",\"code\":\"too-big\",\"message\":"
                                          "\"control line over %" G_GSIZE_FORMAT " bytes\"}",
                                          REC_CONTROL_MAX_LINE);
  emit_stdout (msg, NULL);
}

static gboolean
on_stdin (gint fd, GIOCondition cond, gpointer user_data)
{
  App *app = user_data;
  char chunk[16384];
  ssize_t n = read (fd, chunk, sizeof chunk);

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return G_SOURCE_CONTINUE;
  if (n <= 0)
    {
      /* The server closed our stdin: finalise what we have. */
      finish (app);
      return G_SOURCE_REMOVE;
    }
  for (ssize_t i = 0; i < n; i++)
    {
      if (chunk[i] == '\n')
        {
          if (!app->discarding)
            {
              gsize len = app->buf->len;
              if (len > 0 && app->buf->str[len - 1] == '\r')
                len--;
              if (len > 0)
                rec_session_handle_line (app->session, app->buf->str, len);
            }
          app->discarding = FALSE;
          g_string_truncate (app->buf, 0);
          if (rec_session_is_stopped (app->session))
            {
              g_main_loop_quit (app->loop);
              return G_SOURCE_REMOVE;
            }
          continue;
        }
      if (app->discarding)
        continue;
      if (app->buf->len >= REC_CONTROL_MAX_LINE)
        {
          too_long ();
          app->discarding = TRUE;
          g_string_truncate (app->buf, 0);
          continue;
        }
      g_string_append_c (app->buf, chunk[i]);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer user_data)
{
  finish (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autofree char *dir = NULL, *sid = NULL, *stun = NULL, *turn = NULL;
  gboolean loopback = FALSE, receive_queue = FALSE, send_encoders = FALSE, rtp_elements = FALSE;
  int segment_ms = 0, keyframe_ms = 0, jitter_ms = 0;
  GOptionEntry entries[] = {
    { "session-dir", 0, 0, G_OPTION_ARG_FILENAME, &dir, "session directory (exists)", "DIR" },
    { "session-id", 0, 0, G_OPTION_ARG_STRING, &sid, "session id", "ID" },
    { "stun", 0, 0, G_OPTION_ARG_STRING, &stun, "STUN server (stun://host:port)", "URL" },
    { "turn", 0, 0, G_OPTION_ARG_STRING, &turn, "TURN server (turn://user:pass@host:port)", "URL" },
    { "loopback", 0, 0, G_OPTION_ARG_NONE, &loopback, "gather ICE candidates on 127.0.0.1", NULL },
    { "jitter-buffer-ms", 0, 0, G_OPTION_ARG_INT, &jitter_ms,
      "hold packets in rtpbin's jitter buffer for MS (0, the default: pass them on as they arrive)", "MS" },
    { "receive-queue", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &receive_queue,
      "read packets as webrtcbin does: in nicesrc's thread, then its receive queue's thread (measurement)", NULL },
    { "send-encoders", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &send_encoders,
      "keep webrtcbin's clocksync and FEC/RED encoders in every relayed packet's path (measurement)", NULL },
    { "rtp-elements", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &rtp_elements,
      "keep the idle RTX, RED and FEC elements, payload demuxer, DTLS clocksync, ghost pads and capsfilters in "
      "every relayed packet's path (measurement)", NULL },
    { "segment-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &segment_ms, "hash-chain interval", "MS" },
    { "keyframe-ms", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &keyframe_ms, "keyframe request interval", "MS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— record one Testigo session");
  g_autoptr (GError) error = NULL;
  RecOptions opts = { 0 };
  App app = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || dir == NULL || sid == NULL || argc != 1
      || segment_ms < 0 || segment_ms > 5000 || keyframe_ms < 0
      || jitter_ms < 0 || jitter_ms > REC_JITTER_BUFFER_MAX_MS)
    {
      fprintf (stderr, "testigo-recorder: %s\nusage: testigo-recorder --session-dir DIR --session-id ID "
                       "[--stun URL] [--turn URL] [--loopback] [--jitter-buffer-ms 0..%d]\n",
               error ? error->message : "bad arguments", REC_JITTER_BUFFER_MAX_MS);
      return EXIT_USAGE;
    }
  gst_init (NULL, NULL);
  opts.session_dir = dir;
  opts.session_id = sid;
  opts.stun_server = stun;
  opts.turn_server = turn;
  opts.loopback = loopback;
  opts.segment_interval_ms = (guint) segment_ms;
  opts.keyframe_interval_ms = (guint) keyframe_ms;
  opts.jitter_buffer_ms = (guint) jitter_ms;
  opts.receive_queue = receive_queue;
  opts.send_encoders = send_encoders;
  opts.rtp_elements = rtp_elements;

  app.loop = g_main_loop_new (NULL, FALSE);
  app.buf = g_string_new (NULL);
  /* Signals first: a SIGTERM right after "ready" must still finalise. */
  g_unix_signal_add (SIGTERM, on_signal, &app);
  g_unix_signal_add (SIGINT, on_signal, &app);
  app.session = rec_session_new (&opts, emit_stdout, NULL, &error);
  if (app.session == NULL)
    {
      g_autofree char *msg = g_strescape (error->message, NULL);
      g_autofree char *line = g_strdup_printf ("{\"type\":\"error\",\"code\":\"start\",\"message\":\"%s\"}", msg);
      emit_stdout (line, NULL);
      fprintf (stderr, "testigo-recorder: %s\n", error->message);
      return EXIT_START;
    }
  g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &app);
  g_main_loop_run (app.loop);
  rec_session_free (app.session);
  g_string_free (app.buf, TRUE);
  g_main_loop_unref (app.loop);
  return EXIT_OK;
}

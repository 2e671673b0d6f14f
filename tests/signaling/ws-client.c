/* ws-client.c — a tiny WebSocket client for the protocol tests.
 *
 *   ws-client URL [--cookie NAME=VALUE] [--origin ORIGIN]
 *
 * Prints "OPEN" once connected, then every text message received on its own
 * line, and "CLOSED CODE REASON" at the end. Each stdin line is sent as one
 * text message; "#close" closes normally, "#binary TEXT" sends TEXT as a
 * binary message. Exits 0 after the close, 1 if the connection failed. */
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  GMainLoop *loop;
  SoupWebsocketConnection *ws;
  GIOChannel *in;
  int rc;
} Client;

static gboolean
on_stdin (GIOChannel *ch, GIOCondition cond, gpointer data)
{
  Client *c = data;
  g_autofree char *line = NULL;
  gsize len = 0;
  GIOStatus st = g_io_channel_read_line (ch, &line, &len, NULL, NULL);

  if (c->ws == NULL || soup_websocket_connection_get_state (c->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return G_SOURCE_REMOVE;
  if (st == G_IO_STATUS_AGAIN)
    return G_SOURCE_CONTINUE;
  if (line != NULL && len > 0 && line[len - 1] == '\n')
    line[len - 1] = '\0';
  if (st != G_IO_STATUS_NORMAL || line == NULL || strcmp (line, "#close") == 0)
    {
      soup_websocket_connection_close (c->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, "bye");
      return G_SOURCE_REMOVE;
    }
  if (g_str_has_prefix (line, "#binary "))
    soup_websocket_connection_send_binary (c->ws, line + 8, strlen (line + 8));
  else
    soup_websocket_connection_send_text (c->ws, line);
  return G_SOURCE_CONTINUE;
}

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  gsize len;
  const char *p = g_bytes_get_data (message, &len);

  fwrite (p, 1, len, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  Client *c = data;

  printf ("CLOSED %u %s\n", soup_websocket_connection_get_close_code (ws),
          soup_websocket_connection_get_close_data (ws) ? soup_websocket_connection_get_close_data (ws) : "");
  fflush (stdout);
  g_main_loop_quit (c->loop);
}

static void
on_connect (GObject *src, GAsyncResult *res, gpointer data)
{
  Client *c = data;
  g_autoptr (GError) error = NULL;

  c->ws = soup_session_websocket_connect_finish (SOUP_SESSION (src), res, &error);
  if (c->ws == NULL)
    {
      printf ("ERROR %s\n", error->message);
      fflush (stdout);
      c->rc = 1;
      g_main_loop_quit (c->loop);
      return;
    }
  soup_websocket_connection_set_max_incoming_payload_size (c->ws, 1024 * 1024);
  g_signal_connect (c->ws, "message", G_CALLBACK (on_message), c);
  g_signal_connect (c->ws, "closed", G_CALLBACK (on_closed), c);
  printf ("OPEN\n");
  fflush (stdout);
  g_io_add_watch (c->in, G_IO_IN | G_IO_HUP, on_stdin, c);
}

int
main (int argc, char **argv)
{
  g_autofree char *cookie = NULL, *origin = NULL;
  GOptionEntry entries[] = {
    { "cookie", 0, 0, G_OPTION_ARG_STRING, &cookie, "Cookie header", "NAME=VALUE" },
    { "origin", 0, 0, G_OPTION_ARG_STRING, &origin, "Origin header", "ORIGIN" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("URL");
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  Client c = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc != 2)
    {
      fprintf (stderr, "usage: ws-client URL [--cookie C] [--origin O]\n");
      return 2;
    }
  c.loop = g_main_loop_new (NULL, FALSE);
  c.in = g_io_channel_unix_new (0);
  g_io_channel_set_encoding (c.in, NULL, NULL);
  session = soup_session_new ();
  msg = soup_message_new ("GET", argv[1]);
  if (msg == NULL)
    {
      fprintf (stderr, "ws-client: bad URL %s\n", argv[1]);
      return 2;
    }
  if (cookie)
    soup_message_headers_append (soup_message_get_request_headers (msg), "Cookie", cookie);
  soup_session_websocket_connect_async (session, msg, origin, NULL, G_PRIORITY_DEFAULT, NULL, on_connect, &c);
  g_main_loop_run (c.loop);
  g_clear_object (&c.ws);
  g_io_channel_unref (c.in);
  g_main_loop_unref (c.loop);
  return c.rc;
}

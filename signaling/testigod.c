/* testigod.c — the Testigo server. `testigod` alone starts on embedded
 * defaults; see docs/operator-guide.md. Exit codes: 0 stopped by a signal,
 * 3 bad command line or configuration, 5 cannot start (state directory,
 * database, keys, address in use). */
#include "config.h"
#include "sig.h"
#include "tg-common.h"

#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SigConfig) config = NULL;
  g_autoptr (SigServer) server = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autofree char *uri = NULL;

  setlocale (LC_ALL, "");
  if (argc == 2 && (g_strcmp0 (argv[1], "--version") == 0))
    {
      printf ("testigod %s\n", TESTIGO_VERSION);
      return 0;
    }
  config = sig_config_parse (&argc, &argv, &error);
  if (config == NULL)
    {
      fprintf (stderr, "testigod: %s\n(see testigod --help)\n", error->message);
      return 3;
    }
  server = sig_server_new (config, &error);
  if (server == NULL)
    {
      fprintf (stderr, "testigod: %s\n", error->message);
      return error->domain == TG_ERROR && error->code == TG_ERROR_INVALID ? 3 : 5;
    }
  config = NULL; /* owned by the server now */
  if (!sig_server_listen (server, &uri, &error))
    {
      fprintf (stderr, "testigod: %s\n", error->message);
      return 5;
    }
  printf ("testigod %s listening on %s\n", TESTIGO_VERSION, uri ? uri : "?");
  fflush (stdout);
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit_loop, loop);
  g_unix_signal_add (SIGTERM, quit_loop, loop);
  g_main_loop_run (loop);
  return 0;
}

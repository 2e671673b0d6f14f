/* cli-common.c — exit codes and option parsing shared by the cli/ commands. */
#include "config.h"
#include "cli-private.h"
#include "tg-common.h"

#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int
cli_exit_for (const GError *error)
{
  if (error->domain != TG_ERROR)
    return EXIT_IO; /* GIO / libsoup: network and file errors */
  switch (error->code)
    {
    case TG_ERROR_INVALID:
    case TG_ERROR_TOO_BIG: return EXIT_INPUT;
    case TG_ERROR_IO:
    case TG_ERROR_NOSPACE: return EXIT_IO;
    case TG_ERROR_CRYPTO: return EXIT_CRYPTO;
    case TG_ERROR_EXISTS: return EXIT_EXISTS;
    case TG_ERROR_REFUSED: return EXIT_REFUSED;
    case TG_ERROR_NOT_FOUND: return EXIT_NOT_FOUND;
    default: return EXIT_INTERNAL;
    }
}

int
cli_report_error (const char *cmd, GError *error)
{
  int code = cli_exit_for (error);

  fprintf (stderr, "testigo %s: %s\n", cmd, error->message);
  g_error_free (error);
  return code;
}

gboolean
cli_parse_options (GOptionContext *ctx, int *argc, char ***argv, const char *cmd)
{
  g_autoptr (GError) error = NULL;

  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      fprintf (stderr, "testigo %s: %s\n(see testigo %s --help)\n", cmd, error->message, cmd);
      return FALSE;
    }
  return TRUE;
}

/* One line from stdin, without echo on a terminal (after @prompt on stderr). */
static char *
prompt_password (const char *prompt)
{
  struct termios old, quiet;
  gboolean tty = isatty (STDIN_FILENO);
  char buf[1100];
  char *nl;

  if (tty)
    {
      fputs (prompt, stderr);
      fflush (stderr);
      tcgetattr (STDIN_FILENO, &old);
      quiet = old;
      quiet.c_lflag &= ~(tcflag_t) ECHO;
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  if (fgets (buf, sizeof buf, stdin) == NULL)
    buf[0] = '\0';
  if (tty)
    {
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &old);
      fputc ('\n', stderr);
    }
  if ((nl = strpbrk (buf, "\r\n")) != NULL)
    *nl = '\0';
  nl = g_strdup (buf);
  memset (buf, 0, sizeof buf);
  return nl;
}

char *
cli_read_new_password (const char *cmd, const char *file, int *exit_code)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *again = NULL;
  char *password;

  if (file != NULL)
    {
      g_autofree char *data = NULL;
      gsize len = 0;
      char *nl;
      if (!tg_file_get_contents_capped (file, 4096, &data, &len, &error))
        {
          *exit_code = cli_report_error (cmd, g_steal_pointer (&error));
          return NULL;
        }
      if ((nl = strpbrk (data, "\r\n")) != NULL)
        *nl = '\0';
      return g_steal_pointer (&data);
    }
  password = prompt_password ("Password: ");
  if (isatty (STDIN_FILENO))
    {
      again = prompt_password ("Again: ");
      if (g_strcmp0 (password, again) != 0)
        {
          memset (password, 0, strlen (password));
          g_free (password);
          fprintf (stderr, "testigo %s: the passwords differ\n", cmd);
          *exit_code = EXIT_USAGE;
          return NULL;
        }
      memset (again, 0, strlen (again));
    }
  return password;
}

void
cli_print_json (JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = NULL;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  printf ("%s\n", text);
}

/* cli-common.c — exit codes and option parsing shared by the cli/ commands. */
#include "config.h"
#include "cli-private.h"
#include "tg-common.h"

#include <stdio.h>

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

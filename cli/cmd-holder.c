/* cmd-holder.c — `testigo holder add NATIONAL_ID`: a portal account for a
 * certificate holder in testigod's database (docs/operator-guide.md). */
#include "config.h"
#include "cli-private.h"
#include "sig.h"
#include "tg-common.h"

#include <stdio.h>
#include <string.h>

int
cli_cmd_holder (int argc, char **argv)
{
  g_autofree char *state = NULL, *pwfile = NULL, *name = NULL, *email = NULL, *password = NULL;
  GOptionEntry entries[] = {
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state, "testigod state directory (default $XDG_STATE_HOME/testigo)", "DIR" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile, "read the password from the first line of FILE", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "the holder's name (required)", "NAME" },
    { "email", 0, 0, G_OPTION_ARG_STRING, &email, "the holder's e-mail address (required)", "ADDRESS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("add NATIONAL_ID — add a holder's portal account to testigod's database");
  g_autoptr (GError) error = NULL;
  g_autofree char *nid = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "holder"))
    return EXIT_USAGE;
  if (argc != 3 || strcmp (argv[1], "add") != 0 || name == NULL || email == NULL)
    {
      fprintf (stderr, "usage: testigo holder add NATIONAL_ID --name NAME --email ADDRESS [--password-file FILE] "
                       "[--state-dir DIR]\n");
      return EXIT_USAGE;
    }
  if (state == NULL)
    state = sig_default_state_dir ();
  password = cli_read_new_password ("holder", pwfile, &rc);
  if (password == NULL)
    return rc;
  nid = sig_national_id_normalize (argv[2]);
  rc = sig_holder_add (state, argv[2], name, email, password, &error) ? EXIT_PASSED : -1;
  memset (password, 0, strlen (password));
  if (rc != EXIT_PASSED)
    return cli_report_error ("holder", g_steal_pointer (&error));
  printf ("holder %s added to %s\n", nid ? nid : argv[2], state);
  return EXIT_PASSED;
}

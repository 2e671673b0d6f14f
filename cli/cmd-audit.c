/* cmd-audit.c — `testigo audit`. */
#include "config.h"
#include "cli-private.h"

#include <stdio.h>

int
cli_cmd_audit (int argc, char **argv)
{
  fprintf (stderr, "testigo audit: not supported yet\n");
  return EXIT_USAGE;
}

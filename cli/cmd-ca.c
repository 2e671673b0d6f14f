/* cmd-ca.c — `testigo ca`. */
#include "config.h"
#include "cli-private.h"

#include <stdio.h>

int
cli_cmd_ca (int argc, char **argv)
{
  fprintf (stderr, "testigo ca: not supported yet\n");
  return EXIT_USAGE;
}

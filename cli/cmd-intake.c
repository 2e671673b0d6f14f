/* cmd-intake.c — `testigo intake`. */
#include "config.h"
#include "cli-private.h"

#include <stdio.h>

int
cli_cmd_intake (int argc, char **argv)
{
  fprintf (stderr, "testigo intake: not supported yet\n");
  return EXIT_USAGE;
}

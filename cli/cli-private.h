/* cli-private.h — shared by the `testigo` command files (cli/): exit codes
 * (docs/exit-codes.md, testigo(1); stable across versions) and helpers. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

enum {
  EXIT_PASSED = 0,
  EXIT_FAILED = 1,          /* verify: TOTAL-FAILED; audit verify: the log was altered */
  EXIT_INDETERMINATE = 2,   /* verify: INDETERMINATE */
  EXIT_USAGE = 3,           /* bad command line */
  EXIT_INPUT = 4,           /* unreadable or invalid input (schema, size cap, format) */
  EXIT_IO = 5,              /* cannot write, disk full, network error */
  EXIT_CRYPTO = 6,          /* key, certificate, signature or TSA failure */
  EXIT_EXISTS = 7,          /* refusing to overwrite */
  EXIT_INTERNAL = 8,
  EXIT_REFUSED = 9,         /* ca, intake: a rule refused the request (the message says which) */
  EXIT_NOT_FOUND = 10,      /* ca: no such certificate, case or account */
};

/** cli_exit_for: the exit code for @error (TG_ERROR codes; other domains are I/O). */
int cli_exit_for (const GError *error);

/** cli_report_error: prints "testigo CMD: message" to stderr, frees @error, returns its exit code. */
int cli_report_error (const char *cmd, GError *error);

/** cli_parse_options: parses with @ctx; on a bad command line prints why and returns FALSE. */
gboolean cli_parse_options (GOptionContext *ctx, int *argc, char ***argv, const char *cmd);

/** cli_print_json: prints the root of @b (compact) and a newline on stdout. */
void cli_print_json (JsonBuilder *b);

/** cli_read_new_password: a new account's password for `testigo @cmd add`: the
 * first line of @file when given, else read from stdin (asked twice, without
 * echo, on a terminal). NULL after printing why, with the exit code in
 * @exit_code. Wipe and free the result. */
char *cli_read_new_password (const char *cmd, const char *file, int *exit_code);

/* One entry point per command family, each in its own cli/cmd-*.c file. */
int cli_cmd_ca (int argc, char **argv);      /* cmd-ca.c */
int cli_cmd_intake (int argc, char **argv);  /* cmd-intake.c */
int cli_cmd_audit (int argc, char **argv);   /* cmd-audit.c */
int cli_cmd_holder (int argc, char **argv);  /* cmd-holder.c */

G_END_DECLS

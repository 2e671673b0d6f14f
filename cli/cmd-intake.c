/* cmd-intake.c — `testigo intake MESSAGE.eml --ca-file CA.pem [--now TIME] [--json]`:
 * verifies one signed e-mail request (S/MIME) and prints what it asks for.
 * Exit codes (docs/exit-codes.md): 0 accepted, 9 refused by a rule (the
 * message says which), 4 not S/MIME or unreadable, 6 signature or chain. */
#include "config.h"
#include "ca-intake.h"
#include "cli-private.h"
#include "tg-common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Reads MESSAGE, or standard input for "-", refusing more than the cap. */
static GBytes *
read_message (const char *path, GError **error)
{
  char *data = NULL;
  gsize len = 0;

  if (strcmp (path, "-") != 0)
    {
      if (!tg_file_get_contents_capped (path, CA_INTAKE_MAX_MESSAGE, &data, &len, error))
        return NULL;
      return g_bytes_new_take (data, len);
    }
  {
    g_autoptr (GByteArray) buf = g_byte_array_new ();
    guint8 chunk[65536];
    ssize_t n;
    while ((n = read (STDIN_FILENO, chunk, sizeof chunk)) != 0)
      {
        if (n < 0)
          {
            if (errno == EINTR)
              continue;
            tg_set_error_errno (error, errno, "cannot read standard input");
            return NULL;
          }
        if (buf->len + (gsize) n > CA_INTAKE_MAX_MESSAGE)
          {
            g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the message is over %" G_GSIZE_FORMAT " MiB",
                         CA_INTAKE_MAX_MESSAGE / (1024 * 1024));
            return NULL;
          }
        g_byte_array_append (buf, chunk, (guint) n);
      }
    return g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  }
}

static void
print_summary (const CaIntakeRequest *r)
{
  g_autofree char *signed_at = r->signing_time != 0 ? tg_time_format (r->signing_time) : NULL;

  if (strcmp (r->action, "suspension") == 0)
    printf ("accepted: suspension for %d day%s\n", r->suspension_days, r->suspension_days == 1 ? "" : "s");
  else
    printf ("accepted: %s\n", r->action);
#define LINE(label, value) printf ("  %-19s%s\n", label, value)
  LINE ("name:", r->name);
  LINE ("national ID:", r->national_id);
  LINE ("e-mail:", r->email);
  if (r->reason[0] != '\0')
    LINE ("reason:", r->reason);
  LINE ("signer:", r->signer_subject);
  LINE ("serial:", r->signer_serial_hex);
  LINE ("signature:", r->detached ? "detached (multipart/signed)" : "opaque (application/pkcs7-mime)");
  if (signed_at != NULL)
    printf ("  %-19s%s (the signer's claim)\n", "signing time:", signed_at);
  LINE ("message SHA-256:", r->message_sha256);
  LINE ("signature SHA-256:", r->signature_sha256);
#undef LINE
}

int
cli_cmd_intake (int argc, char **argv)
{
  g_autofree char *ca_file = NULL;
  g_autofree char *now_text = NULL;
  g_autofree char *state = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "state", 0, 0, G_OPTION_ARG_FILENAME, &state,
      "Record the request as a case of this CA store (same as testigo ca intake)", "DIR" },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file, "Trust anchors and intermediates (PEM), required", "CA.pem" },
    { "now", 0, 0, G_OPTION_ARG_STRING, &now_text, "Verification time (RFC 3339 or unix seconds; default: now)", "TIME" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print the request as JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx =
    g_option_context_new ("MESSAGE.eml — verify a signed e-mail request (\"-\": standard input)");
  g_autoptr (GBytes) message = NULL;
  g_autoptr (CaIntakeRequest) request = NULL;
  GError *error = NULL;
  CaIntakeOptions opts = { 0 };

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "intake"))
    return EXIT_USAGE;
  if (argc == 2 && state != NULL && ca_file == NULL && now_text == NULL)
    {
      /* The store verifies against its own CA at its own clock, keeps
       * refusals and refuses replays: one code path, in `testigo ca intake`. */
      char *ca_argv[] = { (char *) "ca", (char *) "intake", argv[1], (char *) "--state", state,
                          json ? (char *) "--json" : NULL, NULL };
      return cli_cmd_ca (json ? 6 : 5, ca_argv);
    }
  if (argc != 2 || ca_file == NULL || state != NULL)
    {
      fprintf (stderr, "usage: testigo intake MESSAGE.eml --ca-file CA.pem [--now TIME] [--json]\n"
                       "       testigo intake MESSAGE.eml --state DIR [--json]   (record it as a case)\n");
      return EXIT_USAGE;
    }
  if (now_text != NULL)
    {
      guint64 v;
      if (g_ascii_string_to_unsigned (now_text, 10, 1, G_MAXINT64, &v, NULL))
        opts.now = (gint64) v;
      else if (!tg_time_parse (now_text, &opts.now))
        {
          fprintf (stderr, "testigo intake: --now is RFC 3339 (2026-01-31T12:00:00Z) or unix seconds\n");
          return EXIT_USAGE;
        }
    }
  opts.ca_file = ca_file;

  message = read_message (argv[1], &error);
  if (message == NULL)
    return cli_report_error ("intake", error);
  request = ca_intake_parse (message, &opts, &error);
  if (request == NULL)
    {
      if (g_error_matches (error, TG_ERROR, TG_ERROR_REFUSED))
        g_prefix_error (&error, "refused: ");
      return cli_report_error ("intake", error);
    }

  if (json)
    {
      g_autofree char *text = ca_intake_request_to_json (request);
      printf ("%s\n", text);
    }
  else
    print_summary (request);
  return EXIT_PASSED;
}

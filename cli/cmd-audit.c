/* cmd-audit.c — `testigo audit verify|append|stamp`: the CA core's
 * hash-chained, time-stamped audit log (docs/audit-log.md).
 *
 * Exit codes (docs/exit-codes.md): verify 0 intact, 1 altered (the first bad
 * line and why on stdout), 4 unreadable log or trust anchors; append and
 * stamp 0 done, 3 usage, 4 invalid input or a log with a corrupt tail,
 * 5 I/O, 6 TSA failure.
 */
#include "config.h"
#include "cli-private.h"
#include "ca-audit.h"
#include "tg-common.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

static int
audit_verify (int argc, char **argv)
{
  g_autofree char *ca = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca, "trusted roots for the time-stamp tokens (PEM)", "ROOT.pem" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the report as JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("LOG — check the audit log's chain, sequence and time-stamps");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAuditReport) r = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "audit verify"))
    return EXIT_USAGE;
  if (argc != 2 || ca == NULL)
    {
      fprintf (stderr, "usage: testigo audit verify LOG --ca-file ROOT.pem [--json]\n");
      return EXIT_USAGE;
    }
  r = ca_audit_verify (argv[1], ca, &error);
  if (r == NULL)
    {
      fprintf (stderr, "testigo audit verify: %s\n", error->message);
      return EXIT_INPUT;
    }
  if (json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "ok");
      json_builder_add_boolean_value (b, r->ok);
      json_builder_set_member_name (b, "entries");
      json_builder_add_int_value (b, (gint64) r->entries);
      json_builder_set_member_name (b, "timestamps");
      json_builder_add_int_value (b, (gint64) r->timestamps);
      json_builder_set_member_name (b, "first_bad");
      json_builder_add_int_value (b, (gint64) r->first_bad);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, r->message);
      json_builder_set_member_name (b, "last_stamped_time");
      if (r->last_stamped_time > 0)
        {
          g_autofree char *t = tg_time_format (r->last_stamped_time);
          json_builder_add_string_value (b, t);
        }
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "unstamped_tail");
      json_builder_add_int_value (b, (gint64) r->unstamped_tail);
      json_builder_end_object (b);
      cli_print_json (b);
    }
  else if (r->ok)
    {
      g_autofree char *t = r->last_stamped_time > 0 ? tg_time_format (r->last_stamped_time) : g_strdup ("never");
      printf ("INTACT: %s\n  last time-stamp: %s\n", r->message, t);
    }
  else
    printf ("ALTERED: %s\n", r->message);
  return r->ok ? EXIT_PASSED : EXIT_FAILED;
}

static int
audit_append (int argc, char **argv)
{
  g_autofree char *kind = NULL, *actor = NULL, *details = NULL;
  gint64 time_ms = 0;
  GOptionEntry entries[] = {
    { "kind", 0, 0, G_OPTION_ARG_STRING, &kind, "what happened: action, refusal, login, …", "KIND" },
    { "actor", 0, 0, G_OPTION_ARG_STRING, &actor, "who: officer:ana, admin:root, system, …", "ACTOR" },
    { "details", 0, 0, G_OPTION_ARG_FILENAME, &details, "a JSON object (never secrets)", "JSON" },
    { "time-ms", 0, 0, G_OPTION_ARG_INT64, &time_ms, "entry time in unix milliseconds (default now)", "MS" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("LOG — append one entry to the audit log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) audit = NULL;
  guint64 seq = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "audit append"))
    return EXIT_USAGE;
  if (argc != 2 || kind == NULL || actor == NULL)
    {
      fprintf (stderr, "usage: testigo audit append LOG --kind KIND --actor ACTOR [--details JSON] [--time-ms MS]\n");
      return EXIT_USAGE;
    }
  audit = ca_audit_open (argv[1], &error);
  if (audit == NULL || !ca_audit_append_full (audit, kind, actor, details, time_ms, &seq, &error))
    return cli_report_error ("audit append", g_steal_pointer (&error));
  printf ("%" G_GUINT64_FORMAT "\n", seq);
  return EXIT_PASSED;
}

static int
audit_stamp (int argc, char **argv)
{
  g_autofree char *keys = NULL, *url = NULL, *tsa_ca = NULL;
  GOptionEntry entries[] = {
    { "keys", 0, 0, G_OPTION_ARG_FILENAME, &keys, "development PKI: the built-in TSA (tsa.key, tsa.pem, root.pem)", "DIR" },
    { "tsa-url", 0, 0, G_OPTION_ARG_STRING, &url, "external RFC 3161 TSA over HTTP", "URL" },
    { "tsa-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &tsa_ca, "roots the TSA must chain to (default DIR/root.pem)", "ROOT.pem" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("LOG — time-stamp the head of the audit log");
  g_autoptr (GError) error = NULL;
  g_autoptr (CaAudit) audit = NULL;
  guint64 seq = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "audit stamp"))
    return EXIT_USAGE;
  if (argc != 2 || (keys == NULL && url == NULL))
    {
      fprintf (stderr, "usage: testigo audit stamp LOG (--keys DIR | --tsa-url URL [--tsa-ca-file ROOT.pem])\n");
      return EXIT_USAGE;
    }
  audit = ca_audit_open (argv[1], &error);
  if (audit == NULL || !ca_audit_timestamp_head_full (audit, keys, url, tsa_ca, &seq, &error))
    return cli_report_error ("audit stamp", g_steal_pointer (&error));
  if (seq > 0)
    printf ("time-stamp appended as entry %" G_GUINT64_FORMAT "\n", seq);
  else
    printf ("nothing to do: the head is already time-stamped (or the log is empty)\n");
  return EXIT_PASSED;
}

int
cli_cmd_audit (int argc, char **argv)
{
  if (argc >= 2 && strcmp (argv[1], "verify") == 0)
    return audit_verify (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "append") == 0)
    return audit_append (argc - 1, argv + 1);
  if (argc >= 2 && strcmp (argv[1], "stamp") == 0)
    return audit_stamp (argc - 1, argv + 1);
  fprintf (stderr, "usage: testigo audit verify LOG --ca-file ROOT.pem [--json]\n"
                   "       testigo audit append LOG --kind KIND --actor ACTOR [--details JSON] [--time-ms MS]\n"
                   "       testigo audit stamp LOG (--keys DIR | --tsa-url URL [--tsa-ca-file ROOT.pem])\n"
                   "verify exits 0 when the log is intact, 1 when it was altered, 4 when it cannot be read.\n");
  return argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0) ? EXIT_PASSED : EXIT_USAGE;
}

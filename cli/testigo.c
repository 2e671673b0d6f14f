/* testigo.c — the `testigo` command line: keys, seal, verify, inspect, tsa.
 * Exit codes are documented in docs/exit-codes.md and testigo(1); they are
 * stable across versions. */
#include "config.h"
#include "bundle.h"
#include "tg-common.h"
#include "sig.h"
#include "cli-private.h"

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gboolean
parse_time_arg (const char *text, gint64 *out)
{
  guint64 v;

  if (text == NULL)
    return TRUE;
  if (g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &v, NULL))
    {
      *out = (gint64) v;
      return TRUE;
    }
  return tg_time_parse (text, out);
}

/* ---- keys init ---- */
static int
cmd_keys (int argc, char **argv)
{
  g_autofree char *nb = NULL, *na = NULL;
  int bits = 0;
  BundleKeysOptions opts = { 0 };
  GOptionEntry entries[] = {
    { "ra-not-before", 0, 0, G_OPTION_ARG_STRING, &nb, "RA certificate validity start (RFC 3339 or unix seconds)", "TIME" },
    { "ra-not-after", 0, 0, G_OPTION_ARG_STRING, &na, "RA certificate validity end", "TIME" },
    { "bits", 0, 0, G_OPTION_ARG_INT, &bits, "RSA key size (default 3072)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("init DIR — create the development PKI");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "keys"))
    return EXIT_USAGE;
  if (argc != 3 || strcmp (argv[1], "init") != 0)
    {
      fprintf (stderr, "usage: testigo keys init DIR\n");
      return EXIT_USAGE;
    }
  if (!parse_time_arg (nb, &opts.ra_not_before) || !parse_time_arg (na, &opts.ra_not_after))
    {
      fprintf (stderr, "testigo keys: times are RFC 3339 (2026-01-31T12:00:00Z) or unix seconds\n");
      return EXIT_USAGE;
    }
  opts.key_bits = bits;
  if (!bundle_keys_init (argv[2], &opts, &error))
    return cli_report_error ("keys", g_steal_pointer (&error));
  printf ("development PKI written to %s (root.pem, ra.pem, tsa.pem, crl.pem; keys mode 0600)\n", argv[2]);
  return EXIT_PASSED;
}

/* NAME=FILE or FILE (name = basename) */
static gboolean
parse_inputs (char **args, GArray **out, const char *what)
{
  *out = g_array_new (FALSE, TRUE, sizeof (BundleInput));
  for (guint i = 0; args && args[i]; i++)
    {
      BundleInput in;
      char *eq = strchr (args[i], '=');
      if (eq != NULL)
        {
          *eq = '\0';
          in.name = args[i];
          in.path = eq + 1;
        }
      else
        {
          in.path = args[i];
          in.name = strrchr (args[i], '/') ? strrchr (args[i], '/') + 1 : args[i];
        }
      if (*in.name == '\0' || *in.path == '\0')
        {
          fprintf (stderr, "testigo seal: empty name or file in %s %s\n", what, args[i]);
          return FALSE;
        }
      g_array_append_val (*out, in);
    }
  return TRUE;
}

/* ---- seal ---- */
static int
cmd_seal (int argc, char **argv)
{
  BundleSealOptions o = { 0 };
  g_autofree char *keys = NULL, *key = NULL, *cert = NULL, *chain = NULL, *crl = NULL, *tsa_url = NULL;
  g_autofree char *tsa_policy = NULL, *tsa_cert = NULL, *tsa_ca = NULL, *record = NULL, *events = NULL;
  g_autofree char *out = NULL, *when = NULL;
  g_auto (GStrv) recordings = NULL, stills = NULL, documents = NULL;
  g_autoptr (GArray) rec_arr = NULL, still_arr = NULL, doc_arr = NULL;
  GOptionEntry entries[] = {
    { "keys", 0, 0, G_OPTION_ARG_FILENAME, &keys, "development PKI (from keys init); also the built-in TSA", "DIR" },
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key, "sealing private key (PEM)", "FILE" },
    { "cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "sealing certificate (PEM, may be followed by intermediates)", "FILE" },
    { "chain", 0, 0, G_OPTION_ARG_FILENAME, &chain, "intermediate certificates (PEM)", "FILE" },
    { "crl", 0, 0, G_OPTION_ARG_FILENAME, &crl, "revocation data to capture (PEM CRLs)", "FILE" },
    { "tsa-url", 0, 0, G_OPTION_ARG_STRING, &tsa_url, "external RFC 3161 TSA over HTTP", "URL" },
    { "tsa-cert", 0, 0, G_OPTION_ARG_FILENAME, &tsa_cert, "the TSA's certificate (+ intermediates), PEM", "FILE" },
    { "tsa-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &tsa_ca, "roots the TSA must chain to", "FILE" },
    { "tsa-policy", 0, 0, G_OPTION_ARG_STRING, &tsa_policy, "TSA policy OID to request and require", "OID" },
    { "record", 0, 0, G_OPTION_ARG_FILENAME, &record, "validation record (JSON, checked against the schema)", "FILE" },
    { "recording", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &recordings, "recording (repeatable); NAME=FILE to name it", "[NAME=]FILE" },
    { "events", 0, 0, G_OPTION_ARG_FILENAME, &events, "events.jsonl with the hash chain", "FILE" },
    { "still", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &stills, "still image (repeatable)", "NAME=FILE" },
    { "document", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &documents,
      "document under data/documents/, listed in the record's documents (repeatable)", "NAME=FILE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "the bundle to write (never overwritten)", "BUNDLE.tar" },
    { "sealing-time", 0, 0, G_OPTION_ARG_STRING, &when, "sealing time (RFC 3339 or unix seconds); default now or SOURCE_DATE_EPOCH", "TIME" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— seal an evidence bundle");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "seal"))
    return EXIT_USAGE;
  if (argc != 1 || record == NULL || out == NULL || (recordings == NULL && documents == NULL))
    {
      fprintf (stderr, "usage: testigo seal --keys DIR --record record.json --recording FILE [--recording FILE]... "
                       "[--events FILE] [--still NAME=FILE]... [--document NAME=FILE]... --out BUNDLE.tar\n"
                       "       (a record of another channel than the teleconference: --document instead of --recording)\n");
      return EXIT_USAGE;
    }
  if (!parse_inputs (recordings, &rec_arr, "--recording") || !parse_inputs (stills, &still_arr, "--still")
      || !parse_inputs (documents, &doc_arr, "--document"))
    return EXIT_USAGE;
  if (!parse_time_arg (when, &o.sealing_time))
    {
      fprintf (stderr, "testigo seal: --sealing-time is RFC 3339 or unix seconds\n");
      return EXIT_USAGE;
    }
  o.keys_dir = keys;
  o.key_path = key;
  o.cert_path = cert;
  o.chain_path = chain;
  o.crl_path = crl;
  o.tsa_url = tsa_url;
  o.tsa_cert_path = tsa_cert;
  o.tsa_ca_path = tsa_ca;
  o.tsa_policy = tsa_policy;
  o.record_path = record;
  o.events_path = events;
  o.recordings = rec_arr;
  o.stills = still_arr;
  o.documents = doc_arr;
  o.out_path = out;
  if (!bundle_seal (&o, &error))
    return cli_report_error ("seal", g_steal_pointer (&error));
  printf ("sealed %s\n", out);
  return EXIT_PASSED;
}

/* ---- verify ---- */
static int
cmd_verify (int argc, char **argv)
{
  BundleVerifyOptions o = { 0 };
  g_autofree char *ca = NULL, *tsa_ca = NULL, *for_case = NULL, *action = NULL, *serial = NULL, *policy = NULL;
  gboolean json = FALSE, quiet = FALSE;
  GOptionEntry entries[] = {
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca, "trusted roots for the seal (PEM)", "ROOT.pem" },
    { "tsa-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &tsa_ca, "trusted roots for the time-stamp (default: --ca-file)", "ROOT.pem" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the report as JSON", NULL },
    { "for-case", 0, 0, G_OPTION_ARG_STRING, &for_case, "require this case id", "ID" },
    { "action", 0, 0, G_OPTION_ARG_STRING, &action, "require this action", "ACTION" },
    { "serial", 0, 0, G_OPTION_ARG_STRING, &serial, "require this certificate serial", "SERIAL" },
    { "tsa-policy", 0, 0, G_OPTION_ARG_STRING, &policy, "require this time-stamp policy OID", "OID" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "no progress line", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("BUNDLE.tar — verify an evidence bundle");
  g_autoptr (GError) error = NULL;
  g_autoptr (BundleReport) r = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "verify"))
    return EXIT_USAGE;
  if (argc != 2 || ca == NULL)
    {
      fprintf (stderr, "usage: testigo verify --ca-file ROOT.pem [--tsa-ca-file ROOT.pem] [--json] "
                       "[--for-case ID --action ACTION --serial SERIAL] BUNDLE.tar\n");
      return EXIT_USAGE;
    }
  o.ca_file = ca;
  o.tsa_ca_file = tsa_ca;
  o.for_case = for_case;
  o.for_action = action;
  o.for_serial = serial;
  o.tsa_policy = policy;
  o.quiet_progress = quiet || json;
  r = bundle_verify (argv[1], &o, &error);
  if (r == NULL)
    {
      int code = cli_exit_for (error);
      fprintf (stderr, "testigo verify: %s\n", error->message);
      /* can't even start: usage-type problems are 3, unreadable files 4 */
      return code == EXIT_INPUT && strstr (error->message, "go together") ? EXIT_USAGE : code == EXIT_IO ? EXIT_INPUT : code;
    }
  if (json)
    {
      g_autofree char *text = bundle_report_to_json (r);
      printf ("%s\n", text);
    }
  else
    {
      g_autofree char *gt = r->gen_time ? tg_time_format (r->gen_time) : g_strdup ("-");
      printf ("%s%s%s\n", bundle_indication_to_string (r->indication), r->sub_indication ? " / " : "",
              r->sub_indication ? r->sub_indication : "");
      if (r->message)
        printf ("  reason: %s\n", r->message);
      if (r->member)
        printf ("  member: %s\n", r->member);
      printf ("  case: %s  action: %s  serial: %s  outcome: %s\n", r->case_id ? r->case_id : "-",
              r->action ? r->action : "-", r->serial ? r->serial : "-", r->outcome ? r->outcome : "-");
      printf ("  signer: %s\n  tsa: %s\n  genTime: %s\n", r->signer ? r->signer : "-", r->tsa ? r->tsa : "-", gt);
      for (guint i = 0; i < r->warnings->len; i++)
        printf ("  warning: %s\n", (char *) g_ptr_array_index (r->warnings, i));
    }
  return r->indication == BUNDLE_TOTAL_PASSED ? EXIT_PASSED
         : r->indication == BUNDLE_TOTAL_FAILED ? EXIT_FAILED : EXIT_INDETERMINATE;
}

/* ---- inspect ---- */
static int
cmd_inspect (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (argc != 2 || argv[1][0] == '-')
    {
      fprintf (stderr, "usage: testigo inspect BUNDLE.tar\n");
      return EXIT_USAGE;
    }
  if (!bundle_inspect (argv[1], stdout, &error))
    {
      fprintf (stderr, "testigo inspect: %s\n", error->message);
      return EXIT_INPUT;
    }
  return EXIT_PASSED;
}

/* ---- tsa serve ---- */
#define TSA_MAX_REQUEST (64 * 1024)

static void
tsa_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  BundleTsa *tsa = data;
  SoupMessageBody *body;
  const char *ctype;
  g_autoptr (GBytes) req = NULL, resp = NULL;
  g_autoptr (GError) error = NULL;

  if (strcmp (soup_server_message_get_method (msg), "POST") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      soup_message_headers_append (soup_server_message_get_response_headers (msg), "Allow", "POST");
      return;
    }
  ctype = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
  if (ctype == NULL || g_ascii_strcasecmp (ctype, "application/timestamp-query") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL);
      return;
    }
  body = soup_server_message_get_request_body (msg);
  if (body->length > TSA_MAX_REQUEST)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL);
      return;
    }
  req = soup_message_body_flatten (body);
  resp = bundle_tsa_respond (tsa, req, 0, &error);
  if (resp == NULL)
    {
      g_warning ("TSA: %s", error->message);
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/timestamp-reply", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (resp, NULL), g_bytes_get_size (resp));
}

static void
tsa_got_headers (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  goffset len = soup_message_headers_get_content_length (soup_server_message_get_request_headers (msg));

  if (len > TSA_MAX_REQUEST)
    soup_server_message_set_status (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL);
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static int
cmd_tsa (int argc, char **argv)
{
  g_autofree char *keys = NULL, *listen = NULL;
  GOptionEntry entries[] = {
    { "keys", 0, 0, G_OPTION_ARG_FILENAME, &keys, "development PKI with tsa.key and tsa.pem", "DIR" },
    { "listen", 0, 0, G_OPTION_ARG_STRING, &listen, "address to listen on", "ADDR:PORT" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("serve — the built-in RFC 3161 TSA over HTTP");
  g_autoptr (GError) error = NULL;
  g_autoptr (BundleTsa) tsa = NULL;
  g_autoptr (SoupServer) server = NULL;
  g_autoptr (GSocketAddress) addr = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  const char *colon;
  guint64 port;
  g_autofree char *host = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "tsa"))
    return EXIT_USAGE;
  if (argc != 2 || strcmp (argv[1], "serve") != 0 || keys == NULL || listen == NULL
      || (colon = strrchr (listen, ':')) == NULL
      || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    {
      fprintf (stderr, "usage: testigo tsa serve --keys DIR --listen ADDR:PORT\n");
      return EXIT_USAGE;
    }
  host = g_strndup (listen, (gsize) (colon - listen));
  if (host[0] == '[' && g_str_has_suffix (host, "]"))
    {
      char *inner = g_strndup (host + 1, strlen (host) - 2);
      g_free (host);
      host = inner;
    }
  addr = g_inet_socket_address_new_from_string (host, (guint) port);
  if (addr == NULL)
    {
      fprintf (stderr, "testigo tsa: %s is not an IP address\n", host);
      return EXIT_USAGE;
    }
  tsa = bundle_tsa_new (keys, &error);
  if (tsa == NULL)
    return cli_report_error ("tsa", g_steal_pointer (&error));
  server = soup_server_new ("server-header", "testigo-tsa", NULL);
  g_signal_connect (server, "request-read", G_CALLBACK (tsa_got_headers), NULL);
  soup_server_add_handler (server, NULL, tsa_handler, tsa, NULL);
  if (!soup_server_listen (server, addr, 0, &error))
    return cli_report_error ("tsa", g_steal_pointer (&error));
  printf ("testigo TSA listening on http://%s/\n", listen);
  fflush (stdout);
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGINT, quit_loop, loop);
  g_unix_signal_add (SIGTERM, quit_loop, loop);
  g_main_loop_run (loop);
  return EXIT_PASSED;
}

/* ---- officer add ---- */
static int
cmd_officer (int argc, char **argv)
{
  g_autofree char *state = NULL, *pwfile = NULL, *name = NULL, *password = NULL, *role = NULL;
  GOptionEntry entries[] = {
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state, "testigod state directory (default $XDG_STATE_HOME/testigo)", "DIR" },
    { "role", 0, 0, G_OPTION_ARG_STRING, &role, "officer (default: validates, backs every action) or admin (the CA administrator)", "ROLE" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &pwfile, "read the password from the first line of FILE", "FILE" },
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "display name (default: the id)", "NAME" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("add ID — add an RA officer account to testigod's database");
  g_autoptr (GError) error = NULL;
  int rc;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!cli_parse_options (ctx, &argc, &argv, "officer"))
    return EXIT_USAGE;
  if (argc != 3 || strcmp (argv[1], "add") != 0)
    {
      fprintf (stderr, "usage: testigo officer add ID [--role officer|admin] [--name NAME] [--password-file FILE] [--state-dir DIR]\n");
      return EXIT_USAGE;
    }
  if (state == NULL)
    state = sig_default_state_dir ();
  password = cli_read_new_password ("officer", pwfile, &rc);
  if (password == NULL)
    return rc;
  if (!sig_officer_add_role (state, argv[2], name ? name : argv[2], role ? role : "officer", password, &error))
    {
      memset (password, 0, strlen (password));
      return cli_report_error ("officer", g_steal_pointer (&error));
    }
  memset (password, 0, strlen (password));
  printf ("%s %s added to %s\n", g_strcmp0 (role, "admin") == 0 ? "CA administrator" : "officer", argv[2], state);
  return EXIT_PASSED;
}

static void
usage (FILE *out)
{
  fprintf (out,
           "usage: testigo COMMAND ...\n"
           "  keys init DIR                      create the development PKI\n"
           "  seal --keys DIR --record R (--recording F | --document NAME=F) ... --out B.tar\n"
           "                                     seal an evidence bundle (documents: other channels than video)\n"
           "  verify --ca-file ROOT.pem B.tar    verify a bundle (0 passed, 1 failed, 2 indeterminate)\n"
           "  inspect B.tar                      list what a bundle holds\n"
           "  tsa serve --keys DIR --listen A:P  run the built-in RFC 3161 TSA over HTTP\n"
           "  officer add ID [--role admin] [--password-file F]\n"
           "                                     add an officer (or CA administrator) account to testigod's database\n"
           "  holder add NATIONAL_ID --name N --email E [--password-file F]\n"
           "                                     add a holder's portal account\n"
           "  ca …                               certificate lifecycle behind the evidence gate (testigo ca --help)\n"
           "  intake MESSAGE.eml                 read a signed e-mail request (S/MIME)\n"
           "  audit verify LOG --ca-file ROOT.pem check the hash-chained audit log (0 intact, 1 altered)\n"
           "  audit append|stamp LOG …           add an entry / time-stamp the head (testigo audit --help)\n"
           "  version                            print the version\n"
           "Each command takes --help. Exit codes: see testigo(1).\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  if (argc < 2)
    {
      usage (stderr);
      return EXIT_USAGE;
    }
  if (strcmp (argv[1], "keys") == 0)
    return cmd_keys (argc - 1, argv + 1);
  if (strcmp (argv[1], "seal") == 0)
    return cmd_seal (argc - 1, argv + 1);
  if (strcmp (argv[1], "verify") == 0)
    return cmd_verify (argc - 1, argv + 1);
  if (strcmp (argv[1], "inspect") == 0)
    return cmd_inspect (argc - 1, argv + 1);
  if (strcmp (argv[1], "tsa") == 0)
    return cmd_tsa (argc - 1, argv + 1);
  if (strcmp (argv[1], "officer") == 0)
    return cmd_officer (argc - 1, argv + 1);
  if (strcmp (argv[1], "holder") == 0)
    return cli_cmd_holder (argc - 1, argv + 1);
  if (strcmp (argv[1], "ca") == 0)
    return cli_cmd_ca (argc - 1, argv + 1);
  if (strcmp (argv[1], "intake") == 0)
    return cli_cmd_intake (argc - 1, argv + 1);
  if (strcmp (argv[1], "audit") == 0)
    return cli_cmd_audit (argc - 1, argv + 1);
  if (strcmp (argv[1], "version") == 0 || strcmp (argv[1], "--version") == 0)
    {
      printf ("testigo %s\n", TESTIGO_VERSION);
      return EXIT_PASSED;
    }
  if (strcmp (argv[1], "help") == 0 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (stdout);
      return EXIT_PASSED;
    }
  fprintf (stderr, "testigo: unknown command %s\n", argv[1]);
  usage (stderr);
  return EXIT_USAGE;
}

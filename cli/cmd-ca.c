/* cmd-ca.c — `testigo ca`: the CA store, the certificate lifecycle behind
 * the evidence gate, the deadline sweep, CRLs and OCSP. testigo-ca(1);
 * exit codes in docs/exit-codes.md. */
#include "config.h"
#include "cli-private.h"
#include "ca.h"
#include "sig.h"
#include "tg-common.h"

#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options every subcommand takes. */
typedef struct {
  char *state;
  int bits;
  int max_days;
  gboolean superseded_on_crl;
  char *crl_url, *delta_crl_url, *ocsp_url, *bundle_ca;
} Common;

static void
common_clear (Common *c)
{
  g_free (c->state);
  g_free (c->crl_url);
  g_free (c->delta_crl_url);
  g_free (c->ocsp_url);
  g_free (c->bundle_ca);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Common, common_clear)

static void
add_common (GOptionContext *ctx, Common *c)
{
  GOptionEntry entries[] = {
    { "state", 0, 0, G_OPTION_ARG_FILENAME, &c->state, "state directory, testigod's (default $XDG_STATE_HOME/testigo)", "DIR" },
    { "state-dir", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &c->state, "same as --state", "DIR" },
    { "max-suspension-days", 0, 0, G_OPTION_ARG_INT, &c->max_days, "longest suspension allowed (1-15; never more than 15)", "N" },
    { "superseded-on-crl", 0, 0, G_OPTION_ARG_NONE, &c->superseded_on_crl, "list renewed certificates on the CRL as superseded (as the CPS says)", NULL },
    { "crl-url", 0, 0, G_OPTION_ARG_STRING, &c->crl_url, "CRL distribution point for issued certificates", "URL" },
    { "delta-crl-url", 0, 0, G_OPTION_ARG_STRING, &c->delta_crl_url, "Freshest CRL (delta) URL for certificates and full CRLs", "URL" },
    { "ocsp-url", 0, 0, G_OPTION_ARG_STRING, &c->ocsp_url, "OCSP responder URL for issued certificates", "URL" },
    { "bundle-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &c->bundle_ca, "trust anchors of another RA PKI for evidence bundles (besides STATE/keys/root.pem)", "FILE" },
    { NULL },
  };
  GOptionGroup *g = g_option_group_new ("store", "Store options (every subcommand):", "Show the store options", NULL, NULL);

  g_option_group_add_entries (g, entries);
  g_option_context_add_group (ctx, g);
}

static gint64
fixed_clock (gpointer data)
{
  return *(gint64 *) data;
}

static gint64 testigo_now;

/* TESTIGO_NOW: unix seconds or RFC 3339; the store's clock (for tests and drills). */
static gboolean
clock_from_env (CaStoreOptions *o, GError **error)
{
  const char *env = g_getenv ("TESTIGO_NOW");
  guint64 v;

  if (env == NULL || *env == '\0')
    return TRUE;
  if (g_ascii_string_to_unsigned (env, 10, 1, G_MAXINT64, &v, NULL))
    testigo_now = (gint64) v;
  else if (!tg_time_parse (env, &testigo_now))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "TESTIGO_NOW=%s is neither unix seconds nor RFC 3339", env);
      return FALSE;
    }
  o->clock = fixed_clock;
  o->clock_data = &testigo_now;
  return TRUE;
}

static CaStore *
open_store (Common *c, gboolean create, GError **error)
{
  CaStoreOptions o = { 0 };

  if (c->state == NULL)
    c->state = sig_default_state_dir ();
  o.state_dir = c->state;
  o.max_suspension_days = c->max_days;
  o.superseded_on_crl = c->superseded_on_crl;
  o.crl_url = c->crl_url;
  o.delta_crl_url = c->delta_crl_url;
  o.ocsp_url = c->ocsp_url;
  o.bundle_ca_file = c->bundle_ca;
  o.dev_key_bits = c->bits;
  o.no_create = !create;
  if (!clock_from_env (&o, error))
    return NULL;
  return ca_store_open (&o, error);
}

static gboolean
parse_actor (const char *text, CaActor *out)
{
  const char *colon = text ? strchr (text, ':') : NULL;
  g_autofree char *role = NULL;

  if (colon == NULL || colon[1] == '\0')
    return FALSE;
  role = g_strndup (text, colon - text);
  if (!ca_role_from_string (role, &out->role) || out->role == CA_ROLE_SYSTEM)
    return FALSE;
  out->id = colon + 1;
  return TRUE;
}

static gboolean
parse_time_arg (const char *text, gint64 *out)
{
  guint64 v;

  if (g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &v, NULL))
    {
      *out = (gint64) v;
      return TRUE;
    }
  return tg_time_parse (text, out);
}

static int
usage_error (const char *sub, const char *usage)
{
  fprintf (stderr, "usage: testigo ca %s %s\n", sub, usage);
  return EXIT_USAGE;
}

/* Parses the command line of `testigo ca @sub` with @ctx and checks that it
 * holds @n_words words (the subcommand and its arguments): EXIT_PASSED, or
 * EXIT_USAGE after saying why (@usage: the arguments' synopsis). */
static int
parse_args (GOptionContext *ctx, int *argc, char ***argv, const char *sub, int n_words, const char *usage)
{
  g_autofree char *cmd = g_strconcat ("ca ", sub, NULL);

  if (!cli_parse_options (ctx, argc, argv, cmd))
    return EXIT_USAGE;
  if (*argc != n_words)
    return usage_error (sub, usage);
  return EXIT_PASSED;
}

/* TRUE, with *@rc the exit code after saying why, when @path (nullable) exists:
 * `testigo @cmd` never overwrites a file. */
static gboolean
refuse_existing (const char *cmd, const char *path, int *rc)
{
  GError *error = NULL;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    return FALSE;
  g_set_error (&error, TG_ERROR, TG_ERROR_EXISTS, "%s exists: refusing to overwrite", path);
  *rc = cli_report_error (cmd, error);
  return TRUE;
}

static GOptionContext *
new_context (const char *params, GOptionEntry *entries, Common *c)
{
  GOptionContext *ctx = g_option_context_new (params);

  if (entries)
    g_option_context_add_main_entries (ctx, entries, NULL);
  add_common (ctx, c);
  return ctx;
}

static gboolean
read_text_file (const char *path, gsize cap, char **out, GError **error)
{
  gsize len = 0;
  return tg_file_get_contents_capped (path, cap, out, &len, error);
}

static gboolean
write_new_file (const char *path, const char *text, mode_t mode, GError **error)
{
  return tg_write_file_excl (path, text, strlen (text), mode, error);
}

/* ------------------------------------------------------------- init */

static int
ca_init (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  GOptionEntry entries[] = {
    { "bits", 0, 0, G_OPTION_ARG_INT, &c.bits, "RSA size of the development PKI when it is created (default 3072)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— create the CA store, or save its settings (the store options given here become its defaults)", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "init", 1, "[--state DIR] [--bits N]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, TRUE, &error)) == NULL || !ca_store_save_settings (store, &error))
    rc = cli_report_error ("ca init", g_steal_pointer (&error));
  else
    printf ("CA store ready in %s\n  issuing CA: %s\n  OCSP responder: %s\n  evidence roots: %s\n  audit log: %s\n",
            c.state, ca_store_get_path (store, "ca.pem"), ca_store_get_path (store, "ocsp.pem"),
            ca_store_get_path (store, "bundle-ca"), ca_store_get_path (store, "audit.jsonl"));
  return rc;
}

/* ----------------------------------------------------- import / issue */

static int
ca_import (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autoptr (GOptionContext) ctx = new_context ("CERT.pem — add an existing certificate of this CA", NULL, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *pem = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "import", 2, "CERT.pem [--state DIR]")) != EXIT_PASSED)
    return rc;
  if (!read_text_file (argv[1], 64 * 1024, &pem, &error) || (store = open_store (&c, FALSE, &error)) == NULL
      || (info = ca_cert_import (store, pem, &error)) == NULL)
    rc = cli_report_error ("ca import", g_steal_pointer (&error));
  else
    printf ("%s\n", info->serial);
  return rc;
}

static int
ca_issue (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autofree char *name = NULL, *id = NULL, *email = NULL, *csr = NULL, *out_cert = NULL, *out_key = NULL;
  int days = 0;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "holder's name (subject CN)", "NAME" },
    { "id", 0, 0, G_OPTION_ARG_STRING, &id, "holder's national ID (subject serialNumber), e.g. V-12345678", "ID" },
    { "email", 0, 0, G_OPTION_ARG_STRING, &email, "holder's e-mail (subjectAltName)", "ADDR" },
    { "csr", 0, 0, G_OPTION_ARG_FILENAME, &csr, "the holder's CSR (PEM); without it a key is generated", "FILE" },
    { "days", 0, 0, G_OPTION_ARG_INT, &days, "validity in days (default 365)", "N" },
    { "out-cert", 0, 0, G_OPTION_ARG_FILENAME, &out_cert, "write the certificate here (never overwritten)", "FILE" },
    { "out-key", 0, 0, G_OPTION_ARG_FILENAME, &out_key, "write the generated key here, mode 0600 (without --csr)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— issue a holder certificate from the store's CA", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *csr_pem = NULL, *key_pem = NULL;
  CaIssueRequest r = { 0 };
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, "ca issue"))
    return EXIT_USAGE;
  if (argc != 1 || name == NULL || id == NULL || email == NULL || out_cert == NULL || (csr == NULL) == (out_key == NULL))
    return usage_error ("issue", "--name NAME --id ID --email ADDR (--csr FILE | --out-key FILE) --out-cert FILE [--days N]");
  if (refuse_existing ("ca issue", out_cert, &rc) || refuse_existing ("ca issue", out_key, &rc))
    return rc;
  r.name = name;
  r.national_id = id;
  r.email = email;
  r.days = days;
  if ((csr && !read_text_file (csr, 64 * 1024, &csr_pem, &error)) || (store = open_store (&c, FALSE, &error)) == NULL)
    rc = cli_report_error ("ca issue", g_steal_pointer (&error));
  else
    {
      r.csr_pem = csr_pem;
      if ((info = ca_cert_issue (store, &r, out_key ? &key_pem : NULL, &error)) == NULL
          || (key_pem && !write_new_file (out_key, key_pem, 0600, &error))
          || !write_new_file (out_cert, info->pem, 0644, &error))
        rc = cli_report_error ("ca issue", g_steal_pointer (&error));
      else
        printf ("%s\n", info->serial);
    }
  if (key_pem)
    memset (key_pem, 0, strlen (key_pem));
  return rc;
}

/* -------------------------------------------------------- list / show */

static int
ca_list (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autofree char *holder = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "holder", 0, 0, G_OPTION_ARG_STRING, &holder, "only this holder's certificates (national ID)", "ID" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "a JSON array", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— list the certificates", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (GPtrArray) certs = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "list", 1, "[--holder ID] [--json]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, FALSE, &error)) == NULL || (certs = ca_cert_list (store, holder, &error)) == NULL)
    rc = cli_report_error ("ca list", g_steal_pointer (&error));
  else
    {
      if (json)
        printf ("[");
      for (guint i = 0; i < certs->len; i++)
        {
          CaCertInfo *ci = g_ptr_array_index (certs, i);
          if (json)
            {
              g_autofree char *t = ca_cert_info_to_json (ci, FALSE);
              printf ("%s%s", i ? ",\n " : "", t);
            }
          else
            {
              g_autofree char *until = ci->hold_deadline ? tg_time_format (ci->hold_deadline) : NULL;
              printf ("%-34s %-10s %-16s %s%s%s\n", ci->serial, ca_cert_state_to_string (ci->state),
                      ci->national_id ? ci->national_id : "-", ci->name ? ci->name : "-", until ? "  held until " : "",
                      until ? until : "");
            }
        }
      if (json)
        printf ("]\n");
    }
  return rc;
}

static int
ca_show (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  gboolean pem = FALSE;
  GOptionEntry entries[] = {
    { "pem", 0, 0, G_OPTION_ARG_NONE, &pem, "include the certificate (PEM)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("SERIAL — one certificate as JSON", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "show", 2, "SERIAL [--pem]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, FALSE, &error)) == NULL || (info = ca_cert_get (store, argv[1], &error)) == NULL)
    rc = cli_report_error ("ca show", g_steal_pointer (&error));
  else
    {
      g_autofree char *t = ca_cert_info_to_json (info, pem);
      printf ("%s\n", t);
    }
  return rc;
}

/* -------------------------------------------------------------- grants */

static int
ca_grants_cmd (int argc, char **argv, gboolean add)
{
  g_auto (Common) c = { 0 };
  g_autofree char *by = NULL;
  GOptionEntry entries[] = {
    { "as", 0, 0, G_OPTION_ARG_STRING, &by, "who grants (for the audit log), e.g. admin:root", "ROLE:ID" },
    { NULL },
  };
  const char *sub = add ? "grant" : "ungrant";
  g_autoptr (GOptionContext) ctx = new_context ("ACCOUNT WHAT... — WHAT: renewal suspension reactivation revocation | admin", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  CaActor actor = { CA_ROLE_ADMIN, "cli" };
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, add ? "ca grant" : "ca ungrant"))
    rc = EXIT_USAGE;
  else if (argc < 3 || (by && !parse_actor (by, &actor)))
    rc = usage_error (sub, "ACCOUNT (renewal|suspension|reactivation|revocation|admin)... [--as ROLE:ID]");
  else if ((store = open_store (&c, FALSE, &error)) == NULL)
    rc = cli_report_error (sub, g_steal_pointer (&error));
  else
    for (int i = 2; i < argc && rc == EXIT_PASSED; i++)
      if (!(add ? ca_grant : ca_ungrant) (store, argv[1], argv[i], &actor, &error))
        rc = cli_report_error (add ? "ca grant" : "ca ungrant", g_steal_pointer (&error));
  return rc;
}

static int
ca_grants_list (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autoptr (GOptionContext) ctx = new_context ("— list the grants (JSON)", NULL, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autofree char *json = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "grants", 1, "[--state DIR]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, FALSE, &error)) == NULL || (json = ca_grants_to_json (store, &error)) == NULL)
    rc = cli_report_error ("ca grants", g_steal_pointer (&error));
  else
    printf ("%s\n", json);
  return rc;
}

/* ----------------------------------------------------- check / apply */

static int
ca_gate_cmd (int argc, char **argv, gboolean apply)
{
  g_auto (Common) c = { 0 };
  g_autofree char *case_id = NULL, *action = NULL, *serial = NULL, *bundle = NULL, *as = NULL, *reason = NULL;
  g_autofree char *invalidity = NULL, *csr = NULL, *out_cert = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "case", 0, 0, G_OPTION_ARG_STRING, &case_id, "the case id the bundle must bind", "ID" },
    { "action", 0, 0, G_OPTION_ARG_STRING, &action, "suspension, reactivation, revocation or renewal", "ACTION" },
    { "serial", 0, 0, G_OPTION_ARG_STRING, &serial, "the certificate serial (hex) the bundle must bind", "SERIAL" },
    { "bundle", 0, 0, G_OPTION_ARG_FILENAME, &bundle, "the sealed evidence bundle", "B.tar" },
    { "as", 0, 0, G_OPTION_ARG_STRING, &as, "who applies: admin:ID or holder:NATIONAL_ID", "ROLE:ID" },
    { "reason", 0, 0, G_OPTION_ARG_STRING, &reason, "revocation: RFC 5280 reason (keyCompromise, cessationOfOperation, "
                                                    "affiliationChanged, superseded, privilegeWithdrawn, unspecified); "
                                                    "default: from the record's reason", "REASON" },
    { "invalidity-date", 0, 0, G_OPTION_ARG_STRING, &invalidity, "keyCompromise: when the key was compromised (RFC 3339 or unix seconds)", "TIME" },
    { "csr", 0, 0, G_OPTION_ARG_FILENAME, &csr, "renewal: the holder's CSR, to issue the new certificate at once", "FILE" },
    { "out-cert", 0, 0, G_OPTION_ARG_FILENAME, &out_cert, "renewal with --csr: write the new certificate here", "FILE" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the verdict or result as JSON", NULL },
    { NULL },
  };
  const char *sub = apply ? "ca apply" : "ca check";
  g_autoptr (GOptionContext) ctx = new_context (apply ? "— apply an action through the evidence gate"
                                                      : "— the gate's verdict on an action (nothing changes)", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autofree char *csr_pem = NULL;
  CaActionRequest req = { 0 };
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, sub))
    return EXIT_USAGE;
  req.reason = CA_REASON_NONE;
  if (argc != 1 || case_id == NULL || action == NULL || serial == NULL || bundle == NULL || as == NULL
      || !parse_actor (as, &req.actor) || (reason && !ca_reason_from_string (reason, &req.reason))
      || (invalidity && !parse_time_arg (invalidity, &req.invalidity_time)) || (out_cert && csr == NULL)
      || (csr && !apply))
    return usage_error (apply ? "apply" : "check",
                        "--case ID --action ACTION --serial SERIAL --bundle B.tar --as admin:ID|holder:ID "
                        "[--reason R] [--invalidity-date T] [--csr F --out-cert F] [--json]");
  if (refuse_existing (sub, out_cert, &rc))
    return rc;
  req.case_id = case_id;
  req.action = action;
  req.serial = serial;
  req.bundle_path = bundle;
  if ((csr && !read_text_file (csr, 64 * 1024, &csr_pem, &error)) || (store = open_store (&c, FALSE, &error)) == NULL)
    return cli_report_error (sub, g_steal_pointer (&error));
  req.csr_pem = csr_pem;
  if (!apply)
    {
      g_autofree char *verdict = NULL;
      gboolean ok = ca_gate_check (store, &req, &verdict, &error);
      if (json && verdict)
        printf ("%s\n", verdict);
      else if (ok)
        printf ("allowed: %s of %s (case %s)\n", action, serial, case_id);
      if (!ok)
        {
          if (json)
            {
              rc = cli_exit_for (error);
              g_clear_error (&error);
            }
          else
            rc = cli_report_error (sub, g_steal_pointer (&error));
        }
    }
  else
    {
      g_autoptr (CaActionResult) r = ca_apply (store, &req, &error);
      if (r == NULL)
        rc = cli_report_error (sub, g_steal_pointer (&error));
      else
        {
          if (r->new_cert_pem && out_cert && !write_new_file (out_cert, r->new_cert_pem, 0644, &error))
            rc = cli_report_error (sub, g_steal_pointer (&error));
          if (json)
            {
              g_autofree char *t = ca_action_result_to_json (r);
              printf ("%s\n", t);
            }
          else
            {
              g_autofree char *t0 = r->revocation_time ? tg_time_format (r->revocation_time) : NULL;
              g_autofree char *dl = r->deadline ? tg_time_format (r->deadline) : NULL;
              printf ("applied %s of %s (case %s, action %" G_GINT64_FORMAT ")", r->action, r->serial, r->case_id,
                      r->action_id);
              if (t0)
                printf ("; revocation date %s", t0);
              if (r->reason != CA_REASON_NONE && ca_reason_to_string (r->reason))
                printf ("; reason %s", ca_reason_to_string (r->reason));
              if (dl)
                printf ("; deadline %s", dl);
              if (r->new_serial)
                printf ("; new certificate %s", r->new_serial);
              printf ("\n");
            }
        }
    }
  return rc;
}

static int
ca_renew (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autofree char *case_id = NULL, *csr = NULL, *as = NULL, *out_cert = NULL;
  GOptionEntry entries[] = {
    { "case", 0, 0, G_OPTION_ARG_STRING, &case_id, "an approved renewal case", "ID" },
    { "csr", 0, 0, G_OPTION_ARG_FILENAME, &csr, "the holder's CSR (PEM)", "FILE" },
    { "as", 0, 0, G_OPTION_ARG_STRING, &as, "holder:NATIONAL_ID or admin:ID", "ROLE:ID" },
    { "out-cert", 0, 0, G_OPTION_ARG_FILENAME, &out_cert, "write the new certificate here", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— issue the new certificate of an approved renewal", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (CaActionResult) r = NULL;
  g_autofree char *csr_pem = NULL;
  CaActor actor = { 0 };
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, "ca renew"))
    return EXIT_USAGE;
  if (argc != 1 || case_id == NULL || csr == NULL || as == NULL || out_cert == NULL || !parse_actor (as, &actor))
    return usage_error ("renew", "--case ID --csr FILE --as holder:ID|admin:ID --out-cert FILE");
  if (refuse_existing ("ca renew", out_cert, &rc))
    return rc;
  if (!read_text_file (csr, 64 * 1024, &csr_pem, &error) || (store = open_store (&c, FALSE, &error)) == NULL
      || (r = ca_renew_complete (store, case_id, csr_pem, &actor, &error)) == NULL
      || !write_new_file (out_cert, r->new_cert_pem, 0644, &error))
    rc = cli_report_error ("ca renew", g_steal_pointer (&error));
  else
    printf ("%s\n", r->new_serial);
  return rc;
}

/* ------------------------------------------------------- sweep, crl */

static int
ca_sweep_cmd (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autoptr (GOptionContext) ctx = new_context ("— revoke the suspensions past their deadline (for cron)", NULL, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  guint n = 0;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "sweep", 1, "[--state DIR]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, FALSE, &error)) == NULL || !ca_sweep (store, &n, &error))
    {
      if (n > 0)
        printf ("revoked %u\n", n);
      rc = cli_report_error ("ca sweep", g_steal_pointer (&error));
    }
  else
    printf ("revoked %u\n", n);
  return rc;
}

static int
ca_publish_cmd (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autoptr (GOptionContext) ctx = new_context ("— write a new full CRL and delta CRL; time-stamp the audit log's head", NULL, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "publish", 1, "[--state DIR]")) != EXIT_PASSED)
    return rc;
  if ((store = open_store (&c, FALSE, &error)) == NULL || !ca_publish (store, &error)
      || !ca_store_timestamp_audit (store, NULL, &error))
    rc = cli_report_error ("ca publish", g_steal_pointer (&error));
  else
    printf ("%s\n%s\n", ca_store_get_path (store, "full.crl"), ca_store_get_path (store, "delta.crl"));
  return rc;
}

static gboolean
write_bytes (const char *path, GBytes *b, GError **error)
{
  g_autoptr (TgAtomicFile) f = tg_atomic_file_new (path, 0644, TRUE, error);
  gsize len;
  const void *p = g_bytes_get_data (b, &len);

  return f != NULL && tg_atomic_file_write (f, p, len, error) && tg_atomic_file_commit (f, error);
}

static int
ca_crl_cmd (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  gboolean delta = FALSE;
  g_autofree char *out = NULL;
  GOptionEntry entries[] = {
    { "delta", 0, 0, G_OPTION_ARG_NONE, &delta, "the delta CRL instead of the full CRL", NULL },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out, "write the DER CRL here (replaced atomically)", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— copy out the published CRL (DER)", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (GBytes) crl = NULL;
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, "ca crl"))
    rc = EXIT_USAGE;
  else if (argc != 1 || out == NULL)
    rc = usage_error ("crl", "[--delta] --out FILE");
  else if ((store = open_store (&c, FALSE, &error)) == NULL || (crl = ca_store_get_crl (store, delta, &error)) == NULL
           || !write_bytes (out, crl, &error))
    rc = cli_report_error ("ca crl", g_steal_pointer (&error));
  return rc;
}

static int
ca_ocsp_cmd (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  g_autofree char *reqin = NULL, *respout = NULL;
  GOptionEntry entries[] = {
    { "reqin", 0, 0, G_OPTION_ARG_FILENAME, &reqin, "a DER OCSPRequest (openssl ocsp -reqout)", "FILE" },
    { "respout", 0, 0, G_OPTION_ARG_FILENAME, &respout, "write the DER OCSPResponse here", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("— answer one OCSP request from the store", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (GBytes) req = NULL, resp = NULL;
  char *data = NULL;
  gsize len = 0;
  int rc = EXIT_PASSED;

  if (!cli_parse_options (ctx, &argc, &argv, "ca ocsp"))
    rc = EXIT_USAGE;
  else if (argc != 1 || reqin == NULL || respout == NULL)
    rc = usage_error ("ocsp", "--reqin REQ.der --respout RESP.der");
  else if (!tg_file_get_contents_capped (reqin, 64 * 1024, &data, &len, &error))
    rc = cli_report_error ("ca ocsp", g_steal_pointer (&error));
  else
    {
      req = g_bytes_new_take (data, len);
      if ((store = open_store (&c, FALSE, &error)) == NULL || (resp = ca_store_ocsp_respond (store, req, &error)) == NULL
          || !write_bytes (respout, resp, &error))
        rc = cli_report_error ("ca ocsp", g_steal_pointer (&error));
    }
  return rc;
}

static int
ca_intake_cmd (int argc, char **argv)
{
  g_auto (Common) c = { 0 };
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the case as JSON", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = new_context ("MESSAGE.eml — accept a signed e-mail request as a case", entries, &c);
  g_autoptr (GError) error = NULL;
  g_autoptr (CaStore) store = NULL;
  g_autoptr (CaIntakeCase) ic = NULL;
  char *data = NULL;
  gsize len = 0;
  int rc = EXIT_PASSED;

  if ((rc = parse_args (ctx, &argc, &argv, "intake", 2, "MESSAGE.eml [--json]")) != EXIT_PASSED)
    return rc;
  if (!tg_file_get_contents_capped (argv[1], 4 * 1024 * 1024, &data, &len, &error))
    rc = cli_report_error ("ca intake", g_steal_pointer (&error));
  else
    {
      g_autoptr (GBytes) msg = g_bytes_new_take (data, len);
      if ((store = open_store (&c, FALSE, &error)) == NULL || (ic = ca_intake_accept (store, msg, &error)) == NULL)
        rc = cli_report_error ("ca intake", g_steal_pointer (&error));
      else if (json)
        {
          g_autoptr (JsonBuilder) b = json_builder_new ();
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "case");
          json_builder_add_string_value (b, ic->case_id);
          json_builder_set_member_name (b, "action");
          json_builder_add_string_value (b, ic->action);
          json_builder_set_member_name (b, "serial");
          json_builder_add_string_value (b, ic->serial);
          json_builder_set_member_name (b, "national_id");
          json_builder_add_string_value (b, ic->national_id);
          json_builder_set_member_name (b, "reason");
          json_builder_add_string_value (b, ic->reason);
          json_builder_set_member_name (b, "suspension_days");
          json_builder_add_int_value (b, ic->suspension_days);
          json_builder_set_member_name (b, "message_sha256");
          json_builder_add_string_value (b, ic->message_sha256);
          json_builder_set_member_name (b, "bundle");
          json_builder_add_string_value (b, ic->bundle_path);
          json_builder_end_object (b);
          cli_print_json (b);
        }
      else
        printf ("case %s: %s of %s\nbundle %s\n", ic->case_id, ic->action, ic->serial, ic->bundle_path);
    }
  return rc;
}

/* ------------------------------------------------------------- main */

static void
ca_usage (FILE *out)
{
  fprintf (out,
           "usage: testigo ca SUBCOMMAND [--state DIR] ...\n"
           "  init [--bits N]                       create the store (CA, OCSP responder, database, dev PKI)\n"
           "  import CERT.pem                       add an existing certificate of this CA\n"
           "  issue --name N --id ID --email E (--csr F | --out-key F) --out-cert F [--days N]\n"
           "  list [--holder ID] [--json]           the certificates and their state\n"
           "  show SERIAL [--pem]                   one certificate (JSON)\n"
           "  grant ACCOUNT WHAT...                 WHAT: renewal suspension reactivation revocation | admin\n"
           "  ungrant ACCOUNT WHAT...\n"
           "  grants                                the grants (JSON)\n"
           "  check --case C --action A --serial S --bundle B --as ROLE:ID [--json]\n"
           "                                        the gate's verdict (0 allowed, 9 refused)\n"
           "  apply --case C --action A --serial S --bundle B --as ROLE:ID [--reason R] [--invalidity-date T]\n"
           "        [--csr F --out-cert F]          apply the action through the gate\n"
           "  renew --case C --csr F --as ROLE:ID --out-cert F\n"
           "                                        issue the new certificate of an approved renewal\n"
           "  sweep                                 revoke suspensions past their deadline (idempotent; cron)\n"
           "  publish                               write a new full and delta CRL\n"
           "  crl [--delta] --out F                 copy out the published CRL (DER)\n"
           "  ocsp --reqin F --respout F            answer an OCSP request from the store\n"
           "  intake MESSAGE.eml                    accept a signed e-mail request as a case\n"
           "TESTIGO_NOW (unix seconds or RFC 3339) sets the clock. See testigo-ca(1).\n");
}

int
cli_cmd_ca (int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn) (int, char **);
  } subs[] = {
    { "init", ca_init }, { "import", ca_import }, { "issue", ca_issue }, { "list", ca_list },
    { "show", ca_show }, { "grants", ca_grants_list }, { "renew", ca_renew }, { "sweep", ca_sweep_cmd },
    { "publish", ca_publish_cmd }, { "crl", ca_crl_cmd }, { "ocsp", ca_ocsp_cmd }, { "intake", ca_intake_cmd },
  };

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0)
    {
      ca_usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? EXIT_USAGE : EXIT_PASSED;
    }
  if (strcmp (argv[1], "grant") == 0 || strcmp (argv[1], "ungrant") == 0)
    return ca_grants_cmd (argc - 1, argv + 1, strcmp (argv[1], "grant") == 0);
  if (strcmp (argv[1], "check") == 0 || strcmp (argv[1], "apply") == 0)
    return ca_gate_cmd (argc - 1, argv + 1, strcmp (argv[1], "apply") == 0);
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++)
    if (strcmp (argv[1], subs[i].name) == 0)
      return subs[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "testigo ca: unknown subcommand %s\n", argv[1]);
  ca_usage (stderr);
  return EXIT_USAGE;
}

/* publication-tool — drives ca/publication from the command line, for the
 * tests in this folder and for bench/ca.
 *
 *   publication-tool keys DIR [BITS]
 *       the development PKI of `testigo keys init` (bundle_keys_init)
 *   publication-tool responder CA_CERT CA_KEY OUT_CERT OUT_KEY [DAYS]
 *       an EC P-256 delegated OCSP responder (ca_ocsp_responder_create)
 *   publication-tool crl [OPTIONS] CERT KEY ENTRIES OUT
 *       a CRL over ENTRIES (see below), DER (or PEM with --pem)
 *   publication-tool ocsp [OPTIONS] CERT KEY ISSUER|- STATUS REQUEST OUT
 *       the OCSP response to REQUEST (DER)
 *   publication-tool ocsp-bench [OPTIONS] CERT KEY ISSUER|- STATUS REQUEST...
 *       answers the requests in a loop on --threads threads in each of
 *       --processes processes for --seconds; prints one JSON line
 *   publication-tool ocsp-load --url URL [--in-flight N] [--seconds S] [--new-connections] REQUEST...
 *       an OCSP-over-HTTP load generator (libsoup): N POSTs kept in flight
 *       for S seconds, each answer checked (HTTP 200, a successful
 *       OCSPResponse); prints one JSON line. bench/ca points it at testigod
 *       and at `openssl ocsp -port`.
 *
 * ENTRIES and STATUS files: one certificate a line, '#' starts a comment:
 *   SERIAL good                                   (STATUS only)
 *   SERIAL REVTIME REASON [INVALIDITY|-] [reject]
 * REVTIME and INVALIDITY are unix seconds, REASON an RFC 5280 name or "none".
 * A serial missing from STATUS is "unknown".
 *
 * Exit status: 0 done, 1 failed (message on stderr), 2 usage.
 */
#include "config.h"
#include "bundle.h"
#include "ca-publication.h"
#include "tg-common.h"

#include <errno.h>
#include <libsoup/soup.h>
#include <openssl/ocsp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENTRIES_MAX ((gsize) 512 * 1024 * 1024)

static int
usage (void)
{
  fprintf (stderr, "usage: publication-tool keys|responder|crl|ocsp|ocsp-bench|ocsp-load ... (see the source)\n");
  return 2;
}

static int
fail (GError *error)
{
  fprintf (stderr, "publication-tool: %s\n", error->message);
  g_error_free (error);
  return 1;
}

typedef struct {
  GPtrArray *serials;       /* owns the entries' serial_hex */
  GArray *entries;          /* CaRevokedEntry (revoked lines only) */
  GHashTable *status;       /* normalized serial → CaRevokedEntry * or NULL (good) */
} EntryFile;

static void
entry_file_free (EntryFile *f)
{
  if (f == NULL)
    return;
  g_clear_pointer (&f->entries, g_array_unref);
  g_clear_pointer (&f->status, g_hash_table_unref);
  g_clear_pointer (&f->serials, g_ptr_array_unref);
  g_free (f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EntryFile, entry_file_free)

static gboolean
parse_time (const char *s, gint64 *out)
{
  char *end = NULL;
  gint64 v;

  errno = 0;
  v = g_ascii_strtoll (s, &end, 10);
  if (errno != 0 || end == s || *end != '\0')
    return FALSE;
  *out = v;
  return TRUE;
}

/* Upper-case, two digits a byte, no leading zero bytes — the lookup's form. */
static char *
normalize_serial (const char *hex)
{
  const char *p = hex;
  g_autofree char *up = NULL;

  while (*p == '0' && p[1] != '\0')
    p++;
  up = g_ascii_strup (p, -1);
  return strlen (up) % 2 ? g_strconcat ("0", up, NULL) : g_steal_pointer (&up);
}

static EntryFile *
entry_file_load (const char *path, gboolean allow_good, GError **error)
{
  g_autoptr (EntryFile) f = g_new0 (EntryFile, 1);
  g_autofree char *data = NULL;
  g_auto (GStrv) lines = NULL;
  gsize len = 0;

  if (!tg_file_get_contents_capped (path, ENTRIES_MAX, &data, &len, error))
    return NULL;
  f->serials = g_ptr_array_new_with_free_func (g_free);
  f->entries = g_array_new (FALSE, TRUE, sizeof (CaRevokedEntry));
  f->status = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  lines = g_strsplit (data, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = lines[i];
      char *hash = strchr (line, '#');
      g_auto (GStrv) split = NULL;
      const char *fields[6];
      guint n = 0;
      CaRevokedEntry e = { 0 };

      if (hash != NULL)
        *hash = '\0';
      split = g_strsplit_set (line, " \t\r", -1);
      for (guint j = 0; split[j] != NULL; j++)
        if (*split[j] != '\0' && n < G_N_ELEMENTS (fields))
          fields[n++] = split[j];
      if (n == 0)
        continue;
      if (allow_good && n == 2 && strcmp (fields[1], "good") == 0)
        {
          g_hash_table_insert (f->status, normalize_serial (fields[0]), NULL);
          continue;
        }
      e.reason = CA_REASON_NONE;
      if (n < 3 || n > 5
          || !parse_time (fields[1], &e.revocation_time)
          || (strcmp (fields[2], "none") != 0 && !ca_reason_from_string (fields[2], &e.reason))
          || (n >= 4 && strcmp (fields[3], "-") != 0 && !parse_time (fields[3], &e.invalidity_time))
          || (n == 5 && strcmp (fields[4], "reject") != 0))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "%s:%u: expected SERIAL REVTIME REASON [INVALIDITY|-] [reject]", path, i + 1);
          return NULL;
        }
      e.hold_reject = n == 5;
      e.serial_hex = g_strdup (fields[0]);
      g_ptr_array_add (f->serials, (char *) e.serial_hex);
      g_array_append_val (f->entries, e);
    }
  for (guint i = 0; allow_good && i < f->entries->len; i++)
    {
      CaRevokedEntry *e = &g_array_index (f->entries, CaRevokedEntry, i);
      g_hash_table_insert (f->status, normalize_serial (e->serial_hex), e);
    }
  return g_steal_pointer (&f);
}

static CaCertStatus
lookup (const char *serial_hex, CaRevokedEntry *entry, gpointer user_data)
{
  EntryFile *f = user_data;
  gpointer value;

  if (!g_hash_table_lookup_extended (f->status, serial_hex, NULL, &value))
    return CA_STATUS_UNKNOWN;
  if (value == NULL)
    return CA_STATUS_GOOD;
  *entry = *(CaRevokedEntry *) value;
  return CA_STATUS_REVOKED;
}

static gboolean
write_out (const char *path, const void *data, gsize len, GError **error)
{
  return g_file_set_contents (path, data, (gssize) len, error);
}

/* ------------------------------------------------------------ commands */

static int
cmd_keys (int argc, char **argv)
{
  BundleKeysOptions opts = { 0 };
  GError *error = NULL;

  if (argc < 2 || argc > 3)
    return usage ();
  if (argc == 3)
    opts.key_bits = atoi (argv[2]);
  return bundle_keys_init (argv[1], &opts, &error) ? 0 : fail (error);
}

static int
cmd_responder (int argc, char **argv)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  int days = argc == 6 ? atoi (argv[5]) : 30;
  GError *error = NULL;

  if (argc < 5 || argc > 6)
    return usage ();
  return ca_ocsp_responder_create (argv[1], argv[2], argv[3], argv[4], now - 3600,
                                   now + days * 86400LL, &error) ? 0 : fail (error);
}

static int
cmd_crl (int argc, char **argv)
{
  gint64 number = 1, base = 0, this_update = 0, next_update = 0;
  char *delta_uri = NULL;
  gboolean pem = FALSE, timing = FALSE;
  GOptionEntry opts[] = {
    { "number", 0, 0, G_OPTION_ARG_INT64, &number, "cRLNumber", "N" },
    { "base", 0, 0, G_OPTION_ARG_INT64, &base, "delta CRL over base N", "N" },
    { "this-update", 0, 0, G_OPTION_ARG_INT64, &this_update, "thisUpdate (unix s; default now)", "T" },
    { "next-update", 0, 0, G_OPTION_ARG_INT64, &next_update, "nextUpdate (default thisUpdate + 1 day)", "T" },
    { "delta-uri", 0, 0, G_OPTION_ARG_STRING, &delta_uri, "Freshest CRL URI", "URI" },
    { "pem", 0, 0, G_OPTION_ARG_NONE, &pem, "write PEM", NULL },
    { "time", 0, 0, G_OPTION_ARG_NONE, &timing, "print the build time (s) on stdout", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("CERT KEY ENTRIES OUT");
  g_autoptr (CaSigner) signer = NULL;
  g_autoptr (EntryFile) f = NULL;
  g_autoptr (GBytes) der = NULL;
  GError *error = NULL;
  CaCrlOptions o = { 0 };
  gint64 t0, t1;

  g_option_context_add_main_entries (ctx, opts, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc != 5 || number < 0 || base < 0)
    return usage ();
  if (this_update == 0)
    this_update = g_get_real_time () / G_USEC_PER_SEC;
  o.crl_number = (guint64) number;
  o.base_crl_number = (guint64) base;
  o.this_update = this_update;
  o.next_update = next_update != 0 ? next_update : this_update + 86400;
  o.delta_uri = delta_uri;
  if ((signer = ca_signer_load (argv[1], argv[2], NULL, &error)) == NULL
      || (f = entry_file_load (argv[3], FALSE, &error)) == NULL)
    return fail (error);
  t0 = g_get_monotonic_time ();
  der = ca_crl_build (signer, &o, (CaRevokedEntry *) f->entries->data, f->entries->len, &error);
  t1 = g_get_monotonic_time ();
  g_free (delta_uri);
  if (der == NULL)
    return fail (error);
  if (timing)
    printf ("%.6f\n", (double) (t1 - t0) / G_USEC_PER_SEC);
  if (pem)
    {
      g_autofree char *text = ca_der_to_pem (der, "X509 CRL");
      return write_out (argv[4], text, strlen (text), &error) ? 0 : fail (error);
    }
  return write_out (argv[4], g_bytes_get_data (der, NULL), g_bytes_get_size (der), &error) ? 0 : fail (error);
}

typedef struct {
  gint64 now, validity, max;
} OcspArgs;

static GOptionContext *
ocsp_context (const char *params, OcspArgs *a, GOptionEntry *extra)
{
  GOptionEntry opts[] = {
    { "now", 0, 0, G_OPTION_ARG_INT64, &a->now, "thisUpdate (unix s; default now)", "T" },
    { "validity", 0, 0, G_OPTION_ARG_INT64, &a->validity, "nextUpdate - thisUpdate (default 3600)", "S" },
    { "max", 0, 0, G_OPTION_ARG_INT64, &a->max, "singles per request (default 16)", "N" },
    { NULL },
  };
  GOptionContext *ctx = g_option_context_new (params);

  a->validity = 3600;
  g_option_context_add_main_entries (ctx, opts, NULL);
  if (extra != NULL)
    g_option_context_add_main_entries (ctx, extra, NULL);
  return ctx;
}

static void
ocsp_options (const OcspArgs *a, EntryFile *f, CaOcspOptions *o)
{
  o->lookup = lookup;
  o->user_data = f;
  o->now = a->now != 0 ? a->now : g_get_real_time () / G_USEC_PER_SEC;
  o->validity = a->validity;
  o->max_requests = (guint) a->max;
}

static int
cmd_ocsp (int argc, char **argv)
{
  OcspArgs a = { 0 };
  g_autoptr (GOptionContext) ctx = ocsp_context ("CERT KEY ISSUER|- STATUS REQUEST OUT", &a, NULL);
  g_autoptr (CaSigner) signer = NULL;
  g_autoptr (EntryFile) f = NULL;
  g_autoptr (GBytes) req = NULL, resp = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  GError *error = NULL;
  CaOcspOptions o = { 0 };

  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc != 7)
    return usage ();
  if ((signer = ca_signer_load (argv[1], argv[2], strcmp (argv[3], "-") ? argv[3] : NULL, &error)) == NULL
      || (f = entry_file_load (argv[4], TRUE, &error)) == NULL
      /* read more than the cap so that the builder sees (and refuses) big ones */
      || !tg_file_get_contents_capped (argv[5], 4 * CA_OCSP_MAX_REQUEST, &data, &len, &error))
    return fail (error);
  req = g_bytes_new_take (g_steal_pointer (&data), len);
  ocsp_options (&a, f, &o);
  if ((resp = ca_ocsp_respond (signer, req, &o, &error)) == NULL)
    return fail (error);
  return write_out (argv[6], g_bytes_get_data (resp, NULL), g_bytes_get_size (resp), &error) ? 0 : fail (error);
}

typedef struct {
  CaSigner *signer;
  GPtrArray *requests;
  CaOcspOptions options;
  gint64 deadline;
  guint64 count;
  guint offset;
  gboolean failed;
} BenchThread;

static gpointer
bench_thread (gpointer data)
{
  BenchThread *t = data;
  guint i = t->offset;

  while (g_get_monotonic_time () < t->deadline)
    {
      for (guint k = 0; k < 16; k++, i++)
        {
          g_autoptr (GError) error = NULL;
          g_autoptr (GBytes) resp = ca_ocsp_respond (t->signer, t->requests->pdata[i % t->requests->len],
                                                     &t->options, &error);
          if (resp == NULL)
            {
              fprintf (stderr, "publication-tool: %s\n", error->message);
              t->failed = TRUE;
              return NULL;
            }
          t->count++;
        }
    }
  return NULL;
}

/* Runs @threads threads until @seconds pass; the total count or -1. */
static gint64
bench_run (CaSigner *signer, GPtrArray *requests, const CaOcspOptions *o, guint threads,
           double seconds, guint offset)
{
  g_autofree BenchThread *ts = g_new0 (BenchThread, threads);
  g_autofree GThread **th = g_new0 (GThread *, threads);
  gint64 deadline = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  gint64 total = 0;

  for (guint i = 0; i < threads; i++)
    {
      ts[i] = (BenchThread) { signer, requests, *o, deadline, 0, offset + i * 7919u, FALSE };
      th[i] = g_thread_new ("ocsp-bench", bench_thread, &ts[i]);
    }
  for (guint i = 0; i < threads; i++)
    {
      g_thread_join (th[i]);
      if (ts[i].failed)
        total = -1;
      else if (total >= 0)
        total += (gint64) ts[i].count;
    }
  return total;
}

static int
cmd_ocsp_bench (int argc, char **argv)
{
  OcspArgs a = { 0 };
  gint64 threads = 1, processes = 1;
  double seconds = 5;
  GOptionEntry extra[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT64, &threads, "threads per process (default 1)", "N" },
    { "processes", 0, 0, G_OPTION_ARG_INT64, &processes, "processes (default 1)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "duration (default 5)", "S" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = ocsp_context ("CERT KEY ISSUER|- STATUS REQUEST...", &a, extra);
  g_autoptr (CaSigner) signer = NULL;
  g_autoptr (EntryFile) f = NULL;
  g_autoptr (GPtrArray) requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autofree int *fds = NULL;
  g_autofree pid_t *pids = NULL;
  GError *error = NULL;
  CaOcspOptions o = { 0 };
  gint64 total = 0, t0, t1;

  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc < 6 || threads < 1 || threads > 64 || processes < 1 || processes > 64 || seconds <= 0)
    return usage ();
  if ((signer = ca_signer_load (argv[1], argv[2], strcmp (argv[3], "-") ? argv[3] : NULL, &error)) == NULL
      || (f = entry_file_load (argv[4], TRUE, &error)) == NULL)
    return fail (error);
  for (int i = 5; i < argc; i++)
    {
      char *data = NULL;
      gsize len = 0;
      if (!tg_file_get_contents_capped (argv[i], CA_OCSP_MAX_REQUEST, &data, &len, &error))
        return fail (error);
      g_ptr_array_add (requests, g_bytes_new_take (data, len));
    }
  ocsp_options (&a, f, &o);

  fds = g_new0 (int, processes);
  pids = g_new0 (pid_t, processes);
  t0 = g_get_monotonic_time ();
  for (gint64 p = 0; p < processes; p++)
    {
      int pipefd[2];
      if (pipe (pipefd) != 0 || (pids[p] = fork ()) < 0)
        {
          perror ("publication-tool: fork");
          return 1;
        }
      if (pids[p] == 0)
        {
          gint64 n;
          close (pipefd[0]);
          n = bench_run (signer, requests, &o, (guint) threads, seconds, (guint) p * 104729u);
          if (write (pipefd[1], &n, sizeof n) != sizeof n)
            _exit (1);
          _exit (n < 0);
        }
      close (pipefd[1]);
      fds[p] = pipefd[0];
    }
  for (gint64 p = 0; p < processes; p++)
    {
      gint64 n = -1;
      int status = 0;
      if (read (fds[p], &n, sizeof n) != sizeof n || n < 0)
        total = -1;
      else if (total >= 0)
        total += n;
      close (fds[p]);
      waitpid (pids[p], &status, 0);
    }
  t1 = g_get_monotonic_time ();
  if (total < 0)
    return 1;
  printf ("{\"processes\": %" G_GINT64_FORMAT ", \"threads\": %" G_GINT64_FORMAT
          ", \"requests\": %u, \"responses\": %" G_GINT64_FORMAT ", \"seconds\": %.3f, \"per_second\": %.1f}\n",
          processes, threads, requests->len, total, (double) (t1 - t0) / G_USEC_PER_SEC,
          (double) total * G_USEC_PER_SEC / (double) (t1 - t0));
  return 0;
}

/* ------------------------------------------------------------ HTTP load (bench only) */

/* An OCSP-over-HTTP load generator on libsoup: one SoupSession keeps
 * --in-flight POSTs (RFC 6960 appendix A.1) outstanding until --seconds
 * pass, on at most that many connections. HTTP/1.1 keep-alive: an idle
 * connection is reused whenever the server keeps it open (with
 * --new-connections, every request opens its own); the distinct
 * connections used are counted and printed. */

typedef struct {
  SoupSession *session;
  char *url;
  GPtrArray *requests;     /* GBytes */
  GMainLoop *loop;
  GHashTable *connections; /* connection ids seen (guint64 *) */
  gint64 deadline;
  guint next, in_flight;
  guint64 responses, errors;
  char *first_error;
  gboolean new_connections;
} Load;

typedef struct {
  Load *load;
  SoupMessage *msg;
} LoadCall;

static void load_send_idle (gpointer data);

static void
load_error (Load *l, char *message)
{
  l->errors++;
  if (l->first_error == NULL)
    l->first_error = message;
  else
    g_free (message);
}

/* TRUE if @body is a DER OCSPResponse with responseStatus successful. */
static gboolean
ocsp_response_ok (GBytes *body)
{
  gsize len = 0;
  const unsigned char *p = g_bytes_get_data (body, &len), *start = p;
  OCSP_RESPONSE *r;
  gboolean ok;

  if (p == NULL || len == 0 || len > G_MAXINT32)
    return FALSE;
  r = d2i_OCSP_RESPONSE (NULL, &p, (long) len);
  ok = r != NULL && p == start + len && OCSP_response_status (r) == OCSP_RESPONSE_STATUS_SUCCESSFUL;
  OCSP_RESPONSE_free (r);
  return ok;
}

static void
load_done (GObject *source, GAsyncResult *result, gpointer data)
{
  LoadCall *c = data;
  Load *l = c->load;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  guint64 id = soup_message_get_connection_id (c->msg);

  if (body == NULL)
    load_error (l, g_strdup_printf ("POST %s: %s", l->url, error->message));
  else if (soup_message_get_status (c->msg) != SOUP_STATUS_OK)
    load_error (l, g_strdup_printf ("POST %s: HTTP %u", l->url, soup_message_get_status (c->msg)));
  else if (!ocsp_response_ok (body))
    load_error (l, g_strdup_printf ("POST %s: not a successful OCSPResponse (%" G_GSIZE_FORMAT " bytes)",
                                    l->url, g_bytes_get_size (body)));
  else
    l->responses++;
  if (id != 0 && !g_hash_table_contains (l->connections, &id))
    g_hash_table_add (l->connections, g_memdup2 (&id, sizeof id));
  g_object_unref (c->msg);
  g_free (c);
  /* the next request goes out once libsoup has put this connection back
   * in its pool (from an idle callback): the slot stays in flight */
  if (g_get_monotonic_time () < l->deadline)
    g_idle_add_once (load_send_idle, l);
  else if (--l->in_flight == 0)
    g_main_loop_quit (l->loop);
}

static void
load_send (Load *l)
{
  LoadCall *c = g_new0 (LoadCall, 1);

  c->load = l;
  c->msg = soup_message_new (SOUP_METHOD_POST, l->url);
  /* libsoup sends a POST on a fresh connection unless told it is
   * idempotent — which an OCSP query is (RFC 6960 A.1 allows GET too) */
  soup_message_add_flags (c->msg, l->new_connections ? SOUP_MESSAGE_NEW_CONNECTION : SOUP_MESSAGE_IDEMPOTENT);
  soup_message_set_request_body_from_bytes (c->msg, "application/ocsp-request",
                                            l->requests->pdata[l->next++ % l->requests->len]);
  soup_session_send_and_read_async (l->session, c->msg, G_PRIORITY_DEFAULT, NULL, load_done, c);
}

static void
load_send_idle (gpointer data)
{
  load_send (data);
}

static int
cmd_ocsp_load (int argc, char **argv)
{
  char *url = NULL;
  gint64 in_flight = 8;
  double seconds = 5;
  gboolean new_connections = FALSE;
  GOptionEntry opts[] = {
    { "url", 0, 0, G_OPTION_ARG_STRING, &url, "the responder, e.g. http://127.0.0.1:8080/ocsp", "URL" },
    { "in-flight", 0, 0, G_OPTION_ARG_INT64, &in_flight, "requests kept outstanding, at most one per connection (default 8)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "duration (default 5)", "S" },
    { "new-connections", 0, 0, G_OPTION_ARG_NONE, &new_connections, "one TCP connection per request (default: keep-alive)", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("REQUEST...");
  g_autoptr (GPtrArray) requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GHashTable) connections = NULL;
  g_autoptr (SoupSession) session = NULL;
  GError *error = NULL;
  Load l = { 0 };
  gint64 t0, t1;

  g_option_context_add_main_entries (ctx, opts, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc < 2 || url == NULL || !g_uri_is_valid (url, G_URI_FLAGS_NONE, NULL)
      || in_flight < 1 || in_flight > 256 || seconds <= 0)
    {
      g_free (url);
      return usage ();
    }
  for (int i = 1; i < argc; i++)
    {
      char *data = NULL;
      gsize len = 0;
      if (!tg_file_get_contents_capped (argv[i], CA_OCSP_MAX_REQUEST, &data, &len, &error))
        {
          g_free (url);
          return fail (error);
        }
      g_ptr_array_add (requests, g_bytes_new_take (data, len));
    }
  /* one connection per outstanding request, no more */
  session = soup_session_new_with_options ("max-conns", (guint) in_flight, "max-conns-per-host", (guint) in_flight,
                                           "timeout", 30u, NULL);
  loop = g_main_loop_new (NULL, FALSE);
  connections = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, NULL);
  l = (Load) { session, url, requests, loop, connections, 0, 0, 0, 0, 0, NULL, new_connections };
  t0 = g_get_monotonic_time ();
  l.deadline = t0 + (gint64) (seconds * G_USEC_PER_SEC);
  for (l.in_flight = 0; l.in_flight < in_flight; l.in_flight++)
    load_send (&l);
  g_main_loop_run (loop);
  t1 = g_get_monotonic_time ();
  if (l.first_error != NULL)
    fprintf (stderr, "publication-tool: %" G_GUINT64_FORMAT " errors, the first: %s\n", l.errors, l.first_error);
  printf ("{\"in_flight\": %" G_GINT64_FORMAT ", \"keep_alive\": %s, \"connections\": %u, \"responses\": %" G_GUINT64_FORMAT
          ", \"errors\": %" G_GUINT64_FORMAT ", \"seconds\": %.3f, \"per_second\": %.1f}\n",
          in_flight, new_connections ? "false" : "true", g_hash_table_size (connections), l.responses, l.errors, (double) (t1 - t0) / G_USEC_PER_SEC,
          (double) l.responses * G_USEC_PER_SEC / (double) (t1 - t0));
  g_free (l.first_error);
  g_free (url);
  return l.responses > 0 ? 0 : 1;
}

int
main (int argc, char **argv)
{
  static const struct {
    const char *name;
    int (*fn) (int, char **);
  } cmds[] = {
    { "keys", cmd_keys },
    { "responder", cmd_responder },
    { "crl", cmd_crl },
    { "ocsp", cmd_ocsp },
    { "ocsp-bench", cmd_ocsp_bench },
    { "ocsp-load", cmd_ocsp_load },
  };

  if (argc < 2)
    return usage ();
  for (guint i = 0; i < G_N_ELEMENTS (cmds); i++)
    if (strcmp (argv[1], cmds[i].name) == 0)
      return cmds[i].fn (argc - 1, argv + 1);
  return usage ();
}

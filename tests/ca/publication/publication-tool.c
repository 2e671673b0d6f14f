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
 *   publication-tool ocsp-serve [OPTIONS] --port N CERT KEY ISSUER|- STATUS
 *       a minimal OCSP-over-HTTP responder (RFC 6960 appendix A, POST only,
 *       one request per connection) on 127.0.0.1 with --processes workers,
 *       for benchmarks only; runs until SIGTERM
 *   publication-tool ocsp-load --port N [--connections C] [--seconds S] REQUEST...
 *       an HTTP load generator: C threads POST the requests in turn, one
 *       connection each; prints one JSON line
 *
 * ENTRIES and STATUS files: one certificate a line, '#' starts a comment:
 *   SERIAL good                                   (STATUS only)
 *   SERIAL REVTIME REASON [INVALIDITY|-] [reject]
 * REVTIME and INVALIDITY are unix seconds, REASON an RFC 5280 name or "none".
 * A serial missing from STATUS is "unknown".
 *
 * Exit status: 0 done, 1 failed (message on stderr), 2 usage.
 */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "config.h"
#include "bundle.h"
#include "ca-publication.h"
#include "tg-common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENTRIES_MAX ((gsize) 512 * 1024 * 1024)

static int
usage (void)
{
  fprintf (stderr, "usage: publication-tool keys|responder|crl|ocsp|ocsp-bench ... (see the source)\n");
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

/* ------------------------------------------------------------ HTTP (bench only) */

#define HTTP_HEAD_MAX 8192

static gboolean
read_full (int fd, guint8 *buf, gsize len)
{
  while (len > 0)
    {
      ssize_t n = read (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      buf += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static gboolean
write_full (int fd, const void *data, gsize len)
{
  const guint8 *p = data;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Reads an HTTP POST; returns the body or NULL. */
static GBytes *
http_read_request (int fd)
{
  char head[HTTP_HEAD_MAX + 1];
  gsize have = 0;
  char *end = NULL, *cl;
  gsize body_len, in_head;
  guint8 *body;

  while (end == NULL)
    {
      ssize_t n;
      if (have == HTTP_HEAD_MAX)
        return NULL;
      n = read (fd, head + have, HTTP_HEAD_MAX - have);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return NULL;
      have += (gsize) n;
      head[have] = '\0';
      end = strstr (head, "\r\n\r\n");
    }
  if (strncmp (head, "POST ", 5) != 0)
    return NULL;
  *end = '\0';
  cl = strcasestr (head, "\r\nContent-Length:");
  if (cl == NULL)
    return NULL;
  body_len = (gsize) g_ascii_strtoull (cl + 17, NULL, 10);
  if (body_len == 0 || body_len > CA_OCSP_MAX_REQUEST)
    return NULL;
  in_head = have - (gsize) (end + 4 - head);
  if (in_head > body_len)
    return NULL;
  body = g_malloc (body_len);
  memcpy (body, end + 4, in_head);
  if (!read_full (fd, body + in_head, body_len - in_head))
    {
      g_free (body);
      return NULL;
    }
  return g_bytes_new_take (body, body_len);
}

static void
serve_worker (int lfd, CaSigner *signer, const CaOcspOptions *base)
{
  for (;;)
    {
      g_autoptr (GBytes) req = NULL, resp = NULL;
      g_autoptr (GError) error = NULL;
      CaOcspOptions o = *base;
      char head[128];
      int fd = accept (lfd, NULL, NULL);

      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          perror ("publication-tool: accept");
          _exit (1);
        }
      req = http_read_request (fd);
      o.now = g_get_real_time () / G_USEC_PER_SEC;
      if (req != NULL && (resp = ca_ocsp_respond (signer, req, &o, &error)) != NULL)
        {
          int n = g_snprintf (head, sizeof head,
                              "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                              "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n", g_bytes_get_size (resp));
          if (write_full (fd, head, (gsize) n))
            write_full (fd, g_bytes_get_data (resp, NULL), g_bytes_get_size (resp));
        }
      else
        {
          static const char bad[] = "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
          if (error != NULL)
            fprintf (stderr, "publication-tool: %s\n", error->message);
          write_full (fd, bad, sizeof bad - 1);
        }
      close (fd);
    }
}

static int
cmd_ocsp_serve (int argc, char **argv)
{
  OcspArgs a = { 0 };
  gint64 port = 0, processes = 1;
  GOptionEntry extra[] = {
    { "port", 0, 0, G_OPTION_ARG_INT64, &port, "TCP port on 127.0.0.1", "N" },
    { "processes", 0, 0, G_OPTION_ARG_INT64, &processes, "worker processes (default 1)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = ocsp_context ("CERT KEY ISSUER|- STATUS", &a, extra);
  g_autoptr (CaSigner) signer = NULL;
  g_autoptr (EntryFile) f = NULL;
  GError *error = NULL;
  CaOcspOptions o = { 0 };
  struct sockaddr_in addr = { 0 };
  int lfd, one = 1, sig;
  sigset_t set;

  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc != 5 || port <= 0 || port > 65535 || processes < 1 || processes > 64)
    return usage ();
  if ((signer = ca_signer_load (argv[1], argv[2], strcmp (argv[3], "-") ? argv[3] : NULL, &error)) == NULL
      || (f = entry_file_load (argv[4], TRUE, &error)) == NULL)
    return fail (error);
  ocsp_options (&a, f, &o);

  lfd = socket (AF_INET, SOCK_STREAM, 0);
  addr.sin_family = AF_INET;
  addr.sin_port = htons ((guint16) port);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (lfd < 0 || setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
      || bind (lfd, (struct sockaddr *) &addr, sizeof addr) != 0 || listen (lfd, 512) != 0)
    {
      perror ("publication-tool: listen");
      return 1;
    }
  sigemptyset (&set);
  sigaddset (&set, SIGTERM);
  sigaddset (&set, SIGINT);
  sigprocmask (SIG_BLOCK, &set, NULL);
  for (gint64 p = 0; p < processes; p++)
    {
      pid_t pid = fork ();
      if (pid < 0)
        {
          perror ("publication-tool: fork");
          return 1;
        }
      if (pid == 0)
        {
          sigprocmask (SIG_UNBLOCK, &set, NULL);
          prctl (PR_SET_PDEATHSIG, SIGTERM);
          if (getppid () == 1)
            _exit (0);
          serve_worker (lfd, signer, &o);
        }
    }
  printf ("listening on 127.0.0.1:%" G_GINT64_FORMAT "\n", port);
  fflush (stdout);
  sigwait (&set, &sig);
  return 0; /* the workers get SIGTERM as the parent dies */
}

typedef struct {
  struct sockaddr_in addr;
  GPtrArray *requests;
  gint64 deadline;
  guint offset;
  guint64 count, errors;
} LoadThread;

static gpointer
load_thread (gpointer data)
{
  LoadThread *t = data;
  guint i = t->offset;
  guint8 *buf = g_malloc (65536);

  while (g_get_monotonic_time () < t->deadline)
    {
      GBytes *req = t->requests->pdata[i++ % t->requests->len];
      struct linger lin = { 1, 0 };
      char head[256];
      int fd = socket (AF_INET, SOCK_STREAM, 0), n, one = 1;
      gsize got = 0;

      n = g_snprintf (head, sizeof head,
                      "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/ocsp-request\r\n"
                      "Content-Length: %" G_GSIZE_FORMAT "\r\n\r\n", g_bytes_get_size (req));
      if (fd < 0 || setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0
          || connect (fd, (struct sockaddr *) &t->addr, sizeof t->addr) != 0
          || !write_full (fd, head, (gsize) n)
          || !write_full (fd, g_bytes_get_data (req, NULL), g_bytes_get_size (req)))
        {
          t->errors++;
          if (fd >= 0)
            close (fd);
          continue;
        }
      for (;;)
        {
          ssize_t r = read (fd, buf + got, 65536 - got);
          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0 || (got += (gsize) r) == 65536)
            break;
        }
      /* reset, not FIN: no TIME_WAIT pile-up on either side */
      setsockopt (fd, SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
      close (fd);
      if (got > 12 && memcmp (buf + 8, " 200", 4) == 0 && memmem (buf, got, "\r\n\r\n", 4) != NULL)
        t->count++;
      else
        t->errors++;
    }
  g_free (buf);
  return NULL;
}

static int
cmd_ocsp_load (int argc, char **argv)
{
  gint64 port = 0, connections = 4;
  double seconds = 5;
  GOptionEntry opts[] = {
    { "port", 0, 0, G_OPTION_ARG_INT64, &port, "TCP port on 127.0.0.1", "N" },
    { "connections", 0, 0, G_OPTION_ARG_INT64, &connections, "concurrent clients (default 4)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "duration (default 5)", "S" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("REQUEST...");
  g_autoptr (GPtrArray) requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autofree LoadThread *ts = NULL;
  g_autofree GThread **th = NULL;
  GError *error = NULL;
  guint64 total = 0, errors = 0;
  gint64 t0, t1;

  g_option_context_add_main_entries (ctx, opts, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fail (error);
      return 2;
    }
  if (argc < 2 || port <= 0 || port > 65535 || connections < 1 || connections > 256 || seconds <= 0)
    return usage ();
  for (int i = 1; i < argc; i++)
    {
      char *data = NULL;
      gsize len = 0;
      if (!tg_file_get_contents_capped (argv[i], CA_OCSP_MAX_REQUEST, &data, &len, &error))
        return fail (error);
      g_ptr_array_add (requests, g_bytes_new_take (data, len));
    }
  ts = g_new0 (LoadThread, connections);
  th = g_new0 (GThread *, connections);
  t0 = g_get_monotonic_time ();
  for (gint64 i = 0; i < connections; i++)
    {
      ts[i].addr.sin_family = AF_INET;
      ts[i].addr.sin_port = htons ((guint16) port);
      ts[i].addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
      ts[i].requests = requests;
      ts[i].deadline = t0 + (gint64) (seconds * G_USEC_PER_SEC);
      ts[i].offset = (guint) i * 7919u;
      th[i] = g_thread_new ("ocsp-load", load_thread, &ts[i]);
    }
  for (gint64 i = 0; i < connections; i++)
    {
      g_thread_join (th[i]);
      total += ts[i].count;
      errors += ts[i].errors;
    }
  t1 = g_get_monotonic_time ();
  printf ("{\"connections\": %" G_GINT64_FORMAT ", \"responses\": %" G_GUINT64_FORMAT
          ", \"errors\": %" G_GUINT64_FORMAT ", \"seconds\": %.3f, \"per_second\": %.1f}\n",
          connections, total, errors, (double) (t1 - t0) / G_USEC_PER_SEC,
          (double) total * G_USEC_PER_SEC / (double) (t1 - t0));
  return 0;
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
    { "ocsp-serve", cmd_ocsp_serve },
    { "ocsp-load", cmd_ocsp_load },
  };

  if (argc < 2)
    return usage ();
  for (guint i = 0; i < G_N_ELEMENTS (cmds); i++)
    if (strcmp (argv[1], cmds[i].name) == 0)
      return cmds[i].fn (argc - 1, argv + 1);
  return usage ();
}

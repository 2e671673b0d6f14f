/* sig-config.c — embedded defaults, then the GKeyFile (--config), then flags. */
#include "sig-private.h"
#include "sig-config.h"

#include <string.h>

char *
sig_default_state_dir (void)
{
  return g_build_filename (g_get_user_state_dir (), "testigo", NULL);
}

void
sig_config_free (SigConfig *c)
{
  if (c == NULL)
    return;
  g_free (c->config_file);
  g_free (c->state_dir);
  g_free (c->web_root);
  g_free (c->listen_host);
  g_free (c->tls_cert);
  g_free (c->tls_key);
  g_free (c->recorder);
  g_strfreev (c->stun);
  g_strfreev (c->turn);
  g_free (c->turn_username);
  g_free (c->turn_credential);
  g_free (c->issuer);
  if (c->api_token)
    memset (c->api_token, 0, strlen (c->api_token));
  g_free (c->api_token);
  g_free (c->api_token_file);
  if (c->step_ca_secret)
    memset (c->step_ca_secret, 0, strlen (c->step_ca_secret));
  g_free (c->step_ca_secret);
  g_free (c->crl_url);
  g_free (c->delta_crl_url);
  g_free (c->ocsp_url);
  g_free (c);
}

static gboolean
parse_listen (SigConfig *c, const char *text, GError **error)
{
  const char *colon = strrchr (text, ':');
  guint64 port;
  g_autofree char *host = NULL;

  if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &port, NULL))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "listen: %s is not ADDRESS:PORT", text);
      return FALSE;
    }
  host = g_strndup (text, (gsize) (colon - text));
  if (host[0] == '[' && g_str_has_suffix (host, "]"))
    {
      char *inner = g_strndup (host + 1, strlen (host) - 2);
      g_free (host);
      host = inner;
    }
  if (!g_hostname_is_ip_address (host))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "listen: %s is not an IP address", host);
      return FALSE;
    }
  g_free (c->listen_host);
  c->listen_host = g_steal_pointer (&host);
  c->port = (int) port;
  return TRUE;
}

static gboolean
check_uris (char **uris, const char *scheme_a, const char *scheme_b, const char *what, GError **error)
{
  for (guint i = 0; uris && uris[i]; i++)
    if ((!g_str_has_prefix (uris[i], scheme_a) && !g_str_has_prefix (uris[i], scheme_b))
        || strlen (uris[i]) > 512 || strpbrk (uris[i], " \"\\") != NULL)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s: %s must start with %s or %s", what, uris[i],
                     scheme_a, scheme_b);
        return FALSE;
      }
  return TRUE;
}

/* Reads one key if present; a malformed value is an error naming the key. */
static gboolean
kf_string (GKeyFile *kf, const char *group, const char *key, char **out, GError **error)
{
  g_autoptr (GError) local = NULL;
  char *v;

  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  v = g_key_file_get_string (kf, group, key, &local);
  if (v == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "[%s] %s: %s", group, key, local->message);
      return FALSE;
    }
  g_free (*out);
  *out = v;
  return TRUE;
}

static gboolean
kf_int (GKeyFile *kf, const char *group, const char *key, int *out, int min, int max, GError **error)
{
  g_autoptr (GError) local = NULL;
  int v;

  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  v = g_key_file_get_integer (kf, group, key, &local);
  if (local != NULL || v < min || v > max)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "[%s] %s: an integer from %d to %d", group, key, min,
                   max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

static gboolean
kf_list (GKeyFile *kf, const char *group, const char *key, char ***out, GError **error)
{
  char **v;

  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  v = g_key_file_get_string_list (kf, group, key, NULL, error);
  if (v == NULL)
    return FALSE;
  g_strfreev (*out);
  *out = v;
  return TRUE;
}

static gboolean
load_key_file (SigConfig *c, const char *path, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree char *listen = NULL;
  g_autoptr (GError) local = NULL;
  gboolean loopback;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "config %s: %s", path, local->message);
      return FALSE;
    }
  if (!kf_string (kf, "server", "listen", &listen, error) || !kf_string (kf, "server", "state-dir", &c->state_dir, error)
      || !kf_string (kf, "server", "web-root", &c->web_root, error)
      || !kf_string (kf, "server", "tls-cert", &c->tls_cert, error)
      || !kf_string (kf, "server", "tls-key", &c->tls_key, error)
      || !kf_int (kf, "server", "login-ttl", &c->login_ttl, 60, 7 * 24 * 3600, error)
      || !kf_int (kf, "sessions", "join-ttl", &c->join_ttl, 10, 7 * 24 * 3600, error)
      || !kf_int (kf, "sessions", "heartbeat-interval", &c->heartbeat_interval, 1, 300, error)
      || !kf_int (kf, "sessions", "heartbeat-timeout", &c->heartbeat_timeout, 2, 900, error)
      || !kf_int (kf, "sessions", "stop-timeout", &c->stop_timeout, 1, 600, error)
      || !kf_string (kf, "recorder", "path", &c->recorder, error)
      /* testigo-recorder --jitter-buffer-ms takes 0..2000 (REC_JITTER_BUFFER_MAX_MS) */
      || !kf_int (kf, "recorder", "jitter-buffer-ms", &c->recorder_jitter_ms, 0, 2000, error)
      || !kf_list (kf, "ice", "stun", &c->stun, error) || !kf_list (kf, "ice", "turn", &c->turn, error)
      || !kf_string (kf, "ice", "turn-username", &c->turn_username, error)
      || !kf_string (kf, "ice", "turn-credential", &c->turn_credential, error)
      || !kf_string (kf, "record", "issuer", &c->issuer, error)
      || !kf_int (kf, "record", "retention-years", &c->retention_years, 1, 30, error)
      || !kf_int (kf, "ca", "sweep-interval", &c->sweep_interval, 1, 86400, error)
      || !kf_string (kf, "ca", "api-token", &c->api_token, error)
      || !kf_string (kf, "ca", "api-token-file", &c->api_token_file, error)
      || !kf_string (kf, "ca", "step-ca-webhook-secret", &c->step_ca_secret, error)
      || !kf_string (kf, "ca", "crl-url", &c->crl_url, error)
      || !kf_string (kf, "ca", "delta-crl-url", &c->delta_crl_url, error)
      || !kf_string (kf, "ca", "ocsp-url", &c->ocsp_url, error)
      || !kf_int (kf, "ca", "max-suspension-days", &c->max_suspension_days, 1, 15, error)
      || !kf_int (kf, "ca", "ocsp-max-age", &c->ocsp_cache, 0, 3600, error))
    {
      g_prefix_error (error, "config %s: ", path);
      return FALSE;
    }
  if (g_key_file_has_key (kf, "recorder", "loopback", NULL))
    {
      loopback = g_key_file_get_boolean (kf, "recorder", "loopback", &local);
      if (local != NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "config %s: [recorder] loopback: true or false", path);
          return FALSE;
        }
      c->recorder_loopback = loopback;
    }
  if (listen != NULL && !parse_listen (c, listen, error))
    {
      g_prefix_error (error, "config %s: ", path);
      return FALSE;
    }
  return TRUE;
}

SigConfig *
sig_config_parse (int *argc, char ***argv, GError **error)
{
  g_autoptr (SigConfig) c = g_new0 (SigConfig, 1);
  g_autofree char *config = NULL, *state = NULL, *listen = NULL, *web = NULL, *cert = NULL, *key = NULL;
  g_autofree char *recorder = NULL, *turn_user = NULL, *turn_cred = NULL, *issuer = NULL;
  g_auto (GStrv) stun = NULL, turn = NULL;
  int join_ttl = -1, hb_int = -1, hb_to = -1, stop_to = -1, sweep = -1;
  g_autofree char *token_file = NULL;
  gboolean loopback = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file (GKeyFile)", "FILE" },
    { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state, "state directory (default $XDG_STATE_HOME/testigo)", "DIR" },
    { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen, "address to listen on (default 127.0.0.1:8080; port 0 picks one)", "ADDR:PORT" },
    { "web-root", 0, 0, G_OPTION_ARG_FILENAME, &web, "folder of the web client", "DIR" },
    { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &cert, "TLS certificate chain (PEM)", "FILE" },
    { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &key, "TLS private key (PEM)", "FILE" },
    { "recorder", 0, 0, G_OPTION_ARG_FILENAME, &recorder, "testigo-recorder executable", "PATH" },
    { "recorder-loopback", 0, 0, G_OPTION_ARG_NONE, &loopback, "pass --loopback to the recorder (one-machine tests)", NULL },
    { "stun", 0, 0, G_OPTION_ARG_STRING_ARRAY, &stun, "STUN server (repeatable)", "stun:HOST:PORT" },
    { "turn", 0, 0, G_OPTION_ARG_STRING_ARRAY, &turn, "TURN server (repeatable)", "turn:HOST:PORT?transport=udp" },
    { "turn-username", 0, 0, G_OPTION_ARG_STRING, &turn_user, "TURN user name", "NAME" },
    { "turn-credential", 0, 0, G_OPTION_ARG_STRING, &turn_cred, "TURN password", "SECRET" },
    { "join-ttl", 0, 0, G_OPTION_ARG_INT, &join_ttl, "lifetime of a join link in seconds (default 1800)", "S" },
    { "heartbeat-interval", 0, 0, G_OPTION_ARG_INT, &hb_int, "seconds between pings (default 10)", "S" },
    { "heartbeat-timeout", 0, 0, G_OPTION_ARG_INT, &hb_to, "drop a silent peer after S seconds (default 30)", "S" },
    { "stop-timeout", 0, 0, G_OPTION_ARG_INT, &stop_to, "seconds the recorder has to stop (default 15)", "S" },
    { "issuer", 0, 0, G_OPTION_ARG_STRING, &issuer, "issuer DN of the holders' certificates", "DN" },
    { "sweep-interval", 0, 0, G_OPTION_ARG_INT, &sweep, "seconds between runs of the hold-expiry sweep (default 60)", "S" },
    { "api-token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file, "file holding the API token of /api/gate/check and /api/intake", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— the Testigo server");
  g_autoptr (GError) local = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_description (ctx, "Flags override the configuration file, which overrides the "
                                         "embedded defaults. See docs/operator-guide.md.");
  if (!g_option_context_parse (ctx, argc, argv, &local))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s", local->message);
      return NULL;
    }
  if (*argc > 1)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "unexpected argument %s", (*argv)[1]);
      return NULL;
    }

  /* embedded defaults */
  c->state_dir = sig_default_state_dir ();
  c->web_root = g_strdup (g_getenv ("TESTIGO_WEB_ROOT") ? g_getenv ("TESTIGO_WEB_ROOT") : SIG_DEFAULT_WEB_ROOT);
  c->listen_host = g_strdup ("127.0.0.1");
  c->port = 8080;
  c->recorder = NULL; /* resolved below */
  c->join_ttl = 30 * 60;
  c->login_ttl = 12 * 3600;
  c->heartbeat_interval = 10;
  c->heartbeat_timeout = 30;
  c->stop_timeout = 15;
  c->issuer = g_strdup ("CN=Testigo Development CA,O=Testigo");
  c->retention_years = 15;
  c->sweep_interval = 60;
  c->max_suspension_days = 15;
  c->ocsp_cache = 60;

  if (config != NULL && !load_key_file (c, config, error))
    return NULL;
  c->config_file = g_steal_pointer (&config);

#define OVERRIDE(field, val) if ((val) != NULL) { g_free (c->field); c->field = g_steal_pointer (&(val)); }
  OVERRIDE (state_dir, state);
  OVERRIDE (web_root, web);
  OVERRIDE (tls_cert, cert);
  OVERRIDE (tls_key, key);
  OVERRIDE (recorder, recorder);
  OVERRIDE (turn_username, turn_user);
  OVERRIDE (turn_credential, turn_cred);
  OVERRIDE (issuer, issuer);
  OVERRIDE (api_token_file, token_file);
#undef OVERRIDE
  if (stun != NULL)
    {
      g_strfreev (c->stun);
      c->stun = g_steal_pointer (&stun);
    }
  if (turn != NULL)
    {
      g_strfreev (c->turn);
      c->turn = g_steal_pointer (&turn);
    }
  if (loopback)
    c->recorder_loopback = TRUE;
  if (listen != NULL && !parse_listen (c, listen, error))
    return NULL;
  if (join_ttl != -1)
    c->join_ttl = join_ttl;
  if (hb_int != -1)
    c->heartbeat_interval = hb_int;
  if (hb_to != -1)
    c->heartbeat_timeout = hb_to;
  if (stop_to != -1)
    c->stop_timeout = stop_to;
  if (sweep != -1)
    c->sweep_interval = sweep;
  if (c->sweep_interval < 1 || c->sweep_interval > 86400)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "sweep-interval: 1 to 86400 seconds");
      return NULL;
    }
  if (c->api_token_file != NULL)
    {
      g_autofree char *data = NULL;
      gsize len = 0;
      char *nl;
      g_autoptr (GError) read_error = NULL;
      if (!tg_file_get_contents_capped (c->api_token_file, 4096, &data, &len, &read_error))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "api-token-file: %s", read_error->message);
          return NULL;
        }
      if ((nl = strpbrk (data, "\r\n")) != NULL)
        *nl = '\0';
      g_free (c->api_token);
      c->api_token = g_steal_pointer (&data);
    }
  if (c->api_token != NULL)
    {
      gsize n = strlen (c->api_token);
      gboolean ok = n >= 32 && n <= 512;
      for (gsize i = 0; ok && i < n; i++)
        ok = g_ascii_isgraph (c->api_token[i]);
      if (!ok)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "api-token: 32 to 512 printable characters without spaces (use a long random value)");
          return NULL;
        }
    }
  if (c->step_ca_secret != NULL)
    {
      gsize n = 0;
      g_autofree guchar *raw = g_base64_decode (c->step_ca_secret, &n);
      if (raw == NULL || n < 16)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "step-ca-webhook-secret: the base64 secret step-ca printed");
          return NULL;
        }
    }
  if (c->recorder == NULL)
    {
      /* next to testigod in the build tree (meson's recorder_exe) */
      c->recorder = g_strdup (SIG_DEFAULT_RECORDER);
    }

  if (c->join_ttl < 10 || c->join_ttl > 7 * 24 * 3600)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "join-ttl: 10 to 604800 seconds");
      return NULL;
    }
  if (c->heartbeat_interval < 1 || c->heartbeat_timeout <= c->heartbeat_interval || c->heartbeat_timeout > 900)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "heartbeat: the interval must be at least 1 s and below the timeout (at most 900 s)");
      return NULL;
    }
  if (c->stop_timeout < 1 || c->stop_timeout > 600)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "stop-timeout: 1 to 600 seconds");
      return NULL;
    }
  if ((c->tls_cert == NULL) != (c->tls_key == NULL))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "tls-cert and tls-key go together");
      return NULL;
    }
  if (!check_uris (c->stun, "stun:", "stuns:", "stun", error) || !check_uris (c->turn, "turn:", "turns:", "turn", error))
    return NULL;
  if (c->turn != NULL && c->turn[0] != NULL && (c->turn_username == NULL || c->turn_credential == NULL))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "a TURN server needs turn-username and turn-credential");
      return NULL;
    }
  if (!sig_text_ok (c->issuer, 1, 1024))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "issuer: 1 to 1024 characters");
      return NULL;
    }
  return g_steal_pointer (&c);
}

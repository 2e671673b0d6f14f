/* sig-http.c — the server object, the officer HTTP API and static files. */
#include "config.h"
#include "sig-private.h"
#include "sig-stills.h"
#include "bundle.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ replies */

void
sig_reply_json (SoupServerMessage *msg, guint status, JsonObject *obj)
{
  g_autofree char *text = sig_object_to_string (obj);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, text, strlen (text));
  json_object_unref (obj);
}

void
sig_reply_error (SoupServerMessage *msg, guint status, const char *field, const char *fmt, ...)
{
  JsonObject *o = json_object_new ();
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_object_set_string_member (o, "error", text);
  if (field != NULL)
    json_object_set_string_member (o, "field", field);
  sig_reply_json (msg, status, o);
}

static void
add_security_headers (SoupServerMessage *msg, SigServer *srv)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (h, "X-Content-Type-Options", "nosniff");
  soup_message_headers_replace (h, "Referrer-Policy", "no-referrer"); /* join tokens live in URLs */
  soup_message_headers_replace (h, "X-Frame-Options", "DENY");
  soup_message_headers_replace (h, "Content-Security-Policy",
                                "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
                                "media-src 'self' blob:; frame-ancestors 'none'");
  if (srv->tls)
    soup_message_headers_replace (h, "Strict-Transport-Security", "max-age=31536000");
}

/* ------------------------------------------------------------ auth */

/* The value of the session cookie @name, or NULL when there is none of a
 * plausible size; *@params_out holds the parsed cookies the value points into. */
static const char *
session_cookie_value (SoupMessageHeaders *headers, const char *name, GHashTable **params_out)
{
  const char *cookie = soup_message_headers_get_list (headers, "Cookie");
  const char *value;

  if (cookie == NULL || strlen (cookie) > 8192)
    return NULL;
  *params_out = soup_header_parse_semi_param_list (cookie);
  value = g_hash_table_lookup (*params_out, name);
  if (value == NULL || strlen (value) < 22 || strlen (value) > 128)
    return NULL;
  return value;
}

char *
sig_login_from_cookie (SigServer *srv, const SigLoginKind *kind, SoupMessageHeaders *headers, char **csrf_out)
{
  g_autoptr (GHashTable) params = NULL;
  const char *value = session_cookie_value (headers, kind->cookie, &params);
  g_autofree char *hash = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;

  if (value == NULL)
    return NULL;
  hash = tg_sha256_hex (value, strlen (value));
  st = sig_db_prepare (srv->db, kind->session_sql, NULL);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, g_get_real_time () / G_USEC_PER_SEC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return NULL;
  if (csrf_out != NULL)
    *csrf_out = g_strdup (sig_col (st, 1));
  return g_strdup (sig_col (st, 0));
}

char *
sig_login_require (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg, gboolean state_changing)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  g_autofree char *csrf = NULL;
  g_autofree char *user = sig_login_from_cookie (srv, kind, h, &csrf);

  if (user == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, NULL, "%s", kind->no_session);
      return NULL;
    }
  if (state_changing && !sig_const_eq (soup_message_headers_get_one (h, "X-CSRF-Token"), csrf))
    {
      sig_reply_error (msg, SOUP_STATUS_FORBIDDEN, NULL, "missing or wrong X-CSRF-Token header");
      return NULL;
    }
  return g_steal_pointer (&user);
}

static JsonObject *officer_account_json (SigServer *srv, const char *id);

static const SigLoginKind officer_login = {
  .who = "officer",
  .fail_log = "",
  .account_key = "account:",
  .actor = "officer:",
  .cookie = SIG_COOKIE,
  .logins = "logins",
  .hash_sql = "SELECT pw_hash FROM officers WHERE id = ? AND disabled = 0",
  .session_sql = "SELECT l.officer_id, l.csrf FROM logins l JOIN officers o ON o.id = l.officer_id"
                 " WHERE l.id_hash = ? AND l.expires_at > ? AND o.disabled = 0",
  .wrong = "wrong user name or password",
  .no_session = "log in first (no valid session)",
  .account_json = officer_account_json,
};

char *
sig_officer_from_cookie (SigServer *srv, SoupMessageHeaders *headers, char **csrf_out)
{
  return sig_login_from_cookie (srv, &officer_login, headers, csrf_out);
}

/* The officer behind the request's cookie, or NULL after replying 401
 * (no valid session) or 403 (state change without the CSRF token). */
static char *
require_officer (SigServer *srv, SoupServerMessage *msg, gboolean state_changing)
{
  return sig_login_require (srv, &officer_login, msg, state_changing);
}

/* Parses the request body as a strict JSON object, or replies 413/415/400. */
static JsonObject *
read_json_body (SoupServerMessage *msg, gsize cap)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const char *ctype = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = NULL;

  if (body->length > (goffset) cap)
    {
      sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the body is over %zu bytes", cap);
      return NULL;
    }
  if (ctype == NULL || g_ascii_strcasecmp (ctype, "application/json") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL, "send Content-Type: application/json");
      return NULL;
    }
  node = tg_json_parse_strict (body->data, (gsize) body->length, cap, &error);
  if (node == NULL)
    {
      sig_reply_error (msg, error->code == TG_ERROR_TOO_BIG ? SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE
                                                            : SOUP_STATUS_BAD_REQUEST,
                       NULL, "body: %s", error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, NULL, "body: a JSON object is expected");
      return NULL;
    }
  return json_object_ref (json_node_get_object (node));
}

/* Checks that @obj has only members from @allowed; replies 400 otherwise. */
static gboolean
only_members (SoupServerMessage *msg, JsonObject *obj, const char *const *allowed)
{
  g_autoptr (GList) members = json_object_get_members (obj);

  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      {
        sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, l->data, "%s: unknown field", (char *) l->data);
        return FALSE;
      }
  return TRUE;
}

/* A string member, or NULL after replying 400 naming the field. */
static const char *
string_member (SoupServerMessage *msg, JsonObject *obj, const char *name)
{
  JsonNode *n = json_object_get_member (obj, name);

  if (n == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, name, "%s: missing", name);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, name, "%s: must be a string", name);
      return NULL;
    }
  return json_node_get_string (n);
}

JsonObject *
sig_read_json_body (SoupServerMessage *msg, gsize cap)
{
  return read_json_body (msg, cap);
}

gboolean
sig_only_members (SoupServerMessage *msg, JsonObject *obj, const char *const *allowed)
{
  return only_members (msg, obj, allowed);
}

const char *
sig_string_member (SoupServerMessage *msg, JsonObject *obj, const char *name)
{
  return string_member (msg, obj, name);
}

char *
sig_require_officer (SigServer *srv, SoupServerMessage *msg, gboolean state_changing)
{
  return require_officer (srv, msg, state_changing);
}

void
sig_add_security_headers (SoupServerMessage *msg, SigServer *srv)
{
  add_security_headers (msg, srv);
}

/* ------------------------------------------------------------ login */

static int
count_failures (SigServer *srv, const char *key, gint64 now, gint64 *oldest)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db,
                                                "SELECT count(*), min(time) FROM login_failures WHERE key = ? AND time > ?",
                                                NULL);
  int n = 0;

  if (st == NULL)
    return 0;
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, now - SIG_LOGIN_WINDOW);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      n = sqlite3_column_int (st, 0);
      if (oldest != NULL && n > 0 && sqlite3_column_int64 (st, 1) < *oldest)
        *oldest = sqlite3_column_int64 (st, 1);
    }
  return n;
}

static void
add_failure (SigServer *srv, const char *key, gint64 now)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "INSERT INTO login_failures VALUES (?, ?)", NULL);
  g_autoptr (sqlite3_stmt) old = sig_db_prepare (srv->db, "DELETE FROM login_failures WHERE time <= ?", NULL);

  if (st == NULL || old == NULL)
    return;
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, now);
  (void) sqlite3_step (st);
  sqlite3_bind_int64 (old, 1, now - SIG_LOGIN_WINDOW);
  (void) sqlite3_step (old);
}

typedef struct {
  SigServer *srv;
  const SigLoginKind *kind;
  SoupServerMessage *msg;
  char *user, *password, *hash, *ip;
  gboolean known;
} LoginJob;

static void
login_job_free (LoginJob *j)
{
  g_free (j->user);
  if (j->password)
    memset (j->password, 0, strlen (j->password));
  g_free (j->password);
  g_free (j->hash);
  g_free (j->ip);
  g_object_unref (j->msg);
  g_free (j);
}

int
sig_login_failures (SigServer *srv, const char *key, gint64 now, gint64 *oldest)
{
  return count_failures (srv, key, now, oldest);
}

void
sig_login_failure_add (SigServer *srv, const char *key, gint64 now)
{
  add_failure (srv, key, now);
}

static void
login_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  LoginJob *j = data;

  g_task_return_boolean (task, sig_verify_password (j->hash, j->password));
}

static void
login_done (GObject *source, GAsyncResult *res, gpointer data)
{
  LoginJob *j = data;
  SigServer *srv = j->srv;
  const SigLoginKind *kind = j->kind;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), NULL) && j->known;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *acct = g_strconcat (kind->account_key, j->user, NULL);
  g_autofree char *ipkey = g_strconcat ("ip:", j->ip, NULL);
  g_autofree char *actor = g_strconcat (kind->actor, j->user, NULL);
  g_autoptr (JsonObject) d = json_object_new ();

  json_object_set_string_member (d, "ip", j->ip);
  if (!ok)
    {
      add_failure (srv, acct, now);
      add_failure (srv, ipkey, now);
      g_message ("%slogin failed for %s from %s", kind->fail_log, j->user, j->ip);
      json_object_set_boolean_member (d, "known_account", j->known);
      sig_audit (srv, "login-failed", actor, d);
      sig_reply_error (j->msg, SOUP_STATUS_UNAUTHORIZED, NULL, "%s", kind->wrong);
    }
  else
    {
      g_autofree char *sid = sig_random_token (32);
      g_autofree char *sid_hash = tg_sha256_hex (sid, strlen (sid));
      g_autofree char *csrf = sig_random_token (32);
      g_autofree char *cookie = NULL;
      g_autofree char *gc_sql = g_strdup_printf ("DELETE FROM %s WHERE expires_at <= ?", kind->logins);
      g_autofree char *st_sql = g_strdup_printf ("INSERT INTO %s VALUES (?, ?, ?, ?, ?)", kind->logins);
      g_autoptr (sqlite3_stmt) st = NULL;
      g_autoptr (sqlite3_stmt) clear = NULL;
      g_autoptr (JsonObject) account = NULL;
      JsonObject *o;

      {
        /* expired logins are of no use to anyone */
        g_autoptr (sqlite3_stmt) gc = sig_db_prepare (srv->db, gc_sql, NULL);
        if (gc != NULL)
          {
            sqlite3_bind_int64 (gc, 1, now);
            (void) sqlite3_step (gc);
          }
      }
      st = sig_db_prepare (srv->db, st_sql, NULL);
      clear = sig_db_prepare (srv->db, "DELETE FROM login_failures WHERE key = ?", NULL);
      account = kind->account_json (srv, j->user);
      if (st == NULL || clear == NULL || account == NULL)
        {
          sig_reply_error (j->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "database error");
          goto out;
        }
      sqlite3_bind_text (st, 1, sid_hash, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, j->user, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 3, csrf, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 4, now);
      sqlite3_bind_int64 (st, 5, now + srv->cfg->login_ttl);
      if (sqlite3_step (st) != SQLITE_DONE)
        {
          sig_reply_error (j->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "database error");
          goto out;
        }
      sqlite3_bind_text (clear, 1, acct, -1, SQLITE_STATIC);
      (void) sqlite3_step (clear);
      cookie = g_strdup_printf ("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", kind->cookie, sid,
                                srv->cfg->login_ttl, srv->tls ? "; Secure" : "");
      soup_message_headers_append (soup_server_message_get_response_headers (j->msg), "Set-Cookie", cookie);
      o = json_object_new ();
      json_object_set_object_member (o, kind->who, g_steal_pointer (&account));
      json_object_set_string_member (o, "csrf_token", csrf);
      g_message ("%s %s logged in from %s", kind->who, j->user, j->ip);
      sig_audit (srv, "login", actor, d);
      sig_reply_json (j->msg, SOUP_STATUS_OK, o);
    }
out:
  soup_server_message_unpause (j->msg);
  login_job_free (j);
}

void
sig_login_start (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg, const char *user,
                 const char *password)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC, oldest = G_MAXINT64;
  const char *ip = soup_server_message_get_remote_host (msg);
  g_autofree char *acct = g_strconcat (kind->account_key, user, NULL);
  g_autofree char *ipkey = g_strconcat ("ip:", ip ? ip : "?", NULL);
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GTask) task = NULL;
  LoginJob *j;

  if (count_failures (srv, acct, now, &oldest) >= SIG_LOGIN_MAX_FAILS
      || count_failures (srv, ipkey, now, &oldest) >= SIG_LOGIN_MAX_FAILS)
    {
      g_autofree char *retry = g_strdup_printf ("%" G_GINT64_FORMAT,
                                                MAX ((gint64) 1, oldest + SIG_LOGIN_WINDOW - now));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", retry);
      sig_reply_error (msg, 429, NULL,
                       "too many failed logins; try again in %s s", retry);
      return;
    }
  j = g_new0 (LoginJob, 1);
  j->srv = srv;
  j->kind = kind;
  j->msg = g_object_ref (msg);
  j->user = g_strdup (user);
  j->password = g_strdup (password);
  j->ip = g_strdup (ip ? ip : "?");
  st = sig_db_prepare (srv->db, kind->hash_sql, NULL);
  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, user, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW)
        {
          j->hash = g_strdup (sig_col (st, 0));
          j->known = TRUE;
        }
    }
  if (!j->known)
    {
      /* Same work for an unknown account, so timing does not tell who exists. */
      if (srv->dummy_hash == NULL)
        srv->dummy_hash = sig_hash_password ("testigo-not-a-password", NULL);
      j->hash = g_strdup (srv->dummy_hash);
    }
  soup_server_message_pause (msg);
  task = g_task_new (NULL, NULL, login_done, j);
  g_task_set_task_data (task, j, NULL);
  g_task_run_in_thread (task, login_thread);
}

void
sig_login_end (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg, const char *user)
{
  g_autoptr (GHashTable) params = NULL;
  const char *value = session_cookie_value (soup_server_message_get_request_headers (msg), kind->cookie, &params);
  g_autofree char *clear = NULL, *actor = g_strconcat (kind->actor, user, NULL);
  JsonObject *o;

  if (value != NULL)
    {
      g_autofree char *hash = tg_sha256_hex (value, strlen (value));
      g_autofree char *sql = g_strdup_printf ("DELETE FROM %s WHERE id_hash = ?", kind->logins);
      g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, sql, NULL);
      if (st != NULL)
        {
          sqlite3_bind_text (st, 1, hash, -1, SQLITE_STATIC);
          (void) sqlite3_step (st);
        }
    }
  sig_audit (srv, "logout", actor, NULL);
  clear = g_strdup_printf ("%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s", kind->cookie,
                           srv->tls ? "; Secure" : "");
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "Set-Cookie", clear);
  o = json_object_new ();
  json_object_set_boolean_member (o, "logged_out", TRUE);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* The officer's part of the login reply: id, name, role, admin; NULL on a database error. */
static JsonObject *
officer_account_json (SigServer *srv, const char *id)
{
  g_autoptr (sqlite3_stmt) who = sig_db_prepare (srv->db, "SELECT name, role FROM officers WHERE id = ?", NULL);
  JsonObject *officer;

  if (who == NULL)
    return NULL;
  officer = json_object_new ();
  json_object_set_string_member (officer, "id", id);
  sqlite3_bind_text (who, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step (who) == SQLITE_ROW)
    {
      json_object_set_string_member (officer, "name", sig_col (who, 0));
      json_object_set_string_member (officer, "role", sig_col (who, 1));
      json_object_set_boolean_member (officer, "admin", sig_role_is_admin (sig_col (who, 1)));
    }
  return officer;
}

static void
api_login (SigServer *srv, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "username", "password", NULL };
  g_autoptr (JsonObject) body = read_json_body (msg, SIG_MAX_BODY);
  const char *user, *password;

  if (body == NULL || !only_members (msg, body, allowed) || (user = string_member (msg, body, "username")) == NULL
      || (password = string_member (msg, body, "password")) == NULL)
    return;
  if (strlen (user) > 64 || strlen (password) > 1024)
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, NULL, "user name or password too long");
      return;
    }
  sig_login_start (srv, &officer_login, msg, user, password);
}

static void
api_logout (SigServer *srv, SoupServerMessage *msg)
{
  g_autofree char *officer = require_officer (srv, msg, TRUE);

  if (officer == NULL)
    return;
  sig_login_end (srv, &officer_login, msg, officer);
}

static void
api_me (SigServer *srv, SoupServerMessage *msg)
{
  g_autofree char *csrf = NULL;
  g_autofree char *officer = sig_officer_from_cookie (srv, soup_server_message_get_request_headers (msg), &csrf);
  JsonObject *o;

  if (officer == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, NULL, "log in first (no valid session)");
      return;
    }
  o = json_object_new ();
  json_object_set_string_member (o, "officer", officer);
  json_object_set_string_member (o, "csrf_token", csrf);
  {
    CaActor actor;
    sig_officer_actor (srv, officer, &actor);
    json_object_set_boolean_member (o, "admin", actor.role == CA_ROLE_ADMIN);
  }
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* ------------------------------------------------------------ cases */

static gboolean
email_ok (const char *s)
{
  const char *at = strchr (s, '@');
  gsize len = strlen (s);

  if (at == NULL || strchr (at + 1, '@') != NULL || len > 254 || at == s || at - s > 64)
    return FALSE;
  for (const char *p = s; *p; p++)
    if ((guchar) *p <= 0x20 || *p == 0x7f)
      return FALSE;
  /* the domain holds a dot with something on each side */
  {
    const char *dot = strchr (at + 1, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
  }
}

static gboolean
matches (const char *s, const char *re)
{
  return g_regex_match_simple (re, s, 0, 0);
}

static void
api_case_create (SigServer *srv, SoupServerMessage *msg, const char *officer)
{
  static const char *const allowed[] = { "holder_name", "national_id", "email", "serial", "action",
                                         "reason", "suspension_days", NULL };
  static const char *const actions[] = { "renewal", "suspension", "reactivation", "revocation", NULL };
  g_autoptr (JsonObject) body = read_json_body (msg, SIG_MAX_BODY);
  const char *name, *nid, *email, *serial, *action, *reason;
  gint64 days = 0;
  g_autofree char *serial_up = NULL, *case_id = NULL;
  g_autoptr (GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (body == NULL || !only_members (msg, body, allowed))
    return;
  if ((name = string_member (msg, body, "holder_name")) == NULL)
    return;
  if (!sig_text_ok (name, 1, 256) || strchr (name, '\n') || strchr (name, '\t'))
    {
      sig_reply_error (msg, 400, "holder_name", "holder_name: 1 to 256 characters, one line");
      return;
    }
  if ((nid = string_member (msg, body, "national_id")) == NULL)
    return;
  if (!matches (nid, "^[A-Za-z0-9./-]{1,64}$"))
    {
      sig_reply_error (msg, 400, "national_id", "national_id: 1 to 64 letters, digits, '.', '/' or '-'");
      return;
    }
  if ((email = string_member (msg, body, "email")) == NULL)
    return;
  if (!email_ok (email))
    {
      sig_reply_error (msg, 400, "email", "email: not an e-mail address");
      return;
    }
  if ((serial = string_member (msg, body, "serial")) == NULL)
    return;
  if (!matches (serial, "^[0-9A-Fa-f]{1,40}$"))
    {
      sig_reply_error (msg, 400, "serial", "serial: 1 to 40 hex digits, no separators");
      return;
    }
  serial_up = g_ascii_strup (serial, -1);
  if ((action = string_member (msg, body, "action")) == NULL)
    return;
  if (!g_strv_contains (actions, action))
    {
      sig_reply_error (msg, 400, "action", "action: renewal, suspension, reactivation or revocation");
      return;
    }
  if ((reason = string_member (msg, body, "reason")) == NULL)
    return;
  if (!sig_text_ok (reason, 1, 4000))
    {
      sig_reply_error (msg, 400, "reason", "reason: 1 to 4000 characters");
      return;
    }
  if (json_object_has_member (body, "suspension_days"))
    {
      JsonNode *n = json_object_get_member (body, "suspension_days");
      if (strcmp (action, "suspension") != 0)
        {
          sig_reply_error (msg, 400, "suspension_days", "suspension_days: only for a suspension");
          return;
        }
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
        {
          sig_reply_error (msg, 400, "suspension_days", "suspension_days: must be an integer");
          return;
        }
      days = json_node_get_int (n);
      if (days < 1 || days > 15)
        {
          sig_reply_error (msg, 400, "suspension_days", "suspension_days: 1 to 15 days");
          return;
        }
    }
  else if (strcmp (action, "suspension") == 0)
    {
      sig_reply_error (msg, 400, "suspension_days", "suspension_days: missing (1 to 15 days for a suspension)");
      return;
    }

  if (!sig_db_exec (srv->db, "BEGIN IMMEDIATE", NULL))
    {
      sig_reply_error (msg, 500, NULL, "database busy");
      return;
    }
  case_id = sig_db_insert_case (srv, name, nid, email, serial_up, action, reason, days, "teleconference", officer, now,
                                &error);
  if (case_id == NULL)
    {
      g_warning ("creating a case: %s", error->message);
      sig_reply_error (msg, 500, NULL, "database error: %s", sqlite3_errmsg (srv->db));
      return;
    }
  g_message ("case %s created by %s", case_id, officer);
  sig_reply_json (msg, SOUP_STATUS_CREATED, sig_db_case_json (srv, case_id));
}

static JsonArray *
sessions_of_case (SigServer *srv, const char *case_id)
{
  JsonArray *a = json_array_new ();
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT id FROM sessions WHERE case_id = ? ORDER BY created_at",
                                                NULL);

  if (st == NULL)
    return a;
  sqlite3_bind_text (st, 1, case_id, -1, SQLITE_STATIC);
  while (sqlite3_step (st) == SQLITE_ROW)
    {
      JsonObject *s = sig_db_session_json (srv, sig_col (st, 0));
      if (s != NULL)
        json_array_add_object_element (a, s);
    }
  return a;
}

static void
api_case_list (SigServer *srv, SoupServerMessage *msg)
{
  JsonObject *o = json_object_new ();
  JsonArray *a = json_array_new ();
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT id FROM cases ORDER BY seq DESC LIMIT 500", NULL);

  while (st != NULL && sqlite3_step (st) == SQLITE_ROW)
    {
      JsonObject *c = sig_db_case_json (srv, sig_col (st, 0));
      if (c != NULL)
        json_array_add_object_element (a, c);
    }
  json_object_set_array_member (o, "cases", a);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

static void
api_case_get (SigServer *srv, SoupServerMessage *msg, const char *case_id)
{
  JsonObject *c = sig_db_case_json (srv, case_id);

  if (c == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no case %s", case_id);
      return;
    }
  json_object_set_array_member (c, "sessions", sessions_of_case (srv, case_id));
  json_object_set_array_member (c, "visits", sig_visits_of_case (srv, case_id));
  sig_reply_json (msg, SOUP_STATUS_OK, c);
}

static char *
request_base_url (SigServer *srv, SoupServerMessage *msg)
{
  const char *host = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Host");

  if (host == NULL || strlen (host) > 255 || strpbrk (host, " /\\\"<>") != NULL)
    return NULL;
  return g_strdup_printf ("%s://%s", srv->tls ? "https" : "http", host);
}

static void
api_session_create (SigServer *srv, SoupServerMessage *msg, const char *case_id, const char *officer)
{
  g_autoptr (JsonObject) c = sig_db_case_json (srv, case_id);
  g_autofree char *why = NULL, *sid = NULL, *token = NULL, *token_hash = NULL, *dir = NULL, *base = NULL;
  g_autofree char *path = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GError) error = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  JsonObject *o;

  if (c == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no case %s", case_id);
      return;
    }
  if (g_strcmp0 (json_object_get_string_member (c, "state"), "open") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s is %s, not open", case_id,
                       json_object_get_string_member (c, "state"));
      return;
    }
  if (!sig_recorder_available (srv, &why))
    {
      sig_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL, "recording not available: %s", why);
      return;
    }
  {
    g_autofree char *rnd = sig_random_token (12); /* 96 bits: an id, not a secret */
    for (char *p = rnd; *p; p++)
      if (!g_ascii_isalnum (*p))
        *p = 'x';
    sid = g_strconcat ("ses-", rnd, NULL);
  }
  token = sig_random_token (32); /* 256 bits */
  token_hash = tg_sha256_hex (token, strlen (token));
  dir = g_build_filename (srv->sessions_dir, sid, NULL);
  if (!sig_mkdir_private (dir, &error))
    {
      sig_reply_error (msg, 500, NULL, "%s", error->message);
      return;
    }
  st = sig_db_prepare (srv->db,
                       "INSERT INTO sessions (id, case_id, officer_id, token_hash, token_expires_at, state, created_at)"
                       " VALUES (?, ?, ?, ?, ?, 'created', ?)",
                       NULL);
  if (st == NULL)
    {
      sig_reply_error (msg, 500, NULL, "database error");
      return;
    }
  sqlite3_bind_text (st, 1, sid, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, case_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, officer, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, token_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 5, now + srv->cfg->join_ttl);
  sqlite3_bind_int64 (st, 6, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_reply_error (msg, 500, NULL, "database error: %s", sqlite3_errmsg (srv->db));
      return;
    }
  g_message ("session %s for case %s created by %s", sid, case_id, officer);
  o = sig_db_session_json (srv, sid);
  path = g_strconcat ("/join/", token, NULL);
  json_object_set_string_member (o, "join_path", path);
  base = request_base_url (srv, msg);
  if (base != NULL)
    {
      g_autofree char *url = g_strconcat (base, path, NULL);
      json_object_set_string_member (o, "join_url", url);
    }
  sig_reply_json (msg, SOUP_STATUS_CREATED, o);
}

static void
api_session_list (SigServer *srv, SoupServerMessage *msg, GHashTable *query)
{
  const char *filter = query ? g_hash_table_lookup (query, "state") : NULL;
  JsonObject *o = json_object_new ();
  JsonArray *a = json_array_new ();
  g_autoptr (sqlite3_stmt) st = NULL;

  if (g_strcmp0 (filter, "unfinished") == 0)
    st = sig_db_prepare (srv->db,
                         "SELECT id FROM sessions WHERE state IN ('created','active','interrupted','stopped')"
                         " ORDER BY created_at DESC LIMIT 500",
                         NULL);
  else
    st = sig_db_prepare (srv->db, "SELECT id FROM sessions ORDER BY created_at DESC LIMIT 500", NULL);
  while (st != NULL && sqlite3_step (st) == SQLITE_ROW)
    {
      JsonObject *s = sig_db_session_json (srv, sig_col (st, 0));
      if (s != NULL)
        json_array_add_object_element (a, s);
    }
  json_object_set_array_member (o, "sessions", a);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

void
sig_reply_bundle_file (SoupServerMessage *msg, const char *path, const char *case_id)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) mf = g_mapped_file_new (path, FALSE, &error);
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *disp = NULL;

  if (mf == NULL)
    {
      sig_reply_error (msg, 500, NULL, "cannot read the bundle: %s", error->message);
      return;
    }
  bytes = g_mapped_file_get_bytes (mf);
  disp = g_strdup_printf ("attachment; filename=\"%s.tar\"", case_id);
  soup_message_headers_replace (h, "Content-Disposition", disp);
  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_message_headers_set_content_type (h, "application/x-tar", NULL);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
api_bundle (SigServer *srv, SoupServerMessage *msg, const char *session_id)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT bundle, case_id FROM sessions WHERE id = ?", NULL);

  if (st == NULL)
    {
      sig_reply_error (msg, 500, NULL, "database error");
      return;
    }
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no session %s", session_id);
      return;
    }
  if (sig_col (st, 0) == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "session %s has no sealed bundle", session_id);
      return;
    }
  sig_reply_bundle_file (msg, sig_col (st, 0), sig_col (st, 1));
}

/* ------------------------------------------------------------ routing */

static void
api_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  SigServer *srv = data;
  const char *method = soup_server_message_get_method (msg);
  gboolean get = strcmp (method, "GET") == 0, post = strcmp (method, "POST") == 0;
  g_auto (GStrv) seg = g_strsplit (path + 1, "/", 6); /* "api", ... */
  guint n = g_strv_length (seg);
  g_autofree char *officer = NULL;

  add_security_headers (msg, srv);
  if (!get && !post)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, POST");
      sig_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL, "%s is not supported here", method);
      return;
    }
  if (n == 2 && strcmp (seg[1], "login") == 0 && post)
    {
      api_login (srv, msg);
      return;
    }
  if (n == 2 && strcmp (seg[1], "me") == 0 && get)
    {
      api_me (srv, msg);
      return;
    }
  if (n == 2 && strcmp (seg[1], "health") == 0 && get)
    {
      JsonObject *o = json_object_new ();
      g_autofree char *why = NULL;
      json_object_set_string_member (o, "status", "ok");
      json_object_set_string_member (o, "version", TESTIGO_VERSION);
      json_object_set_boolean_member (o, "recording_available", sig_recorder_available (srv, &why));
      sig_reply_json (msg, SOUP_STATUS_OK, o);
      return;
    }
  /* the holder portal, the CA endpoints (officer, admin or API token) */
  if (sig_holder_route (srv, msg, method, seg, n) || sig_ca_route (srv, msg, method, seg, n, query))
    return;
  /* everything else needs an officer session; POST also the CSRF token */
  officer = require_officer (srv, msg, post);
  if (officer == NULL)
    return;
  if (n == 2 && strcmp (seg[1], "logout") == 0 && post)
    api_logout (srv, msg);
  else if (n == 2 && strcmp (seg[1], "cases") == 0 && post)
    api_case_create (srv, msg, officer);
  else if (n == 2 && strcmp (seg[1], "cases") == 0 && get)
    api_case_list (srv, msg);
  else if (n == 3 && strcmp (seg[1], "cases") == 0 && get)
    api_case_get (srv, msg, seg[2]);
  else if (n == 4 && strcmp (seg[1], "cases") == 0 && strcmp (seg[3], "sessions") == 0 && post)
    api_session_create (srv, msg, seg[2], officer);
  else if (n == 2 && strcmp (seg[1], "sessions") == 0 && get)
    api_session_list (srv, msg, query);
  else if (n == 3 && strcmp (seg[1], "sessions") == 0 && get)
    {
      JsonObject *s = sig_db_session_json (srv, seg[2]);
      if (s == NULL)
        sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no session %s", seg[2]);
      else
        sig_reply_json (msg, SOUP_STATUS_OK, s);
    }
  else if (n == 4 && strcmp (seg[1], "sessions") == 0 && strcmp (seg[3], "close") == 0 && post)
    {
      g_autoptr (JsonObject) body = read_json_body (msg, SIG_MAX_CLOSE_BODY);
      if (body != NULL)
        sig_close_session (srv, msg, seg[2], officer, body);
    }
  else if (n == 4 && strcmp (seg[1], "sessions") == 0 && strcmp (seg[3], "bundle") == 0 && get)
    api_bundle (srv, msg, seg[2]);
  else if (n == 5 && strcmp (seg[1], "sessions") == 0 && strcmp (seg[3], "stills") == 0 && get)
    sig_stills_serve (srv, msg, seg[2], seg[4]);
  else if (n >= 2 && (strcmp (seg[1], "officers") == 0 || strcmp (seg[1], "ca") == 0))
    sig_reply_error (msg, SOUP_STATUS_NOT_IMPLEMENTED, NULL, "not supported: /%s (use the testigo CLI)", path + 1);
  else
    sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no such API: %s %s", method, path);
}

static const char *
content_type_for (const char *path)
{
  static const struct { const char *ext, *type; } types[] = {
    { ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" }, { ".css", "text/css; charset=utf-8" },
    { ".json", "application/json" }, { ".svg", "image/svg+xml" }, { ".png", "image/png" },
    { ".ico", "image/x-icon" }, { ".txt", "text/plain; charset=utf-8" }, { ".wav", "audio/wav" },
    { ".ogg", "audio/ogg" }, { ".webmanifest", "application/manifest+json" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    if (g_str_has_suffix (path, types[i].ext))
      return types[i].type;
  return "application/octet-stream";
}

static void
serve_file (SigServer *srv, SoupServerMessage *msg, const char *rel)
{
  g_autofree char *full = g_build_filename (srv->cfg->web_root, rel, NULL);
  g_autoptr (GMappedFile) mf = NULL;
  g_autoptr (GBytes) bytes = NULL;
  struct stat st;

  if (stat (full, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > 16 * 1024 * 1024
      || (mf = g_mapped_file_new (full, FALSE, NULL)) == NULL)
    {
      const char *text = "404 not found\n";
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_STATIC, text, strlen (text));
      return;
    }
  bytes = g_mapped_file_get_bytes (mf);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg), content_type_for (rel), NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control", "no-cache");
  if (strcmp (soup_server_message_get_method (msg), "HEAD") != 0)
    soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
  else
    soup_message_headers_set_content_length (soup_server_message_get_response_headers (msg), st.st_size);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
static_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  SigServer *srv = data;
  const char *method = soup_server_message_get_method (msg);

  add_security_headers (msg, srv);
  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, HEAD");
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }
  if (g_str_has_prefix (path, "/join/"))
    {
      /* The page is served without looking at the token: the link is only
       * spent by the WebSocket hello, so link previews cannot burn it and a
       * reload can rejoin with the secret in sessionStorage. */
      static const char *const pages[] = { "signatory.html", "join.html", "index.html" };
      for (guint i = 0; i < G_N_ELEMENTS (pages); i++)
        {
          g_autofree char *page = g_build_filename (srv->cfg->web_root, pages[i], NULL);
          if (g_file_test (page, G_FILE_TEST_IS_REGULAR) || i + 1 == G_N_ELEMENTS (pages))
            {
              serve_file (srv, msg, pages[i]);
              return;
            }
        }
      return;
    }
  if (strcmp (path, "/") == 0)
    {
      serve_file (srv, msg, "index.html");
      return;
    }
  if (!g_regex_match_simple ("^(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$", path, 0, 0) || strstr (path, "..") != NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  serve_file (srv, msg, path + 1);
}

/* Refuses an over-cap body from its Content-Length before it is read. */
static void
got_headers (SoupServerMessage *msg, gpointer data)
{
  goffset len = soup_message_headers_get_content_length (soup_server_message_get_request_headers (msg));
  GUri *uri = soup_server_message_get_uri (msg);
  gsize cap = g_str_has_suffix (g_uri_get_path (uri), "/close") ? SIG_MAX_CLOSE_BODY
                                                                  : sig_body_cap (g_uri_get_path (uri));

  if (len > (goffset) cap)
    sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the body is over %zu bytes", cap);
}

static void
request_started (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (got_headers), data);
}

void
sig_http_setup (SigServer *srv)
{
  g_signal_connect (srv->soup, "request-started", G_CALLBACK (request_started), srv);
  soup_server_add_handler (srv->soup, "/api", api_handler, srv, NULL);
  soup_server_add_handler (srv->soup, NULL, static_handler, srv, NULL);
}

/* ------------------------------------------------------------ server */

static gboolean
is_loopback (const char *host)
{
  g_autoptr (GInetAddress) a = g_inet_address_new_from_string (host);

  return a != NULL && g_inet_address_get_is_loopback (a);
}

SigServer *
sig_server_new (SigConfig *config, GError **error)
{
  SigServer *srv = g_new0 (SigServer, 1);
  g_autofree char *ra = NULL;
  g_autoptr (GTlsCertificate) cert = NULL;

  srv->cfg = config;
  srv->live = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) sig_live_free);
  srv->peers = g_ptr_array_new ();
  if (!is_loopback (config->listen_host) && config->tls_cert == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "refusing to listen on %s without TLS: browsers need HTTPS for camera access and "
                   "the officer's session cookie must not travel in clear; set tls-cert and tls-key "
                   "(or listen on 127.0.0.1)",
                   config->listen_host);
      goto fail;
    }
  if (config->tls_cert != NULL)
    {
      cert = g_tls_certificate_new_from_files (config->tls_cert, config->tls_key, error);
      if (cert == NULL)
        {
          g_prefix_error (error, "TLS certificate %s / key %s: ", config->tls_cert, config->tls_key);
          goto fail;
        }
      srv->tls = TRUE;
    }
  srv->db_path = g_build_filename (config->state_dir, "testigo.db", NULL);
  srv->keys_dir = g_build_filename (config->state_dir, "keys", NULL);
  srv->evidence_dir = g_build_filename (config->state_dir, "evidence", NULL);
  srv->sessions_dir = g_build_filename (config->state_dir, "sessions", NULL);
  if (!sig_mkdir_private (config->state_dir, error) || !sig_mkdir_private (srv->evidence_dir, error)
      || !sig_mkdir_private (srv->sessions_dir, error))
    goto fail;
  ra = g_build_filename (srv->keys_dir, "ra.pem", NULL);
  if (!g_file_test (ra, G_FILE_TEST_EXISTS))
    {
      g_message ("first start: creating the development PKI in %s", srv->keys_dir);
      if (!sig_mkdir_private (srv->keys_dir, error) || !bundle_keys_init (srv->keys_dir, NULL, error))
        {
          g_prefix_error (error, "development keys: ");
          goto fail;
        }
    }
  srv->db = sig_db_open (srv->db_path, error);
  if (srv->db == NULL)
    goto fail;
  srv->soup = soup_server_new ("server-header", "testigod", NULL);
  if (cert != NULL)
    soup_server_set_tls_certificate (srv->soup, cert);
  if (!sig_ca_init (srv, error))
    goto fail;
  sig_http_setup (srv);
  sig_ws_setup (srv);
  sig_recover_sessions (srv);
  return srv;

fail:
  srv->cfg = NULL; /* the caller keeps ownership on failure */
  sig_server_free (srv);
  return NULL;
}

gboolean
sig_server_listen (SigServer *srv, char **uri_out, GError **error)
{
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new_from_string (srv->cfg->listen_host,
                                                                            (guint) srv->cfg->port);
  GSList *uris;

  if (addr == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "cannot listen on %s", srv->cfg->listen_host);
      return FALSE;
    }
  if (!soup_server_listen (srv->soup, addr, srv->tls ? SOUP_SERVER_LISTEN_HTTPS : 0, error))
    return FALSE;
  uris = soup_server_get_uris (srv->soup);
  if (uri_out != NULL && uris != NULL)
    *uri_out = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return TRUE;
}

void
sig_server_free (SigServer *srv)
{
  if (srv == NULL)
    return;
  if (srv->heartbeat_id)
    g_source_remove (srv->heartbeat_id);
  sig_ca_fini (srv);
  if (srv->soup)
    soup_server_disconnect (srv->soup);
  g_clear_pointer (&srv->live, g_hash_table_unref);
  g_clear_object (&srv->soup);
  g_clear_pointer (&srv->peers, g_ptr_array_unref);
  if (srv->db)
    sqlite3_close (srv->db);
  g_free (srv->db_path);
  g_free (srv->keys_dir);
  g_free (srv->evidence_dir);
  g_free (srv->sessions_dir);
  g_free (srv->dummy_hash);
  sig_config_free (srv->cfg);
  g_free (srv);
}

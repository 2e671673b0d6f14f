/* sig-holder.c — the certificate holder's portal: accounts (national ID +
 * argon2id password), cookie sessions with a CSRF token, the holder's
 * certificates and cases, revocation of the holder's own certificate and
 * completion of an approved renewal from a CSR. docs/protocol.md, "Holder
 * portal". Every state change is audited; a holder only ever sees and acts
 * on certificates and cases of their own national ID. */
#include "config.h"
#include "sig-private.h"
#include "ca.h"

#include <string.h>

#define SIG_MAX_CSR ((gsize) 16 * 1024)

/* ------------------------------------------------------------ accounts */

char *
sig_national_id_normalize (const char *text)
{
  GString *s;

  if (text == NULL || strlen (text) > 128)
    return NULL;
  s = g_string_new (NULL);
  for (const char *p = text; *p; p++)
    {
      if (*p == '.' || *p == ' ')
        continue;
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '/')
        {
          g_string_free (s, TRUE);
          return NULL;
        }
      g_string_append_c (s, g_ascii_toupper (*p));
    }
  if (s->len < 1 || s->len > 64)
    {
      g_string_free (s, TRUE);
      return NULL;
    }
  return g_string_free (s, FALSE);
}

gboolean
sig_holder_add (const char *state_dir, const char *national_id, const char *name, const char *email,
                const char *password, GError **error)
{
  g_autofree char *db_path = g_build_filename (state_dir, "testigo.db", NULL);
  g_autofree char *nid = sig_national_id_normalize (national_id);
  g_autofree char *hash = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  sqlite3 *db;

  if (nid == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "national ID %s: 1 to 64 letters, digits, '-' or '/' (dots and spaces are dropped)",
                   national_id ? national_id : "(none)");
      return FALSE;
    }
  if (!sig_text_ok (name, 1, 256) || strchr (name, '\n') || strchr (name, '\t'))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "holder name: 1 to 256 characters, one line");
      return FALSE;
    }
  if (email == NULL || !g_regex_match_simple ("^[^@\\s]{1,64}@[^@\\s]+\\.[^@\\s]+$", email, 0, 0)
      || strlen (email) > 254)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "e-mail: not an e-mail address");
      return FALSE;
    }
  if (password == NULL || g_utf8_strlen (password, -1) < 10 || strlen (password) > 1024)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the password must have 10 to 1024 characters");
      return FALSE;
    }
  if (!sig_mkdir_private (state_dir, error))
    return FALSE;
  hash = sig_hash_password (password, error);
  if (hash == NULL)
    return FALSE;
  db = sig_db_open (db_path, error);
  if (db == NULL)
    return FALSE;
  st = sig_db_prepare (db, "INSERT INTO holders (national_id, name, email, pw_hash, created_at) VALUES (?,?,?,?,?)",
                       error);
  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, nid, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, name, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 3, email, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 4, hash, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 5, g_get_real_time () / G_USEC_PER_SEC);
      if (sqlite3_step (st) != SQLITE_DONE)
        {
          if (sqlite3_extended_errcode (db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            g_set_error (error, TG_ERROR, TG_ERROR_EXISTS, "holder %s already exists", nid);
          else
            sig_db_set_error (db, error, "adding the holder");
          g_clear_pointer (&st, sqlite3_finalize);
        }
    }
  if (st == NULL)
    {
      sqlite3_close (db);
      return FALSE;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  sqlite3_close (db);
  return TRUE;
}

/* ------------------------------------------------------------ sessions */

static const char *
cookie_value (SoupMessageHeaders *headers, GHashTable **params_out)
{
  const char *cookie = soup_message_headers_get_list (headers, "Cookie");
  const char *value;

  if (cookie == NULL || strlen (cookie) > 8192)
    return NULL;
  *params_out = soup_header_parse_semi_param_list (cookie);
  value = g_hash_table_lookup (*params_out, SIG_HOLDER_COOKIE);
  if (value == NULL || strlen (value) < 22 || strlen (value) > 128)
    return NULL;
  return value;
}

char *
sig_holder_from_cookie (SigServer *srv, SoupMessageHeaders *headers, char **csrf_out)
{
  g_autoptr (GHashTable) params = NULL;
  const char *value = cookie_value (headers, &params);
  g_autofree char *hash = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;

  if (value == NULL)
    return NULL;
  hash = tg_sha256_hex (value, strlen (value));
  st = sig_db_prepare (srv->db,
                       "SELECT l.national_id, l.csrf FROM holder_logins l JOIN holders h ON h.national_id = l.national_id"
                       " WHERE l.id_hash = ? AND l.expires_at > ? AND h.disabled = 0",
                       NULL);
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

/* The holder behind the request's cookie, or NULL after replying 401 / 403. */
static char *
require_holder (SigServer *srv, SoupServerMessage *msg, gboolean state_changing)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  g_autofree char *csrf = NULL;
  g_autofree char *nid = sig_holder_from_cookie (srv, h, &csrf);

  if (nid == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, NULL, "log in first (no valid holder session)");
      return NULL;
    }
  if (state_changing && !sig_const_eq (soup_message_headers_get_one (h, "X-CSRF-Token"), csrf))
    {
      sig_reply_error (msg, SOUP_STATUS_FORBIDDEN, NULL, "missing or wrong X-CSRF-Token header");
      return NULL;
    }
  return g_steal_pointer (&nid);
}

static JsonObject *
holder_json (SigServer *srv, const char *nid)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT name, email FROM holders WHERE national_id = ?", NULL);
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "national_id", nid);
  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, nid, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW)
        {
          json_object_set_string_member (o, "name", sig_col (st, 0));
          json_object_set_string_member (o, "email", sig_col (st, 1));
        }
    }
  return o;
}

typedef struct {
  SigServer *srv;
  SoupServerMessage *msg;
  char *nid, *password, *hash, *ip;
  gboolean known;
} HolderLogin;

static void
holder_login_free (HolderLogin *j)
{
  g_free (j->nid);
  if (j->password)
    memset (j->password, 0, strlen (j->password));
  g_free (j->password);
  g_free (j->hash);
  g_free (j->ip);
  g_object_unref (j->msg);
  g_free (j);
}

static void
holder_login_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  HolderLogin *j = data;

  g_task_return_boolean (task, sig_verify_password (j->hash, j->password));
}

static void
holder_login_done (GObject *source, GAsyncResult *res, gpointer data)
{
  HolderLogin *j = data;
  SigServer *srv = j->srv;
  gboolean ok = g_task_propagate_boolean (G_TASK (res), NULL) && j->known;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *acct = g_strconcat ("holder:", j->nid, NULL);
  g_autofree char *ipkey = g_strconcat ("ip:", j->ip, NULL);
  g_autoptr (JsonObject) d = json_object_new ();

  json_object_set_string_member (d, "ip", j->ip);
  if (!ok)
    {
      sig_login_failure_add (srv, acct, now);
      sig_login_failure_add (srv, ipkey, now);
      g_message ("holder login failed for %s from %s", j->nid, j->ip);
      json_object_set_boolean_member (d, "known_account", j->known);
      sig_audit (srv, "login-failed", acct, d);
      sig_reply_error (j->msg, SOUP_STATUS_UNAUTHORIZED, NULL, "wrong national ID or password");
    }
  else
    {
      g_autofree char *sid = sig_random_token (32);
      g_autofree char *sid_hash = tg_sha256_hex (sid, strlen (sid));
      g_autofree char *csrf = sig_random_token (32);
      g_autofree char *cookie = NULL;
      g_autoptr (sqlite3_stmt) gc = sig_db_prepare (srv->db, "DELETE FROM holder_logins WHERE expires_at <= ?", NULL);
      g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "INSERT INTO holder_logins VALUES (?, ?, ?, ?, ?)", NULL);
      g_autoptr (sqlite3_stmt) clear = sig_db_prepare (srv->db, "DELETE FROM login_failures WHERE key = ?", NULL);
      JsonObject *o;

      if (gc != NULL)
        {
          sqlite3_bind_int64 (gc, 1, now);
          (void) sqlite3_step (gc);
        }
      if (st == NULL || clear == NULL)
        {
          sig_reply_error (j->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL, "database error");
          goto out;
        }
      sqlite3_bind_text (st, 1, sid_hash, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, j->nid, -1, SQLITE_STATIC);
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
      cookie = g_strdup_printf ("%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", SIG_HOLDER_COOKIE, sid,
                                srv->cfg->login_ttl, srv->tls ? "; Secure" : "");
      soup_message_headers_append (soup_server_message_get_response_headers (j->msg), "Set-Cookie", cookie);
      o = json_object_new ();
      json_object_set_object_member (o, "holder", holder_json (srv, j->nid));
      json_object_set_string_member (o, "csrf_token", csrf);
      g_message ("holder %s logged in from %s", j->nid, j->ip);
      sig_audit (srv, "login", acct, d);
      sig_reply_json (j->msg, SOUP_STATUS_OK, o);
    }
out:
  soup_server_message_unpause (j->msg);
  holder_login_free (j);
}

static void
holder_login (SigServer *srv, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "national_id", "password", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_BODY);
  const char *user, *password, *ip = soup_server_message_get_remote_host (msg);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC, oldest = G_MAXINT64;
  g_autofree char *nid = NULL, *acct = NULL, *ipkey = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GTask) task = NULL;
  HolderLogin *j;

  if (body == NULL || !sig_only_members (msg, body, allowed)
      || (user = sig_string_member (msg, body, "national_id")) == NULL
      || (password = sig_string_member (msg, body, "password")) == NULL)
    return;
  if (strlen (password) > 1024)
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, "password", "password too long");
      return;
    }
  nid = sig_national_id_normalize (user);
  if (nid == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, "national_id", "national_id: 1 to 64 letters, digits, '-' or '/'");
      return;
    }
  acct = g_strconcat ("holder:", nid, NULL);
  ipkey = g_strconcat ("ip:", ip ? ip : "?", NULL);
  if (sig_login_failures (srv, acct, now, &oldest) >= SIG_LOGIN_MAX_FAILS
      || sig_login_failures (srv, ipkey, now, &oldest) >= SIG_LOGIN_MAX_FAILS)
    {
      g_autofree char *retry = g_strdup_printf ("%" G_GINT64_FORMAT, MAX ((gint64) 1, oldest + SIG_LOGIN_WINDOW - now));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", retry);
      sig_reply_error (msg, 429, NULL, "too many failed logins; try again in %s s", retry);
      return;
    }
  j = g_new0 (HolderLogin, 1);
  j->srv = srv;
  j->msg = g_object_ref (msg);
  j->nid = g_steal_pointer (&nid);
  j->password = g_strdup (password);
  j->ip = g_strdup (ip ? ip : "?");
  st = sig_db_prepare (srv->db, "SELECT pw_hash FROM holders WHERE national_id = ? AND disabled = 0", NULL);
  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, j->nid, -1, SQLITE_STATIC);
      if (sqlite3_step (st) == SQLITE_ROW)
        {
          j->hash = g_strdup (sig_col (st, 0));
          j->known = TRUE;
        }
    }
  if (!j->known)
    {
      if (srv->dummy_hash == NULL)
        srv->dummy_hash = sig_hash_password ("testigo-not-a-password", NULL);
      j->hash = g_strdup (srv->dummy_hash);
    }
  soup_server_message_pause (msg);
  task = g_task_new (NULL, NULL, holder_login_done, j);
  g_task_set_task_data (task, j, NULL);
  g_task_run_in_thread (task, holder_login_thread);
}

static void
holder_logout (SigServer *srv, SoupServerMessage *msg, const char *nid)
{
  g_autoptr (GHashTable) params = NULL;
  const char *value = cookie_value (soup_server_message_get_request_headers (msg), &params);
  g_autofree char *clear = NULL, *actor = g_strconcat ("holder:", nid, NULL);
  JsonObject *o;

  if (value != NULL)
    {
      g_autofree char *hash = tg_sha256_hex (value, strlen (value));
      g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "DELETE FROM holder_logins WHERE id_hash = ?", NULL);
      if (st != NULL)
        {
          sqlite3_bind_text (st, 1, hash, -1, SQLITE_STATIC);
          (void) sqlite3_step (st);
        }
    }
  sig_audit (srv, "logout", actor, NULL);
  clear = g_strdup_printf ("%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0%s", SIG_HOLDER_COOKIE,
                           srv->tls ? "; Secure" : "");
  soup_message_headers_append (soup_server_message_get_response_headers (msg), "Set-Cookie", clear);
  o = json_object_new ();
  json_object_set_boolean_member (o, "logged_out", TRUE);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* ------------------------------------------------------------ what the holder sees */

/* The certificate @serial if it is the holder's, else NULL after replying
 * 404 (the same answer for another holder's and for an unknown serial). */
static CaCertInfo *
own_certificate (SigServer *srv, SoupServerMessage *msg, const char *nid, const char *serial)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *owner = NULL;

  if (!g_regex_match_simple ("^[0-9A-Fa-f]{1,40}$", serial, 0, 0))
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no certificate %s of yours", serial);
      return NULL;
    }
  info = ca_cert_get (srv->ca, serial, &error);
  if (info != NULL)
    owner = sig_national_id_normalize (info->national_id);
  if (info == NULL || owner == NULL || strcmp (owner, nid) != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no certificate %s of yours", serial);
      return NULL;
    }
  return g_steal_pointer (&info);
}

static void
holder_certificates (SigServer *srv, SoupServerMessage *msg, const char *nid)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = ca_cert_list (srv->ca, nid, &error);
  JsonObject *o;
  JsonArray *a;

  if (list == NULL)
    {
      sig_reply_error (msg, 500, NULL, "certificates: %s", error->message);
      return;
    }
  o = json_object_new ();
  a = json_array_new ();
  for (guint i = 0; i < list->len; i++)
    {
      CaCertInfo *info = g_ptr_array_index (list, i);
      g_autofree char *owner = sig_national_id_normalize (info->national_id);
      g_autofree char *text = NULL;
      JsonNode *n;
      if (owner == NULL || strcmp (owner, nid) != 0)
        continue;
      text = ca_cert_info_to_json (info, FALSE);
      n = json_from_string (text, NULL);
      if (n != NULL)
        json_array_add_element (a, n);
    }
  json_object_set_array_member (o, "certificates", a);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

static void
holder_certificate_pem (SigServer *srv, SoupServerMessage *msg, const char *nid, const char *serial)
{
  g_autoptr (CaCertInfo) info = own_certificate (srv, msg, nid, serial);
  g_autofree char *disp = NULL;
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (info == NULL)
    return;
  disp = g_strdup_printf ("attachment; filename=\"%s.pem\"", info->serial);
  soup_message_headers_replace (h, "Content-Disposition", disp);
  soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/x-pem-file", SOUP_MEMORY_COPY, info->pem, strlen (info->pem));
}

/* The holder's cases (matching national ID), newest first. */
static void
holder_cases (SigServer *srv, SoupServerMessage *msg, const char *nid)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (
    srv->db,
    "SELECT id FROM cases WHERE upper(replace(replace(national_id, '.', ''), ' ', '')) = ? ORDER BY seq DESC LIMIT 200",
    NULL);
  JsonObject *o = json_object_new ();
  JsonArray *a = json_array_new ();

  while (st != NULL && (sqlite3_bind_text (st, 1, nid, -1, SQLITE_STATIC), sqlite3_step (st) == SQLITE_ROW))
    {
      JsonObject *c = sig_db_case_json (srv, sig_col (st, 0));
      if (c != NULL)
        json_array_add_object_element (a, c);
    }
  json_object_set_array_member (o, "cases", a);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* The case @case_id if it is the holder's, else NULL after replying 404. */
static JsonObject *
own_case (SigServer *srv, SoupServerMessage *msg, const char *nid, const char *case_id)
{
  JsonObject *c = sig_identifier_ok (case_id) ? sig_db_case_json (srv, case_id) : NULL;
  g_autofree char *owner = c ? sig_national_id_normalize (json_object_get_string_member (c, "national_id")) : NULL;

  if (c == NULL || owner == NULL || strcmp (owner, nid) != 0)
    {
      if (c != NULL)
        json_object_unref (c);
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no case %s of yours", case_id);
      return NULL;
    }
  return c;
}

/* ------------------------------------------------------------ revoke and renew */

static void
holder_revoke (SigServer *srv, SoupServerMessage *msg, const char *nid, const char *serial)
{
  static const char *const allowed[] = { "reason", "details", "compromised_at", NULL };
  static const char *const reasons[] = { "key-compromise", "cessation-of-operation", "affiliation-changed", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_BODY);
  g_autoptr (CaCertInfo) info = NULL;
  const char *reason, *details;
  gint64 compromised = 0;

  if (body == NULL || !sig_only_members (msg, body, allowed))
    return;
  if ((reason = sig_string_member (msg, body, "reason")) == NULL)
    return;
  if (!g_strv_contains (reasons, reason))
    {
      sig_reply_error (msg, 400, "reason", "reason: key-compromise, cessation-of-operation or affiliation-changed");
      return;
    }
  if ((details = sig_string_member (msg, body, "details")) == NULL)
    return;
  if (!sig_text_ok (details, 1, 4000))
    {
      sig_reply_error (msg, 400, "details", "details: 1 to 4000 characters");
      return;
    }
  if (json_object_has_member (body, "compromised_at"))
    {
      const char *t = sig_string_member (msg, body, "compromised_at");
      if (t == NULL)
        return;
      if (strcmp (reason, "key-compromise") != 0 || !tg_time_parse (t, &compromised) || compromised <= 0
          || compromised > g_get_real_time () / G_USEC_PER_SEC + 300)
        {
          sig_reply_error (msg, 400, "compromised_at",
                           "compromised_at: an RFC 3339 time not in the future, only with key-compromise");
          return;
        }
    }
  info = own_certificate (srv, msg, nid, serial);
  if (info == NULL)
    return;
  sig_ca_portal_revoke (srv, msg, nid, info, reason, details, compromised);
}

static void
holder_renew (SigServer *srv, SoupServerMessage *msg, const char *nid, const char *case_id)
{
  static const char *const allowed[] = { "csr", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_CSR * 2);
  g_autoptr (JsonObject) c = NULL;
  const char *csr;

  if (body == NULL || !sig_only_members (msg, body, allowed) || (csr = sig_string_member (msg, body, "csr")) == NULL)
    return;
  if (strlen (csr) > SIG_MAX_CSR || !g_str_has_prefix (csr, "-----BEGIN CERTIFICATE REQUEST-----")
      || strstr (csr, "-----END CERTIFICATE REQUEST-----") == NULL)
    {
      sig_reply_error (msg, 400, "csr", "csr: a PEM certificate request (BEGIN CERTIFICATE REQUEST) of at most %zu bytes",
                       SIG_MAX_CSR);
      return;
    }
  c = own_case (srv, msg, nid, case_id);
  if (c == NULL)
    return;
  if (g_strcmp0 (json_object_get_string_member (c, "action"), "renewal") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s is a %s, not a renewal", case_id,
                       json_object_get_string_member (c, "action"));
      return;
    }
  sig_ca_renew (srv, msg, nid, c, csr);
}

/* ------------------------------------------------------------ routing */

gboolean
sig_holder_route (SigServer *srv, SoupServerMessage *msg, const char *method, char **seg, guint n)
{
  gboolean get = strcmp (method, "GET") == 0, post = strcmp (method, "POST") == 0;
  g_autofree char *nid = NULL;

  if (n < 3 || strcmp (seg[1], "holder") != 0)
    return FALSE;
  if (n == 3 && strcmp (seg[2], "login") == 0 && post)
    {
      holder_login (srv, msg);
      return TRUE;
    }
  nid = require_holder (srv, msg, post);
  if (nid == NULL)
    return TRUE;
  if (n == 3 && strcmp (seg[2], "me") == 0 && get)
    {
      g_autofree char *csrf = NULL;
      g_autofree char *again = sig_holder_from_cookie (srv, soup_server_message_get_request_headers (msg), &csrf);
      JsonObject *o = json_object_new ();
      json_object_set_object_member (o, "holder", holder_json (srv, nid));
      json_object_set_string_member (o, "csrf_token", csrf);
      sig_reply_json (msg, SOUP_STATUS_OK, o);
    }
  else if (n == 3 && strcmp (seg[2], "logout") == 0 && post)
    holder_logout (srv, msg, nid);
  else if (n == 3 && strcmp (seg[2], "certificates") == 0 && get)
    holder_certificates (srv, msg, nid);
  else if (n == 5 && strcmp (seg[2], "certificates") == 0 && strcmp (seg[4], "pem") == 0 && get)
    holder_certificate_pem (srv, msg, nid, seg[3]);
  else if (n == 5 && strcmp (seg[2], "certificates") == 0 && strcmp (seg[4], "revoke") == 0 && post)
    holder_revoke (srv, msg, nid, seg[3]);
  else if (n == 3 && strcmp (seg[2], "cases") == 0 && get)
    holder_cases (srv, msg, nid);
  else if (n == 4 && strcmp (seg[2], "cases") == 0 && get)
    {
      JsonObject *c = own_case (srv, msg, nid, seg[3]);
      if (c != NULL)
        sig_reply_json (msg, SOUP_STATUS_OK, c);
    }
  else if (n == 5 && strcmp (seg[2], "cases") == 0 && strcmp (seg[4], "renew") == 0 && post)
    holder_renew (srv, msg, nid, seg[3]);
  else
    sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no such API: %s /api/holder/%s", method, seg[2]);
  return TRUE;
}

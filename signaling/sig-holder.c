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
  g_autofree char *nid = sig_national_id_normalize (national_id);

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
  return sig_db_add_account (state_dir,
                             "INSERT INTO holders (national_id, name, email, pw_hash, created_at) VALUES (?,?,?,?,?)",
                             "holder", nid, name, email, password, error);
}

/* ------------------------------------------------------------ sessions */

static JsonObject *holder_json (SigServer *srv, const char *nid);

static const SigLoginKind holder_kind = {
  .who = "holder",
  .fail_log = "holder ",
  .account_key = "holder:",
  .actor = "holder:",
  .cookie = SIG_HOLDER_COOKIE,
  .logins = "holder_logins",
  .hash_sql = "SELECT pw_hash FROM holders WHERE national_id = ? AND disabled = 0",
  .session_sql = "SELECT l.national_id, l.csrf FROM holder_logins l JOIN holders h ON h.national_id = l.national_id"
                 " WHERE l.id_hash = ? AND l.expires_at > ? AND h.disabled = 0",
  .wrong = "wrong national ID or password",
  .no_session = "log in first (no valid holder session)",
  .account_json = holder_json,
};

char *
sig_holder_from_cookie (SigServer *srv, SoupMessageHeaders *headers, char **csrf_out)
{
  return sig_login_from_cookie (srv, &holder_kind, headers, csrf_out);
}

/* The holder behind the request's cookie, or NULL after replying 401 / 403. */
static char *
require_holder (SigServer *srv, SoupServerMessage *msg, gboolean state_changing)
{
  return sig_login_require (srv, &holder_kind, msg, state_changing);
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

static void
holder_login (SigServer *srv, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "national_id", "password", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_BODY);
  const char *user, *password;
  g_autofree char *nid = NULL;

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
  sig_login_start (srv, &holder_kind, msg, nid, password);
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
      (void) again; /* only the CSRF token is wanted; the holder is nid */
      json_object_set_object_member (o, "holder", holder_json (srv, nid));
      json_object_set_string_member (o, "csrf_token", csrf);
      sig_reply_json (msg, SOUP_STATUS_OK, o);
    }
  else if (n == 3 && strcmp (seg[2], "logout") == 0 && post)
    sig_login_end (srv, &holder_kind, msg, nid);
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

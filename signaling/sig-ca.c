/* sig-ca.c — the CA core inside testigod: the CaStore of the same state
 * directory, the hold-expiry sweep timer, CRLs (/crl/full.crl,
 * /crl/delta.crl) and the OCSP responder (/ocsp, RFC 6960 appendix A), the
 * officer and admin endpoints (certificates, gate verdicts, applying an
 * action with a case's sealed bundle), the API-token endpoints for other
 * systems (/api/gate/check, /api/gate/step-ca, /api/intake), and the audit
 * log of logins. docs/protocol.md, "CA". */
#include "config.h"
#include "sig-private.h"
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <unistd.h>

#define SIG_MAX_GATE_UPLOAD ((gsize) 64 * 1024 * 1024) /* a bundle posted to /api/gate/check */
#define SIG_PUBLISH_EVERY   (3600)                     /* seconds between periodic CRL publications */

/* ------------------------------------------------------------ audit */

void
sig_audit (SigServer *srv, const char *kind, const char *actor, JsonObject *details)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  if (srv->audit == NULL)
    return;
  if (details != NULL)
    text = sig_object_to_string (details);
  if (!ca_audit_append (srv->audit, kind, actor, text, 0, &error))
    g_warning ("audit log: cannot append %s by %s: %s", kind, actor, error->message);
}

/* ------------------------------------------------------------ replies */

/* Replies with the status of a CA error: 403 for a refusal (the reason is
 * the message, "refused": true), 404, 400, 507 or 500. */
void
sig_reply_ca_error (SoupServerMessage *msg, const GError *error)
{
  JsonObject *o = json_object_new ();
  guint status = 500;

  if (error->domain == TG_ERROR)
    switch (error->code)
      {
      case TG_ERROR_REFUSED: status = SOUP_STATUS_FORBIDDEN; break;
      case TG_ERROR_NOT_FOUND: status = SOUP_STATUS_NOT_FOUND; break;
      case TG_ERROR_INVALID:
      case TG_ERROR_CRYPTO: status = SOUP_STATUS_BAD_REQUEST; break;
      case TG_ERROR_TOO_BIG: status = SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE; break;
      case TG_ERROR_EXISTS: status = SOUP_STATUS_CONFLICT; break;
      case TG_ERROR_NOSPACE: status = SOUP_STATUS_INSUFFICIENT_STORAGE; break;
      default: break;
      }
  json_object_set_string_member (o, "error", error->message);
  if (status == SOUP_STATUS_FORBIDDEN)
    json_object_set_boolean_member (o, "refused", TRUE);
  sig_reply_json (msg, status, o);
}

/* Parses a JSON object text from the CA core into a node, NULL when not one. */
JsonNode *
sig_json_node_from_text (const char *text)
{
  JsonNode *n = text ? json_from_string (text, NULL) : NULL;

  if (n != NULL && !JSON_NODE_HOLDS_OBJECT (n))
    g_clear_pointer (&n, json_node_unref);
  return n;
}

static void
reply_ca_json (SoupServerMessage *msg, guint status, const char *text)
{
  JsonNode *n = sig_json_node_from_text (text);

  if (n == NULL)
    {
      sig_reply_error (msg, 500, NULL, "the CA core answered no JSON object");
      return;
    }
  sig_reply_json (msg, status, json_object_ref (json_node_get_object (n)));
  json_node_unref (n);
}

/* ------------------------------------------------------------ sweep and publication */

static gboolean
sweep_tick (gpointer data)
{
  SigServer *srv = data;
  g_autoptr (GError) error = NULL;
  guint n = 0;
  gint64 now = g_get_monotonic_time () / G_USEC_PER_SEC;

  if (!ca_sweep (srv->ca, &n, &error))
    g_warning ("sweep: %s", error->message);
  else if (n > 0)
    g_message ("sweep: %u suspension(s) reached the deadline and were revoked", n);
  g_clear_error (&error);
  /* CRLs carry a nextUpdate: publish again before it, even when nothing
   * changed; and time-stamp the audit log's head, so that cutting its tail
   * is detected up to the last hour */
  if (srv->last_publish == 0 || now - srv->last_publish >= SIG_PUBLISH_EVERY)
    {
      if (!ca_publish (srv->ca, &error))
        g_warning ("publishing the CRLs: %s", error->message);
      else
        srv->last_publish = now;
      g_clear_error (&error);
      if (!ca_store_timestamp_audit (srv->ca, NULL, &error))
        g_warning ("time-stamping the audit log: %s", error->message);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
sweep_first (gpointer data)
{
  SigServer *srv = data;

  sweep_tick (srv);
  /* this idle source ends here; the id now names the timer */
  srv->sweep_id = g_timeout_add_seconds ((guint) srv->cfg->sweep_interval, sweep_tick, srv);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------ CRL and OCSP */

static void
crl_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  SigServer *srv = data;
  const char *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) der = NULL;
  gboolean delta;

  sig_add_security_headers (msg, srv);
  if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
    {
      soup_message_headers_replace (h, "Allow", "GET, HEAD");
      sig_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL, "%s is not supported here", method);
      return;
    }
  if (strcmp (path, "/crl/full.crl") == 0)
    delta = FALSE;
  else if (strcmp (path, "/crl/delta.crl") == 0)
    delta = TRUE;
  else
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no CRL %s (full.crl or delta.crl)", path);
      return;
    }
  der = ca_store_get_crl (srv->ca, delta, &error);
  if (der == NULL)
    {
      sig_reply_error (msg, 500, NULL, "CRL: %s", error->message);
      return;
    }
  soup_message_headers_set_content_type (h, "application/pkix-crl", NULL);
  soup_message_headers_replace (h, "Cache-Control", "no-cache");
  if (strcmp (method, "HEAD") == 0)
    soup_message_headers_set_content_length (h, (goffset) g_bytes_get_size (der));
  else
    soup_message_body_append_bytes (soup_server_message_get_response_body (msg), der);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
ocsp_reply (SigServer *srv, SoupServerMessage *msg, GBytes *request, gboolean cacheable)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) resp = ca_store_ocsp_respond (srv->ca, request, &error);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (resp == NULL)
    {
      g_warning ("OCSP: %s", error->message);
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      return;
    }
  soup_message_headers_set_content_type (h, "application/ocsp-response", NULL);
  if (cacheable && srv->cfg->ocsp_cache > 0)
    {
      g_autofree char *cc = g_strdup_printf ("max-age=%d, public, no-transform, must-revalidate", srv->cfg->ocsp_cache);
      soup_message_headers_replace (h, "Cache-Control", cc);
    }
  else
    soup_message_headers_replace (h, "Cache-Control", "no-store");
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), resp);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

/* RFC 6960 appendix A: POST /ocsp (application/ocsp-request, DER) or
 * GET /ocsp/<url-encoded base64 of the DER request>. */
static void
ocsp_handler (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  SigServer *srv = data;
  const char *method = soup_server_message_get_method (msg);

  sig_add_security_headers (msg, srv);
  if (strcmp (method, "POST") == 0 && (strcmp (path, "/ocsp") == 0 || strcmp (path, "/ocsp/") == 0))
    {
      SoupMessageBody *body = soup_server_message_get_request_body (msg);
      const char *ctype = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
      g_autoptr (GBytes) req = NULL;

      if (body->length > (goffset) CA_OCSP_MAX_REQUEST)
        {
          sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the body is over %zu bytes",
                           CA_OCSP_MAX_REQUEST);
          return;
        }
      if (ctype == NULL || g_ascii_strcasecmp (ctype, "application/ocsp-request") != 0)
        {
          sig_reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL, "send Content-Type: application/ocsp-request");
          return;
        }
      req = g_bytes_new (body->data, (gsize) body->length);
      ocsp_reply (srv, msg, req, FALSE);
      return;
    }
  if (strcmp (method, "GET") == 0 && g_str_has_prefix (path, "/ocsp/"))
    {
      /* the request URI as sent: GUri may have decoded %2F into a path separator */
      g_autofree char *raw = g_uri_to_string_partial (soup_server_message_get_uri (msg), G_URI_HIDE_QUERY);
      const char *p = strstr (raw, "/ocsp/");
      g_autofree char *b64 = NULL;
      g_autofree guchar *der = NULL;
      gsize len = 0;
      g_autoptr (GBytes) req = NULL;

      if (p == NULL || strlen (p + 6) > CA_OCSP_MAX_REQUEST * 2)
        {
          sig_reply_error (msg, SOUP_STATUS_REQUEST_URI_TOO_LONG, NULL, "the request is too long");
          return;
        }
      b64 = g_uri_unescape_string (p + 6, NULL);
      if (b64 == NULL || *b64 == '\0' || strspn (b64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
                                             != strlen (b64))
        {
          sig_reply_error (msg, SOUP_STATUS_BAD_REQUEST, NULL, "GET /ocsp/ takes the URL-encoded base64 of a DER OCSPRequest");
          return;
        }
      der = g_base64_decode (b64, &len);
      req = g_bytes_new (der, len);
      ocsp_reply (srv, msg, req, TRUE);
      return;
    }
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", "GET, POST");
  sig_reply_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL, "OCSP: POST /ocsp or GET /ocsp/<base64>");
}

gsize
sig_body_cap (const char *path)
{
  if (path == NULL)
    return SIG_MAX_BODY;
  if (strcmp (path, "/api/intake") == 0)
    return CA_INTAKE_MAX_MESSAGE;
  if (strcmp (path, "/api/gate/check") == 0)
    return SIG_MAX_GATE_UPLOAD;
  if (g_str_has_prefix (path, "/api/cases/") && g_str_has_suffix (path, "/visit"))
    return SIG_MAX_VISIT_BODY;
  if (strcmp (path, "/ocsp") == 0 || g_str_has_prefix (path, "/ocsp/"))
    return CA_OCSP_MAX_REQUEST;
  return SIG_MAX_BODY;
}

/* ------------------------------------------------------------ init */

gboolean
sig_ca_init (SigServer *srv, GError **error)
{
  CaStoreOptions o = { 0 };
  const char *audit_path;

  o.state_dir = srv->cfg->state_dir;
  o.max_suspension_days = srv->cfg->max_suspension_days;
  o.crl_url = srv->cfg->crl_url;
  o.delta_crl_url = srv->cfg->delta_crl_url;
  o.ocsp_url = srv->cfg->ocsp_url;
  srv->ca = ca_store_open (&o, error);
  if (srv->ca == NULL)
    {
      g_prefix_error (error, "CA store: ");
      return FALSE;
    }
  audit_path = ca_store_get_path (srv->ca, "audit.jsonl");
  srv->audit = ca_audit_open (audit_path, error);
  if (srv->audit == NULL)
    {
      g_prefix_error (error, "audit log: ");
      return FALSE;
    }
  soup_server_add_handler (srv->soup, "/crl", crl_handler, srv, NULL);
  soup_server_add_handler (srv->soup, "/ocsp", ocsp_handler, srv, NULL);
  srv->sweep_id = g_idle_add (sweep_first, srv);
  return TRUE;
}

void
sig_ca_fini (SigServer *srv)
{
  g_clear_handle_id (&srv->sweep_id, g_source_remove);
  g_clear_pointer (&srv->audit, ca_audit_close);
  g_clear_pointer (&srv->ca, ca_store_free);
}

/* ------------------------------------------------------------ officers */

/* The CA actor of an officer account: admin for the "CA administrator" role. */
void
sig_officer_actor (SigServer *srv, const char *officer, CaActor *actor)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT role FROM officers WHERE id = ?", NULL);

  actor->role = CA_ROLE_OFFICER;
  actor->id = officer;
  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, officer, -1, SQLITE_STATIC);
  if (sqlite3_step (st) == SQLITE_ROW && sig_role_is_admin (sig_col (st, 0)))
    actor->role = CA_ROLE_ADMIN;
}

static void
api_certificates (SigServer *srv, SoupServerMessage *msg, GHashTable *query)
{
  const char *holder = query ? g_hash_table_lookup (query, "holder") : NULL;
  g_autofree char *nid = holder ? sig_national_id_normalize (holder) : NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) list = NULL;
  JsonObject *o;
  JsonArray *a;

  if (holder != NULL && nid == NULL)
    {
      sig_reply_error (msg, 400, "holder", "holder: a national ID");
      return;
    }
  list = ca_cert_list (srv->ca, nid, &error);
  if (list == NULL)
    {
      sig_reply_ca_error (msg, error);
      return;
    }
  o = json_object_new ();
  a = json_array_new ();
  for (guint i = 0; i < list->len && i < 1000; i++)
    {
      g_autofree char *text = ca_cert_info_to_json (g_ptr_array_index (list, i), FALSE);
      JsonNode *n = sig_json_node_from_text (text);
      if (n != NULL)
        json_array_add_element (a, n);
    }
  json_object_set_array_member (o, "certificates", a);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

static void
api_certificate_get (SigServer *srv, SoupServerMessage *msg, const char *serial)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *text = NULL;

  if (!g_regex_match_simple ("^[0-9A-Fa-f]{1,40}$", serial, 0, 0))
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no certificate %s", serial);
      return;
    }
  info = ca_cert_get (srv->ca, serial, &error);
  if (info == NULL)
    {
      sig_reply_ca_error (msg, error);
      return;
    }
  text = ca_cert_info_to_json (info, TRUE);
  reply_ca_json (msg, SOUP_STATUS_OK, text);
}

/* POST /api/ca/certificates (admin): issues a holder certificate from a CSR. */
static void
api_certificate_issue (SigServer *srv, SoupServerMessage *msg, const char *officer)
{
  static const char *const allowed[] = { "name", "national_id", "email", "csr", "days", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_BODY);
  CaIssueRequest r = { 0 };
  CaActor actor;
  g_autoptr (GError) error = NULL;
  g_autoptr (CaCertInfo) info = NULL;
  g_autofree char *nid = NULL, *text = NULL;
  g_autoptr (JsonObject) d = json_object_new ();
  g_autofree char *who = NULL;

  sig_officer_actor (srv, officer, &actor);
  if (body == NULL || !sig_only_members (msg, body, allowed))
    return;
  if (actor.role != CA_ROLE_ADMIN)
    {
      sig_reply_error (msg, SOUP_STATUS_FORBIDDEN, NULL, "only the CA administrator issues certificates");
      return;
    }
  if ((r.name = sig_string_member (msg, body, "name")) == NULL
      || (r.email = sig_string_member (msg, body, "email")) == NULL
      || (r.csr_pem = sig_string_member (msg, body, "csr")) == NULL
      || sig_string_member (msg, body, "national_id") == NULL)
    return;
  nid = sig_national_id_normalize (json_object_get_string_member (body, "national_id"));
  if (nid == NULL)
    {
      sig_reply_error (msg, 400, "national_id", "national_id: 1 to 64 letters, digits, '-' or '/'");
      return;
    }
  r.national_id = nid;
  if (json_object_has_member (body, "days"))
    {
      JsonNode *n = json_object_get_member (body, "days");
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64 || json_node_get_int (n) < 1
          || json_node_get_int (n) > 3650)
        {
          sig_reply_error (msg, 400, "days", "days: an integer from 1 to 3650");
          return;
        }
      r.days = (int) json_node_get_int (n);
    }
  info = ca_cert_issue (srv->ca, &r, NULL, &error);
  if (info == NULL)
    {
      sig_reply_ca_error (msg, error);
      return;
    }
  who = g_strconcat ("admin:", officer, NULL);
  json_object_set_string_member (d, "serial", info->serial);
  json_object_set_string_member (d, "national_id", nid);
  sig_audit (srv, "issue", who, d);
  text = ca_cert_info_to_json (info, TRUE);
  reply_ca_json (msg, SOUP_STATUS_CREATED, text);
}

/* ------------------------------------------------------------ cases and bundles */

/* The newest approved sealed bundle of a case: its own (portal, e-mail),
 * an in-person visit's or a teleconference session's. (transfer full) */
char *
sig_case_bundle (SigServer *srv, const char *case_id)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (
    srv->db,
    "SELECT bundle, t FROM ("
    " SELECT bundle, created_at * 1000 AS t FROM cases WHERE id = ?1 AND bundle IS NOT NULL"
    " UNION ALL SELECT bundle, created_at * 1000 FROM visits WHERE case_id = ?1 AND bundle IS NOT NULL"
    "   AND outcome = 'approved'"
    " UNION ALL SELECT bundle, ended_at_ms FROM sessions WHERE case_id = ?1 AND bundle IS NOT NULL"
    "   AND state = 'sealed' AND outcome = 'approved'"
    ") ORDER BY t DESC LIMIT 1",
    NULL);

  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, case_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return NULL;
  return g_strdup (sig_col (st, 0));
}

/* Records the applied action on the case row (testigo.db). */
void
sig_case_mark_applied (SigServer *srv, const char *case_id, const char *by, const CaActionResult *result)
{
  g_autofree char *text = ca_action_result_to_json (result);
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db,
                                                "UPDATE cases SET applied_at = ?, applied_by = ?, apply_result = ?"
                                                " WHERE id = ?",
                                                NULL);

  if (st == NULL)
    return;
  sqlite3_bind_int64 (st, 1, g_get_real_time () / G_USEC_PER_SEC);
  sqlite3_bind_text (st, 2, by, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, text, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, case_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    g_warning ("case %s: cannot record the applied action: %s", case_id, sqlite3_errmsg (srv->db));
}

static gboolean
parse_reason_member (SoupServerMessage *msg, JsonObject *body, CaReason *reason, gint64 *invalidity)
{
  *reason = CA_REASON_NONE;
  *invalidity = 0;
  if (json_object_has_member (body, "reason"))
    {
      const char *r = sig_string_member (msg, body, "reason");
      if (r == NULL)
        return FALSE;
      if (!ca_reason_from_string (r, reason) || *reason == CA_REASON_REMOVE_FROM_CRL
          || *reason == CA_REASON_CERTIFICATE_HOLD)
        {
          sig_reply_error (msg, 400, "reason", "reason: an RFC 5280 revocation reason name (keyCompromise, "
                                               "cessationOfOperation, affiliationChanged, superseded, …)");
          return FALSE;
        }
    }
  if (json_object_has_member (body, "invalidity_time"))
    {
      const char *t = sig_string_member (msg, body, "invalidity_time");
      if (t == NULL)
        return FALSE;
      if (!tg_time_parse (t, invalidity) || *invalidity <= 0)
        {
          sig_reply_error (msg, 400, "invalidity_time", "invalidity_time: an RFC 3339 time");
          return FALSE;
        }
    }
  return TRUE;
}

/* POST /api/cases/{id}/apply and /gate: the case's action with its newest
 * approved sealed bundle, by the logged-in officer (admin or officer). */
static void
api_case_apply (SigServer *srv, SoupServerMessage *msg, const char *case_id, const char *officer, gboolean dry_run)
{
  static const char *const allowed[] = { "reason", "invalidity_time", NULL };
  g_autoptr (JsonObject) body = NULL;
  g_autoptr (JsonObject) c = sig_db_case_json (srv, case_id);
  g_autofree char *bundle = NULL, *who = NULL;
  CaActionRequest r = { 0 };
  g_autoptr (GError) error = NULL;

  if (!dry_run)
    {
      body = sig_read_json_body (msg, SIG_MAX_BODY);
      if (body == NULL || !sig_only_members (msg, body, allowed))
        return;
      if (!parse_reason_member (msg, body, &r.reason, &r.invalidity_time))
        return;
    }
  else
    r.reason = CA_REASON_NONE;
  if (c == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no case %s", case_id);
      return;
    }
  bundle = sig_case_bundle (srv, case_id);
  if (bundle == NULL)
    {
      JsonObject *o = json_object_new ();
      json_object_set_boolean_member (o, "allowed", FALSE);
      json_object_set_string_member (o, "reason", "the case has no approved sealed bundle (close a session, "
                                                  "record an in-person visit or wait for the request's evidence)");
      if (dry_run)
        sig_reply_json (msg, SOUP_STATUS_OK, o);
      else
        {
          json_object_set_string_member (o, "error", json_object_get_string_member (o, "reason"));
          json_object_set_boolean_member (o, "refused", TRUE);
          sig_reply_json (msg, SOUP_STATUS_CONFLICT, o);
        }
      return;
    }
  r.case_id = case_id;
  r.action = json_object_get_string_member (c, "action");
  r.serial = json_object_get_string_member (c, "serial");
  r.bundle_path = bundle;
  sig_officer_actor (srv, officer, &r.actor);
  who = g_strdup_printf ("%s:%s", ca_role_to_string (r.actor.role), officer);
  if (dry_run)
    {
      g_autofree char *verdict = NULL;
      JsonNode *n;
      (void) ca_gate_check (srv->ca, &r, &verdict, &error);
      n = sig_json_node_from_text (verdict);
      if (n == NULL)
        {
          JsonObject *o = json_object_new ();
          json_object_set_boolean_member (o, "allowed", error == NULL);
          if (error != NULL)
            json_object_set_string_member (o, "reason", error->message);
          sig_reply_json (msg, SOUP_STATUS_OK, o);
          return;
        }
      sig_reply_json (msg, SOUP_STATUS_OK, json_object_ref (json_node_get_object (n)));
      json_node_unref (n);
      return;
    }
  {
    g_autoptr (CaActionResult) res = ca_apply (srv->ca, &r, &error);
    g_autofree char *text = NULL;
    if (res == NULL)
      {
        g_message ("case %s: %s refused for %s: %s", case_id, r.action, who, error->message);
        sig_reply_ca_error (msg, error);
        return;
      }
    g_message ("case %s: %s applied to %s by %s", case_id, res->action, res->serial, who);
    sig_case_mark_applied (srv, case_id, who, res);
    text = ca_action_result_to_json (res);
    reply_ca_json (msg, SOUP_STATUS_OK, text);
  }
}

/* ------------------------------------------------------------ API token */

static gboolean
require_token (SigServer *srv, SoupServerMessage *msg)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Authorization");
  const char *ip = soup_server_message_get_remote_host (msg);

  if (srv->cfg->api_token == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL,
                       "not supported: set [ca] api-token-file in the configuration to enable this endpoint");
      return FALSE;
    }
  if (auth == NULL || !g_str_has_prefix (auth, "Bearer ") || !sig_const_eq (auth + 7, srv->cfg->api_token))
    {
      g_autoptr (JsonObject) d = json_object_new ();
      json_object_set_string_member (d, "ip", ip ? ip : "?");
      json_object_set_string_member (d, "path", g_uri_get_path (soup_server_message_get_uri (msg)));
      sig_audit (srv, "login-failed", "api", d);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "WWW-Authenticate",
                                    "Bearer realm=\"testigo\"");
      sig_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, NULL, "missing or wrong API token (Authorization: Bearer …)");
      return FALSE;
    }
  return TRUE;
}

/* A bundle path named by an external caller must lie in the evidence tree. */
static char *
evidence_path (SigServer *srv, const char *path)
{
  char *resolved = realpath (path, NULL); /* malloc'd */
  char *base = realpath (srv->evidence_dir, NULL);
  char *out = NULL;

  if (resolved != NULL && base != NULL && g_str_has_prefix (resolved, base) && resolved[strlen (base)] == '/'
      && g_file_test (resolved, G_FILE_TEST_IS_REGULAR))
    out = g_strdup (resolved);
  free (resolved);
  free (base);
  return out;
}

/* POST /api/gate/check — for external CAs (EJBCA approval, Dogtag agent,
 * OpenXPKI condition): either application/json {"case_id", "action",
 * "serial", "bundle": path under the evidence directory, "actor": {"role",
 * "id"}} or application/x-tar (the bundle itself) with ?case_id=&action=
 * &serial=&actor_role=&actor_id=. Always 200 with the verdict. */
static void
api_gate_check (SigServer *srv, SoupServerMessage *msg, GHashTable *query)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const char *ctype = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
  const char *case_id = NULL, *action = NULL, *serial = NULL, *role = NULL, *actor_id = NULL, *bundle = NULL;
  g_autoptr (JsonObject) json = NULL;
  g_autofree char *path = NULL, *tmp = NULL, *verdict = NULL;
  CaActionRequest r = { 0 };
  g_autoptr (GError) error = NULL;
  gboolean allowed;
  JsonNode *n;

  if (ctype != NULL && g_ascii_strcasecmp (ctype, "application/x-tar") == 0)
    {
      int fd;
      g_autofree char *dir = g_build_filename (srv->cfg->state_dir, "tmp", NULL);
      if (body->length > (goffset) SIG_MAX_GATE_UPLOAD)
        {
          sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the bundle is over %zu bytes; name its path instead",
                           SIG_MAX_GATE_UPLOAD);
          return;
        }
      if (query != NULL)
        {
          case_id = g_hash_table_lookup (query, "case_id");
          action = g_hash_table_lookup (query, "action");
          serial = g_hash_table_lookup (query, "serial");
          role = g_hash_table_lookup (query, "actor_role");
          actor_id = g_hash_table_lookup (query, "actor_id");
        }
      if (!sig_mkdir_private (dir, &error))
        {
          sig_reply_error (msg, 500, NULL, "%s", error->message);
          return;
        }
      tmp = g_build_filename (dir, "gate-XXXXXX.tar", NULL);
      fd = g_mkstemp_full (tmp, O_RDWR | O_CLOEXEC, 0600);
      if (fd < 0 || !tg_write_all (fd, body->data, (gsize) body->length, tmp, &error))
        {
          if (fd >= 0)
            close (fd);
          sig_reply_error (msg, 500, NULL, "cannot keep the upload: %s", error ? error->message : g_strerror (errno));
          if (fd >= 0)
            (void) unlink (tmp);
          return;
        }
      close (fd);
      bundle = tmp;
    }
  else
    {
      static const char *const allowed_m[] = { "case_id", "action", "serial", "bundle", "actor", NULL };
      json = sig_read_json_body (msg, SIG_MAX_BODY);
      if (json == NULL || !sig_only_members (msg, json, allowed_m))
        return;
      if ((case_id = sig_string_member (msg, json, "case_id")) == NULL
          || (action = sig_string_member (msg, json, "action")) == NULL
          || (serial = sig_string_member (msg, json, "serial")) == NULL)
        return;
      if (json_object_has_member (json, "actor"))
        {
          JsonNode *an = json_object_get_member (json, "actor");
          JsonObject *ao = JSON_NODE_HOLDS_OBJECT (an) ? json_node_get_object (an) : NULL;
          if (ao == NULL || (role = sig_string_member (msg, ao, "role")) == NULL
              || (actor_id = sig_string_member (msg, ao, "id")) == NULL)
            {
              if (ao == NULL)
                sig_reply_error (msg, 400, "actor", "actor: {\"role\": \"admin\", \"id\": \"…\"}");
              return;
            }
        }
      if (json_object_has_member (json, "bundle"))
        {
          const char *b = sig_string_member (msg, json, "bundle");
          if (b == NULL)
            return;
          path = evidence_path (srv, b);
          if (path == NULL)
            {
              sig_reply_error (msg, 400, "bundle", "bundle: not a file under %s", srv->evidence_dir);
              return;
            }
          bundle = path;
        }
      else if (sig_identifier_ok (case_id))
        {
          path = sig_case_bundle (srv, case_id);
          bundle = path;
        }
    }
  if (case_id == NULL || action == NULL || serial == NULL)
    {
      sig_reply_error (msg, 400, NULL, "case_id, action and serial are required");
      goto out;
    }
  if (bundle == NULL)
    {
      sig_reply_error (msg, 400, "bundle", "bundle: no bundle given and none known for case %s", case_id);
      goto out;
    }
  r.case_id = case_id;
  r.action = action;
  r.serial = serial;
  r.bundle_path = bundle;
  r.reason = CA_REASON_NONE;
  r.actor.role = CA_ROLE_ADMIN;
  r.actor.id = actor_id ? actor_id : "api";
  if (role != NULL && (!ca_role_from_string (role, &r.actor.role) || r.actor.role == CA_ROLE_SYSTEM))
    {
      sig_reply_error (msg, 400, "actor", "actor.role: holder, officer or admin");
      goto out;
    }
  allowed = ca_gate_check (srv->ca, &r, &verdict, &error);
  n = sig_json_node_from_text (verdict);
  if (n == NULL)
    {
      JsonObject *o = json_object_new ();
      json_object_set_boolean_member (o, "allowed", allowed);
      if (error != NULL)
        json_object_set_string_member (o, "reason", error->message);
      sig_reply_json (msg, SOUP_STATUS_OK, o);
    }
  else
    {
      sig_reply_json (msg, SOUP_STATUS_OK, json_object_ref (json_node_get_object (n)));
      json_node_unref (n);
    }
out:
  if (tmp != NULL)
    (void) unlink (tmp);
}

/* ------------------------------------------------------------ step-ca webhook */

/* The subject's serialNumber (the holder's national ID) anywhere below
 * @node (depth-limited): the first "subject" object that has one, so the
 * certificate's own serialNumber is never taken for it. */
static const char *
find_subject_serial (JsonNode *node, int depth)
{
  if (node == NULL || depth > 6)
    return NULL;
  if (JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *o = json_node_get_object (node);
      g_autoptr (GList) members = json_object_get_members (o);
      JsonNode *subj = json_object_get_member (o, "subject");
      if (subj != NULL && JSON_NODE_HOLDS_OBJECT (subj))
        {
          JsonNode *m = json_object_get_member (json_node_get_object (subj), "serialNumber");
          if (m != NULL && JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_STRING)
            return json_node_get_string (m);
        }
      for (GList *l = members; l; l = l->next)
        {
          const char *s = find_subject_serial (json_object_get_member (o, l->data), depth + 1);
          if (s != NULL)
            return s;
        }
    }
  else if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *a = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (a) && i < 32; i++)
        {
          const char *s = find_subject_serial (json_array_get_element (a, i), depth + 1);
          if (s != NULL)
            return s;
        }
    }
  return NULL;
}

static void
step_ca_answer (SoupServerMessage *msg, gboolean allow, const char *why)
{
  JsonObject *o = json_object_new ();

  json_object_set_boolean_member (o, "allow", allow);
  if (why != NULL)
    json_object_set_string_member (o, "reason", why);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* POST /api/gate/step-ca — step-ca's AUTHORIZING webhook for X.509
 * issuance: the body is HMAC-SHA256-signed with the webhook secret
 * (X-Smallstep-Signature, hex). Allowed only when the subject's national ID
 * (serialNumber) has an applied renewal case that is not yet completed. */
static void
api_step_ca (SigServer *srv, SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const char *sig = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "X-Smallstep-Signature");
  g_autofree guchar *secret = NULL;
  gsize secret_len = 0;
  guchar mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  g_autofree char *hex = NULL, *nid = NULL, *sig_lower = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  const char *sn;

  if (srv->cfg->step_ca_secret == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL,
                       "not supported: set [ca] step-ca-webhook-secret in the configuration to enable this endpoint");
      return;
    }
  if (body->length > (goffset) SIG_MAX_BODY)
    {
      sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the body is over %zu bytes", SIG_MAX_BODY);
      return;
    }
  secret = g_base64_decode (srv->cfg->step_ca_secret, &secret_len);
  if (HMAC (EVP_sha256 (), secret, (int) secret_len, (const guchar *) body->data, (size_t) body->length, mac, &mac_len)
      == NULL)
    {
      sig_reply_error (msg, 500, NULL, "HMAC failed");
      return;
    }
  OPENSSL_cleanse (secret, secret_len);
  hex = tg_hex (mac, mac_len);
  if (sig != NULL)
    sig_lower = g_ascii_strdown (sig, -1);
  if (sig_lower == NULL || !sig_const_eq (sig_lower, hex))
    {
      g_autoptr (JsonObject) d = json_object_new ();
      json_object_set_string_member (d, "path", "/api/gate/step-ca");
      sig_audit (srv, "login-failed", "step-ca", d);
      sig_reply_error (msg, SOUP_STATUS_UNAUTHORIZED, NULL, "missing or wrong X-Smallstep-Signature");
      return;
    }
  root = tg_json_parse_strict (body->data, (gsize) body->length, SIG_MAX_BODY, NULL);
  if (root == NULL)
    {
      step_ca_answer (msg, FALSE, "the request is not JSON");
      return;
    }
  sn = find_subject_serial (root, 0);
  nid = sn ? sig_national_id_normalize (sn) : NULL;
  if (nid == NULL)
    {
      step_ca_answer (msg, FALSE, "the request names no subject serialNumber (national ID)");
      return;
    }
  st = sig_db_prepare (srv->db,
                       "SELECT id FROM cases WHERE upper(replace(replace(national_id, '.', ''), ' ', '')) = ?"
                       " AND action = 'renewal' AND applied_at IS NOT NULL"
                       " AND (apply_result IS NULL OR apply_result NOT LIKE '%\"new_serial\":\"%')"
                       " ORDER BY seq DESC LIMIT 1",
                       NULL);
  if (st != NULL)
    sqlite3_bind_text (st, 1, nid, -1, SQLITE_STATIC);
  if (st != NULL && sqlite3_step (st) == SQLITE_ROW)
    {
      g_autoptr (JsonObject) d = json_object_new ();
      json_object_set_string_member (d, "case", sig_col (st, 0));
      json_object_set_string_member (d, "national_id", nid);
      json_object_set_boolean_member (d, "allow", TRUE);
      sig_audit (srv, "gate-check", "step-ca", d);
      step_ca_answer (msg, TRUE, NULL);
    }
  else
    {
      g_autoptr (JsonObject) d = json_object_new ();
      json_object_set_string_member (d, "national_id", nid);
      json_object_set_boolean_member (d, "allow", FALSE);
      sig_audit (srv, "refusal", "step-ca", d);
      step_ca_answer (msg, FALSE, "no applied renewal case for this holder");
    }
}

/* ------------------------------------------------------------ intake */

/* Mirrors an accepted e-mail request as a case of testigo.db, so the
 * console lists it and an admin can apply it with its bundle. */
static void
mirror_intake_case (SigServer *srv, const CaIntakeCase *ic)
{
  g_autoptr (CaCertInfo) info = ca_cert_get (srv->ca, ic->serial, NULL);
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (
    srv->db,
    "INSERT OR IGNORE INTO cases (id, holder_name, national_id, email, serial, action, reason, suspension_days,"
    " channel, state, created_by, created_at, bundle) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'signed-email', 'approved',"
    " 'intake', ?, ?)",
    NULL);

  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, ic->case_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, info && info->name ? info->name : ic->national_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, ic->national_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, info && info->email ? info->email : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, ic->serial, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, ic->action, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 7, ic->reason && *ic->reason ? ic->reason : "(signed e-mail request)", -1, SQLITE_STATIC);
  if (ic->suspension_days > 0)
    sqlite3_bind_int (st, 8, ic->suspension_days);
  else
    sqlite3_bind_null (st, 8);
  sqlite3_bind_int64 (st, 9, g_get_real_time () / G_USEC_PER_SEC);
  sqlite3_bind_text (st, 10, ic->bundle_path, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    g_warning ("intake case %s: cannot list it: %s", ic->case_id, sqlite3_errmsg (srv->db));
}

/* POST /api/intake — a mail gateway posts one signed message (message/rfc822). */
static void
api_intake (SigServer *srv, SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  const char *ctype = soup_message_headers_get_content_type (soup_server_message_get_request_headers (msg), NULL);
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CaIntakeCase) ic = NULL;
  JsonObject *o;

  if (body->length > (goffset) CA_INTAKE_MAX_MESSAGE)
    {
      sig_reply_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, NULL, "the message is over %zu bytes",
                       CA_INTAKE_MAX_MESSAGE);
      return;
    }
  if (ctype == NULL || g_ascii_strcasecmp (ctype, "message/rfc822") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE, NULL, "send Content-Type: message/rfc822");
      return;
    }
  bytes = g_bytes_new (body->data, (gsize) body->length);
  ic = ca_intake_accept (srv->ca, bytes, &error);
  if (ic == NULL)
    {
      JsonObject *e = json_object_new ();
      g_message ("intake: refused: %s", error->message);
      json_object_set_string_member (e, "error", error->message);
      json_object_set_boolean_member (e, "refused", TRUE);
      sig_reply_json (msg, error->code == TG_ERROR_TOO_BIG ? SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE
                           : error->code == TG_ERROR_IO || error->code == TG_ERROR_NOSPACE || error->code == TG_ERROR_FAILED
                             ? SOUP_STATUS_INTERNAL_SERVER_ERROR
                             : SOUP_STATUS_UNPROCESSABLE_ENTITY,
                      e);
      return;
    }
  mirror_intake_case (srv, ic);
  g_message ("intake: case %s (%s of %s)", ic->case_id, ic->action, ic->serial);
  o = json_object_new ();
  json_object_set_string_member (o, "case_id", ic->case_id);
  json_object_set_string_member (o, "action", ic->action);
  json_object_set_string_member (o, "serial", ic->serial);
  json_object_set_string_member (o, "national_id", ic->national_id);
  json_object_set_string_member (o, "reason", ic->reason ? ic->reason : "");
  if (ic->suspension_days > 0)
    json_object_set_int_member (o, "suspension_days", ic->suspension_days);
  json_object_set_string_member (o, "message_sha256", ic->message_sha256);
  json_object_set_string_member (o, "bundle", ic->bundle_path);
  sig_reply_json (msg, SOUP_STATUS_CREATED, o);
}

/* ------------------------------------------------------------ routing */

gboolean
sig_ca_route (SigServer *srv, SoupServerMessage *msg, const char *method, char **seg, guint n, GHashTable *query)
{
  gboolean get = strcmp (method, "GET") == 0, post = strcmp (method, "POST") == 0;
  g_autofree char *officer = NULL;

  /* API token (other systems) */
  if (n == 3 && strcmp (seg[1], "gate") == 0 && strcmp (seg[2], "step-ca") == 0 && post)
    {
      api_step_ca (srv, msg);
      return TRUE;
    }
  if (n == 3 && strcmp (seg[1], "gate") == 0 && strcmp (seg[2], "check") == 0 && post)
    {
      if (require_token (srv, msg))
        api_gate_check (srv, msg, query);
      return TRUE;
    }
  if (n == 2 && strcmp (seg[1], "intake") == 0 && post)
    {
      if (require_token (srv, msg))
        api_intake (srv, msg);
      return TRUE;
    }
  /* officer and admin (cookie + CSRF) */
  if (!(n >= 3 && strcmp (seg[1], "ca") == 0)
      && !(n == 4 && strcmp (seg[1], "cases") == 0
           && (strcmp (seg[3], "apply") == 0 || strcmp (seg[3], "gate") == 0 || strcmp (seg[3], "visit") == 0
               || strcmp (seg[3], "visits") == 0))
      && !(n == 4 && strcmp (seg[1], "visits") == 0 && strcmp (seg[3], "bundle") == 0))
    return FALSE;
  officer = sig_require_officer (srv, msg, post);
  if (officer == NULL)
    return TRUE;
  if (n == 3 && strcmp (seg[2], "certificates") == 0 && get)
    api_certificates (srv, msg, query);
  else if (n == 3 && strcmp (seg[2], "certificates") == 0 && post)
    api_certificate_issue (srv, msg, officer);
  else if (n == 4 && strcmp (seg[1], "ca") == 0 && strcmp (seg[2], "certificates") == 0 && get)
    api_certificate_get (srv, msg, seg[3]);
  else if (n == 4 && strcmp (seg[1], "cases") == 0 && strcmp (seg[3], "apply") == 0 && post)
    api_case_apply (srv, msg, seg[2], officer, FALSE);
  else if (n == 4 && strcmp (seg[1], "cases") == 0 && strcmp (seg[3], "gate") == 0 && get)
    api_case_apply (srv, msg, seg[2], officer, TRUE);
  else if (n == 4 && strcmp (seg[1], "cases") == 0 && strcmp (seg[3], "visit") == 0 && post)
    sig_visit_record (srv, msg, seg[2], officer);
  else if (n == 4 && strcmp (seg[1], "cases") == 0 && strcmp (seg[3], "visits") == 0 && get)
    sig_visit_list (srv, msg, seg[2]);
  else if (n == 4 && strcmp (seg[1], "visits") == 0 && get)
    sig_visit_bundle (srv, msg, seg[2]);
  else
    sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no such API: %s /api/%s/%s", method, seg[1], seg[2]);
  return TRUE;
}

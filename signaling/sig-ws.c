/* sig-ws.c — the WebSocket signaling protocol (docs/protocol.md). */
#include "sig-private.h"

#include <string.h>

/* ------------------------------------------------------------ sending */

void
sig_peer_send (SigPeer *peer, JsonObject *obj)
{
  g_autofree char *text = NULL;

  if (peer == NULL || peer->gone || soup_websocket_connection_get_state (peer->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  text = sig_object_to_string (obj);
  soup_websocket_connection_send_text (peer->ws, text);
}

void
sig_peer_send_error (SigPeer *peer, const char *code, const char *fmt, ...)
{
  g_autoptr (JsonObject) o = json_object_new ();
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, fmt);
  text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_object_set_string_member (o, "type", "error");
  json_object_set_string_member (o, "code", code);
  json_object_set_string_member (o, "message", text);
  sig_peer_send (peer, o);
}

void
sig_live_notify (SigLive *live, SigRole to, JsonObject *obj)
{
  if (to == SIG_ROLE_OFFICER || to == SIG_ROLE_NONE)
    sig_peer_send (live->officer, obj);
  if (to == SIG_ROLE_SIGNATORY || to == SIG_ROLE_NONE)
    sig_peer_send (live->signatory, obj);
}

static const char *
role_name (SigRole r)
{
  return r == SIG_ROLE_OFFICER ? "officer" : r == SIG_ROLE_SIGNATORY ? "signatory" : "none";
}

/* ------------------------------------------------------------ live sessions */

void
sig_live_free (SigLive *live)
{
  if (live->rec != NULL)
    sig_recorder_detach (live->rec);
  if (live->officer)
    live->officer->session_id = (g_free (live->officer->session_id), NULL);
  if (live->signatory)
    live->signatory->session_id = (g_free (live->signatory->session_id), NULL);
  g_free (live->id);
  g_free (live->case_id);
  g_free (live->officer_id);
  g_free (live->dir);
  g_free (live);
}

SigLive *
sig_live_get (SigServer *srv, const char *session_id, gboolean create)
{
  SigLive *live = g_hash_table_lookup (srv->live, session_id);
  g_autoptr (sqlite3_stmt) st = NULL;

  if (live != NULL || !create)
    return live;
  st = sig_db_prepare (srv->db, "SELECT case_id, officer_id FROM sessions WHERE id = ?", NULL);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return NULL;
  live = g_new0 (SigLive, 1);
  live->srv = srv;
  live->id = g_strdup (session_id);
  live->case_id = g_strdup (sig_col (st, 0));
  live->officer_id = g_strdup (sig_col (st, 1));
  live->dir = g_build_filename (srv->sessions_dir, session_id, NULL);
  live->part = -1;
  g_hash_table_insert (srv->live, live->id, live);
  return live;
}

/* Logs a server event: kept in the database and appended to events.jsonl
 * (by the recorder while it runs, directly when it does not). Adds the time
 * when missing. Takes a reference on @event. */
void
sig_server_event (SigLive *live, JsonObject *event)
{
  g_autoptr (GError) error = NULL;

  if (!json_object_has_member (event, "time"))
    {
      g_autofree char *now = sig_now_iso_ms ();
      json_object_set_string_member (event, "time", now);
    }
  if (!sig_db_session_event (live->srv, live->id, event, &error))
    g_warning ("session %s: %s", live->id, error->message);
  if (live->rec != NULL && sig_recorder_running (live->rec))
    {
      g_autoptr (JsonObject) msg = json_object_new ();
      json_object_set_string_member (msg, "type", "log-event");
      json_object_set_object_member (msg, "event", json_object_ref (event));
      sig_recorder_send (live->rec, msg);
    }
  else if (!sig_append_event_direct (live->dir, event, &error))
    g_warning ("session %s: cannot append to events.jsonl: %s", live->id, error->message);
}

JsonArray *
sig_ice_servers_json (SigConfig *cfg)
{
  JsonArray *a = json_array_new ();

  if (cfg->stun != NULL && cfg->stun[0] != NULL)
    {
      JsonObject *o = json_object_new ();
      JsonArray *urls = json_array_new ();
      for (guint i = 0; cfg->stun[i]; i++)
        json_array_add_string_element (urls, cfg->stun[i]);
      json_object_set_array_member (o, "urls", urls);
      json_array_add_object_element (a, o);
    }
  if (cfg->turn != NULL && cfg->turn[0] != NULL)
    {
      JsonObject *o = json_object_new ();
      JsonArray *urls = json_array_new ();
      for (guint i = 0; cfg->turn[i]; i++)
        json_array_add_string_element (urls, cfg->turn[i]);
      json_object_set_array_member (o, "urls", urls);
      json_object_set_string_member (o, "username", cfg->turn_username);
      json_object_set_string_member (o, "credential", cfg->turn_credential);
      json_array_add_object_element (a, o);
    }
  return a;
}

/* ------------------------------------------------------------ validation */

static gboolean
check_members (SigPeer *peer, JsonObject *m, const char *type, const char *const *allowed)
{
  g_autoptr (GList) members = json_object_get_members (m);

  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "type") != 0 && !g_strv_contains (allowed, l->data))
      {
        sig_peer_send_error (peer, "bad-message", "%s: unknown field %s", type, (char *) l->data);
        return FALSE;
      }
  return TRUE;
}

static const char *
get_string (SigPeer *peer, JsonObject *m, const char *type, const char *name, gsize max, gboolean required)
{
  JsonNode *n = json_object_get_member (m, name);

  if (n == NULL)
    {
      if (required)
        sig_peer_send_error (peer, "bad-message", "%s: %s is missing", type, name);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      sig_peer_send_error (peer, "bad-message", "%s: %s must be a string", type, name);
      return NULL;
    }
  if (strlen (json_node_get_string (n)) > max)
    {
      sig_peer_send_error (peer, "too-big", "%s: %s is over %zu bytes", type, name, max);
      return NULL;
    }
  return json_node_get_string (n);
}

static gboolean
get_bool (SigPeer *peer, JsonObject *m, const char *type, const char *name, gboolean *out)
{
  JsonNode *n = json_object_get_member (m, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    {
      sig_peer_send_error (peer, "bad-message", "%s: %s must be true or false", type, name);
      return FALSE;
    }
  *out = json_node_get_boolean (n);
  return TRUE;
}

/* ------------------------------------------------------------ peers */

static void
peer_free (SigPeer *peer)
{
  g_object_unref (peer->ws);
  g_free (peer->session_id);
  g_free (peer->officer_id);
  g_free (peer->user_agent);
  g_free (peer->remote);
  g_free (peer->origin);
  g_free (peer);
}

/* The peer's part in its session ends (closed socket, heartbeat timeout or
 * leave message): tell the recorder and the other side, log it. */
static void
peer_detach (SigPeer *peer, const char *reason, gboolean voluntary)
{
  SigLive *live = peer->session_id ? sig_live_get (peer->srv, peer->session_id, FALSE) : NULL;
  const char *party = role_name (peer->role);

  if (live == NULL || (live->officer != peer && live->signatory != peer))
    return;
  if (live->officer == peer)
    live->officer = NULL;
  else
    live->signatory = NULL;
  live->offered[peer->role] = FALSE;
  g_message ("session %s: %s left (%s)", live->id, party, reason);
  if (!live->closing)
    {
      g_autoptr (JsonObject) ev = json_object_new ();
      g_autoptr (JsonObject) note = json_object_new ();

      json_object_set_string_member (ev, "type", "leave");
      json_object_set_string_member (ev, "party", party);
      json_object_set_string_member (ev, "reason", reason);
      sig_server_event (live, ev);
      if (!voluntary)
        {
          g_autoptr (JsonObject) in = json_object_new ();
          json_object_set_string_member (in, "type", "interruption");
          json_object_set_string_member (in, "cause", peer->role == SIG_ROLE_SIGNATORY ? "signatory-network"
                                                                                      : "officer-network");
          json_object_set_string_member (in, "detail", reason);
          json_object_set_string_member (in, "told_signatory",
                                         "Connection lost: the session stays open; rejoin from the same page.");
          sig_server_event (live, in);
        }
      if (live->rec != NULL && sig_recorder_running (live->rec))
        {
          g_autoptr (JsonObject) m = json_object_new ();
          json_object_set_string_member (m, "type", "peer-left");
          json_object_set_string_member (m, "peer", party);
          sig_recorder_send (live->rec, m);
        }
      json_object_set_string_member (note, "type", "peer-left");
      json_object_set_string_member (note, "peer", party);
      json_object_set_string_member (note, "reason", reason);
      sig_live_notify (live, peer->role == SIG_ROLE_OFFICER ? SIG_ROLE_SIGNATORY : SIG_ROLE_OFFICER, note);
    }
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  SigPeer *peer = data;
  gushort code = soup_websocket_connection_get_close_code (ws);

  if (!peer->gone)
    peer_detach (peer, code == SOUP_WEBSOCKET_CLOSE_NORMAL || code == SOUP_WEBSOCKET_CLOSE_GOING_AWAY
                         ? "connection closed" : "connection lost", FALSE);
  peer->gone = TRUE;
  g_ptr_array_remove (peer->srv->peers, peer);
  g_signal_handlers_disconnect_by_data (ws, peer);
  /* freed once the signal emission that brought us here is over */
  g_idle_add_once ((GSourceOnceFunc) peer_free, peer);
}

static void
peer_close (SigPeer *peer, gushort code, const char *reason)
{
  if (soup_websocket_connection_get_state (peer->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (peer->ws, code, reason);
}

/* ------------------------------------------------------------ hello */

static gboolean
session_row (SigServer *srv, const char *sql, const char *key, char **sid, char **state, gint64 *expires,
             gboolean *used)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, sql, NULL);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return FALSE;
  *sid = g_strdup (sig_col (st, 0));
  *state = g_strdup (sig_col (st, 1));
  if (expires)
    *expires = sqlite3_column_int64 (st, 2);
  if (used)
    *used = sqlite3_column_type (st, 3) != SQLITE_NULL;
  return TRUE;
}

static gboolean
state_open (const char *state)
{
  return g_strcmp0 (state, "created") == 0 || g_strcmp0 (state, "active") == 0;
}

static gboolean
consent_given (SigServer *srv, const char *sid)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT consent FROM sessions WHERE id = ?", NULL);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, sid, -1, SQLITE_STATIC);
  return sqlite3_step (st) == SQLITE_ROW && sqlite3_column_type (st, 0) != SQLITE_NULL;
}

static void
handle_hello (SigPeer *peer, JsonObject *m)
{
  static const char *const allowed[] = { "role", "session", "token", "rejoin", NULL };
  SigServer *srv = peer->srv;
  const char *role = get_string (peer, m, "hello", "role", 32, TRUE);
  g_autofree char *sid = NULL, *state = NULL, *rejoin = NULL;
  gboolean is_rejoin = FALSE;
  SigLive *live;
  SigRole r;
  g_autoptr (JsonObject) reply = NULL;
  g_autoptr (JsonObject) ev = NULL;
  g_autoptr (JsonObject) note = NULL;
  g_autoptr (GError) error = NULL;

  if (!check_members (peer, m, "hello", allowed) || role == NULL)
    return;
  if (peer->role != SIG_ROLE_NONE)
    {
      sig_peer_send_error (peer, "out-of-order", "hello: already said hello as %s", role_name (peer->role));
      return;
    }
  if (strcmp (role, "officer") == 0)
    {
      const char *s = get_string (peer, m, "hello", "session", 64, TRUE);
      if (s == NULL)
        return;
      if (peer->officer_id == NULL)
        {
          sig_peer_send_error (peer, "unauthorized", "hello: log in as an officer first");
          peer_close (peer, 4401, "unauthorized");
          return;
        }
      if (!session_row (srv, "SELECT id, state FROM sessions WHERE id = ?", s, &sid, &state, NULL, NULL))
        {
          sig_peer_send_error (peer, "not-found", "hello: no session %s", s);
          return;
        }
      r = SIG_ROLE_OFFICER;
    }
  else if (strcmp (role, "signatory") == 0)
    {
      const char *token = get_string (peer, m, "hello", "token", 128, FALSE);
      const char *secret = get_string (peer, m, "hello", "rejoin", 128, FALSE);
      gint64 expires = 0;
      gboolean used = FALSE;

      if ((token == NULL) == (secret == NULL))
        {
          sig_peer_send_error (peer, "bad-message", "hello: a signatory gives either token or rejoin");
          return;
        }
      if (token != NULL)
        {
          g_autofree char *h = tg_sha256_hex (token, strlen (token));
          g_autoptr (sqlite3_stmt) st = NULL;
          if (!session_row (srv, "SELECT id, state, token_expires_at, token_used_at FROM sessions WHERE token_hash = ?",
                            h, &sid, &state, &expires, &used))
            {
              sig_peer_send_error (peer, "invalid-link", "this join link is not valid");
              peer_close (peer, 4404, "invalid link");
              return;
            }
          if (used)
            {
              sig_peer_send_error (peer, "link-used", "this join link was already used; a signatory who "
                                                      "dropped rejoins from the same browser tab");
              peer_close (peer, 4409, "link used");
              return;
            }
          if (expires <= g_get_real_time () / G_USEC_PER_SEC)
            {
              sig_peer_send_error (peer, "link-expired", "this join link has expired; ask the officer for a new one");
              peer_close (peer, 4410, "link expired");
              return;
            }
          if (!state_open (state))
            {
              sig_peer_send_error (peer, "session-closed", "this session is %s", state);
              peer_close (peer, 4410, "session closed");
              return;
            }
          /* spend the link: single use, even under a race */
          rejoin = sig_random_token (32);
          {
            g_autofree char *rh = tg_sha256_hex (rejoin, strlen (rejoin));
            st = sig_db_prepare (srv->db, "UPDATE sessions SET token_used_at = ?, rejoin_hash = ?"
                                          " WHERE id = ? AND token_used_at IS NULL", NULL);
            if (st == NULL)
              {
                sig_peer_send_error (peer, "internal", "database error");
                return;
              }
            sqlite3_bind_int64 (st, 1, g_get_real_time () / G_USEC_PER_SEC);
            sqlite3_bind_text (st, 2, rh, -1, SQLITE_STATIC);
            sqlite3_bind_text (st, 3, sid, -1, SQLITE_STATIC);
            if (sqlite3_step (st) != SQLITE_DONE || sqlite3_changes (srv->db) != 1)
              {
                sig_peer_send_error (peer, "link-used", "this join link was already used");
                peer_close (peer, 4409, "link used");
                return;
              }
          }
        }
      else
        {
          g_autofree char *h = tg_sha256_hex (secret, strlen (secret));
          if (!session_row (srv, "SELECT id, state FROM sessions WHERE rejoin_hash = ?", h, &sid, &state, NULL, NULL))
            {
              sig_peer_send_error (peer, "invalid-link", "this rejoin secret is not valid");
              peer_close (peer, 4404, "invalid rejoin secret");
              return;
            }
          if (!state_open (state))
            {
              sig_peer_send_error (peer, "session-closed", "this session is %s", state);
              peer_close (peer, 4410, "session closed");
              return;
            }
          is_rejoin = TRUE;
        }
      r = SIG_ROLE_SIGNATORY;
    }
  else
    {
      sig_peer_send_error (peer, "bad-message", "hello: role is officer or signatory");
      return;
    }

  if (!state_open (state))
    {
      sig_peer_send_error (peer, "session-closed", "session %s is %s", sid, state);
      return;
    }
  live = sig_live_get (srv, sid, TRUE);
  if (live == NULL || live->closing)
    {
      sig_peer_send_error (peer, "session-closed", "session %s is closing", sid);
      return;
    }
  if (r == SIG_ROLE_SIGNATORY && live->signatory != NULL)
    {
      sig_peer_send_error (peer, "already-connected", "a signatory is already connected to this session");
      peer_close (peer, 4409, "already connected");
      return;
    }
  if (r == SIG_ROLE_OFFICER && live->officer != NULL)
    {
      /* a reconnecting console replaces its stale connection */
      SigPeer *old = live->officer;
      peer_detach (old, "replaced by a new connection", TRUE);
      old->gone = TRUE;
      peer_close (old, 4000, "replaced by a new connection");
    }

  /* the recorder starts with the first participant */
  if (live->rec == NULL || !sig_recorder_running (live->rec))
    {
      gboolean first = live->rec == NULL;
      g_autoptr (sqlite3_stmt) st = NULL;

      if (live->rec != NULL)
        g_clear_pointer (&live->rec, sig_recorder_detach);
      live->rec = sig_recorder_start (live, &error);
      if (live->rec == NULL)
        {
          if (rejoin != NULL)
            {
              /* nothing happened: give the link back so the signatory can try again */
              g_autoptr (sqlite3_stmt) undo = sig_db_prepare (srv->db, "UPDATE sessions SET token_used_at = NULL,"
                                                                       " rejoin_hash = NULL WHERE id = ?", NULL);
              if (undo != NULL)
                {
                  sqlite3_bind_text (undo, 1, sid, -1, SQLITE_STATIC);
                  (void) sqlite3_step (undo);
                }
            }
          sig_peer_send_error (peer, "recording-unavailable", "recording not available: %s", error->message);
          peer_close (peer, 4503, "recording not available");
          return;
        }
      st = sig_db_prepare (srv->db, "UPDATE sessions SET state = 'active',"
                                    " started_at_ms = coalesce(started_at_ms, ?) WHERE id = ?", NULL);
      if (st != NULL)
        {
          sqlite3_bind_int64 (st, 1, sig_now_ms ());
          sqlite3_bind_text (st, 2, sid, -1, SQLITE_STATIC);
          (void) sqlite3_step (st);
        }
      if (first)
        {
          g_autoptr (JsonObject) start = json_object_new ();
          g_autoptr (sqlite3_stmt) cnt = sig_db_prepare (srv->db,
                                                         "SELECT count(*) FROM session_events WHERE session_id = ?"
                                                         " AND event LIKE '%\"session-start\"%'", NULL);
          gboolean started = FALSE;
          if (cnt != NULL)
            {
              sqlite3_bind_text (cnt, 1, sid, -1, SQLITE_STATIC);
              started = sqlite3_step (cnt) == SQLITE_ROW && sqlite3_column_int (cnt, 0) > 0;
            }
          if (!started)
            {
              json_object_set_string_member (start, "type", "session-start");
              json_object_set_int_member (start, "version", 1);
              json_object_set_string_member (start, "session_id", live->id);
              json_object_set_string_member (start, "case_id", live->case_id);
              json_object_set_string_member (start, "officer_id", live->officer_id);
              sig_server_event (live, start);
            }
        }
    }

  peer->role = r;
  g_free (peer->session_id);
  peer->session_id = g_strdup (sid);
  if (r == SIG_ROLE_OFFICER)
    live->officer = peer;
  else
    live->signatory = peer;
  live->offered[r] = FALSE;

  ev = json_object_new ();
  json_object_set_string_member (ev, "type", is_rejoin ? "rejoin" : "join");
  json_object_set_string_member (ev, "party", role);
  json_object_set_string_member (ev, "user_agent", peer->user_agent);
  sig_server_event (live, ev);
  g_message ("session %s: %s %s from %s", sid, role, is_rejoin ? "rejoined" : "joined", peer->remote);

  reply = json_object_new ();
  json_object_set_string_member (reply, "type", "hello");
  json_object_set_string_member (reply, "role", role);
  json_object_set_string_member (reply, "session", sid);
  json_object_set_array_member (reply, "ice_servers", sig_ice_servers_json (srv->cfg));
  json_object_set_int_member (reply, "heartbeat_interval", srv->cfg->heartbeat_interval);
  json_object_set_int_member (reply, "heartbeat_timeout", srv->cfg->heartbeat_timeout);
  json_object_set_int_member (reply, "max_message", SIG_MAX_WS_MESSAGE);
  json_object_set_boolean_member (reply, "consent_given", consent_given (srv, sid));
  json_object_set_boolean_member (reply, "peer_present",
                                  r == SIG_ROLE_OFFICER ? live->signatory != NULL : live->officer != NULL);
  if (r == SIG_ROLE_OFFICER)
    json_object_set_string_member (reply, "case", live->case_id);
  if (rejoin != NULL)
    json_object_set_string_member (reply, "rejoin", rejoin);
  sig_peer_send (peer, reply);

  note = json_object_new ();
  json_object_set_string_member (note, "type", "peer-joined");
  json_object_set_string_member (note, "peer", role);
  json_object_set_boolean_member (note, "rejoin", is_rejoin);
  sig_live_notify (live, r == SIG_ROLE_OFFICER ? SIG_ROLE_SIGNATORY : SIG_ROLE_OFFICER, note);
}

/* ------------------------------------------------------------ in-session */

static void
handle_consent (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "text_version", "text_sha256", "shown_information", NULL };
  const char *version, *sha;
  JsonNode *shown;
  JsonArray *arr;
  g_autofree char *now = sig_now_iso_ms ();
  g_autoptr (JsonObject) stored = json_object_new ();
  g_autoptr (JsonObject) ev = json_object_new ();
  g_autoptr (JsonObject) note = json_object_new ();
  g_autofree char *text = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;

  if (!check_members (peer, m, "consent", allowed))
    return;
  if (peer->role != SIG_ROLE_SIGNATORY)
    {
      sig_peer_send_error (peer, "forbidden", "consent: only the signatory consents");
      return;
    }
  if (consent_given (peer->srv, live->id))
    {
      sig_peer_send_error (peer, "out-of-order", "consent: already recorded for this session");
      return;
    }
  if ((version = get_string (peer, m, "consent", "text_version", 64, TRUE)) == NULL
      || (sha = get_string (peer, m, "consent", "text_sha256", 64, TRUE)) == NULL)
    return;
  if (!sig_identifier_ok (version))
    {
      sig_peer_send_error (peer, "bad-message", "consent: text_version is 1 to 64 letters, digits, '.', '_', '-'");
      return;
    }
  if (!g_regex_match_simple ("^[0-9a-f]{64}$", sha, 0, 0))
    {
      sig_peer_send_error (peer, "bad-message", "consent: text_sha256 is 64 lower-case hex digits");
      return;
    }
  shown = json_object_get_member (m, "shown_information");
  if (shown == NULL || !JSON_NODE_HOLDS_ARRAY (shown) || json_array_get_length (json_node_get_array (shown)) < 1
      || json_array_get_length (json_node_get_array (shown)) > 64)
    {
      sig_peer_send_error (peer, "bad-message", "consent: shown_information is a list of 1 to 64 texts");
      return;
    }
  arr = json_node_get_array (shown);
  for (guint i = 0; i < json_array_get_length (arr); i++)
    {
      JsonNode *e = json_array_get_element (arr, i);
      if (!JSON_NODE_HOLDS_VALUE (e) || json_node_get_value_type (e) != G_TYPE_STRING
          || !sig_text_ok (json_node_get_string (e), 1, 256))
        {
          sig_peer_send_error (peer, "bad-message", "consent: shown_information[%u] is 1 to 256 characters", i);
          return;
        }
    }
  json_object_set_string_member (stored, "text_version", version);
  json_object_set_string_member (stored, "text_sha256", sha);
  json_object_set_string_member (stored, "accepted_at", now);
  json_object_set_member (stored, "shown_information", json_node_copy (shown));
  text = sig_object_to_string (stored);
  st = sig_db_prepare (peer->srv->db, "UPDATE sessions SET consent = ? WHERE id = ? AND consent IS NULL", NULL);
  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, text, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, live->id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_peer_send_error (peer, "internal", "consent: could not be stored");
      return;
    }
  json_object_set_string_member (ev, "type", "consent");
  json_object_set_string_member (ev, "time", now);
  json_object_set_string_member (ev, "text_version", version);
  json_object_set_string_member (ev, "text_sha256", sha);
  sig_server_event (live, ev);
  json_object_set_string_member (note, "type", "consent");
  json_object_set_string_member (note, "text_version", version);
  json_object_set_string_member (note, "text_sha256", sha);
  json_object_set_string_member (note, "accepted_at", now);
  sig_live_notify (live, SIG_ROLE_NONE, note);
}

static void
handle_device_check (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "camera", "microphone", "speaker", "details", NULL };
  gboolean cam, mic, spk;
  const char *details = NULL;
  g_autoptr (JsonObject) note = json_object_new ();
  g_autofree char *text = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;

  if (!check_members (peer, m, "device-check", allowed))
    return;
  if (peer->role != SIG_ROLE_SIGNATORY)
    {
      sig_peer_send_error (peer, "forbidden", "device-check: only the signatory sends device checks");
      return;
    }
  if (!get_bool (peer, m, "device-check", "camera", &cam) || !get_bool (peer, m, "device-check", "microphone", &mic)
      || !get_bool (peer, m, "device-check", "speaker", &spk))
    return;
  if (json_object_has_member (m, "details") && (details = get_string (peer, m, "device-check", "details", 1000, TRUE)) == NULL)
    return;
  json_object_set_string_member (note, "type", "device-check");
  json_object_set_boolean_member (note, "camera", cam);
  json_object_set_boolean_member (note, "microphone", mic);
  json_object_set_boolean_member (note, "speaker", spk);
  if (details)
    json_object_set_string_member (note, "details", details);
  {
    g_autofree char *now = sig_now_iso_ms ();
    json_object_set_string_member (note, "time", now);
  }
  text = sig_object_to_string (note);
  st = sig_db_prepare (peer->srv->db, "UPDATE sessions SET device_check = ? WHERE id = ?", NULL);
  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, text, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, live->id, -1, SQLITE_STATIC);
      (void) sqlite3_step (st);
    }
  sig_live_notify (live, SIG_ROLE_OFFICER, note);
}

static gboolean
recorder_or_error (SigPeer *peer, SigLive *live, const char *type)
{
  if (live->rec == NULL || !sig_recorder_running (live->rec))
    {
      sig_peer_send_error (peer, "recording-unavailable", "%s: the recorder of this session is not running", type);
      return FALSE;
    }
  return TRUE;
}

static void
handle_offer (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "sdp", NULL };
  const char *sdp;
  g_autoptr (JsonObject) out = json_object_new ();

  if (!check_members (peer, m, "offer", allowed) || (sdp = get_string (peer, m, "offer", "sdp", SIG_MAX_SDP, TRUE)) == NULL)
    return;
  if (!g_str_has_prefix (sdp, "v=0"))
    {
      sig_peer_send_error (peer, "bad-message", "offer: sdp does not start with v=0");
      return;
    }
  if (peer->role == SIG_ROLE_SIGNATORY && !consent_given (peer->srv, live->id))
    {
      sig_peer_send_error (peer, "out-of-order", "offer: consent comes before the call");
      return;
    }
  if (live->offered[peer->role])
    {
      sig_peer_send_error (peer, "out-of-order", "offer: already offered on this connection (reconnect for a new part)");
      return;
    }
  if (!recorder_or_error (peer, live, "offer"))
    return;
  live->offered[peer->role] = TRUE;
  json_object_set_string_member (out, "type", "offer");
  json_object_set_string_member (out, "peer", role_name (peer->role));
  json_object_set_string_member (out, "sdp", sdp);
  sig_recorder_send (live->rec, out);
}

static void
handle_ice (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "candidate", "sdpMLineIndex", "sdpMid", NULL };
  const char *cand;
  JsonNode *idx;
  g_autoptr (JsonObject) out = json_object_new ();

  if (!check_members (peer, m, "ice", allowed)
      || (cand = get_string (peer, m, "ice", "candidate", SIG_MAX_CANDIDATE, TRUE)) == NULL)
    return;
  if (json_object_has_member (m, "sdpMid") && get_string (peer, m, "ice", "sdpMid", 64, TRUE) == NULL)
    return;
  idx = json_object_get_member (m, "sdpMLineIndex");
  if (idx == NULL || !JSON_NODE_HOLDS_VALUE (idx) || json_node_get_value_type (idx) != G_TYPE_INT64
      || json_node_get_int (idx) < 0 || json_node_get_int (idx) > 63)
    {
      sig_peer_send_error (peer, "bad-message", "ice: sdpMLineIndex is an integer from 0 to 63");
      return;
    }
  if (cand[0] != '\0' && !g_str_has_prefix (cand, "candidate:"))
    {
      sig_peer_send_error (peer, "bad-message", "ice: candidate does not start with candidate:");
      return;
    }
  if (!live->offered[peer->role])
    {
      sig_peer_send_error (peer, "out-of-order", "ice: send the offer first");
      return;
    }
  if (!recorder_or_error (peer, live, "ice"))
    return;
  json_object_set_string_member (out, "type", "ice");
  json_object_set_string_member (out, "peer", role_name (peer->role));
  json_object_set_string_member (out, "candidate", cand);
  json_object_set_int_member (out, "sdpMLineIndex", json_node_get_int (idx));
  sig_recorder_send (live->rec, out);
}

static const char *const still_kinds[] = { "doc-front", "doc-back", "face", "other", NULL };

static void
handle_still (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "kind", NULL };
  const char *kind;
  g_autoptr (JsonObject) out = json_object_new ();
  g_autofree char *name = NULL;

  if (!check_members (peer, m, "still", allowed))
    return;
  if (peer->role != SIG_ROLE_OFFICER)
    {
      sig_peer_send_error (peer, "forbidden", "still: only the officer asks for stills");
      return;
    }
  if ((kind = get_string (peer, m, "still", "kind", 32, TRUE)) == NULL)
    return;
  if (!g_strv_contains (still_kinds, kind))
    {
      sig_peer_send_error (peer, "bad-message", "still: kind is doc-front, doc-back, face or other");
      return;
    }
  if (live->signatory == NULL || !live->offered[SIG_ROLE_SIGNATORY] || live->part < 0)
    {
      sig_peer_send_error (peer, "out-of-order", "still: no signatory video is being recorded");
      return;
    }
  if (!recorder_or_error (peer, live, "still") || live->still_count >= 60)
    return;
  name = g_strdup_printf ("%s-%u.png", kind, ++live->still_count);
  json_object_set_string_member (out, "type", "still");
  json_object_set_string_member (out, "kind", kind);
  json_object_set_string_member (out, "name", name);
  sig_recorder_send (live->rec, out);
}

static void
handle_instruction (SigPeer *peer, SigLive *live, JsonObject *m)
{
  static const char *const allowed[] = { "kind", "target", "text", NULL };
  static const char *const kinds[] = { "tilt", "move", "turn", "cover", "show-side", "other", NULL };
  static const char *const targets[] = { "doc-front", "doc-back", "face", NULL };
  const char *kind, *target, *text = NULL;
  gint64 now = sig_now_ms (), offset;
  g_autofree char *iso = sig_iso_from_ms (now);
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (JsonObject) ack = json_object_new ();

  if (!check_members (peer, m, "instruction", allowed))
    return;
  if (peer->role != SIG_ROLE_OFFICER)
    {
      sig_peer_send_error (peer, "forbidden", "instruction: only the officer gives instructions");
      return;
    }
  if ((kind = get_string (peer, m, "instruction", "kind", 32, TRUE)) == NULL
      || (target = get_string (peer, m, "instruction", "target", 32, TRUE)) == NULL)
    return;
  if (!g_strv_contains (kinds, kind) || !g_strv_contains (targets, target))
    {
      sig_peer_send_error (peer, "bad-message", "instruction: kind is tilt, move, turn, cover, show-side or other; "
                                                "target is doc-front, doc-back or face");
      return;
    }
  if (json_object_has_member (m, "text"))
    {
      if ((text = get_string (peer, m, "instruction", "text", 16000, TRUE)) == NULL)
        return;
      if (!sig_text_ok (text, 1, 4000))
        {
          sig_peer_send_error (peer, "bad-message", "instruction: text is 1 to 4000 characters");
          return;
        }
    }
  if (live->part < 0)
    {
      sig_peer_send_error (peer, "out-of-order", "instruction: nothing is being recorded yet");
      return;
    }
  offset = CLAMP (now - live->part_wall_ms, 0, 86400000);
  st = sig_db_prepare (peer->srv->db, "INSERT INTO instructions (session_id, kind, target, text, time, part, offset_ms)"
                                      " VALUES (?,?,?,?,?,?,?)", NULL);
  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, live->id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, target, -1, SQLITE_STATIC);
  if (text)
    sqlite3_bind_text (st, 4, text, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null (st, 4);
  sqlite3_bind_text (st, 5, iso, -1, SQLITE_STATIC);
  sqlite3_bind_int (st, 6, live->part);
  sqlite3_bind_int64 (st, 7, offset);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_peer_send_error (peer, "internal", "instruction: could not be stored");
      return;
    }
  json_object_set_string_member (ack, "type", "instruction-recorded");
  json_object_set_string_member (ack, "kind", kind);
  json_object_set_string_member (ack, "target", target);
  json_object_set_string_member (ack, "time", iso);
  json_object_set_int_member (ack, "part", live->part);
  json_object_set_int_member (ack, "offset_ms", offset);
  sig_peer_send (peer, ack);
}

static void
on_message (SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  SigPeer *peer = data;
  gsize len = 0;
  const char *text = g_bytes_get_data (message, &len);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = NULL;
  JsonObject *m;
  JsonNode *tn;
  const char *t;
  SigLive *live;

  if (peer->gone)
    return;
  peer->last_seen = g_get_monotonic_time ();
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      sig_peer_send_error (peer, "bad-message", "binary messages are not supported");
      return;
    }
  if (len > SIG_MAX_WS_MESSAGE)
    {
      sig_peer_send_error (peer, "too-big", "message of %zu bytes is over the %zu-byte cap", len,
                           (gsize) SIG_MAX_WS_MESSAGE);
      return;
    }
  node = tg_json_parse_strict (text, len, SIG_MAX_WS_MESSAGE, &error);
  if (node == NULL)
    {
      sig_peer_send_error (peer, "bad-json", "%s", error->message);
      return;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      sig_peer_send_error (peer, "bad-message", "a message is a JSON object");
      return;
    }
  m = json_node_get_object (node);
  tn = json_object_get_member (m, "type");
  if (tn == NULL || !JSON_NODE_HOLDS_VALUE (tn) || json_node_get_value_type (tn) != G_TYPE_STRING)
    {
      sig_peer_send_error (peer, "bad-message", "a message has a string member type");
      return;
    }
  t = json_node_get_string (tn);
  if (strcmp (t, "pong") == 0)
    return;
  if (strcmp (t, "ping") == 0)
    {
      g_autoptr (JsonObject) pong = json_object_new ();
      json_object_set_string_member (pong, "type", "pong");
      sig_peer_send (peer, pong);
      return;
    }
  if (strcmp (t, "hello") == 0)
    {
      handle_hello (peer, m);
      return;
    }
  if (strcmp (t, "answer") == 0)
    {
      sig_peer_send_error (peer, "out-of-order", "answer: the server answers offers; browsers send offers");
      return;
    }
  if (strcmp (t, "consent") != 0 && strcmp (t, "device-check") != 0 && strcmp (t, "offer") != 0
      && strcmp (t, "ice") != 0 && strcmp (t, "still") != 0 && strcmp (t, "instruction") != 0
      && strcmp (t, "leave") != 0)
    {
      g_autofree char *shown = g_utf8_make_valid (t, MIN (strlen (t), 64));
      sig_peer_send_error (peer, "unknown-type", "unknown message type %s", shown);
      return;
    }
  if (peer->role == SIG_ROLE_NONE)
    {
      sig_peer_send_error (peer, "out-of-order", "%s: say hello first", t);
      return;
    }
  live = peer->session_id ? sig_live_get (peer->srv, peer->session_id, FALSE) : NULL;
  if (live == NULL || live->closing)
    {
      sig_peer_send_error (peer, "session-closed", "%s: the session is closed", t);
      return;
    }
  if (strcmp (t, "consent") == 0)
    handle_consent (peer, live, m);
  else if (strcmp (t, "device-check") == 0)
    handle_device_check (peer, live, m);
  else if (strcmp (t, "offer") == 0)
    handle_offer (peer, live, m);
  else if (strcmp (t, "ice") == 0)
    handle_ice (peer, live, m);
  else if (strcmp (t, "still") == 0)
    handle_still (peer, live, m);
  else if (strcmp (t, "instruction") == 0)
    handle_instruction (peer, live, m);
  else if (strcmp (t, "leave") == 0)
    {
      peer_detach (peer, "left", TRUE);
      peer->gone = TRUE;
      peer_close (peer, SOUP_WEBSOCKET_CLOSE_NORMAL, "left");
    }
}

/* ------------------------------------------------------------ heartbeat */

static gboolean
heartbeat (gpointer data)
{
  SigServer *srv = data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (JsonObject) ping = json_object_new ();
  g_autoptr (GPtrArray) dead = g_ptr_array_new ();

  json_object_set_string_member (ping, "type", "ping");
  for (guint i = 0; i < srv->peers->len; i++)
    {
      SigPeer *p = g_ptr_array_index (srv->peers, i);
      if (p->gone)
        continue;
      if (now - p->last_seen > (gint64) srv->cfg->heartbeat_timeout * G_USEC_PER_SEC
          || (p->role == SIG_ROLE_NONE && now - p->connected_at > 3 * (gint64) srv->cfg->heartbeat_timeout * G_USEC_PER_SEC))
        g_ptr_array_add (dead, p);
      else
        sig_peer_send (p, ping);
    }
  for (guint i = 0; i < dead->len; i++)
    {
      SigPeer *p = g_ptr_array_index (dead, i);
      if (p->role == SIG_ROLE_NONE && now - p->last_seen <= (gint64) srv->cfg->heartbeat_timeout * G_USEC_PER_SEC)
        {
          g_message ("dropping a connection from %s that never said hello", p->remote);
          sig_peer_send_error (p, "out-of-order", "no hello within %d s", 3 * srv->cfg->heartbeat_timeout);
          p->gone = TRUE;
          peer_close (p, 4408, "no hello");
          continue;
        }
      g_message ("dropping a silent %s peer from %s (heartbeat timeout)", role_name (p->role), p->remote);
      peer_detach (p, "heartbeat timeout", FALSE);
      p->gone = TRUE;
      peer_close (p, 4408, "heartbeat timeout");
    }
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------ accept */

static void
ws_handler (SoupServer *server, SoupServerMessage *msg, const char *path, SoupWebsocketConnection *ws, gpointer data)
{
  SigServer *srv = data;
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const char *origin = soup_message_headers_get_one (h, "Origin");
  const char *host = soup_message_headers_get_one (h, "Host");
  const char *ua = soup_message_headers_get_one (h, "User-Agent");
  SigPeer *peer;

  if (origin != NULL)
    {
      g_autofree char *want = g_strdup_printf ("%s://%s", srv->tls ? "https" : "http", host ? host : "");
      if (g_ascii_strcasecmp (origin, want) != 0)
        {
          g_message ("refusing a WebSocket from origin %s (expected %s)", origin, want);
          soup_websocket_connection_close (ws, 4403, "origin not allowed");
          return;
        }
    }
  if (srv->peers->len >= SIG_MAX_PEERS)
    {
      g_warning ("refusing a WebSocket from %s: %u connections open", soup_server_message_get_remote_host (msg),
                 srv->peers->len);
      soup_websocket_connection_close (ws, 4503, "too many connections");
      return;
    }
  peer = g_new0 (SigPeer, 1);
  peer->srv = srv;
  peer->ws = g_object_ref (ws);
  peer->officer_id = sig_officer_from_cookie (srv, h, NULL);
  peer->user_agent = g_utf8_make_valid (ua && *ua ? ua : "unknown", MIN (ua && *ua ? strlen (ua) : 7, 1024));
  peer->remote = g_strdup (soup_server_message_get_remote_host (msg));
  peer->last_seen = peer->connected_at = g_get_monotonic_time ();
  soup_websocket_connection_set_max_incoming_payload_size (ws, SIG_MAX_WS_FRAME);
  g_signal_connect (ws, "message", G_CALLBACK (on_message), peer);
  g_signal_connect (ws, "closed", G_CALLBACK (on_closed), peer);
  g_ptr_array_add (srv->peers, peer);
}

void
sig_ws_setup (SigServer *srv)
{
  soup_server_add_websocket_handler (srv->soup, "/ws", NULL, NULL, ws_handler, srv, NULL);
  srv->heartbeat_id = g_timeout_add_seconds ((guint) srv->cfg->heartbeat_interval, heartbeat, srv);
}

/* sig-db.c — the SQLite database: WAL mode, versioned migrations, officer
 * accounts and the JSON views of cases and sessions. */
#include "sig-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Migrations: index i brings the schema from version i to i + 1. Never edit
 * one that has shipped; append a new one. */
static const char *const migrations[] = {
  /* 1 */
  "CREATE TABLE officers ("
  "  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, pw_hash TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE logins ("
  "  id_hash TEXT PRIMARY KEY, officer_id TEXT NOT NULL REFERENCES officers(id),"
  "  csrf TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
  "CREATE TABLE login_failures (key TEXT NOT NULL, time INTEGER NOT NULL);"
  "CREATE INDEX login_failures_key ON login_failures(key, time);"
  "CREATE TABLE cases ("
  "  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
  "  holder_name TEXT NOT NULL, national_id TEXT NOT NULL, email TEXT NOT NULL,"
  "  serial TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, suspension_days INTEGER,"
  "  channel TEXT NOT NULL DEFAULT 'teleconference', state TEXT NOT NULL DEFAULT 'open',"
  "  created_by TEXT NOT NULL, created_at INTEGER NOT NULL);"
  "CREATE TABLE sessions ("
  "  id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(id), officer_id TEXT NOT NULL,"
  "  token_hash TEXT UNIQUE NOT NULL, token_expires_at INTEGER NOT NULL, token_used_at INTEGER,"
  "  rejoin_hash TEXT UNIQUE, state TEXT NOT NULL, created_at INTEGER NOT NULL,"
  "  started_at_ms INTEGER, ended_at_ms INTEGER, outcome TEXT, bundle TEXT, verdict TEXT,"
  "  consent TEXT, device_check TEXT);"
  "CREATE INDEX sessions_case ON sessions(case_id);"
  "CREATE TABLE session_events ("
  "  session_id TEXT NOT NULL REFERENCES sessions(id), n INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  event TEXT NOT NULL);"
  "CREATE TABLE instructions ("
  "  session_id TEXT NOT NULL REFERENCES sessions(id), n INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  kind TEXT NOT NULL, target TEXT NOT NULL, text TEXT, time TEXT NOT NULL,"
  "  part INTEGER NOT NULL, offset_ms INTEGER NOT NULL);",
  /* 2: holder accounts for the portal, in-person visits, applied actions */
  "CREATE TABLE holders ("
  "  national_id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, pw_hash TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE holder_logins ("
  "  id_hash TEXT PRIMARY KEY, national_id TEXT NOT NULL REFERENCES holders(national_id),"
  "  csrf TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);"
  "CREATE TABLE visits ("
  "  id TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(id), officer_id TEXT NOT NULL,"
  "  created_at INTEGER NOT NULL, outcome TEXT NOT NULL, bundle TEXT, verdict TEXT);"
  "CREATE INDEX visits_case ON visits(case_id);"
  "ALTER TABLE cases ADD COLUMN bundle TEXT;"
  "ALTER TABLE cases ADD COLUMN applied_at INTEGER;"
  "ALTER TABLE cases ADD COLUMN applied_by TEXT;"
  "ALTER TABLE cases ADD COLUMN apply_result TEXT;",
};

void
sig_db_set_error (sqlite3 *db, GError **error, const char *what)
{
  int code = sqlite3_errcode (db);

  g_set_error (error, TG_ERROR, code == SQLITE_FULL ? TG_ERROR_NOSPACE : TG_ERROR_IO,
               "database: %s: %s", what, sqlite3_errmsg (db));
}

gboolean
sig_db_exec (sqlite3 *db, const char *sql, GError **error)
{
  char *msg = NULL;

  if (sqlite3_exec (db, sql, NULL, NULL, &msg) != SQLITE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "database: %s", msg ? msg : "error");
      sqlite3_free (msg);
      return FALSE;
    }
  return TRUE;
}

sqlite3_stmt *
sig_db_prepare (sqlite3 *db, const char *sql, GError **error)
{
  sqlite3_stmt *st = NULL;

  if (sqlite3_prepare_v2 (db, sql, -1, &st, NULL) != SQLITE_OK)
    {
      sig_db_set_error (db, error, "prepare");
      return NULL;
    }
  return st;
}

const char *
sig_col (sqlite3_stmt *st, int i)
{
  return (const char *) sqlite3_column_text (st, i);
}

sqlite3 *
sig_db_open (const char *path, GError **error)
{
  sqlite3 *db = NULL;
  int version = 0;
  sqlite3_stmt *st;

  if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                       NULL) != SQLITE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot open database %s: %s", path,
                   db ? sqlite3_errmsg (db) : "out of memory");
      sqlite3_close (db);
      return NULL;
    }
  (void) chmod (path, 0600);
  sqlite3_busy_timeout (db, 5000);
  if (!sig_db_exec (db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
                    error))
    goto fail;
  st = sig_db_prepare (db, "SELECT max(version) FROM schema_version", error);
  if (st == NULL)
    goto fail;
  if (sqlite3_step (st) == SQLITE_ROW)
    version = sqlite3_column_int (st, 0);
  sqlite3_finalize (st);
  if (version > (int) G_N_ELEMENTS (migrations))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "database %s has schema version %d, newer than this testigod (%d)", path, version,
                   (int) G_N_ELEMENTS (migrations));
      goto fail;
    }
  for (int v = version; v < (int) G_N_ELEMENTS (migrations); v++)
    {
      g_autofree char *bump = g_strdup_printf ("INSERT INTO schema_version VALUES (%d);", v + 1);
      if (!sig_db_exec (db, "BEGIN IMMEDIATE", error))
        goto fail;
      if (!sig_db_exec (db, migrations[v], error) || !sig_db_exec (db, bump, error)
          || !sig_db_exec (db, "COMMIT", error))
        {
          sig_db_exec (db, "ROLLBACK", NULL);
          g_prefix_error (error, "migration to schema version %d: ", v + 1);
          goto fail;
        }
    }
  return db;

fail:
  sqlite3_close (db);
  return NULL;
}

/* The CA core's grants that go with the role: "admin" for the CA
 * administrator; the four actions for a registration officer (whose
 * validations may then back them; withdraw one with `testigo ca ungrant`). */
static gboolean
grant_officer (const char *state_dir, const char *id, const char *role, GError **error)
{
  static const char *const actions[] = { "renewal", "suspension", "reactivation", "revocation", NULL };
  CaStoreOptions o = { 0 };
  g_autoptr (CaStore) store = NULL;
  CaActor by = { CA_ROLE_SYSTEM, "testigo-officer-add" };

  o.state_dir = state_dir;
  store = ca_store_open (&o, error);
  if (store == NULL)
    {
      g_prefix_error (error, "officer %s added, but the CA store cannot be opened to grant the role: ", id);
      return FALSE;
    }
  if (strcmp (role, "admin") == 0)
    return ca_grant (store, id, "admin", &by, error);
  for (guint i = 0; actions[i]; i++)
    if (!ca_grant (store, id, actions[i], &by, error))
      return FALSE;
  return TRUE;
}

gboolean
sig_officer_add (const char *state_dir, const char *id, const char *name, const char *password,
                 GError **error)
{
  return sig_officer_add_role (state_dir, id, name, "officer", password, error);
}

const char *
sig_role_display (const char *role)
{
  if (g_strcmp0 (role, "admin") == 0)
    return SIG_ROLE_ADMIN_TEXT;
  if (g_strcmp0 (role, "officer") == 0)
    return SIG_ROLE_OFFICER_TEXT;
  return NULL;
}

gboolean
sig_role_is_admin (const char *stored_role)
{
  return g_strcmp0 (stored_role, SIG_ROLE_ADMIN_TEXT) == 0;
}

gboolean
sig_db_add_account (const char *state_dir, const char *insert_sql, const char *what, const char *key,
                    const char *v2, const char *v3, const char *password, GError **error)
{
  g_autofree char *db_path = g_build_filename (state_dir, "testigo.db", NULL);
  g_autofree char *hash = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  sqlite3 *db;

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
  st = sig_db_prepare (db, insert_sql, error);
  if (st == NULL)
    {
      sqlite3_close (db);
      return FALSE;
    }
  sqlite3_bind_text (st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, v2, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, v3, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 5, g_get_real_time () / G_USEC_PER_SEC);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      if (sqlite3_extended_errcode (db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        g_set_error (error, TG_ERROR, TG_ERROR_EXISTS, "%s %s already exists", what, key);
      else
        {
          g_autofree char *doing = g_strdup_printf ("adding the %s", what);
          sig_db_set_error (db, error, doing);
        }
      g_clear_pointer (&st, sqlite3_finalize);
      sqlite3_close (db);
      return FALSE;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  sqlite3_close (db);
  return TRUE;
}

gboolean
sig_officer_add_role (const char *state_dir, const char *id, const char *name, const char *role,
                      const char *password, GError **error)
{
  if (!sig_identifier_ok (id))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "officer id %s: use 1 to 64 letters, digits, '.', '_' or '-'", id);
      return FALSE;
    }
  if (!sig_text_ok (name, 1, 256))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "officer name: 1 to 256 characters of text");
      return FALSE;
    }
  if (sig_role_display (role) == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "role %s: officer or admin", role ? role : "(none)");
      return FALSE;
    }
  if (!sig_db_add_account (state_dir, "INSERT INTO officers (id, name, role, pw_hash, created_at) VALUES (?,?,?,?,?)",
                           "officer", id, name, sig_role_display (role), password, error))
    return FALSE;
  return grant_officer (state_dir, id, role, error);
}

char *
sig_db_insert_case (SigServer *srv, const char *name, const char *nid, const char *email, const char *serial,
                    const char *action, const char *reason, gint64 suspension_days, const char *channel,
                    const char *by, gint64 created_at, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autoptr (GDateTime) dt = g_date_time_new_now_utc ();
  g_autofree char *case_id = NULL;
  gint64 seq;

  st = sig_db_prepare (srv->db,
                       "INSERT INTO cases (id, holder_name, national_id, email, serial, action, reason,"
                       " suspension_days, channel, state, created_by, created_at)"
                       " VALUES ('pending-' || hex(randomblob(8)), ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                       error);
  if (st == NULL)
    goto fail;
  sqlite3_bind_text (st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, nid, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, email, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 4, serial, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 5, action, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 6, reason, -1, SQLITE_STATIC);
  if (suspension_days > 0)
    sqlite3_bind_int64 (st, 7, suspension_days);
  else
    sqlite3_bind_null (st, 7);
  sqlite3_bind_text (st, 8, channel, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 9, by, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 10, created_at);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_db_set_error (srv->db, error, "case");
      goto fail;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  seq = sqlite3_last_insert_rowid (srv->db);
  case_id = g_strdup_printf ("RA-%04d-%06" G_GINT64_FORMAT, g_date_time_get_year (dt), seq);
  st = sig_db_prepare (srv->db, "UPDATE cases SET id = ? WHERE seq = ?", error);
  if (st == NULL)
    goto fail;
  sqlite3_bind_text (st, 1, case_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 2, seq);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_db_set_error (srv->db, error, "case");
      goto fail;
    }
  if (!sig_db_exec (srv->db, "COMMIT", error))
    goto fail;
  return g_steal_pointer (&case_id);

fail:
  sig_db_exec (srv->db, "ROLLBACK", NULL);
  return NULL;
}

/* Keeps a copy of every event the server logs for a session, so the record
 * can be assembled even when the recorder's events.jsonl is incomplete. */
gboolean
sig_db_session_event (SigServer *srv, const char *session_id, JsonObject *event, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autofree char *text = sig_object_to_string (event);

  st = sig_db_prepare (srv->db, "INSERT INTO session_events (session_id, event) VALUES (?,?)", error);
  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, text, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      sig_db_set_error (srv->db, error, "logging a session event");
      return FALSE;
    }
  return TRUE;
}

void
sig_session_set_state (SigServer *srv, const char *session_id, const char *state)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "UPDATE sessions SET state = ? WHERE id = ?", NULL);

  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, state, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, session_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_DONE)
    g_warning ("session %s: cannot set state %s: %s", session_id, state, sqlite3_errmsg (srv->db));
}

static void
set_text_or_null (JsonObject *o, const char *key, const char *val)
{
  if (val != NULL)
    json_object_set_string_member (o, key, val);
  else
    json_object_set_null_member (o, key);
}

JsonObject *
sig_db_case_json (SigServer *srv, const char *case_id)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  JsonObject *o;

  st = sig_db_prepare (srv->db,
                       "SELECT id, holder_name, national_id, email, serial, action, reason, suspension_days,"
                       " channel, state, created_by, created_at, applied_at, applied_by, apply_result"
                       " FROM cases WHERE id = ?",
                       NULL);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, case_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return NULL;
  o = json_object_new ();
  json_object_set_string_member (o, "id", sig_col (st, 0));
  json_object_set_string_member (o, "holder_name", sig_col (st, 1));
  json_object_set_string_member (o, "national_id", sig_col (st, 2));
  json_object_set_string_member (o, "email", sig_col (st, 3));
  json_object_set_string_member (o, "serial", sig_col (st, 4));
  json_object_set_string_member (o, "action", sig_col (st, 5));
  json_object_set_string_member (o, "reason", sig_col (st, 6));
  if (sqlite3_column_type (st, 7) != SQLITE_NULL)
    json_object_set_int_member (o, "suspension_days", sqlite3_column_int (st, 7));
  json_object_set_string_member (o, "channel", sig_col (st, 8));
  json_object_set_string_member (o, "state", sig_col (st, 9));
  json_object_set_string_member (o, "created_by", sig_col (st, 10));
  {
    g_autofree char *t = tg_time_format (sqlite3_column_int64 (st, 11));
    json_object_set_string_member (o, "created_at", t);
  }
  /* the action applied through the CA core, when it was */
  json_object_set_boolean_member (o, "applied", sqlite3_column_type (st, 12) != SQLITE_NULL);
  if (sqlite3_column_type (st, 12) != SQLITE_NULL)
    {
      g_autofree char *t = tg_time_format (sqlite3_column_int64 (st, 12));
      g_autoptr (JsonNode) res = sig_col (st, 14) ? json_from_string (sig_col (st, 14), NULL) : NULL;
      json_object_set_string_member (o, "applied_at", t);
      set_text_or_null (o, "applied_by", sig_col (st, 13));
      if (res != NULL && JSON_NODE_HOLDS_OBJECT (res))
        {
          JsonObject *r = json_node_get_object (res);
          JsonNode *ns = json_object_get_member (r, "new_serial");
          json_object_set_boolean_member (o, "renewed", ns != NULL && JSON_NODE_HOLDS_VALUE (ns));
          if (ns != NULL && JSON_NODE_HOLDS_VALUE (ns))
            json_object_set_string_member (o, "new_serial", json_node_get_string (ns));
          json_object_remove_member (r, "new_cert_pem");
          json_object_set_member (o, "apply_result", g_steal_pointer (&res));
        }
    }
  return o;
}

JsonObject *
sig_db_session_json (SigServer *srv, const char *session_id)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  JsonObject *o;

  st = sig_db_prepare (srv->db,
                       "SELECT id, case_id, officer_id, state, created_at, token_expires_at, token_used_at,"
                       " started_at_ms, ended_at_ms, outcome, bundle, verdict FROM sessions WHERE id = ?",
                       NULL);
  if (st == NULL)
    return NULL;
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return NULL;
  o = json_object_new ();
  json_object_set_string_member (o, "id", sig_col (st, 0));
  json_object_set_string_member (o, "case_id", sig_col (st, 1));
  json_object_set_string_member (o, "officer_id", sig_col (st, 2));
  json_object_set_string_member (o, "state", sig_col (st, 3));
  {
    g_autofree char *c = tg_time_format (sqlite3_column_int64 (st, 4));
    g_autofree char *e = tg_time_format (sqlite3_column_int64 (st, 5));
    json_object_set_string_member (o, "created_at", c);
    json_object_set_string_member (o, "link_expires_at", e);
  }
  json_object_set_boolean_member (o, "link_used", sqlite3_column_type (st, 6) != SQLITE_NULL);
  if (sqlite3_column_type (st, 7) != SQLITE_NULL)
    {
      g_autofree char *t = sig_iso_from_ms (sqlite3_column_int64 (st, 7));
      json_object_set_string_member (o, "started_at", t);
    }
  if (sqlite3_column_type (st, 8) != SQLITE_NULL)
    {
      g_autofree char *t = sig_iso_from_ms (sqlite3_column_int64 (st, 8));
      json_object_set_string_member (o, "ended_at", t);
    }
  set_text_or_null (o, "outcome", sig_col (st, 9));
  json_object_set_boolean_member (o, "bundle", sig_col (st, 10) != NULL);
  if (sig_col (st, 11) != NULL)
    {
      g_autoptr (JsonNode) v = json_from_string (sig_col (st, 11), NULL);
      if (v != NULL)
        json_object_set_member (o, "verdict", g_steal_pointer (&v));
    }
  json_object_set_boolean_member (o, "live", g_hash_table_contains (srv->live, session_id));
  return o;
}

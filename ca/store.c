/* store.c — the CA store: state directory, SQLite database with versioned
 * migrations, the clock, accounts and grants, the audit glue. */
#include "config.h"
#include "ca-private.h"
#include "bundle.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Versioned migrations: index i brings the schema from version i to i + 1.
 * Never edit a released migration; append a new one. */
static const char *const migrations[] = {
  /* 1 */
  "CREATE TABLE certs ("
  "  serial TEXT PRIMARY KEY, subject TEXT NOT NULL, issuer TEXT NOT NULL, name TEXT,"
  "  national_id TEXT, email TEXT, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
  "  pem TEXT NOT NULL, origin TEXT NOT NULL CHECK (origin IN ('imported', 'issued')),"
  "  state TEXT NOT NULL DEFAULT 'valid' CHECK (state IN ('valid', 'held', 'revoked', 'superseded')),"
  "  revocation_time INTEGER, reason INTEGER, invalidity_time INTEGER,"
  "  hold_deadline INTEGER, hold_case TEXT, superseded_by TEXT, superseded_at INTEGER,"
  "  renewal_of TEXT, created_at INTEGER NOT NULL);"
  "CREATE INDEX certs_holder ON certs(national_id);"
  "CREATE INDEX certs_held ON certs(state, hold_deadline);"
  "CREATE TABLE cases ("
  "  id TEXT PRIMARY KEY, action TEXT NOT NULL, serial TEXT NOT NULL, channel TEXT,"
  "  state TEXT NOT NULL CHECK (state IN ('open', 'applied', 'approved', 'completed')),"
  "  reason TEXT, suspension_days INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
  "CREATE TABLE actions ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL, action TEXT NOT NULL,"
  "  serial TEXT NOT NULL, actor TEXT NOT NULL, officer TEXT, applied_at INTEGER NOT NULL,"
  "  revocation_time INTEGER, deadline INTEGER, reason INTEGER, bundle_sha256 TEXT,"
  "  bundle_path TEXT, new_serial TEXT);"
  "CREATE INDEX actions_case ON actions(case_id);"
  "CREATE TABLE accepted_bundles ("
  "  sha256 TEXT PRIMARY KEY, action_id INTEGER NOT NULL REFERENCES actions(id),"
  "  case_id TEXT NOT NULL, accepted_at INTEGER NOT NULL);"
  "CREATE TABLE refusals ("
  "  id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, case_id TEXT, action TEXT,"
  "  serial TEXT, actor TEXT, bundle_sha256 TEXT, message_sha256 TEXT, dry_run INTEGER NOT NULL DEFAULT 0,"
  "  reason TEXT NOT NULL);"
  "CREATE TABLE grants ("
  "  account TEXT NOT NULL, what TEXT NOT NULL, granted_at INTEGER NOT NULL, granted_by TEXT,"
  "  PRIMARY KEY (account, what));"
  "CREATE TABLE intake_messages ("
  "  sha256 TEXT PRIMARY KEY, case_id TEXT, received_at INTEGER NOT NULL, state TEXT NOT NULL);"
  "CREATE TABLE crl_counter (id INTEGER PRIMARY KEY CHECK (id = 1), number INTEGER NOT NULL,"
  "  last_full INTEGER NOT NULL DEFAULT 0, last_full_time INTEGER NOT NULL DEFAULT 0);"
  "INSERT INTO crl_counter (id, number) VALUES (1, 0);"
  "CREATE TABLE crl_last_full ("
  "  serial TEXT PRIMARY KEY, reason INTEGER NOT NULL, revocation_time INTEGER NOT NULL,"
  "  invalidity_time INTEGER NOT NULL);",
  /* 2 */
  "CREATE TABLE settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);",
  /* 3: a signed request is the same request whatever headers or line endings
   * a copy gained on the way: replays are also refused by signature value. */
  ("ALTER TABLE intake_messages ADD COLUMN signature_sha256 TEXT;"
   "CREATE UNIQUE INDEX intake_messages_signature ON intake_messages(signature_sha256);"),
};

/* ------------------------------------------------------------- helpers */

void
ca_db_set_error (CaStore *store, GError **error, const char *what)
{
  int code = sqlite3_errcode (store->db);

  g_set_error (error, TG_ERROR, code == SQLITE_FULL ? TG_ERROR_NOSPACE : TG_ERROR_IO,
               "database %s: %s: %s", store->db_path, what, sqlite3_errmsg (store->db));
}

gboolean
ca_db_exec (CaStore *store, const char *sql, GError **error)
{
  char *msg = NULL;

  if (sqlite3_exec (store->db, sql, NULL, NULL, &msg) != SQLITE_OK)
    {
      int code = sqlite3_errcode (store->db);
      g_set_error (error, TG_ERROR, code == SQLITE_FULL ? TG_ERROR_NOSPACE : TG_ERROR_IO,
                   "database %s: %s", store->db_path, msg ? msg : "error");
      sqlite3_free (msg);
      return FALSE;
    }
  return TRUE;
}

sqlite3_stmt *
ca_db_prepare (CaStore *store, const char *sql, GError **error)
{
  sqlite3_stmt *st = NULL;

  if (sqlite3_prepare_v2 (store->db, sql, -1, &st, NULL) != SQLITE_OK)
    {
      ca_db_set_error (store, error, "prepare");
      return NULL;
    }
  return st;
}

gboolean
ca_db_begin (CaStore *store, GError **error)
{
  return ca_db_exec (store, "BEGIN IMMEDIATE", error);
}

gboolean
ca_db_commit (CaStore *store, GError **error)
{
  if (!ca_db_exec (store, "COMMIT", error))
    {
      ca_db_rollback (store);
      return FALSE;
    }
  return TRUE;
}

void
ca_db_rollback (CaStore *store)
{
  if (!sqlite3_get_autocommit (store->db))
    sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
}

void
ca_db_bind_text (sqlite3_stmt *st, int i, const char *text)
{
  if (text == NULL)
    sqlite3_bind_null (st, i);
  else
    sqlite3_bind_text (st, i, text, -1, SQLITE_TRANSIENT);
}

char *
ca_db_column_text (sqlite3_stmt *st, int i)
{
  const unsigned char *t = sqlite3_column_text (st, i);
  return t ? g_strdup ((const char *) t) : NULL;
}

/* ------------------------------------------------------------ JSON */

void
ca_json_add_str (JsonBuilder *b, const char *member, const char *value)
{
  json_builder_set_member_name (b, member);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

void
ca_json_add_time (JsonBuilder *b, const char *member, gint64 t)
{
  g_autofree char *s = t ? tg_time_format (t) : NULL;
  ca_json_add_str (b, member, s);
}

char *
ca_json_builder_text (JsonBuilder *b, gboolean pretty)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, pretty);
  return json_generator_to_data (gen, NULL);
}

/* a member holding an object of three strings */
static void
add_object3 (JsonBuilder *b, const char *member, const char *k1, const char *v1, const char *k2, const char *v2,
             const char *k3, const char *v3)
{
  json_builder_set_member_name (b, member);
  json_builder_begin_object (b);
  ca_json_add_str (b, k1, v1);
  ca_json_add_str (b, k2, v2);
  if (k3 != NULL)
    ca_json_add_str (b, k3, v3);
  json_builder_end_object (b);
}

void
ca_record_add_parts (JsonBuilder *b, const CaRecordParts *p, gint64 now)
{
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_utc (now);
  g_autoptr (GDateTime) later = t ? g_date_time_add_years (t, 15) : NULL;
  g_autofree char *keep = later ? g_date_time_format (later, "%Y-%m-%d") : g_strdup ("2099-12-31");

  add_object3 (b, "holder", "name", p->holder_name, "national_id", p->national_id, "email", p->email);
  add_object3 (b, "certificate", "serial", p->serial, "issuer", p->issuer, NULL, NULL);
  add_object3 (b, "officer", "id", p->officer_id, "name", p->officer_name, "role", p->officer_role);
  json_builder_set_member_name (b, "session");
  json_builder_begin_object (b);
  ca_json_add_time (b, "started_at", now);
  ca_json_add_time (b, "ended_at", now);
  json_builder_set_member_name (b, "duration_s");
  json_builder_add_int_value (b, 0);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "documents");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  ca_json_add_str (b, "name", p->doc_name);
  ca_json_add_str (b, "sha256", p->doc_sha256);
  ca_json_add_str (b, "media_type", p->doc_media_type);
  ca_json_add_str (b, "description", p->doc_description);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "outcome");
  json_builder_begin_object (b);
  ca_json_add_str (b, "result", "approved");
  ca_json_add_str (b, "notes", p->notes);
  ca_json_add_time (b, "completed_at", now);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "retention");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "period_years");
  json_builder_add_int_value (b, 15);
  ca_json_add_str (b, "delete_after", keep);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

/* As `openssl x509 -serial` prints it: upper case, two digits per byte, no leading zero byte. */
char *
ca_serial_normalise (const char *serial)
{
  GString *s;
  const char *p;

  if (serial == NULL || *serial == '\0' || strlen (serial) > 40)
    return NULL;
  for (p = serial; *p; p++)
    if (!g_ascii_isxdigit (*p))
      return NULL;
  for (p = serial; *p == '0' && p[1] != '\0'; p++)
    ;
  s = g_string_new (NULL);
  if (strlen (p) % 2 == 1)
    g_string_append_c (s, '0');
  for (; *p; p++)
    g_string_append_c (s, g_ascii_toupper (*p));
  return g_string_free (s, FALSE);
}

gboolean
ca_is_identifier (const char *text)
{
  gsize n;

  if (text == NULL)
    return FALSE;
  n = strlen (text);
  if (n == 0 || n > 64)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (text[i]) && text[i] != '.' && text[i] != '_' && text[i] != '-')
      return FALSE;
  return TRUE;
}

const char *
ca_role_to_string (CaRole role)
{
  switch (role)
    {
    case CA_ROLE_HOLDER: return "holder";
    case CA_ROLE_OFFICER: return "officer";
    case CA_ROLE_ADMIN: return "admin";
    case CA_ROLE_SYSTEM: return "system";
    default: return "unknown";
    }
}

gboolean
ca_role_from_string (const char *text, CaRole *out)
{
  static const struct { const char *name; CaRole role; } roles[] = {
    { "holder", CA_ROLE_HOLDER }, { "officer", CA_ROLE_OFFICER },
    { "admin", CA_ROLE_ADMIN }, { "system", CA_ROLE_SYSTEM },
  };

  for (guint i = 0; text && i < G_N_ELEMENTS (roles); i++)
    if (g_ascii_strcasecmp (text, roles[i].name) == 0)
      {
        *out = roles[i].role;
        return TRUE;
      }
  return FALSE;
}

char *
ca_actor_to_string (const CaActor *actor)
{
  if (actor == NULL)
    return g_strdup ("system");
  if (actor->role == CA_ROLE_SYSTEM && actor->id == NULL)
    return g_strdup ("system");
  return g_strdup_printf ("%s:%s", ca_role_to_string (actor->role), actor->id ? actor->id : "");
}

gint64
ca_store_now (CaStore *store)
{
  if (store->clock != NULL)
    return store->clock (store->clock_data);
  return g_get_real_time () / G_USEC_PER_SEC;
}

const char *
ca_store_get_path (CaStore *store, const char *name)
{
  return name ? g_hash_table_lookup (store->paths, name) : NULL;
}

gboolean
ca_store_audit (CaStore *store, const char *kind, const char *actor, const char *details_json, GError **error)
{
  return ca_audit_append (store->audit, kind, actor, details_json, ca_store_now (store) * 1000, error);
}

gboolean
ca_store_timestamp_audit (CaStore *store, const char *tsa_url, GError **error)
{
  return ca_audit_timestamp_head (store->audit, store->keys_dir, tsa_url, error);
}

/* ---------------------------------------------------------------- open */

static gboolean
ensure_dir (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
migrate (CaStore *store, GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  int version = 0;

  if (!ca_db_exec (store, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", error))
    return FALSE;
  if (!ca_db_begin (store, error))
    return FALSE;
  if (!ca_db_exec (store, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);", error))
    goto fail;
  if ((st = ca_db_prepare (store, "SELECT coalesce(max(version), 0) FROM schema_version", error)) == NULL)
    goto fail;
  if (sqlite3_step (st) == SQLITE_ROW)
    version = sqlite3_column_int (st, 0);
  g_clear_pointer (&st, sqlite3_finalize);
  if (version > (int) G_N_ELEMENTS (migrations))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "database %s has schema version %d, newer than this program (%d)", store->db_path, version,
                   (int) G_N_ELEMENTS (migrations));
      goto fail;
    }
  for (int v = version; v < (int) G_N_ELEMENTS (migrations); v++)
    {
      g_autofree char *bump = g_strdup_printf ("INSERT INTO schema_version (version) VALUES (%d);", v + 1);
      if (!ca_db_exec (store, migrations[v], error) || !ca_db_exec (store, bump, error))
        goto fail;
    }
  return ca_db_commit (store, error);
fail:
  ca_db_rollback (store);
  return FALSE;
}

/* Saved settings (ca_store_save_settings) fill what the options leave unset. */
static gboolean
load_settings (CaStore *store, const CaStoreOptions *o, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, "SELECT k, v FROM settings", error);
  int rc;

  if (st == NULL)
    return FALSE;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      const char *k = (const char *) sqlite3_column_text (st, 0);
      const char *v = (const char *) sqlite3_column_text (st, 1);
      if (g_strcmp0 (k, "max_suspension_days") == 0 && o->max_suspension_days <= 0)
        store->max_days = CLAMP (atoi (v), 1, CA_MAX_SUSPENSION_DAYS);
      else if (g_strcmp0 (k, "superseded_on_crl") == 0 && !o->superseded_on_crl)
        store->superseded_on_crl = g_strcmp0 (v, "1") == 0;
      else if (g_strcmp0 (k, "crl_url") == 0 && store->crl_url == NULL)
        store->crl_url = g_strdup (v);
      else if (g_strcmp0 (k, "delta_crl_url") == 0 && store->delta_crl_url == NULL)
        store->delta_crl_url = g_strdup (v);
      else if (g_strcmp0 (k, "ocsp_url") == 0 && store->ocsp_url == NULL)
        store->ocsp_url = g_strdup (v);
    }
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "settings");
      return FALSE;
    }
  return TRUE;
}

static gboolean
save_setting (CaStore *store, const char *k, const char *v, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, v ? "INSERT OR REPLACE INTO settings (k, v) VALUES (?1, ?2)"
                                                        : "DELETE FROM settings WHERE k = ?1", error);
  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, k);
  if (v)
    ca_db_bind_text (st, 2, v);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "settings");
      return FALSE;
    }
  return TRUE;
}

gboolean
ca_store_save_settings (CaStore *store, GError **error)
{
  g_autofree char *days = g_strdup_printf ("%d", store->max_days);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autofree char *details = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "max_suspension_days");
  json_builder_add_int_value (b, store->max_days);
  json_builder_set_member_name (b, "superseded_on_crl");
  json_builder_add_boolean_value (b, store->superseded_on_crl);
  json_builder_set_member_name (b, "crl_url");
  if (store->crl_url)
    json_builder_add_string_value (b, store->crl_url);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "delta_crl_url");
  if (store->delta_crl_url)
    json_builder_add_string_value (b, store->delta_crl_url);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "ocsp_url");
  if (store->ocsp_url)
    json_builder_add_string_value (b, store->ocsp_url);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  details = json_generator_to_data (gen, NULL);
  if (!ca_db_begin (store, error))
    return FALSE;
  if (!save_setting (store, "max_suspension_days", days, error)
      || !save_setting (store, "superseded_on_crl", store->superseded_on_crl ? "1" : "0", error)
      || !save_setting (store, "crl_url", store->crl_url, error)
      || !save_setting (store, "delta_crl_url", store->delta_crl_url, error)
      || !save_setting (store, "ocsp_url", store->ocsp_url, error)
      || !ca_store_audit (store, "settings", "admin", details, error))
    {
      ca_db_rollback (store);
      return FALSE;
    }
  return ca_db_commit (store, error);
}

static void
add_path (CaStore *store, const char *name, const char *dir, const char *file)
{
  g_hash_table_insert (store->paths, g_strdup (name), g_build_filename (dir, file, NULL));
}

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}

int
ca_lock_state_file (CaStore *store, const char *name, GError **error)
{
  g_autofree char *path = g_build_filename (store->state_dir, name, NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return -1;
    }
  while (flock (fd, LOCK_EX) != 0)
    if (errno != EINTR)
      {
        tg_set_error_errno (error, errno, "cannot lock %s", path);
        close (fd);
        return -1;
      }
  return fd;
}

CaStore *
ca_store_open (const CaStoreOptions *o, GError **error)
{
  __attribute__ ((cleanup (close_fd))) int lock_fd = -1;
  g_autoptr (CaStore) store = NULL;
  g_autofree char *root = NULL, *audit_path = NULL;

  if (o == NULL || o->state_dir == NULL || *o->state_dir == '\0')
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the state directory is required");
      return NULL;
    }
  store = g_new0 (CaStore, 1);
  store->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  store->state_dir = g_strdup (o->state_dir);
  store->db_path = g_build_filename (o->state_dir, "ca.db", NULL);
  store->keys_dir = g_build_filename (o->state_dir, "keys", NULL);
  store->ca_dir = g_build_filename (o->state_dir, "ca", NULL);
  store->pub_dir = g_build_filename (o->state_dir, "publication", NULL);
  store->evidence_dir = g_build_filename (o->state_dir, "evidence", NULL);
  store->intake_dir = g_build_filename (o->state_dir, "intake", NULL);
  store->clock = o->clock;
  store->clock_data = o->clock_data;
  store->max_days = o->max_suspension_days <= 0 ? CA_MAX_SUSPENSION_DAYS
                    : MIN (o->max_suspension_days, CA_MAX_SUSPENSION_DAYS);
  store->superseded_on_crl = o->superseded_on_crl;
  store->crl_url = g_strdup (o->crl_url);
  store->delta_crl_url = g_strdup (o->delta_crl_url);
  store->ocsp_url = g_strdup (o->ocsp_url);

  for (guint i = 0; i < 3; i++)
    {
      const char *u = i == 0 ? o->crl_url : i == 1 ? o->delta_crl_url : o->ocsp_url;
      if (u != NULL && !ca_is_plain_url (u))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "\"%s\" is not a plain http(s) URL", u);
          return NULL;
        }
    }
  if (o->no_create && !g_file_test (store->db_path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_NOT_FOUND,
                   "no CA store in %s (run `testigo ca init --state %s` first)", o->state_dir, o->state_dir);
      return NULL;
    }
  if (!ensure_dir (o->state_dir, error) || !ensure_dir (store->ca_dir, error) || !ensure_dir (store->pub_dir, error)
      || !ensure_dir (store->evidence_dir, error))
    return NULL;

  /* one process at a time creates the keys and the CA (testigod and `testigo ca` may start together) */
  if ((lock_fd = ca_lock_state_file (store, "init.lock", error)) < 0)
    return NULL;
  root = g_build_filename (store->keys_dir, "root.pem", NULL);
  if (!g_file_test (root, G_FILE_TEST_EXISTS))
    {
      BundleKeysOptions ko = { 0 };
      ko.key_bits = o->dev_key_bits;
      if (!ensure_dir (store->keys_dir, error) || !bundle_keys_init (store->keys_dir, &ko, error))
        return NULL;
    }
  if (o->bundle_ca_file == NULL || strcmp (o->bundle_ca_file, root) == 0)
    store->bundle_ca_file = g_strdup (root);
  else
    {
      /* another RA PKI seals the officers' bundles; the sweep and the intake
       * seal with <state>/keys: trust both */
      g_autofree char *a = NULL, *b = NULL, *both = NULL;
      gsize la = 0, lb = 0;
      g_autoptr (TgAtomicFile) f = NULL;
      store->bundle_ca_file = g_build_filename (store->ca_dir, "bundle-roots.pem", NULL);
      if (!tg_file_get_contents_capped (o->bundle_ca_file, 4 * 1024 * 1024, &a, &la, error)
          || !tg_file_get_contents_capped (root, 4 * 1024 * 1024, &b, &lb, error))
        return NULL;
      both = g_strdup_printf ("%s\n%s", a, b);
      if ((f = tg_atomic_file_new (store->bundle_ca_file, 0644, TRUE, error)) == NULL
          || !tg_atomic_file_write (f, both, strlen (both), error) || !tg_atomic_file_commit (f, error))
        return NULL;
    }

  add_path (store, "ca.db", store->state_dir, "ca.db");
  add_path (store, "root.pem", store->keys_dir, "root.pem");
  add_path (store, "ca.pem", store->ca_dir, "ca.pem");
  add_path (store, "ca.key", store->ca_dir, "ca.key");
  add_path (store, "ocsp.pem", store->ca_dir, "ocsp.pem");
  add_path (store, "ocsp.key", store->ca_dir, "ocsp.key");
  add_path (store, "full.crl", store->pub_dir, "full.crl");
  add_path (store, "delta.crl", store->pub_dir, "delta.crl");
  add_path (store, "audit.jsonl", store->state_dir, "audit.jsonl");
  g_hash_table_insert (store->paths, g_strdup ("keys"), g_strdup (store->keys_dir));
  g_hash_table_insert (store->paths, g_strdup ("bundle-ca"), g_strdup (store->bundle_ca_file));

  {
    mode_t old = umask (077);
    int rc = sqlite3_open_v2 (store->db_path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    umask (old);
    if (rc != SQLITE_OK)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot open %s: %s", store->db_path,
                     store->db ? sqlite3_errmsg (store->db) : "out of memory");
        return NULL;
      }
  }
  sqlite3_busy_timeout (store->db, 10000);
  if (!migrate (store, error) || !load_settings (store, o, error))
    return NULL;

  audit_path = g_build_filename (store->state_dir, "audit.jsonl", NULL);
  if ((store->audit = ca_audit_open (audit_path, error)) == NULL)
    return NULL;
  if (!ca_certs_ensure_ca (store, error))
    return NULL;
  close (lock_fd);
  lock_fd = -1;
  return g_steal_pointer (&store);
}

void
ca_store_free (CaStore *store)
{
  if (store == NULL)
    return;
  g_clear_pointer (&store->ocsp_lookup, sqlite3_finalize);
  if (store->db)
    sqlite3_close_v2 (store->db);
  g_clear_pointer (&store->audit, ca_audit_close);
  g_clear_pointer (&store->crl_signer, ca_signer_free);
  g_clear_pointer (&store->ocsp_signer, ca_signer_free);
  X509_free (store->ca_cert);
  EVP_PKEY_free (store->ca_key);
  g_free (store->state_dir);
  g_free (store->db_path);
  g_free (store->keys_dir);
  g_free (store->ca_dir);
  g_free (store->pub_dir);
  g_free (store->evidence_dir);
  g_free (store->intake_dir);
  g_free (store->bundle_ca_file);
  g_free (store->crl_url);
  g_free (store->delta_crl_url);
  g_free (store->ocsp_url);
  g_clear_pointer (&store->paths, g_hash_table_unref);
  g_free (store);
}

/* -------------------------------------------------------------- grants */

static const char *const grantable[] = { "renewal", "suspension", "reactivation", "revocation", "admin" };

static gboolean
is_grantable (const char *what)
{
  for (guint i = 0; i < G_N_ELEMENTS (grantable); i++)
    if (g_strcmp0 (what, grantable[i]) == 0)
      return TRUE;
  return FALSE;
}

gboolean
ca_has_grant (CaStore *store, const char *account, const char *what)
{
  g_autoptr (sqlite3_stmt) st = NULL;

  if (account == NULL || what == NULL)
    return FALSE;
  st = ca_db_prepare (store, "SELECT 1 FROM grants WHERE account = ?1 AND what = ?2", NULL);
  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, account);
  ca_db_bind_text (st, 2, what);
  return sqlite3_step (st) == SQLITE_ROW;
}

static gboolean
has_officer_grant (CaStore *store, const char *account)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, "SELECT 1 FROM grants WHERE account = ?1 AND what <> 'admin'", NULL);

  if (st == NULL)
    return FALSE;
  ca_db_bind_text (st, 1, account);
  return sqlite3_step (st) == SQLITE_ROW;
}

static char *
grant_json (const char *account, const char *what)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "account");
  json_builder_add_string_value (b, account);
  json_builder_set_member_name (b, "grant");
  json_builder_add_string_value (b, what);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  return json_generator_to_data (gen, NULL);
}

static gboolean
change_grant (CaStore *store, const char *account, const char *what, const CaActor *by, gboolean add,
              GError **error)
{
  g_autoptr (sqlite3_stmt) st = NULL;
  g_autofree char *actor = ca_actor_to_string (by);
  g_autofree char *details = NULL;

  if (!ca_is_identifier (account))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "account \"%s\" is not an identifier (1-64 of A-Z a-z 0-9 . _ -)", account ? account : "");
      return FALSE;
    }
  if (strcmp (account, "system") == 0 || strcmp (account, "intake") == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "%s is reserved for the RA itself", account);
      return FALSE;
    }
  if (!is_grantable (what))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "unknown grant \"%s\" (renewal, suspension, reactivation, revocation or admin)", what ? what : "");
      return FALSE;
    }
  if (!ca_db_begin (store, error))
    return FALSE;
  if (add && strcmp (what, "admin") == 0 && has_officer_grant (store, account))
    {
      ca_db_rollback (store);
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                   "%s is a registration officer: the officer and administrator roles are distinct", account);
      return FALSE;
    }
  if (add && strcmp (what, "admin") != 0 && ca_has_grant (store, account, "admin"))
    {
      ca_db_rollback (store);
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                   "%s is a CA administrator: the officer and administrator roles are distinct", account);
      return FALSE;
    }
  st = ca_db_prepare (store,
                      add ? "INSERT OR IGNORE INTO grants (account, what, granted_at, granted_by) VALUES (?1, ?2, ?3, ?4)"
                          : "DELETE FROM grants WHERE account = ?1 AND what = ?2",
                      error);
  if (st == NULL)
    goto fail;
  ca_db_bind_text (st, 1, account);
  ca_db_bind_text (st, 2, what);
  if (add)
    {
      sqlite3_bind_int64 (st, 3, ca_store_now (store));
      ca_db_bind_text (st, 4, actor);
    }
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "grant");
      goto fail;
    }
  details = grant_json (account, what);
  if (!ca_store_audit (store, add ? "grant" : "ungrant", actor, details, error))
    goto fail;
  return ca_db_commit (store, error);
fail:
  ca_db_rollback (store);
  return FALSE;
}

gboolean
ca_grant (CaStore *store, const char *account, const char *what, const CaActor *by, GError **error)
{
  return change_grant (store, account, what, by, TRUE, error);
}

gboolean
ca_ungrant (CaStore *store, const char *account, const char *what, const CaActor *by, GError **error)
{
  return change_grant (store, account, what, by, FALSE, error);
}

char *
ca_grants_to_json (CaStore *store, GError **error)
{
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store, "SELECT account, what, granted_at FROM grants ORDER BY account, what", error);
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (JsonGenerator) gen = NULL;
  g_autoptr (JsonNode) root = NULL;
  int rc;

  if (st == NULL)
    return NULL;
  b = json_builder_new ();
  json_builder_begin_array (b);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      g_autofree char *t = tg_time_format (sqlite3_column_int64 (st, 2));
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "account");
      json_builder_add_string_value (b, (const char *) sqlite3_column_text (st, 0));
      json_builder_set_member_name (b, "grant");
      json_builder_add_string_value (b, (const char *) sqlite3_column_text (st, 1));
      json_builder_set_member_name (b, "granted_at");
      json_builder_add_string_value (b, t);
      json_builder_end_object (b);
    }
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "grants");
      return NULL;
    }
  json_builder_end_array (b);
  gen = json_generator_new ();
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  return json_generator_to_data (gen, NULL);
}

char *
ca_national_id_key (const char *id)
{
  GString *out = g_string_new (NULL);

  for (const char *p = id; p != NULL && *p; p++)
    if (*p != '.' && *p != ' ' && *p != '-' && *p != '\t')
      g_string_append_c (out, g_ascii_toupper (*p));
  return g_string_free (out, FALSE);
}

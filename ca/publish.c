/* publish.c — revocation data from the store: the full CRL and the delta
 * CRL (written on every change), and OCSP answers. The builders are in
 * ca/publication (ca-publication.h); this file says what is revoked. */
#include "config.h"
#include "ca-private.h"

#include <string.h>

#define CRL_VALIDITY (CA_DAY)      /* nextUpdate: publish at least daily (`testigo ca publish` from cron) */
#define OCSP_VALIDITY ((gint64) 600)

typedef struct {
  char *serial;
  CaReason reason;
  gint64 revocation_time;
  gint64 invalidity_time;
} Entry;

static void
entry_free (gpointer p)
{
  Entry *e = p;
  g_free (e->serial);
  g_free (e);
}

static CaSigner *
crl_signer (CaStore *store, GError **error)
{
  if (store->crl_signer == NULL)
    store->crl_signer = ca_signer_load (ca_store_get_path (store, "ca.pem"), ca_store_get_path (store, "ca.key"), NULL, error);
  return store->crl_signer;
}

static CaSigner *
ocsp_signer (CaStore *store, GError **error)
{
  if (store->ocsp_signer == NULL)
    store->ocsp_signer = ca_signer_load (ca_store_get_path (store, "ocsp.pem"), ca_store_get_path (store, "ocsp.key"),
                                         ca_store_get_path (store, "ca.pem"), error);
  return store->ocsp_signer;
}

/* serial → Entry: what the full CRL lists now */
static GHashTable *
current_entries (CaStore *store, GError **error)
{
  g_autoptr (GHashTable) out = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, entry_free);
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "SELECT serial, reason, revocation_time, coalesce(invalidity_time, 0) FROM certs"
      " WHERE state IN ('held', 'revoked') OR (state = 'superseded' AND ?1)", error);
  int rc;

  if (st == NULL)
    return NULL;
  sqlite3_bind_int (st, 1, store->superseded_on_crl ? 1 : 0);
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      Entry *e = g_new0 (Entry, 1);
      e->serial = ca_db_column_text (st, 0);
      e->reason = sqlite3_column_type (st, 1) == SQLITE_NULL ? CA_REASON_UNSPECIFIED : (CaReason) sqlite3_column_int (st, 1);
      e->revocation_time = sqlite3_column_int64 (st, 2);
      e->invalidity_time = sqlite3_column_int64 (st, 3);
      g_hash_table_insert (out, e->serial, e);
    }
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "CRL entries");
      return NULL;
    }
  return g_steal_pointer (&out);
}

static GHashTable *
last_full_entries (CaStore *store, GError **error)
{
  g_autoptr (GHashTable) out = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, entry_free);
  g_autoptr (sqlite3_stmt) st = ca_db_prepare (store,
      "SELECT serial, reason, revocation_time, invalidity_time FROM crl_last_full", error);
  int rc;

  if (st == NULL)
    return NULL;
  while ((rc = sqlite3_step (st)) == SQLITE_ROW)
    {
      Entry *e = g_new0 (Entry, 1);
      e->serial = ca_db_column_text (st, 0);
      e->reason = (CaReason) sqlite3_column_int (st, 1);
      e->revocation_time = sqlite3_column_int64 (st, 2);
      e->invalidity_time = sqlite3_column_int64 (st, 3);
      g_hash_table_insert (out, e->serial, e);
    }
  if (rc != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "last full CRL");
      return NULL;
    }
  return g_steal_pointer (&out);
}

static void
add_entry (GArray *arr, const Entry *e, CaReason reason, gint64 time)
{
  CaRevokedEntry r = { 0 };

  r.serial_hex = e->serial;
  r.revocation_time = time;
  r.reason = reason;
  r.invalidity_time = reason == CA_REASON_KEY_COMPROMISE ? e->invalidity_time : 0;
  /* RFC 5280 §5.3.2: a held certificate is to be rejected while on hold. */
  r.hold_reject = reason == CA_REASON_CERTIFICATE_HOLD;
  g_array_append_val (arr, r);
}

static gboolean
write_file (const char *path, GBytes *data, GError **error)
{
  g_autoptr (TgAtomicFile) f = tg_atomic_file_new (path, 0644, TRUE, error);
  gsize len;
  const void *p = g_bytes_get_data (data, &len);

  return f != NULL && tg_atomic_file_write (f, p, len, error) && tg_atomic_file_commit (f, error);
}

gboolean
ca_publish (CaStore *store, GError **error)
{
  g_autoptr (GHashTable) cur = NULL, prev = NULL;
  g_autoptr (GArray) full = g_array_new (FALSE, TRUE, sizeof (CaRevokedEntry));
  g_autoptr (GArray) delta = g_array_new (FALSE, TRUE, sizeof (CaRevokedEntry));
  g_autoptr (GBytes) full_der = NULL, delta_der = NULL;
  g_autoptr (sqlite3_stmt) st = NULL;
  CaCrlOptions fo = { 0 }, dop = { 0 };
  CaSigner *signer;
  GHashTableIter it;
  gpointer k, v;
  guint64 number = 0, last_full = 0;
  gint64 now;

  if ((signer = crl_signer (store, error)) == NULL)
    return FALSE;
  if (!ca_db_begin (store, error))
    return FALSE;
  now = ca_store_now (store);
  if ((st = ca_db_prepare (store, "SELECT number, last_full FROM crl_counter WHERE id = 1", error)) == NULL)
    goto fail;
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      number = (guint64) sqlite3_column_int64 (st, 0);
      last_full = (guint64) sqlite3_column_int64 (st, 1);
    }
  g_clear_pointer (&st, sqlite3_finalize);
  if ((cur = current_entries (store, error)) == NULL || (prev = last_full_entries (store, error)) == NULL)
    goto fail;

  g_hash_table_iter_init (&it, cur);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      Entry *e = v, *p = g_hash_table_lookup (prev, k);
      add_entry (full, e, e->reason, e->revocation_time);
      /* the delta: what changed since the base (a new entry, a new reason or date) */
      if (last_full != 0
          && (p == NULL || p->reason != e->reason || p->revocation_time != e->revocation_time
              || p->invalidity_time != e->invalidity_time))
        add_entry (delta, e, e->reason, e->revocation_time);
    }
  g_hash_table_iter_init (&it, prev);
  while (g_hash_table_iter_next (&it, &k, &v))
    if (last_full != 0 && !g_hash_table_contains (cur, k))
      add_entry (delta, v, CA_REASON_REMOVE_FROM_CRL, now); /* a released hold */

  fo.crl_number = number + 1;
  fo.base_crl_number = 0;
  fo.this_update = now;
  fo.next_update = now + CRL_VALIDITY;
  fo.delta_uri = store->delta_crl_url;
  dop.crl_number = number + 2;
  /* the delta's base is the previous full CRL; on the first publication, the new one (the delta is empty) */
  dop.base_crl_number = last_full != 0 ? last_full : number + 1;
  dop.this_update = now;
  dop.next_update = now + CRL_VALIDITY;
  if ((full_der = ca_crl_build (signer, &fo, (CaRevokedEntry *) (void *) full->data, full->len, error)) == NULL
      || (delta_der = ca_crl_build (signer, &dop, (CaRevokedEntry *) (void *) delta->data, delta->len, error)) == NULL)
    goto fail;
  if (!write_file (ca_store_get_path (store, "full.crl"), full_der, error)
      || !write_file (ca_store_get_path (store, "delta.crl"), delta_der, error))
    goto fail;

  if (!ca_db_exec (store, "DELETE FROM crl_last_full", error))
    goto fail;
  if ((st = ca_db_prepare (store, "INSERT INTO crl_last_full (serial, reason, revocation_time, invalidity_time)"
                                  " VALUES (?1, ?2, ?3, ?4)", error)) == NULL)
    goto fail;
  g_hash_table_iter_init (&it, cur);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      Entry *e = v;
      sqlite3_reset (st);
      ca_db_bind_text (st, 1, e->serial);
      sqlite3_bind_int (st, 2, e->reason);
      sqlite3_bind_int64 (st, 3, e->revocation_time);
      sqlite3_bind_int64 (st, 4, e->invalidity_time);
      if (sqlite3_step (st) != SQLITE_DONE)
        {
          ca_db_set_error (store, error, "CRL snapshot");
          goto fail;
        }
    }
  g_clear_pointer (&st, sqlite3_finalize);
  if ((st = ca_db_prepare (store, "UPDATE crl_counter SET number = ?1, last_full = ?2, last_full_time = ?3 WHERE id = 1",
                           error)) == NULL)
    goto fail;
  sqlite3_bind_int64 (st, 1, (gint64) number + 2);
  sqlite3_bind_int64 (st, 2, (gint64) number + 1);
  sqlite3_bind_int64 (st, 3, now);
  if (sqlite3_step (st) != SQLITE_DONE)
    {
      ca_db_set_error (store, error, "CRL number");
      goto fail;
    }
  g_clear_pointer (&st, sqlite3_finalize);
  return ca_db_commit (store, error);
fail:
  ca_db_rollback (store);
  return FALSE;
}

GBytes *
ca_store_get_crl (CaStore *store, gboolean delta, GError **error)
{
  const char *path = ca_store_get_path (store, delta ? "delta.crl" : "full.crl");
  char *data = NULL;
  gsize len = 0;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR) && !ca_publish (store, error))
    return NULL;
  if (!tg_file_get_contents_capped (path, (gsize) 256 * 1024 * 1024, &data, &len, error))
    return NULL;
  return g_bytes_new_take (data, len);
}

/* ---------------------------------------------------------------- OCSP */

typedef struct {
  CaStore *store;
  GPtrArray *keep; /* strings the entries point to */
} Lookup;

static CaCertStatus
lookup (const char *serial_hex, CaRevokedEntry *entry, gpointer user_data)
{
  Lookup *l = user_data;
  g_autofree char *serial = ca_serial_normalise (serial_hex);
  sqlite3_stmt *st;
  const char *state;
  CaCertStatus status = CA_STATUS_UNKNOWN;

  if (serial == NULL)
    return CA_STATUS_UNKNOWN;
  if (l->store->ocsp_lookup == NULL)
    l->store->ocsp_lookup = ca_db_prepare (l->store, "SELECT state, revocation_time, reason, coalesce(invalidity_time, 0)"
                                                     " FROM certs WHERE serial = ?1", NULL);
  if ((st = l->store->ocsp_lookup) == NULL)
    return CA_STATUS_UNKNOWN;
  ca_db_bind_text (st, 1, serial);
  if (sqlite3_step (st) == SQLITE_ROW)
    {
      state = (const char *) sqlite3_column_text (st, 0);
      if (g_strcmp0 (state, "valid") == 0 || (g_strcmp0 (state, "superseded") == 0 && !l->store->superseded_on_crl))
        status = CA_STATUS_GOOD;
      else
        {
          entry->revocation_time = sqlite3_column_int64 (st, 1);
          entry->reason = sqlite3_column_type (st, 2) == SQLITE_NULL ? CA_REASON_UNSPECIFIED
                                                                     : (CaReason) sqlite3_column_int (st, 2);
          entry->invalidity_time = entry->reason == CA_REASON_KEY_COMPROMISE ? sqlite3_column_int64 (st, 3) : 0;
          entry->hold_reject = entry->reason == CA_REASON_CERTIFICATE_HOLD;
          g_ptr_array_add (l->keep, g_strdup (serial));
          entry->serial_hex = g_ptr_array_index (l->keep, l->keep->len - 1);
          status = CA_STATUS_REVOKED;
        }
    }
  /* reset at once: a statement left mid-step would hold a read snapshot */
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  return status;
}

GBytes *
ca_store_ocsp_respond (CaStore *store, GBytes *request, GError **error)
{
  CaOcspOptions o = { 0 };
  Lookup l = { store, NULL };
  CaSigner *signer;
  GBytes *out;

  if ((signer = ocsp_signer (store, error)) == NULL)
    return NULL;
  l.keep = g_ptr_array_new_with_free_func (g_free);
  o.lookup = lookup;
  o.user_data = &l;
  o.now = ca_store_now (store);
  o.validity = OCSP_VALIDITY;
  out = ca_ocsp_respond (signer, request, &o, error);
  g_ptr_array_unref (l.keep);
  return out;
}

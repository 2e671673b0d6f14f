/* sig-seal.c — evidence for the channels without a recording: the
 * officer's record of an in-person visit (attestation, checklist, scanned
 * documents) and the holder's authenticated portal request. Each becomes a
 * version 2 validation record whose "documents" list the files under
 * data/documents/, sealed like a teleconference bundle into
 * evidence/<holder-id>/<case-id>.tar and verified at once. Then the
 * holder's own actions (portal revocation, renewal from a CSR) through the
 * CA core. docs/protocol.md, "In-person visit" and "Holder portal". */
#include "config.h"
#include "sig-private.h"
#include "bundle.h"

#include <string.h>

#define SIG_MAX_DOCUMENTS     8
#define SIG_MAX_DOCUMENT_SIZE ((gsize) 8 * 1024 * 1024) /* one scan, decoded */

/* What the officer confirms the holder was shown and accepted before an
 * in-person visit is recorded (the consent of the record). */
static const char *const visit_consent[] = {
  "Purpose: to verify the holder's identity for the requested action on the certificate.",
  "The officer's attestation and scans of the identity document are kept as sealed evidence.",
  "The evidence is kept for the retention period and then deleted.",
  "Only the certification authority, its auditors and the authorities entitled by law can see it.",
  NULL,
};

/* ------------------------------------------------------------ helpers */

static char *
new_id (const char *prefix)
{
  g_autofree char *rnd = sig_random_token (12);

  for (char *p = rnd; *p; p++)
    if (!g_ascii_isalnum (*p))
      *p = 'x';
  return g_strconcat (prefix, rnd, NULL);
}

static const char *
s_member (JsonObject *o, const char *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                          : NULL;
}

/* The parts every version 2 record shares. (transfer full) */
static JsonObject *
record_base (SigServer *srv, JsonObject *c, const char *channel, const char *officer_id, const char *officer_name,
             const char *officer_role, gint64 started_ms, gint64 ended_ms, const char *result, const char *notes)
{
  JsonObject *r = json_object_new (), *o;
  g_autofree char *started = sig_iso_from_ms (started_ms);
  g_autofree char *ended = sig_iso_from_ms (MAX (ended_ms, started_ms));

  json_object_set_int_member (r, "version", 2);
  o = json_object_new ();
  json_object_set_string_member (o, "id", s_member (c, "id"));
  json_object_set_string_member (o, "action", s_member (c, "action"));
  json_object_set_string_member (o, "reason", s_member (c, "reason"));
  if (json_object_has_member (c, "suspension_days"))
    json_object_set_int_member (o, "suspension_days", json_object_get_int_member (c, "suspension_days"));
  json_object_set_string_member (o, "channel", channel);
  json_object_set_object_member (r, "case", o);

  o = json_object_new ();
  json_object_set_string_member (o, "name", s_member (c, "holder_name"));
  json_object_set_string_member (o, "national_id", s_member (c, "national_id"));
  json_object_set_string_member (o, "email", s_member (c, "email"));
  json_object_set_object_member (r, "holder", o);

  o = json_object_new ();
  json_object_set_string_member (o, "serial", s_member (c, "serial"));
  json_object_set_string_member (o, "issuer", srv->cfg->issuer);
  json_object_set_object_member (r, "certificate", o);

  o = json_object_new ();
  json_object_set_string_member (o, "id", officer_id);
  json_object_set_string_member (o, "name", officer_name);
  json_object_set_string_member (o, "role", officer_role);
  json_object_set_object_member (r, "officer", o);

  o = json_object_new ();
  json_object_set_string_member (o, "started_at", started);
  json_object_set_string_member (o, "ended_at", ended);
  json_object_set_int_member (o, "duration_s", CLAMP ((ended_ms - started_ms) / 1000, 0, 86400));
  json_object_set_object_member (r, "session", o);

  sig_record_add_outcome (srv, r, result, notes, ended, ended_ms);
  return r;
}

typedef struct {
  char *name, *path, *media_type, *description;
} SealDoc;

static void
seal_doc_clear (gpointer p)
{
  SealDoc *d = p;

  g_free (d->name);
  g_free (d->path);
  g_free (d->media_type);
  g_free (d->description);
}

/* Writes @data as @dir/documents/@name (0400) and lists it. */
static gboolean
add_document (GArray *docs, const char *dir, const char *name, const char *media_type, const char *description,
              const void *data, gsize len, GError **error)
{
  g_autofree char *ddir = g_build_filename (dir, "documents", NULL);
  g_autofree char *path = g_build_filename (ddir, name, NULL);
  g_autoptr (TgAtomicFile) af = NULL;
  SealDoc d = { 0 };

  if (!sig_mkdir_private (ddir, error))
    return FALSE;
  af = tg_atomic_file_new (path, 0400, TRUE, error);
  if (af == NULL || !tg_atomic_file_write (af, data, len, error) || !tg_atomic_file_commit (af, error))
    return FALSE;
  d.name = g_strdup (name);
  d.path = g_steal_pointer (&path);
  d.media_type = g_strdup (media_type);
  d.description = g_strdup (description);
  g_array_append_val (docs, d);
  return TRUE;
}

typedef struct {
  char *bundle;
  char *verdict_json;
  BundleIndication indication;
} SealResult;

static void
seal_result_clear (SealResult *r)
{
  g_free (r->bundle);
  g_free (r->verdict_json);
}

/* Completes @record with the documents list, writes it to @dir/record.json,
 * seals the bundle into the holder's evidence folder and verifies it bound
 * to the case, action and serial. */
static gboolean
seal_record (SigServer *srv, JsonObject *record, GArray *docs, const char *dir, SealResult *out, GError **error)
{
  JsonObject *c = json_object_get_object_member (record, "case");
  JsonObject *h = json_object_get_object_member (record, "holder");
  JsonObject *cert = json_object_get_object_member (record, "certificate");
  const char *case_id = s_member (c, "id");
  JsonArray *list = json_array_new ();
  g_autoptr (JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (GArray) inputs = g_array_new (FALSE, TRUE, sizeof (BundleInput));
  g_autofree char *text = NULL, *record_path = g_build_filename (dir, "record.json", NULL);
  g_autofree char *holder = sig_holder_dir_name (s_member (h, "national_id"));
  g_autofree char *hdir = g_build_filename (srv->evidence_dir, holder, NULL);
  g_autofree char *root_pem = g_build_filename (srv->keys_dir, "root.pem", NULL);
  g_autoptr (TgAtomicFile) af = NULL;
  g_autoptr (BundleReport) report = NULL;
  BundleSealOptions o = { 0 };
  BundleVerifyOptions v = { 0 };

  for (guint i = 0; i < docs->len; i++)
    {
      SealDoc *d = &g_array_index (docs, SealDoc, i);
      JsonObject *e = json_object_new ();
      guint8 sum[32];
      g_autofree char *hex = NULL;
      BundleInput in = { .name = d->name, .path = d->path };
      if (!tg_sha256_file (d->path, sum, NULL, error))
        {
          json_array_unref (list);
          return FALSE;
        }
      hex = tg_hex (sum, sizeof sum);
      json_object_set_string_member (e, "name", d->name);
      json_object_set_string_member (e, "sha256", hex);
      json_object_set_string_member (e, "media_type", d->media_type);
      if (d->description != NULL)
        json_object_set_string_member (e, "description", d->description);
      json_array_add_object_element (list, e);
      g_array_append_val (inputs, in);
    }
  json_object_set_array_member (record, "documents", list);
  json_node_set_object (root, record);
  if (!tg_schema_check_record (root, error))
    {
      g_prefix_error (error, "record: ");
      return FALSE;
    }
  {
    g_autoptr (JsonGenerator) gen = json_generator_new ();
    json_generator_set_root (gen, root);
    json_generator_set_pretty (gen, TRUE);
    text = json_generator_to_data (gen, NULL);
  }
  af = tg_atomic_file_new (record_path, 0400, TRUE, error);
  if (af == NULL || !tg_atomic_file_write (af, text, strlen (text), error) || !tg_atomic_file_commit (af, error)
      || !sig_mkdir_private (hdir, error))
    return FALSE;
  for (int n = 1; n < 1000; n++)
    {
      g_autofree char *base = n == 1 ? g_strdup_printf ("%s.tar", case_id) : g_strdup_printf ("%s-%d.tar", case_id, n);
      g_free (out->bundle);
      out->bundle = g_build_filename (hdir, base, NULL);
      if (!g_file_test (out->bundle, G_FILE_TEST_EXISTS))
        break;
    }
  o.keys_dir = srv->keys_dir;
  o.record_path = record_path;
  o.documents = inputs;
  o.out_path = out->bundle;
  if (!bundle_seal (&o, error))
    return FALSE;
  v.ca_file = root_pem;
  v.for_case = case_id;
  v.for_action = s_member (c, "action");
  v.for_serial = s_member (cert, "serial");
  v.quiet_progress = TRUE;
  report = bundle_verify (out->bundle, &v, error);
  if (report == NULL)
    return FALSE;
  out->indication = report->indication;
  out->verdict_json = bundle_report_to_json (report);
  return TRUE;
}

static void
add_seal_result (JsonObject *o, const SealResult *r)
{
  JsonNode *v = sig_json_node_from_text (r->verdict_json);

  json_object_set_boolean_member (o, "sealed", TRUE);
  json_object_set_string_member (o, "bundle", r->bundle);
  json_object_set_string_member (o, "indication", bundle_indication_to_string (r->indication));
  if (v != NULL)
    json_object_set_member (o, "verdict", v);
}

/* ------------------------------------------------------------ in-person visit */

/* Decodes one scan and checks its type from its first bytes. */
static guchar *
decode_scan (SoupServerMessage *msg, JsonObject *d, guint i, gsize *len, const char **media_type, const char **ext)
{
  const char *mt = s_member (d, "media_type"), *data = s_member (d, "data");
  g_autofree char *field = g_strdup_printf ("documents[%u]", i);
  guchar *raw;

  if (mt == NULL || data == NULL)
    {
      sig_reply_error (msg, 400, field, "%s: {\"name\", \"media_type\", \"data\": base64}", field);
      return NULL;
    }
  if (strlen (data) > (SIG_MAX_DOCUMENT_SIZE / 3 + 1) * 4 + 4
      || strspn (data, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != strlen (data))
    {
      sig_reply_error (msg, 400, field, "%s: data must be base64 of at most %zu bytes", field, SIG_MAX_DOCUMENT_SIZE);
      return NULL;
    }
  raw = g_base64_decode (data, len);
  if (strcmp (mt, "image/jpeg") == 0 && *len >= 3 && memcmp (raw, "\xff\xd8\xff", 3) == 0)
    *ext = "jpg";
  else if (strcmp (mt, "image/png") == 0 && *len >= 8 && memcmp (raw, "\x89PNG\r\n\x1a\n", 8) == 0)
    *ext = "png";
  else if (strcmp (mt, "application/pdf") == 0 && *len >= 5 && memcmp (raw, "%PDF-", 5) == 0)
    *ext = "pdf";
  else
    {
      g_free (raw);
      sig_reply_error (msg, 400, field, "%s: a JPEG, PNG or PDF file whose content matches its media_type", field);
      return NULL;
    }
  *media_type = mt;
  return raw;
}

static JsonObject *
visit_json (SigServer *srv, sqlite3_stmt *st)
{
  JsonObject *o = json_object_new ();
  g_autofree char *t = tg_time_format (sqlite3_column_int64 (st, 3));

  json_object_set_string_member (o, "id", sig_col (st, 0));
  json_object_set_string_member (o, "case_id", sig_col (st, 1));
  json_object_set_string_member (o, "officer_id", sig_col (st, 2));
  json_object_set_string_member (o, "created_at", t);
  json_object_set_string_member (o, "outcome", sig_col (st, 4));
  json_object_set_boolean_member (o, "bundle", sig_col (st, 5) != NULL);
  if (sig_col (st, 6) != NULL)
    {
      JsonNode *v = sig_json_node_from_text (sig_col (st, 6));
      if (v != NULL)
        json_object_set_member (o, "verdict", v);
    }
  return o;
}

JsonArray *
sig_visits_of_case (SigServer *srv, const char *case_id)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db,
                                                "SELECT id, case_id, officer_id, created_at, outcome, bundle, verdict"
                                                " FROM visits WHERE case_id = ? ORDER BY created_at",
                                                NULL);
  JsonArray *a = json_array_new ();

  while (st != NULL && (sqlite3_bind_text (st, 1, case_id, -1, SQLITE_STATIC), sqlite3_step (st) == SQLITE_ROW))
    json_array_add_object_element (a, visit_json (srv, st));
  return a;
}

void
sig_visit_list (SigServer *srv, SoupServerMessage *msg, const char *case_id)
{
  JsonObject *o = json_object_new ();

  json_object_set_array_member (o, "visits", sig_visits_of_case (srv, case_id));
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

void
sig_visit_bundle (SigServer *srv, SoupServerMessage *msg, const char *visit_id)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT bundle, case_id FROM visits WHERE id = ?", NULL);

  if (st == NULL)
    {
      sig_reply_error (msg, 500, NULL, "database error");
      return;
    }
  sqlite3_bind_text (st, 1, visit_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW || sig_col (st, 0) == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no sealed visit %s", visit_id);
      return;
    }
  sig_reply_bundle_file (msg, sig_col (st, 0), sig_col (st, 1));
}

/* POST /api/cases/{id}/visit — the officer records an in-person visit:
 * {"outcome", "notes", "attestation", "consent": bool, "started_at",
 *  "document": {…as in close…}, "face_comparison": "match"|…,
 *  "documents": [{"name", "media_type", "data": base64}]}. */
void
sig_visit_record (SigServer *srv, SoupServerMessage *msg, const char *case_id, const char *officer)
{
  static const char *const allowed[] = { "outcome", "notes", "attestation", "consent", "started_at", "document",
                                         "face_comparison", "documents", NULL };
  static const char *const outcomes[] = { "approved", "rejected", NULL };
  static const char *const faces[] = { "match", "no-match", "inconclusive", NULL };
  g_autoptr (JsonObject) body = sig_read_json_body (msg, SIG_MAX_VISIT_BODY);
  g_autoptr (JsonObject) c = NULL;
  g_autoptr (JsonObject) record = NULL;
  g_autoptr (GArray) docs = g_array_new (FALSE, TRUE, sizeof (SealDoc));
  g_autoptr (GError) error = NULL;
  g_autofree char *visit_id = NULL, *dir = NULL, *officer_name = NULL, *officer_role = NULL;
  const char *outcome, *notes = "", *attestation, *face = NULL;
  JsonObject *document = NULL;
  JsonArray *files;
  JsonNode *n;
  gboolean consent = FALSE;
  gint64 now_ms = sig_now_ms (), started_ms = now_ms;
  SealResult sealed = { 0 };

  g_array_set_clear_func (docs, seal_doc_clear);
  if (body == NULL || !sig_only_members (msg, body, allowed))
    return;
  c = sig_db_case_json (srv, case_id);
  if (c == NULL)
    {
      sig_reply_error (msg, SOUP_STATUS_NOT_FOUND, NULL, "no case %s", case_id);
      return;
    }
  if (g_strcmp0 (s_member (c, "state"), "open") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s is %s, not open", case_id, s_member (c, "state"));
      return;
    }
  if ((outcome = sig_string_member (msg, body, "outcome")) == NULL)
    return;
  if (!g_strv_contains (outcomes, outcome))
    {
      sig_reply_error (msg, 400, "outcome", "outcome: approved or rejected");
      return;
    }
  if (json_object_has_member (body, "notes") && ((notes = sig_string_member (msg, body, "notes")) == NULL))
    return;
  if (!sig_text_ok (notes, 0, 4000) || (strcmp (outcome, "approved") != 0 && *notes == '\0'))
    {
      sig_reply_error (msg, 400, "notes", "notes: at most 4000 characters, required unless approved");
      return;
    }
  if ((attestation = sig_string_member (msg, body, "attestation")) == NULL)
    return;
  if (!sig_text_ok (attestation, 1, 4000))
    {
      sig_reply_error (msg, 400, "attestation", "attestation: 1 to 4000 characters");
      return;
    }
  n = json_object_get_member (body, "consent");
  if (n != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
        {
          sig_reply_error (msg, 400, "consent", "consent: true or false");
          return;
        }
      consent = json_node_get_boolean (n);
    }
  if (json_object_has_member (body, "started_at"))
    {
      const char *t = sig_string_member (msg, body, "started_at");
      g_autoptr (GDateTime) dt = t ? g_date_time_new_from_iso8601 (t, NULL) : NULL;
      if (t == NULL)
        return;
      if (dt == NULL)
        {
          sig_reply_error (msg, 400, "started_at", "started_at: an RFC 3339 time");
          return;
        }
      started_ms = g_date_time_to_unix (dt) * 1000;
      if (started_ms > now_ms && started_ms <= now_ms + 300 * 1000)
        started_ms = now_ms; /* the console's clock may run a little ahead */
      if (started_ms > now_ms || started_ms < now_ms - 24 * 3600 * 1000)
        {
          sig_reply_error (msg, 400, "started_at", "started_at: within the last 24 hours");
          return;
        }
    }
  n = json_object_get_member (body, "document");
  if (n != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          sig_reply_error (msg, 400, "document", "document: a JSON object");
          return;
        }
      document = json_node_get_object (n);
    }
  if (json_object_has_member (body, "face_comparison"))
    {
      if ((face = sig_string_member (msg, body, "face_comparison")) == NULL)
        return;
      if (!g_strv_contains (faces, face))
        {
          sig_reply_error (msg, 400, "face_comparison", "face_comparison: match, no-match or inconclusive");
          return;
        }
    }
  n = json_object_get_member (body, "documents");
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n) || json_array_get_length (json_node_get_array (n)) < 1
      || json_array_get_length (json_node_get_array (n)) > SIG_MAX_DOCUMENTS)
    {
      sig_reply_error (msg, 400, "documents", "documents: 1 to %d scanned documents", SIG_MAX_DOCUMENTS);
      return;
    }
  files = json_node_get_array (n);
  if (strcmp (outcome, "approved") == 0)
    {
      JsonNode *dm = document ? json_object_get_member (document, "comparison") : NULL;
      gboolean all = dm != NULL && JSON_NODE_HOLDS_ARRAY (dm) && json_array_get_length (json_node_get_array (dm)) > 0;
      for (guint i = 0; all && i < json_array_get_length (json_node_get_array (dm)); i++)
        {
          JsonNode *e = json_array_get_element (json_node_get_array (dm), i);
          JsonNode *m = JSON_NODE_HOLDS_OBJECT (e) ? json_object_get_member (json_node_get_object (e), "match") : NULL;
          all = m != NULL && JSON_NODE_HOLDS_VALUE (m) && json_node_get_value_type (m) == G_TYPE_BOOLEAN
                && json_node_get_boolean (m);
        }
      if (!consent)
        {
          sig_reply_error (msg, 400, "consent", "consent: the holder's consent is needed to approve");
          return;
        }
      if (!all)
        {
          sig_reply_error (msg, 400, "document", "document: approving needs the document with every compared field matching");
          return;
        }
      if (g_strcmp0 (face, "match") != 0)
        {
          sig_reply_error (msg, 400, "face_comparison", "face_comparison: approving needs a face match");
          return;
        }
    }

  /* the officer, as the record names them */
  {
    g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT name, role FROM officers WHERE id = ?", NULL);
    if (st != NULL)
      {
        sqlite3_bind_text (st, 1, officer, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
          {
            officer_name = g_strdup (sig_col (st, 0));
            officer_role = g_strdup (sig_col (st, 1));
          }
      }
  }
  visit_id = new_id ("vis-");
  dir = g_build_filename (srv->sessions_dir, visit_id, NULL);
  if (!sig_mkdir_private (dir, &error))
    goto fail;
  record = record_base (srv, c, "in-person", officer, officer_name ? officer_name : officer,
                        officer_role ? officer_role : SIG_ROLE_OFFICER_TEXT, started_ms, now_ms, outcome, notes);
  if (consent)
    {
      JsonObject *co = json_object_new ();
      JsonArray *shown = json_array_new ();
      g_autofree char *joined = g_strjoinv ("\n", (char **) visit_consent);
      g_autofree char *sum = tg_sha256_hex (joined, strlen (joined));
      g_autofree char *at = sig_iso_from_ms (started_ms);
      for (guint i = 0; visit_consent[i]; i++)
        json_array_add_string_element (shown, visit_consent[i]);
      json_object_set_string_member (co, "text_version", "in-person-1");
      json_object_set_string_member (co, "text_sha256", sum);
      json_object_set_string_member (co, "accepted_at", at);
      json_object_set_array_member (co, "shown_information", shown);
      json_object_set_object_member (record, "consent", co);
    }
  if (document != NULL)
    {
      JsonObject *d = json_object_new ();
      g_autoptr (GList) members = json_object_get_members (document);
      gboolean all = TRUE;
      JsonNode *cmp = json_object_get_member (document, "comparison");
      for (GList *l = members; l; l = l->next)
        if (strcmp (l->data, "data_matches_case") != 0)
          json_object_set_member (d, l->data, json_node_copy (json_object_get_member (document, l->data)));
      for (guint i = 0; cmp && JSON_NODE_HOLDS_ARRAY (cmp) && i < json_array_get_length (json_node_get_array (cmp)); i++)
        {
          JsonNode *e = json_array_get_element (json_node_get_array (cmp), i);
          JsonNode *m = JSON_NODE_HOLDS_OBJECT (e) ? json_object_get_member (json_node_get_object (e), "match") : NULL;
          if (m == NULL || !JSON_NODE_HOLDS_VALUE (m) || json_node_get_value_type (m) != G_TYPE_BOOLEAN
              || !json_node_get_boolean (m))
            all = FALSE;
        }
      json_object_set_boolean_member (d, "data_matches_case", all);
      json_object_set_object_member (record, "document", d);
    }
  if (face != NULL)
    {
      JsonObject *f = json_object_new ();
      json_object_set_string_member (f, "method", "officer-visual");
      json_object_set_string_member (f, "result", face);
      json_object_set_object_member (record, "face_comparison", f);
    }
  if (!add_document (docs, dir, "attestation.txt", "text/plain", "The officer's attestation of the in-person visit.",
                     attestation, strlen (attestation), &error))
    goto fail;
  for (guint i = 0; i < json_array_get_length (files); i++)
    {
      JsonNode *e = json_array_get_element (files, i);
      JsonObject *d = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
      const char *mt = NULL, *ext = NULL, *orig = d ? s_member (d, "name") : NULL;
      gsize len = 0;
      g_autofree guchar *raw = NULL;
      g_autofree char *name = NULL, *desc = NULL;

      if (d == NULL)
        {
          sig_reply_error (msg, 400, "documents", "documents[%u]: a JSON object", i);
          return;
        }
      raw = decode_scan (msg, d, i, &len, &mt, &ext);
      if (raw == NULL)
        return;
      if (len > SIG_MAX_DOCUMENT_SIZE || len == 0)
        {
          sig_reply_error (msg, 413, "documents", "documents[%u]: 1 byte to %zu bytes", i, SIG_MAX_DOCUMENT_SIZE);
          return;
        }
      name = g_strdup_printf ("scan-%u.%s", i + 1, ext);
      if (orig != NULL && sig_text_ok (orig, 1, 200))
        desc = g_strdup_printf ("Scanned document (uploaded as %s).", orig);
      else
        desc = g_strdup ("Scanned document.");
      if (!add_document (docs, dir, name, mt, desc, raw, len, &error))
        goto fail;
    }
  if (!seal_record (srv, record, docs, dir, &sealed, &error))
    {
      if (error->domain == TG_ERROR && error->code == TG_ERROR_INVALID)
        {
          sig_reply_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "record", "%s", error->message);
          seal_result_clear (&sealed);
          return;
        }
      goto fail;
    }
  {
    g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db,
                                                  "INSERT INTO visits (id, case_id, officer_id, created_at, outcome, bundle,"
                                                  " verdict) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                                  NULL);
    g_autoptr (sqlite3_stmt) cs = sig_db_prepare (srv->db,
                                                  "UPDATE cases SET state = ?, channel = 'in-person' WHERE id = ?", NULL);
    JsonObject *o;
    g_autofree char *url = g_strdup_printf ("/api/visits/%s/bundle", visit_id);
    g_autofree char *actor = g_strconcat ("officer:", officer, NULL);
    g_autoptr (JsonObject) d = json_object_new ();

    if (st == NULL || cs == NULL)
      {
        g_set_error (&error, TG_ERROR, TG_ERROR_IO, "database: %s", sqlite3_errmsg (srv->db));
        goto fail;
      }
    sqlite3_bind_text (st, 1, visit_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 2, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 3, officer, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (st, 4, now_ms / 1000);
    sqlite3_bind_text (st, 5, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 6, sealed.bundle, -1, SQLITE_STATIC);
    sqlite3_bind_text (st, 7, sealed.verdict_json, -1, SQLITE_STATIC);
    if (sqlite3_step (st) != SQLITE_DONE)
      {
        g_set_error (&error, TG_ERROR, TG_ERROR_IO, "database: %s", sqlite3_errmsg (srv->db));
        goto fail;
      }
    sqlite3_bind_text (cs, 1, outcome, -1, SQLITE_STATIC);
    sqlite3_bind_text (cs, 2, case_id, -1, SQLITE_STATIC);
    (void) sqlite3_step (cs);
    json_object_set_string_member (d, "case", case_id);
    json_object_set_string_member (d, "visit", visit_id);
    json_object_set_string_member (d, "outcome", outcome);
    json_object_set_string_member (d, "bundle", sealed.bundle);
    sig_audit (srv, "in-person-visit", actor, d);
    g_message ("case %s: in-person visit %s recorded by %s as %s, sealed %s: %s", case_id, visit_id, officer, outcome,
               sealed.bundle, bundle_indication_to_string (sealed.indication));
    o = json_object_new ();
    json_object_set_string_member (o, "visit", visit_id);
    json_object_set_string_member (o, "case_id", case_id);
    json_object_set_string_member (o, "outcome", outcome);
    json_object_set_string_member (o, "download", url);
    add_seal_result (o, &sealed);
    sig_reply_json (msg, SOUP_STATUS_CREATED, o);
  }
  seal_result_clear (&sealed);
  return;

fail:
  g_warning ("case %s: in-person visit: %s", case_id, error->message);
  sig_reply_error (msg, error->code == TG_ERROR_NOSPACE ? SOUP_STATUS_INSUFFICIENT_STORAGE
                                                        : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                   NULL, "in-person visit: %s", error->message);
  seal_result_clear (&sealed);
}

/* ------------------------------------------------------------ portal */

/* Inserts a case for the holder's own request; (transfer full) its id. */
static void
set_case_state (SigServer *srv, const char *case_id, const char *state, const char *bundle)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "UPDATE cases SET state = ?, bundle = coalesce(?, bundle)"
                                                         " WHERE id = ?", NULL);

  if (st == NULL)
    return;
  sqlite3_bind_text (st, 1, state, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, bundle, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 3, case_id, -1, SQLITE_STATIC);
  (void) sqlite3_step (st);
}

void
sig_ca_portal_revoke (SigServer *srv, SoupServerMessage *msg, const char *nid, const CaCertInfo *cert,
                      const char *reason, const char *details, gint64 compromised_at)
{
  SoupMessageHeaders *rh = soup_server_message_get_request_headers (msg);
  const char *ip = soup_server_message_get_remote_host (msg);
  const char *ua = soup_message_headers_get_one (rh, "User-Agent");
  g_autofree char *holder_name = NULL, *holder_email = NULL, *case_id = NULL, *reason_text = NULL, *dir = NULL;
  g_autofree char *officer_id = NULL, *by = g_strconcat ("holder:", nid, NULL), *req_text = NULL;
  g_autoptr (JsonObject) c = NULL;
  g_autoptr (JsonObject) record = NULL;
  g_autoptr (JsonObject) req = json_object_new ();
  g_autoptr (GArray) docs = g_array_new (FALSE, TRUE, sizeof (SealDoc));
  g_autoptr (GError) error = NULL;
  g_autoptr (CaActionResult) res = NULL;
  gint64 now_ms = sig_now_ms ();
  CaActionRequest r = { 0 };
  SealResult sealed = { 0 };
  JsonObject *o;

  g_array_set_clear_func (docs, seal_doc_clear);
  {
    g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT name, email FROM holders WHERE national_id = ?", NULL);
    if (st != NULL)
      {
        sqlite3_bind_text (st, 1, nid, -1, SQLITE_STATIC);
        if (sqlite3_step (st) == SQLITE_ROW)
          {
            holder_name = g_strdup (sig_col (st, 0));
            holder_email = g_strdup (sig_col (st, 1));
          }
      }
  }
  if (cert->state == CA_CERT_REVOKED || cert->state == CA_CERT_SUPERSEDED)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "certificate %s is already %s", cert->serial,
                       ca_cert_state_to_string (cert->state));
      return;
    }
  reason_text = g_strdup_printf ("%s (portal): %s",
                                 strcmp (reason, "key-compromise") == 0 ? "Key compromised"
                                 : strcmp (reason, "cessation-of-operation") == 0 ? "Ceased activities"
                                                                                  : "Affiliation changed",
                                 details);
  if (g_utf8_strlen (reason_text, -1) > 4000)
    {
      char *end = g_utf8_offset_to_pointer (reason_text, 4000);
      *end = '\0';
    }
  if (sig_db_exec (srv->db, "BEGIN IMMEDIATE", &error))
    case_id = sig_db_insert_case (srv, cert->name ? cert->name : holder_name, nid,
                                  cert->email ? cert->email : holder_email, cert->serial, "revocation", reason_text, 0,
                                  "portal", by, g_get_real_time () / G_USEC_PER_SEC, &error);
  if (case_id == NULL)
    goto fail;
  c = sig_db_case_json (srv, case_id);

  /* the authenticated request, as the server received it */
  {
    g_autofree char *t = sig_iso_from_ms (now_ms);
    json_object_set_string_member (req, "type", "portal-revocation-request");
    json_object_set_string_member (req, "case_id", case_id);
    json_object_set_string_member (req, "national_id", nid);
    json_object_set_string_member (req, "serial", cert->serial);
    json_object_set_string_member (req, "reason", reason);
    json_object_set_string_member (req, "details", details);
    if (compromised_at > 0)
      {
        g_autofree char *ct = tg_time_format (compromised_at);
        json_object_set_string_member (req, "compromised_at", ct);
      }
    json_object_set_string_member (req, "received_at", t);
    json_object_set_string_member (req, "authentication", "portal session (national ID and argon2id password) with CSRF token");
    json_object_set_string_member (req, "remote_address", ip ? ip : "?");
    json_object_set_string_member (req, "user_agent", ua && g_utf8_validate (ua, -1, NULL) && strlen (ua) < 1024 ? ua : "");
    req_text = sig_object_to_string (req);
  }
  dir = g_build_filename (srv->sessions_dir, case_id, NULL);
  if (!sig_mkdir_private (dir, &error)
      || !add_document (docs, dir, "request.json", "application/json", "The holder's authenticated portal request.",
                        req_text, strlen (req_text), &error))
    goto fail;
  officer_id = g_strdup (nid);
  for (char *p = officer_id; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
      *p = '_';
  record = record_base (srv, c, "portal", officer_id, json_object_get_string_member (c, "holder_name"), "holder",
                        now_ms, now_ms, "approved", "");
  if (!seal_record (srv, record, docs, dir, &sealed, &error))
    goto fail;
  set_case_state (srv, case_id, "approved", sealed.bundle);

  r.case_id = case_id;
  r.action = "revocation";
  r.serial = cert->serial;
  r.bundle_path = sealed.bundle;
  r.actor.role = CA_ROLE_HOLDER;
  r.actor.id = nid;
  r.reason = strcmp (reason, "key-compromise") == 0 ? CA_REASON_KEY_COMPROMISE
             : strcmp (reason, "cessation-of-operation") == 0 ? CA_REASON_CESSATION_OF_OPERATION
                                                              : CA_REASON_AFFILIATION_CHANGED;
  r.invalidity_time = compromised_at;
  res = ca_apply (srv->ca, &r, &error);
  if (res == NULL)
    {
      JsonObject *e = json_object_new ();
      g_message ("case %s: portal revocation of %s by %s refused: %s", case_id, cert->serial, nid, error->message);
      json_object_set_string_member (e, "error", error->message);
      json_object_set_boolean_member (e, "refused", error->code == TG_ERROR_REFUSED);
      json_object_set_string_member (e, "case_id", case_id);
      sig_reply_json (msg, error->code == TG_ERROR_REFUSED ? SOUP_STATUS_FORBIDDEN : SOUP_STATUS_INTERNAL_SERVER_ERROR, e);
      seal_result_clear (&sealed);
      return;
    }
  sig_case_mark_applied (srv, case_id, by, res);
  g_message ("case %s: %s revoked by the holder %s through the portal", case_id, cert->serial, nid);
  o = json_object_new ();
  json_object_set_string_member (o, "case_id", case_id);
  json_object_set_string_member (o, "serial", cert->serial);
  json_object_set_string_member (o, "state", "revoked");
  {
    g_autofree char *rt = ca_action_result_to_json (res);
    JsonNode *rn = sig_json_node_from_text (rt);
    if (rn != NULL)
      json_object_set_member (o, "result", rn);
  }
  add_seal_result (o, &sealed);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
  seal_result_clear (&sealed);
  return;

fail:
  g_warning ("portal revocation of %s by %s: %s", cert->serial, nid, error->message);
  if (case_id != NULL)
    set_case_state (srv, case_id, "aborted", NULL);
  sig_reply_error (msg, error->code == TG_ERROR_NOSPACE ? SOUP_STATUS_INSUFFICIENT_STORAGE
                                                        : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                   NULL, "revocation: %s", error->message);
  seal_result_clear (&sealed);
}

void
sig_ca_renew (SigServer *srv, SoupServerMessage *msg, const char *nid, JsonObject *c, const char *csr)
{
  const char *case_id = json_object_get_string_member (c, "id");
  g_autofree char *by = g_strconcat ("holder:", nid, NULL);
  g_autoptr (CaActionResult) res = NULL;
  g_autoptr (GError) error = NULL;
  CaActor actor = { CA_ROLE_HOLDER, nid };
  JsonObject *o;

  if (g_strcmp0 (json_object_get_string_member (c, "state"), "approved") != 0)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s is %s: the renewal is not approved yet", case_id,
                       json_object_get_string_member (c, "state"));
      return;
    }
  if (json_object_get_boolean_member_with_default (c, "renewed", FALSE))
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s: the new certificate was already issued", case_id);
      return;
    }
  if (!json_object_get_boolean_member_with_default (c, "applied", FALSE))
    {
      g_autofree char *bundle = sig_case_bundle (srv, case_id);
      CaActionRequest r = { 0 };
      if (bundle == NULL)
        {
          sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "case %s has no approved sealed bundle", case_id);
          return;
        }
      r.case_id = case_id;
      r.action = "renewal";
      r.serial = json_object_get_string_member (c, "serial");
      r.bundle_path = bundle;
      r.actor = actor;
      r.reason = CA_REASON_NONE;
      r.csr_pem = csr;
      res = ca_apply (srv->ca, &r, &error);
    }
  else
    res = ca_renew_complete (srv->ca, case_id, csr, &actor, &error);
  if (res == NULL)
    {
      g_message ("case %s: renewal by %s refused: %s", case_id, nid, error->message);
      sig_reply_ca_error (msg, error);
      return;
    }
  sig_case_mark_applied (srv, case_id, by, res);
  if (res->new_cert_pem == NULL)
    {
      sig_reply_error (msg, 500, NULL, "case %s: the renewal was applied but no certificate was issued", case_id);
      return;
    }
  g_message ("case %s: %s renewed as %s by the holder %s", case_id, res->serial, res->new_serial, nid);
  o = json_object_new ();
  json_object_set_string_member (o, "case_id", case_id);
  json_object_set_string_member (o, "old_serial", res->serial);
  json_object_set_string_member (o, "serial", res->new_serial);
  json_object_set_string_member (o, "certificate", res->new_cert_pem);
  sig_reply_json (msg, SOUP_STATUS_OK, o);
}

/* sig-close.c — closing a session: the validation record is assembled from
 * the case, the session's events and the officer's checklist, checked
 * against the schema, the recorder stopped, the bundle sealed into
 * evidence/<holder-id>/<case-id>.tar and verified. Also recovery at start. */
#include "sig-private.h"
#include "bundle.h"

#include <glib/gstdio.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENTS_MAX ((gsize) 64 * 1024 * 1024)

/* ------------------------------------------------------------ events.jsonl */

/* Appends @event (seq assigned here) to DIR/events.jsonl when no recorder
 * owns the file. A torn last line (a crash mid-write) is cut off first. */
gboolean
sig_append_event_direct (const char *dir, JsonObject *event, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *data = NULL;
  gsize len = 0, keep;
  gint64 seq = 0;
  g_autoptr (JsonObject) out = json_object_new ();
  g_autoptr (GList) members = NULL;
  g_autofree char *text = NULL, *line = NULL;
  int fd;

  if (g_file_test (path, G_FILE_TEST_EXISTS) && !tg_file_get_contents_capped (path, EVENTS_MAX, &data, &len, error))
    return FALSE;
  keep = len;
  while (keep > 0 && data[keep - 1] != '\n')
    keep--;
  if (keep != len)
    g_warning ("%s: cutting a torn last line of %zu bytes", path, len - keep);
  if (keep > 0)
    {
      gsize start = keep - 1;
      g_autoptr (JsonNode) last = NULL;
      while (start > 0 && data[start - 1] != '\n')
        start--;
      last = tg_json_parse_strict (data + start, keep - 1 - start, TG_SCHEMA_EVENT_MAX_SIZE, NULL);
      if (last != NULL && JSON_NODE_HOLDS_OBJECT (last))
        seq = json_object_get_int_member_with_default (json_node_get_object (last), "seq", -1) + 1;
      if (seq <= 0)
        {
          /* unreadable last line: seq numbers are line numbers from 0 */
          seq = 0;
          for (gsize i = 0; i < keep; i++)
            seq += data[i] == '\n';
        }
    }
  json_object_set_int_member (out, "seq", seq);
  members = json_object_get_members (event);
  for (GList *l = members; l; l = l->next)
    if (strcmp (l->data, "seq") != 0)
      json_object_set_member (out, l->data, json_node_copy (json_object_get_member (event, l->data)));
  text = sig_object_to_string (out);
  line = g_strconcat (text, "\n", NULL);
  fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open %s", path);
      return FALSE;
    }
  if ((keep != len && ftruncate (fd, (off_t) keep) != 0) || lseek (fd, (off_t) keep, SEEK_SET) < 0
      || !tg_write_all (fd, line, strlen (line), path, error) || fsync (fd) != 0)
    {
      if (error && *error == NULL)
        tg_set_error_errno (error, errno, "cannot append to %s", path);
      close (fd);
      return FALSE;
    }
  close (fd);
  return TRUE;
}

/* ------------------------------------------------------------ the record */

static gint64
parse_ms (const char *iso)
{
  g_autoptr (GDateTime) dt = iso ? g_date_time_new_from_iso8601 (iso, NULL) : NULL;

  if (dt == NULL)
    return -1;
  return g_date_time_to_unix (dt) * 1000 + g_date_time_get_microsecond (dt) / 1000;
}

static const char *
s_member (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING ? json_node_get_string (n)
                                                                                          : NULL;
}

static gint64
i_member (JsonObject *o, const char *name, gint64 def)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64 ? json_node_get_int (n) : def;
}

/* Events of one session: server events from the database, recorder events
 * (parts, tracks, keyframes, stills) from events.jsonl. */
static GPtrArray *
load_events (SigServer *srv, const char *session_id, const char *dir)
{
  static const char *const recorder_types[] = { "part-start", "track", "keyframe", "still", NULL };
  GPtrArray *events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_autofree char *path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT event FROM session_events WHERE session_id = ? ORDER BY n",
                                                NULL);

  while (st != NULL && (sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC), sqlite3_step (st) == SQLITE_ROW))
    {
      g_autoptr (JsonNode) n = json_from_string (sig_col (st, 0), NULL);
      if (n != NULL && JSON_NODE_HOLDS_OBJECT (n))
        g_ptr_array_add (events, json_object_ref (json_node_get_object (n)));
    }
  if (g_file_get_contents (path, &data, &len, NULL))
    {
      g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
      for (guint i = 0; lines[i]; i++)
        {
          g_autoptr (JsonNode) n = NULL;
          if (lines[i][0] == '\0')
            continue;
          n = tg_json_parse_strict (lines[i], strlen (lines[i]), TG_SCHEMA_EVENT_MAX_SIZE, NULL);
          if (n != NULL && JSON_NODE_HOLDS_OBJECT (n)
              && g_strv_contains (recorder_types, s_member (json_node_get_object (n), "type") ?: ""))
            g_ptr_array_add (events, json_object_ref (json_node_get_object (n)));
        }
    }
  return events;
}

static void
copy_member (JsonObject *to, JsonObject *from, const char *name)
{
  JsonNode *n = json_object_get_member (from, name);

  if (n != NULL)
    json_object_set_member (to, name, json_node_copy (n));
}

static JsonArray *
build_parts (GPtrArray *events, gint64 end_ms, JsonObject *checklist)
{
  JsonArray *parts = json_array_new ();
  JsonArray *overrides = checklist && json_object_has_member (checklist, "tracks")
                           && JSON_NODE_HOLDS_ARRAY (json_object_get_member (checklist, "tracks"))
                         ? json_object_get_array_member (checklist, "tracks") : NULL;

  for (guint i = 0; i < events->len; i++)
    {
      JsonObject *e = g_ptr_array_index (events, i);
      JsonObject *part;
      JsonArray *tracks;
      gint64 idx, start_ms, stop_ms = end_ms, rt0;

      if (g_strcmp0 (s_member (e, "type"), "part-start") != 0)
        continue;
      idx = i_member (e, "part", 0);
      start_ms = parse_ms (s_member (e, "time"));
      rt0 = i_member (e, "running_time_ns", 0);
      /* a part ends where the next starts, or at the signatory's next leave */
      for (guint j = 0; j < events->len; j++)
        {
          JsonObject *f = g_ptr_array_index (events, j);
          gint64 t = parse_ms (s_member (f, "time"));
          const char *ft = s_member (f, "type");
          if (t > start_ms && t < stop_ms
              && ((g_strcmp0 (ft, "part-start") == 0 && i_member (f, "part", -1) != idx)
                  || (g_strcmp0 (ft, "leave") == 0 && g_strcmp0 (s_member (f, "party"), "signatory") == 0)))
            stop_ms = t;
        }
      part = json_object_new ();
      tracks = json_array_new ();
      json_object_set_int_member (part, "index", idx);
      /* older recorders name the part's single file here; newer ones name
       * a file per track, on the track events */
      copy_member (part, e, "file");
      json_object_set_string_member (part, "started_at", s_member (e, "time"));
      {
        g_autofree char *t = sig_iso_from_ms (MAX (stop_ms, start_ms));
        json_object_set_string_member (part, "ended_at", t);
      }
      for (guint j = 0; j < events->len; j++)
        {
          JsonObject *f = g_ptr_array_index (events, j);
          const char *ft = s_member (f, "type");
          if (i_member (f, "part", -1) != idx)
            continue;
          if (g_strcmp0 (ft, "keyframe") == 0 && !json_object_has_member (part, "first_keyframe_offset_ms"))
            json_object_set_int_member (part, "first_keyframe_offset_ms",
                                        CLAMP ((i_member (f, "running_time_ns", rt0) - rt0) / 1000000, 0, 86400000));
          if (g_strcmp0 (ft, "track") == 0)
            {
              JsonObject *t = json_object_new ();
              static const char *const fields[] = { "kind", "party", "file", "codec", "width", "height",
                                                    "framerate", "sample_rate", "channels", NULL };
              for (guint k = 0; fields[k]; k++)
                copy_member (t, f, fields[k]);
              json_object_set_boolean_member (t, "usable", TRUE);
              json_object_set_int_member (t, "retries", 0);
              /* the officer's verdict on a track overrides the defaults */
              for (guint k = 0; overrides && k < json_array_get_length (overrides); k++)
                {
                  JsonNode *on = json_array_get_element (overrides, k);
                  JsonObject *o = JSON_NODE_HOLDS_OBJECT (on) ? json_node_get_object (on) : NULL;
                  if (o && i_member (o, "part", -1) == idx && g_strcmp0 (s_member (o, "party"), s_member (f, "party")) == 0
                      && g_strcmp0 (s_member (o, "kind"), s_member (f, "kind")) == 0)
                    {
                      copy_member (t, o, "usable");
                      copy_member (t, o, "verdict");
                      copy_member (t, o, "retries");
                      if (!json_object_has_member (t, "framerate"))
                        copy_member (t, o, "framerate");
                    }
                }
              json_array_add_object_element (tracks, t);
            }
        }
      if (json_array_get_length (tracks) == 0)
        {
          /* nothing usable was negotiated in this part; the file is still sealed */
          json_array_unref (tracks);
          json_object_unref (part);
          continue;
        }
      json_object_set_array_member (part, "tracks", tracks);
      json_array_add_object_element (parts, part);
    }
  return parts;
}

typedef struct {
  char *case_id, *holder_name, *national_id, *email, *serial, *action, *reason;
  gint64 suspension_days;
  char *officer_id, *officer_name, *officer_role;
  gint64 created_ms, started_ms;
  char *consent, *state;
} SessionFacts;

static void
facts_clear (SessionFacts *f)
{
  g_free (f->case_id);
  g_free (f->holder_name);
  g_free (f->national_id);
  g_free (f->email);
  g_free (f->serial);
  g_free (f->action);
  g_free (f->reason);
  g_free (f->officer_id);
  g_free (f->officer_name);
  g_free (f->officer_role);
  g_free (f->consent);
  g_free (f->state);
}

static gboolean
load_facts (SigServer *srv, const char *session_id, SessionFacts *f)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (
    srv->db,
    "SELECT c.id, c.holder_name, c.national_id, c.email, c.serial, c.action, c.reason, c.suspension_days,"
    " s.officer_id, o.name, o.role, s.created_at, s.started_at_ms, s.consent, s.state"
    " FROM sessions s JOIN cases c ON c.id = s.case_id LEFT JOIN officers o ON o.id = s.officer_id WHERE s.id = ?",
    NULL);

  if (st == NULL)
    return FALSE;
  sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) != SQLITE_ROW)
    return FALSE;
  f->case_id = g_strdup (sig_col (st, 0));
  f->holder_name = g_strdup (sig_col (st, 1));
  f->national_id = g_strdup (sig_col (st, 2));
  f->email = g_strdup (sig_col (st, 3));
  f->serial = g_strdup (sig_col (st, 4));
  f->action = g_strdup (sig_col (st, 5));
  f->reason = g_strdup (sig_col (st, 6));
  f->suspension_days = sqlite3_column_type (st, 7) == SQLITE_NULL ? 0 : sqlite3_column_int64 (st, 7);
  f->officer_id = g_strdup (sig_col (st, 8));
  f->officer_name = g_strdup (sig_col (st, 9) ? sig_col (st, 9) : sig_col (st, 8));
  f->officer_role = g_strdup (sig_col (st, 10) ? sig_col (st, 10) : "registration officer");
  f->created_ms = sqlite3_column_int64 (st, 11) * 1000;
  f->started_ms = sqlite3_column_type (st, 12) == SQLITE_NULL ? f->created_ms : sqlite3_column_int64 (st, 12);
  f->consent = g_strdup (sig_col (st, 13));
  f->state = g_strdup (sig_col (st, 14));
  return TRUE;
}

/* Assembles data/record.json. The checklist supplies only what the officer
 * judged: document, security_features, face_comparison, track verdicts. */
static JsonNode *
build_record (SigServer *srv, const char *session_id, const char *result, const char *notes, JsonObject *checklist,
              gint64 end_ms, GError **error)
{
  SessionFacts f = { 0 };
  g_autoptr (GPtrArray) events = NULL;
  g_autofree char *dir = g_build_filename (srv->sessions_dir, session_id, NULL);
  JsonObject *r = json_object_new (), *o;
  JsonArray *a;
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *started = NULL, *ended = NULL;

  json_node_take_object (root, r);
  if (!load_facts (srv, session_id, &f))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "no session %s", session_id);
      json_node_unref (root);
      return NULL;
    }
  events = load_events (srv, session_id, dir);
  json_object_set_int_member (r, "version", 1);

  o = json_object_new ();
  json_object_set_string_member (o, "id", f.case_id);
  json_object_set_string_member (o, "action", f.action);
  json_object_set_string_member (o, "reason", f.reason);
  if (f.suspension_days > 0)
    json_object_set_int_member (o, "suspension_days", f.suspension_days);
  json_object_set_string_member (o, "channel", "teleconference");
  json_object_set_object_member (r, "case", o);

  o = json_object_new ();
  json_object_set_string_member (o, "name", f.holder_name);
  json_object_set_string_member (o, "national_id", f.national_id);
  json_object_set_string_member (o, "email", f.email);
  json_object_set_object_member (r, "holder", o);

  o = json_object_new ();
  json_object_set_string_member (o, "serial", f.serial);
  json_object_set_string_member (o, "issuer", srv->cfg->issuer);
  json_object_set_object_member (r, "certificate", o);

  o = json_object_new ();
  json_object_set_string_member (o, "id", f.officer_id);
  json_object_set_string_member (o, "name", f.officer_name);
  json_object_set_string_member (o, "role", f.officer_role);
  json_object_set_object_member (r, "officer", o);

  started = sig_iso_from_ms (f.started_ms);
  ended = sig_iso_from_ms (MAX (end_ms, f.started_ms));
  o = json_object_new ();
  json_object_set_string_member (o, "started_at", started);
  json_object_set_string_member (o, "ended_at", ended);
  json_object_set_int_member (o, "duration_s", CLAMP ((end_ms - f.started_ms) / 1000, 0, 86400));
  json_object_set_object_member (r, "session", o);

  if (f.consent != NULL)
    {
      g_autoptr (JsonNode) c = json_from_string (f.consent, NULL);
      if (c != NULL && JSON_NODE_HOLDS_OBJECT (c))
        json_object_set_object_member (r, "consent", json_object_ref (json_node_get_object (c)));
    }

  /* joins of the signatory, with the part each one led to */
  a = json_array_new ();
  for (guint i = 0; i < events->len; i++)
    {
      JsonObject *e = g_ptr_array_index (events, i), *j, *b;
      const char *t = s_member (e, "type");
      g_autofree char *bn = NULL, *bv = NULL;
      gint64 at;
      if ((g_strcmp0 (t, "join") != 0 && g_strcmp0 (t, "rejoin") != 0)
          || g_strcmp0 (s_member (e, "party"), "signatory") != 0 || json_array_get_length (a) >= 64)
        continue;
      j = json_object_new ();
      b = json_object_new ();
      copy_member (j, e, "time");
      json_object_set_string_member (j, "user_agent", s_member (e, "user_agent") ?: "unknown");
      sig_browser_from_ua (s_member (e, "user_agent"), &bn, &bv);
      json_object_set_string_member (b, "name", bn);
      json_object_set_string_member (b, "version", bv);
      json_object_set_object_member (j, "browser", b);
      at = parse_ms (s_member (e, "time"));
      for (guint k = 0; k < events->len; k++)
        {
          JsonObject *p = g_ptr_array_index (events, k);
          if (g_strcmp0 (s_member (p, "type"), "part-start") == 0 && parse_ms (s_member (p, "time")) >= at)
            {
              json_object_set_int_member (j, "part", i_member (p, "part", 0));
              break;
            }
        }
      json_array_add_object_element (a, j);
    }
  o = json_object_new ();
  json_object_set_array_member (o, "joins", a);
  json_object_set_object_member (r, "signatory", o);

  o = json_object_new ();
  json_object_set_string_member (o, "container", "matroska");
  json_object_set_array_member (o, "parts", build_parts (events, end_ms, checklist));
  json_object_set_object_member (r, "recording", o);

  if (checklist != NULL && json_object_has_member (checklist, "document"))
    copy_member (r, checklist, "document");

  /* instructions as stamped by the server when the officer gave them */
  {
    g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT kind, target, text, time, part, offset_ms"
                                                           " FROM instructions WHERE session_id = ? ORDER BY n LIMIT 256",
                                                  NULL);
    a = json_array_new ();
    while (st != NULL && (sqlite3_bind_text (st, 1, session_id, -1, SQLITE_STATIC), sqlite3_step (st) == SQLITE_ROW))
      {
        JsonObject *in = json_object_new ();
        json_object_set_string_member (in, "kind", sig_col (st, 0));
        json_object_set_string_member (in, "target", sig_col (st, 1));
        if (sig_col (st, 2))
          json_object_set_string_member (in, "text", sig_col (st, 2));
        json_object_set_string_member (in, "time", sig_col (st, 3));
        json_object_set_int_member (in, "part", sqlite3_column_int (st, 4));
        json_object_set_int_member (in, "offset_ms", sqlite3_column_int64 (st, 5));
        json_array_add_object_element (a, in);
      }
    if (json_array_get_length (a) > 0)
      json_object_set_array_member (r, "instructions", a);
    else
      json_array_unref (a);
  }

  a = json_array_new ();
  for (guint i = 0; i < events->len; i++)
    {
      JsonObject *e = g_ptr_array_index (events, i), *s;
      if (g_strcmp0 (s_member (e, "type"), "still") != 0)
        continue;
      s = json_object_new ();
      copy_member (s, e, "name");
      copy_member (s, e, "kind");
      copy_member (s, e, "part");
      copy_member (s, e, "offset_ms");
      json_array_add_object_element (a, s);
    }
  if (json_array_get_length (a) > 0)
    json_object_set_array_member (r, "stills", a);
  else
    json_array_unref (a);

  if (checklist != NULL)
    {
      copy_member (r, checklist, "security_features");
      copy_member (r, checklist, "face_comparison");
    }

  a = json_array_new ();
  for (guint i = 0; i < events->len; i++)
    {
      JsonObject *e = g_ptr_array_index (events, i), *in;
      gint64 at;
      if (g_strcmp0 (s_member (e, "type"), "interruption") != 0 || json_array_get_length (a) >= 256)
        continue;
      in = json_object_new ();
      copy_member (in, e, "time");
      copy_member (in, e, "cause");
      copy_member (in, e, "detail");
      json_object_set_string_member (in, "told_signatory",
                                     s_member (e, "told_signatory") ?: "The signatory was not told anything.");
      at = parse_ms (s_member (e, "time"));
      for (guint k = i + 1; k < events->len; k++)
        {
          JsonObject *p = g_ptr_array_index (events, k);
          if (g_strcmp0 (s_member (p, "type"), "rejoin") == 0 && parse_ms (s_member (p, "time")) >= at)
            {
              json_object_set_member (in, "resumed_at", json_node_copy (json_object_get_member (p, "time")));
              json_object_set_member (in, "time", json_node_copy (json_object_get_member (e, "time")));
              break;
            }
        }
      json_array_add_object_element (a, in);
    }
  if (json_array_get_length (a) > 0)
    json_object_set_array_member (r, "interruptions", a);
  else
    json_array_unref (a);

  sig_record_add_outcome (srv, r, result, notes, ended, end_ms);
  facts_clear (&f);
  return root;
}

void
sig_record_add_outcome (SigServer *srv, JsonObject *r, const char *result, const char *notes, const char *ended,
                        gint64 end_ms)
{
  g_autoptr (GDateTime) end = g_date_time_new_from_unix_utc (end_ms / 1000);
  g_autoptr (GDateTime) del = g_date_time_add_years (end, srv->cfg->retention_years);
  g_autofree char *d = g_date_time_format (del, "%Y-%m-%d");
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "result", result);
  json_object_set_string_member (o, "notes", notes ? notes : "");
  json_object_set_string_member (o, "completed_at", ended);
  json_object_set_object_member (r, "outcome", o);
  o = json_object_new ();
  json_object_set_int_member (o, "period_years", srv->cfg->retention_years);
  json_object_set_string_member (o, "delete_after", d);
  json_object_set_object_member (r, "retention", o);
}

/* ------------------------------------------------------------ close */

typedef struct {
  SigServer *srv;
  SoupServerMessage *msg;
  char *session_id, *officer_id, *result, *notes;
  JsonObject *checklist;
  gint64 end_ms;
  /* sealing, on a worker thread */
  char *dir, *record_path, *out_path, *keys_dir, *case_id, *action, *serial;
  char *verdict_json;
  BundleIndication indication;
} CloseJob;

static void
close_job_free (CloseJob *j)
{
  g_clear_object (&j->msg);
  g_free (j->session_id);
  g_free (j->officer_id);
  g_free (j->result);
  g_free (j->notes);
  if (j->checklist)
    json_object_unref (j->checklist);
  g_free (j->dir);
  g_free (j->record_path);
  g_free (j->out_path);
  g_free (j->keys_dir);
  g_free (j->case_id);
  g_free (j->action);
  g_free (j->serial);
  g_free (j->verdict_json);
  g_free (j);
}

static gint
cmp_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The files of @dir whose names @name_ok accepts, sorted. With @skip_empty,
 * empty files are left out: a recorder stopped or killed before a track's
 * first buffer leaves its file empty, and an empty file is no evidence. */
static GArray *
list_inputs (const char *dir, gboolean (*name_ok) (const char *name), gboolean skip_empty)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (BundleInput));
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (name_ok (name))
      g_ptr_array_add (names, (gpointer) g_intern_string (name));
  g_ptr_array_sort (names, cmp_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, g_ptr_array_index (names, i), NULL);
      BundleInput in = { .name = g_ptr_array_index (names, i), .path = g_intern_string (path) };
      GStatBuf st;
      if (skip_empty && g_stat (path, &st) == 0 && st.st_size == 0)
        continue;
      g_array_append_val (a, in);
    }
  return a;
}

static void
seal_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  CloseJob *j = data;
  g_autofree char *events = g_build_filename (j->dir, "events.jsonl", NULL);
  g_autofree char *stills_dir = g_build_filename (j->dir, "stills", NULL);
  g_autofree char *root = g_build_filename (j->keys_dir, "root.pem", NULL);
  g_autoptr (GArray) recs = list_inputs (j->dir, bundle_recording_name_ok, TRUE);
  g_autoptr (GArray) stills = list_inputs (stills_dir, bundle_still_name_ok, FALSE);
  BundleSealOptions o = { 0 };
  BundleVerifyOptions v = { 0 };
  g_autoptr (BundleReport) report = NULL;
  GError *error = NULL;

  o.keys_dir = j->keys_dir;
  o.record_path = j->record_path;
  o.events_path = g_file_test (events, G_FILE_TEST_EXISTS) ? events : NULL;
  o.recordings = recs;
  o.stills = stills->len > 0 ? stills : NULL;
  o.out_path = j->out_path;
  if (!bundle_seal (&o, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  v.ca_file = root;
  v.for_case = j->case_id;
  v.for_action = j->action;
  v.for_serial = j->serial;
  v.quiet_progress = TRUE;
  report = bundle_verify (j->out_path, &v, &error);
  if (report == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  j->indication = report->indication;
  j->verdict_json = bundle_report_to_json (report);
  g_task_return_boolean (task, TRUE);
}

static void
finish_close (CloseJob *j, const char *state, const char *bundle)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (j->srv->db,
                                                "UPDATE sessions SET state = ?, outcome = ?, ended_at_ms = ?, bundle = ?,"
                                                " verdict = ? WHERE id = ?", NULL);
  g_autoptr (sqlite3_stmt) cs = sig_db_prepare (j->srv->db, "UPDATE cases SET state = ? WHERE id = ? AND ? <> 'aborted'",
                                                NULL);

  if (st != NULL)
    {
      sqlite3_bind_text (st, 1, state, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 2, j->result, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (st, 3, j->end_ms);
      sqlite3_bind_text (st, 4, bundle, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 5, j->verdict_json, -1, SQLITE_STATIC);
      sqlite3_bind_text (st, 6, j->session_id, -1, SQLITE_STATIC);
      if (sqlite3_step (st) != SQLITE_DONE)
        g_warning ("session %s: %s", j->session_id, sqlite3_errmsg (j->srv->db));
    }
  /* an aborted session leaves the case open for a new session */
  if (cs != NULL && strcmp (state, "sealed") == 0)
    {
      sqlite3_bind_text (cs, 1, j->result, -1, SQLITE_STATIC);
      sqlite3_bind_text (cs, 2, j->case_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (cs, 3, j->result, -1, SQLITE_STATIC);
      (void) sqlite3_step (cs);
    }
  g_hash_table_remove (j->srv->live, j->session_id);
}

static void
seal_done (GObject *source, GAsyncResult *res, gpointer data)
{
  CloseJob *j = data;
  g_autoptr (GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (res), &error))
    {
      g_warning ("session %s: sealing failed: %s", j->session_id, error->message);
      sig_session_set_state (j->srv, j->session_id, "stopped");
      g_hash_table_remove (j->srv->live, j->session_id);
      sig_reply_error (j->msg, error->code == TG_ERROR_NOSPACE ? SOUP_STATUS_INSUFFICIENT_STORAGE
                                                               : SOUP_STATUS_INTERNAL_SERVER_ERROR,
                       NULL, "sealing failed: %s (the recording is kept; close again to retry)", error->message);
    }
  else
    {
      JsonObject *o = json_object_new ();
      g_autoptr (JsonNode) verdict = json_from_string (j->verdict_json, NULL);
      g_autofree char *url = g_strdup_printf ("/api/sessions/%s/bundle", j->session_id);

      finish_close (j, "sealed", j->out_path);
      g_message ("session %s: sealed %s: %s", j->session_id, j->out_path,
                 bundle_indication_to_string (j->indication));
      json_object_set_string_member (o, "session", j->session_id);
      json_object_set_string_member (o, "outcome", j->result);
      json_object_set_boolean_member (o, "sealed", TRUE);
      json_object_set_string_member (o, "bundle", j->out_path);
      json_object_set_string_member (o, "download", url);
      json_object_set_string_member (o, "indication", bundle_indication_to_string (j->indication));
      if (verdict != NULL)
        json_object_set_member (o, "verdict", g_steal_pointer (&verdict));
      sig_reply_json (j->msg, SOUP_STATUS_OK, o);
    }
  soup_server_message_unpause (j->msg);
  close_job_free (j);
}

char *
sig_holder_dir_name (const char *national_id)
{
  char *s = g_strdup (national_id);

  for (char *p = s; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-')
      *p = '_';
  return s;
}

static void
after_stop (gpointer data)
{
  CloseJob *j = data;
  SigServer *srv = j->srv;
  SigLive *live = sig_live_get (srv, j->session_id, FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) record = NULL;
  g_autofree char *text = NULL, *holder = NULL, *hdir = NULL;
  g_autoptr (TgAtomicFile) af = NULL;
  g_autoptr (GArray) recs = NULL;
  SessionFacts f = { 0 };
  g_autoptr (GTask) task = NULL;

  if (live != NULL)
    {
      g_autoptr (JsonObject) note = json_object_new ();
      json_object_set_string_member (note, "type", "closed");
      json_object_set_string_member (note, "outcome", j->result);
      sig_live_notify (live, SIG_ROLE_NONE, note);
      for (int k = 0; k < 2; k++)
        {
          SigPeer *p = k == 0 ? live->officer : live->signatory;
          if (p != NULL && soup_websocket_connection_get_state (p->ws) == SOUP_WEBSOCKET_STATE_OPEN)
            soup_websocket_connection_close (p->ws, SOUP_WEBSOCKET_CLOSE_NORMAL, "session closed");
        }
    }
  record = build_record (srv, j->session_id, j->result, j->notes, j->checklist, j->end_ms, &error);
  if (record == NULL || !tg_schema_check_record (record, &error))
    {
      sig_session_set_state (srv, j->session_id, "stopped");
      g_hash_table_remove (srv->live, j->session_id);
      sig_reply_error (j->msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "record", "record: %s", error->message);
      soup_server_message_unpause (j->msg);
      close_job_free (j);
      return;
    }
  load_facts (srv, j->session_id, &f);
  j->case_id = g_strdup (f.case_id);
  j->action = g_strdup (f.action);
  j->serial = g_strdup (f.serial);
  j->dir = g_build_filename (srv->sessions_dir, j->session_id, NULL);
  j->record_path = g_build_filename (j->dir, "record.json", NULL);
  j->keys_dir = g_strdup (srv->keys_dir);
  holder = sig_holder_dir_name (f.national_id);
  hdir = g_build_filename (srv->evidence_dir, holder, NULL);
  facts_clear (&f);
  {
    g_autoptr (JsonGenerator) gen = json_generator_new ();
    json_generator_set_root (gen, record);
    json_generator_set_pretty (gen, TRUE);
    text = json_generator_to_data (gen, NULL);
  }
  af = tg_atomic_file_new (j->record_path, 0400, TRUE, &error);
  if (af == NULL || !tg_atomic_file_write (af, text, strlen (text), &error)
      || !tg_atomic_file_commit (af, &error) || !sig_mkdir_private (hdir, &error))
    goto fail;
  recs = list_inputs (j->dir, bundle_recording_name_ok, TRUE);
  if (recs->len == 0)
    {
      JsonObject *o = json_object_new ();
      finish_close (j, "closed", NULL);
      json_object_set_string_member (o, "session", j->session_id);
      json_object_set_string_member (o, "outcome", j->result);
      json_object_set_boolean_member (o, "sealed", FALSE);
      json_object_set_string_member (o, "reason", "nothing was recorded in this session, so there is no bundle; "
                                                  "the record is kept in the session folder");
      sig_reply_json (j->msg, SOUP_STATUS_OK, o);
      soup_server_message_unpause (j->msg);
      close_job_free (j);
      return;
    }
  for (int n = 1; n < 1000; n++)
    {
      g_autofree char *base = n == 1 ? g_strdup_printf ("%s.tar", j->case_id)
                                     : g_strdup_printf ("%s-%d.tar", j->case_id, n);
      g_free (j->out_path);
      j->out_path = g_build_filename (hdir, base, NULL);
      if (!g_file_test (j->out_path, G_FILE_TEST_EXISTS))
        break;
    }
  task = g_task_new (NULL, NULL, seal_done, j);
  g_task_set_task_data (task, j, NULL);
  g_task_run_in_thread (task, seal_thread);
  return;

fail:
  sig_session_set_state (srv, j->session_id, "stopped");
  g_hash_table_remove (srv->live, j->session_id);
  sig_reply_error (j->msg, 500, NULL, "closing: %s", error->message);
  soup_server_message_unpause (j->msg);
  close_job_free (j);
}

static gboolean
after_stop_idle (gpointer data)
{
  after_stop (data);
  return G_SOURCE_REMOVE;
}

void
sig_close_session (SigServer *srv, SoupServerMessage *msg, const char *session_id, const char *officer_id,
                   JsonObject *body)
{
  static const char *const allowed[] = { "outcome", "notes", "checklist", NULL };
  static const char *const outcomes[] = { "approved", "rejected", "aborted", NULL };
  g_autoptr (GList) members = json_object_get_members (body);
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT state FROM sessions WHERE id = ?", NULL);
  g_autofree char *state = NULL;
  const char *result, *notes = "";
  JsonObject *checklist = NULL;
  JsonNode *n;
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) trial = NULL;
  SigLive *live;
  CloseJob *j;

  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      {
        sig_reply_error (msg, 400, l->data, "%s: unknown field", (char *) l->data);
        return;
      }
  n = json_object_get_member (body, "outcome");
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
      || !g_strv_contains (outcomes, (result = json_node_get_string (n))))
    {
      sig_reply_error (msg, 400, "outcome", "outcome: approved, rejected or aborted");
      return;
    }
  n = json_object_get_member (body, "notes");
  if (n != NULL)
    {
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING
          || !sig_text_ok (json_node_get_string (n), 0, 4000))
        {
          sig_reply_error (msg, 400, "notes", "notes: text of at most 4000 characters");
          return;
        }
      notes = json_node_get_string (n);
    }
  if (strcmp (result, "approved") != 0 && *notes == '\0')
    {
      sig_reply_error (msg, 400, "notes", "notes: explain every rejection or abort");
      return;
    }
  n = json_object_get_member (body, "checklist");
  if (n != NULL)
    {
      static const char *const keys[] = { "document", "security_features", "face_comparison", "tracks", NULL };
      g_autoptr (GList) ck = NULL;
      if (!JSON_NODE_HOLDS_OBJECT (n))
        {
          sig_reply_error (msg, 400, "checklist", "checklist: a JSON object");
          return;
        }
      checklist = json_node_get_object (n);
      ck = json_object_get_members (checklist);
      for (GList *l = ck; l; l = l->next)
        if (!g_strv_contains (keys, l->data))
          {
            g_autofree char *field = g_strconcat ("checklist.", l->data, NULL);
            sig_reply_error (msg, 400, field, "%s: unknown field (the system fills it)", field);
            return;
          }
    }
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
  state = g_strdup (sig_col (st, 0));
  if (strcmp (state, "sealed") == 0 || strcmp (state, "closed") == 0)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "session %s is already %s", session_id, state);
      return;
    }
  live = sig_live_get (srv, session_id, FALSE);
  if (live != NULL && live->closing)
    {
      sig_reply_error (msg, SOUP_STATUS_CONFLICT, NULL, "session %s is being closed", session_id);
      return;
    }
  /* check the checklist before anything is stopped */
  trial = build_record (srv, session_id, result, notes, checklist, sig_now_ms (), &error);
  if (trial == NULL || !tg_schema_check_record (trial, &error))
    {
      sig_reply_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "record", "record: %s", error->message);
      return;
    }

  j = g_new0 (CloseJob, 1);
  j->srv = srv;
  j->msg = g_object_ref (msg);
  j->session_id = g_strdup (session_id);
  j->officer_id = g_strdup (officer_id);
  j->result = g_strdup (result);
  j->notes = g_strdup (notes);
  j->checklist = checklist ? json_object_ref (checklist) : NULL;
  j->end_ms = sig_now_ms ();
  soup_server_message_pause (msg);
  g_message ("session %s: closing as %s by %s", session_id, result, officer_id);

  live = sig_live_get (srv, session_id, TRUE);
  if (live == NULL)
    {
      after_stop (j);
      return;
    }
  live->closing = TRUE;
  if (strcmp (state, "stopped") != 0)
    {
      g_autoptr (JsonObject) ev = json_object_new ();
      g_autofree char *t = sig_iso_from_ms (j->end_ms);
      json_object_set_string_member (ev, "type", "session-end");
      json_object_set_string_member (ev, "time", t);
      json_object_set_string_member (ev, "result", result);
      if (*notes)
        json_object_set_string_member (ev, "reason", notes);
      sig_server_event (live, ev);
    }
  if (live->rec != NULL && sig_recorder_running (live->rec))
    sig_recorder_stop (live->rec, G_CALLBACK (after_stop), j);
  else
    g_idle_add (after_stop_idle, j);
}

/* ------------------------------------------------------------ recovery */

/* At start: sessions left active by a previous testigod have lost their
 * recorder; mark them interrupted (logging why) so they can be sealed. */
void
sig_recover_sessions (SigServer *srv)
{
  g_autoptr (sqlite3_stmt) st = sig_db_prepare (srv->db, "SELECT id FROM sessions WHERE state = 'active'", NULL);
  g_autoptr (GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);

  while (st != NULL && sqlite3_step (st) == SQLITE_ROW)
    g_ptr_array_add (ids, g_strdup (sig_col (st, 0)));
  for (guint i = 0; i < ids->len; i++)
    {
      const char *id = g_ptr_array_index (ids, i);
      SigLive *live = sig_live_get (srv, id, TRUE);
      g_autoptr (JsonObject) ev = json_object_new ();

      if (live == NULL)
        continue;
      json_object_set_string_member (ev, "type", "interruption");
      json_object_set_string_member (ev, "cause", "server");
      json_object_set_string_member (ev, "detail", "testigod restarted while the session was running.");
      json_object_set_string_member (ev, "told_signatory", "The connection to the server was lost.");
      sig_server_event (live, ev);
      sig_session_set_state (srv, id, "interrupted");
      g_hash_table_remove (srv->live, id);
      g_message ("session %s: found unfinished after a restart; marked interrupted (it can be sealed)", id);
    }
}

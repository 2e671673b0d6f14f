/* audit.c — the CA core's append-only, hash-chained, time-stamped audit log.
 *
 * One JSON object per line, written by format_line() only, with the members
 * in a fixed order:
 *
 *   {"seq":N,"time":"…","kind":"…","actor":"…","details":{…},"prev":"…","hash":"…"}
 *
 * hash = SHA-256 of the line's bytes with the final ,"hash":"…" member
 * removed (the "body", itself a JSON object ending in "prev"). The verifier
 * rebuilds every line from its parsed values and compares bytes, so any
 * reformatting is an alteration too. docs/audit-log.md is the specification.
 */
#include "config.h"
#include "ca-audit.h"
#include "ca-audit-private.h"
#include "bundle-private.h"
#include "tg-common.h"
#include "tg-schema.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HASH_LEN 32
#define HEX_LEN 64
#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define HASH_MEMBER ",\"hash\":\""   /* what the body gains to become the line */
#define HASH_SUFFIX_LEN (sizeof HASH_MEMBER - 1 + HEX_LEN + 2) /* ,"hash":"<64>"} */

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PKCS7, PKCS7_free)

struct _CaAudit {
  char *path;
  int fd;
};

/* One parsed line. */
typedef struct {
  guint64 seq;
  char *time;       /* as written */
  char *kind;
  char *actor;
  JsonNode *details;
  char prev[HEX_LEN + 1];
  char hash[HEX_LEN + 1];     /* as written */
  char computed[HEX_LEN + 1]; /* SHA-256 of the body */
  char *body;                 /* the hashed bytes */
  gsize body_len;
} Entry;

static void
entry_clear (Entry *e)
{
  g_clear_pointer (&e->time, g_free);
  g_clear_pointer (&e->kind, g_free);
  g_clear_pointer (&e->actor, g_free);
  g_clear_pointer (&e->details, json_node_unref);
  g_clear_pointer (&e->body, g_free);
}

/* ------------------------------------------------------------ names */

gboolean
ca_audit_kind_is_valid (const char *kind)
{
  gsize n = kind ? strlen (kind) : 0;

  if (n == 0 || n > CA_AUDIT_MAX_KIND || !g_ascii_islower (kind[0]))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_islower (kind[i]) && !g_ascii_isdigit (kind[i]) && kind[i] != '-' && kind[i] != '_')
      return FALSE;
  return TRUE;
}

gboolean
ca_audit_actor_is_valid (const char *actor)
{
  gsize n = actor ? strlen (actor) : 0;

  if (n == 0 || n > CA_AUDIT_MAX_ACTOR)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!g_ascii_isalnum (actor[i]) && strchr ("._:@-+", actor[i]) == NULL)
      return FALSE;
  return TRUE;
}

static gboolean
is_hex64 (const char *s)
{
  if (s == NULL || strlen (s) != HEX_LEN)
    return FALSE;
  for (int i = 0; i < HEX_LEN; i++)
    if (!g_ascii_isdigit (s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
      return FALSE;
  return TRUE;
}

static void
hex_to_bytes (const char *hex, guint8 out[HASH_LEN])
{
  for (int i = 0; i < HASH_LEN; i++)
    out[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) << 4 | g_ascii_xdigit_value (hex[2 * i + 1]));
}

/* ------------------------------------------------------------ canonical JSON */

static void
append_string (GString *s, const char *str)
{
  g_string_append_c (s, '"');
  for (const char *p = str; *p; p++)
    {
      guchar c = (guchar) *p;
      switch (c)
        {
        case '"': g_string_append (s, "\\\""); break;
        case '\\': g_string_append (s, "\\\\"); break;
        case '\b': g_string_append (s, "\\b"); break;
        case '\f': g_string_append (s, "\\f"); break;
        case '\n': g_string_append (s, "\\n"); break;
        case '\r': g_string_append (s, "\\r"); break;
        case '\t': g_string_append (s, "\\t"); break;
        default:
          if (c < 0x20)
            g_string_append_printf (s, "\\u%04x", c);
          else
            g_string_append_c (s, (char) c);
        }
    }
  g_string_append_c (s, '"');
}

/* The canonical form of a value: no whitespace, members in their order,
 * integers in decimal, other numbers as %.17g, strings escaped minimally. */
static void
append_node (GString *s, JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *o = json_node_get_object (node);
        g_autoptr (GList) names = json_object_get_members (o);
        g_string_append_c (s, '{');
        for (GList *l = names; l; l = l->next)
          {
            if (l != names)
              g_string_append_c (s, ',');
            append_string (s, l->data);
            g_string_append_c (s, ':');
            append_node (s, json_object_get_member (o, l->data));
          }
        g_string_append_c (s, '}');
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *a = json_node_get_array (node);
        g_string_append_c (s, '[');
        for (guint i = 0; i < json_array_get_length (a); i++)
          {
            if (i > 0)
              g_string_append_c (s, ',');
            append_node (s, json_array_get_element (a, i));
          }
        g_string_append_c (s, ']');
        break;
      }
    case JSON_NODE_NULL:
      g_string_append (s, "null");
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (s, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (s, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_DOUBLE:
          {
            char buf[G_ASCII_DTOSTR_BUF_SIZE];
            g_string_append (s, g_ascii_formatd (buf, sizeof buf, "%.17g", json_node_get_double (node)));
            break;
          }
        default:
          append_string (s, json_node_get_string (node));
        }
      break;
    }
}

static char *
node_to_canonical (JsonNode *node)
{
  GString *s = g_string_new (NULL);
  append_node (s, node);
  return g_string_free (s, FALSE);
}

/* ------------------------------------------------------------ time */

static char *
format_time_ms (gint64 ms)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (ms / 1000);
  g_autofree char *base = NULL;

  if (dt == NULL)
    return NULL;
  base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
  return g_strdup_printf ("%s.%03dZ", base, (int) (ms % 1000));
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", exactly as format_time_ms writes it. */
static gboolean
parse_time_ms (const char *text, gint64 *out)
{
  static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  g_autoptr (GDateTime) dt = NULL;
  g_autofree char *again = NULL;
  gint64 ms;

  if (strlen (text) != sizeof pattern - 1)
    return FALSE;
  for (gsize i = 0; i < sizeof pattern - 1; i++)
    if (pattern[i] == 'd' ? !g_ascii_isdigit (text[i]) : text[i] != pattern[i])
      return FALSE;
  dt = g_date_time_new_from_iso8601 (text, NULL);
  if (dt == NULL)
    return FALSE;
  ms = g_date_time_to_unix (dt) * 1000 + g_date_time_get_microsecond (dt) / 1000;
  again = format_time_ms (ms);
  if (again == NULL || strcmp (again, text) != 0)
    return FALSE;
  *out = ms;
  return TRUE;
}

/* ------------------------------------------------------------ lines */

/* The body: {"seq":…,"prev":"…"} (hashed). */
static GString *
format_body (guint64 seq, const char *time, const char *kind, const char *actor,
             const char *details_canonical, const char *prev)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "{\"seq\":%" G_GUINT64_FORMAT ",\"time\":", seq);
  append_string (s, time);
  g_string_append (s, ",\"kind\":");
  append_string (s, kind);
  g_string_append (s, ",\"actor\":");
  append_string (s, actor);
  g_string_append (s, ",\"details\":");
  g_string_append (s, details_canonical);
  g_string_append (s, ",\"prev\":");
  append_string (s, prev);
  g_string_append_c (s, '}');
  return s;
}

/* body → line (no newline) with @hash. */
static void
body_to_line (GString *body, const char *hash)
{
  g_string_truncate (body, body->len - 1);
  g_string_append (body, HASH_MEMBER);
  g_string_append (body, hash);
  g_string_append (body, "\"}");
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n = json_object_get_member (o, name);
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

typedef enum {
  LINE_OK,
  LINE_MALFORMED,   /* not JSON, wrong members, not in the canonical form */
  LINE_HASH,        /* canonical, but the hash does not match the content */
} LineStatus;

/* Parses one line (no newline) strictly and checks that it is exactly what
 * format_body() + body_to_line() would write for its values. */
static LineStatus
parse_line (const char *line, gsize len, Entry *e, char **why)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GString) again = NULL;
  g_autofree char *details = NULL;
  JsonObject *o;
  JsonNode *n;
  const char *s;
  gint64 ms;

  if (len > CA_AUDIT_MAX_LINE)
    {
      *why = g_strdup_printf ("the line is over %u bytes", CA_AUDIT_MAX_LINE);
      return LINE_MALFORMED;
    }
  root = tg_json_parse_strict (line, len, CA_AUDIT_MAX_LINE, &error);
  if (root == NULL)
    {
      *why = g_strdup_printf ("not valid JSON (%s)", error->message);
      return LINE_MALFORMED;
    }
  o = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  if (o == NULL || json_object_get_size (o) != 7)
    {
      *why = g_strdup ("not an object with exactly the members seq, time, kind, actor, details, prev, hash");
      return LINE_MALFORMED;
    }
  n = json_object_get_member (o, "seq");
  if (n == NULL || JSON_NODE_TYPE (n) != JSON_NODE_VALUE || json_node_get_value_type (n) != G_TYPE_INT64
      || json_node_get_int (n) < 1)
    {
      *why = g_strdup ("seq is not a positive integer");
      return LINE_MALFORMED;
    }
  e->seq = (guint64) json_node_get_int (n);
  if ((s = member_string (o, "time")) == NULL || !parse_time_ms (s, &ms))
    {
      *why = g_strdup ("time is not YYYY-MM-DDTHH:MM:SS.mmmZ");
      return LINE_MALFORMED;
    }
  e->time = g_strdup (s);
  if ((s = member_string (o, "kind")) == NULL || !ca_audit_kind_is_valid (s))
    {
      *why = g_strdup ("kind is missing or not a valid kind");
      return LINE_MALFORMED;
    }
  e->kind = g_strdup (s);
  if ((s = member_string (o, "actor")) == NULL || !ca_audit_actor_is_valid (s))
    {
      *why = g_strdup ("actor is missing or not a valid actor");
      return LINE_MALFORMED;
    }
  e->actor = g_strdup (s);
  n = json_object_get_member (o, "details");
  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    {
      *why = g_strdup ("details is not an object");
      return LINE_MALFORMED;
    }
  e->details = json_node_copy (n);
  if ((s = member_string (o, "prev")) == NULL || !is_hex64 (s))
    {
      *why = g_strdup ("prev is not 64 lowercase hex digits");
      return LINE_MALFORMED;
    }
  memcpy (e->prev, s, HEX_LEN + 1);
  if ((s = member_string (o, "hash")) == NULL || !is_hex64 (s))
    {
      *why = g_strdup ("hash is not 64 lowercase hex digits");
      return LINE_MALFORMED;
    }
  memcpy (e->hash, s, HEX_LEN + 1);

  details = node_to_canonical (e->details);
  again = format_body (e->seq, e->time, e->kind, e->actor, details, e->prev);
  {
    g_autofree char *h = tg_sha256_hex (again->str, again->len);
    memcpy (e->computed, h, HEX_LEN + 1);
  }
  e->body_len = again->len;
  e->body = g_strndup (again->str, again->len);
  body_to_line (again, e->hash);
  if (again->len != len || memcmp (again->str, line, len) != 0)
    {
      *why = g_strdup ("the line is not in the form the writer produces (members, order, spacing or escaping changed)");
      return LINE_MALFORMED;
    }
  if (strcmp (e->computed, e->hash) != 0)
    {
      *why = g_strdup ("its hash does not match its content");
      return LINE_HASH;
    }
  return LINE_OK;
}

/* ------------------------------------------------------------ the file */

static gboolean
lock_fd (int fd, int op, const char *path, GError **error)
{
  while (flock (fd, op) != 0)
    if (errno != EINTR)
      {
        tg_set_error_errno (error, errno, "cannot lock %s", path);
        return FALSE;
      }
  return TRUE;
}

static void
unlock_fd (int fd)
{
  (void) flock (fd, LOCK_UN);
}

static gboolean
pread_all (int fd, void *buf, gsize len, off_t off, const char *path, GError **error)
{
  guint8 *p = buf;

  while (len > 0)
    {
      ssize_t n = pread (fd, p, len, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          tg_set_error_errno (error, n < 0 ? errno : EIO, "cannot read %s", path);
          return FALSE;
        }
      p += n;
      len -= (gsize) n;
      off += n;
    }
  return TRUE;
}

/* The tail: what the next append continues. */
typedef struct {
  guint64 seq;                  /* 0 for an empty log */
  char hash[HEX_LEN + 1];
  gboolean is_timestamp;
  guint64 stamped_head;         /* head_seq of a timestamp entry */
  char *body;                   /* the last line's body (for the TSA) */
  gsize body_len;
  off_t size;
} Tail;

static void
tail_clear (Tail *t)
{
  g_clear_pointer (&t->body, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Tail, tail_clear)

/* Reads and checks the last line; the caller holds a lock. */
static gboolean
read_tail (CaAudit *audit, Tail *t, GError **error)
{
  struct stat st;
  gsize want;
  g_autofree char *buf = NULL;
  gsize start;
  Entry e = { 0 };
  g_autofree char *why = NULL;
  LineStatus status;

  memset (t, 0, sizeof *t);
  memcpy (t->hash, ZERO_HASH, HEX_LEN + 1);
  if (fstat (audit->fd, &st) != 0)
    {
      tg_set_error_errno (error, errno, "cannot stat %s", audit->path);
      return FALSE;
    }
  t->size = st.st_size;
  if (st.st_size == 0)
    return TRUE;
  want = (gsize) MIN ((guint64) st.st_size, (guint64) CA_AUDIT_MAX_LINE + 2);
  buf = g_malloc (want + 1);
  if (!pread_all (audit->fd, buf, want, st.st_size - (off_t) want, audit->path, error))
    return FALSE;
  buf[want] = '\0';
  if (buf[want - 1] != '\n')
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "%s ends with an incomplete line (a write was interrupted, or the file was cut); "
                   "refusing to append after it: run `testigo audit verify` and repair the log by hand",
                   audit->path);
      return FALSE;
    }
  start = want - 1;
  while (start > 0 && buf[start - 1] != '\n')
    start--;
  if (start == 0 && (off_t) want < st.st_size)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "%s: the last line is over %u bytes; refusing to append",
                   audit->path, CA_AUDIT_MAX_LINE);
      return FALSE;
    }
  status = parse_line (buf + start, want - 1 - start, &e, &why);
  if (status != LINE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "%s: the last line is corrupt (%s); refusing to append: run `testigo audit verify`",
                   audit->path, why);
      entry_clear (&e);
      return FALSE;
    }
  t->seq = e.seq;
  memcpy (t->hash, e.hash, HEX_LEN + 1);
  t->is_timestamp = strcmp (e.kind, "timestamp") == 0;
  if (t->is_timestamp)
    {
      JsonNode *hs = json_object_get_member (json_node_get_object (e.details), "head_seq");
      if (hs != NULL && JSON_NODE_TYPE (hs) == JSON_NODE_VALUE && json_node_get_value_type (hs) == G_TYPE_INT64
          && json_node_get_int (hs) > 0)
        t->stamped_head = (guint64) json_node_get_int (hs);
    }
  t->body = g_steal_pointer (&e.body);
  t->body_len = e.body_len;
  entry_clear (&e);
  return TRUE;
}

CaAudit *
ca_audit_open (const char *path, GError **error)
{
  g_autoptr (CaAudit) audit = g_new0 (CaAudit, 1);
  g_auto (Tail) t = { 0 };
  struct stat st;
  gboolean created = TRUE;

  audit->path = g_strdup (path);
  audit->fd = open (path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (audit->fd < 0 && errno == EEXIST)
    {
      created = FALSE;
      audit->fd = open (path, O_RDWR | O_APPEND | O_CLOEXEC);
    }
  if (audit->fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open the audit log %s", path);
      return NULL;
    }
  if (fstat (audit->fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the audit log %s is not a regular file", path);
      return NULL;
    }
  if (created)
    {
      /* the new name must survive a crash as well as the lines */
      g_autofree char *dir = g_path_get_dirname (path);
      int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0)
        {
          (void) fsync (dfd);
          close (dfd);
        }
    }
  if (!lock_fd (audit->fd, LOCK_SH, path, error))
    return NULL;
  if (!read_tail (audit, &t, error))
    {
      unlock_fd (audit->fd);
      return NULL;
    }
  unlock_fd (audit->fd);
  return g_steal_pointer (&audit);
}

void
ca_audit_close (CaAudit *audit)
{
  if (audit == NULL)
    return;
  if (audit->fd >= 0)
    close (audit->fd);
  g_free (audit->path);
  g_free (audit);
}

/* Appends under the exclusive lock. With @stamp_head, skips (returning TRUE)
 * when the log's last entry already is a time-stamp of that head or later. */
static gboolean
append_locked (CaAudit *audit, const char *kind, const char *actor, const char *details_canonical,
               gint64 time_ms, guint64 stamp_head, guint64 *seq_out, GError **error)
{
  g_auto (Tail) t = { 0 };
  g_autofree char *time = NULL;
  g_autofree char *hash = NULL;
  g_autoptr (GString) line = NULL;
  gboolean ok = FALSE;

  if (!lock_fd (audit->fd, LOCK_EX, audit->path, error))
    return FALSE;
  if (!read_tail (audit, &t, error))
    goto out;
  if (stamp_head > 0 && t.is_timestamp && t.stamped_head >= stamp_head)
    {
      ok = TRUE;
      if (seq_out)
        *seq_out = 0;
      goto out;
    }
  if (time_ms <= 0)
    time_ms = g_get_real_time () / 1000;
  time = format_time_ms (time_ms);
  if (time == NULL || time_ms >= G_GINT64_CONSTANT (253402300800000)) /* year 10000 */
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "audit entry time %" G_GINT64_FORMAT " ms is out of range", time_ms);
      goto out;
    }
  line = format_body (t.seq + 1, time, kind, actor, details_canonical, t.hash);
  hash = tg_sha256_hex (line->str, line->len);
  body_to_line (line, hash);
  if (line->len > CA_AUDIT_MAX_LINE)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "audit entry of %" G_GSIZE_FORMAT " bytes is over the %u-byte limit",
                   line->len, CA_AUDIT_MAX_LINE);
      goto out;
    }
  {
    /* what is written must read back as written (nesting depth, number forms) */
    Entry e = { 0 };
    g_autofree char *why = NULL;
    LineStatus ls = parse_line (line->str, line->len, &e, &why);
    entry_clear (&e);
    if (ls != LINE_OK)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the audit entry would not read back as written: %s", why);
        goto out;
      }
  }
  g_string_append_c (line, '\n');
  if (!tg_write_all (audit->fd, line->str, line->len, audit->path, error) || fdatasync (audit->fd) != 0)
    {
      int errsv = errno;
      /* take back a partial line so the log stays appendable */
      if (ftruncate (audit->fd, t.size) == 0)
        (void) fdatasync (audit->fd);
      if (error && *error == NULL)
        tg_set_error_errno (error, errsv, "cannot sync %s", audit->path);
      goto out;
    }
  if (seq_out)
    *seq_out = t.seq + 1;
  ok = TRUE;
out:
  unlock_fd (audit->fd);
  return ok;
}

gboolean
ca_audit_append_full (CaAudit *audit, const char *kind, const char *actor, const char *details_json,
                      gint64 time_ms, guint64 *seq, GError **error)
{
  g_autoptr (JsonNode) details = NULL;
  g_autofree char *canonical = NULL;

  g_return_val_if_fail (audit != NULL, FALSE);
  if (!ca_audit_kind_is_valid (kind) || strcmp (kind, "timestamp") == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "audit kind \"%s\" is invalid: 1-%d characters a-z, 0-9, '-', '_', starting with a letter; "
                   "\"timestamp\" is reserved", kind ? kind : "", CA_AUDIT_MAX_KIND);
      return FALSE;
    }
  if (!ca_audit_actor_is_valid (actor))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "audit actor \"%s\" is invalid: 1-%d characters A-Z, a-z, 0-9 and . _ : @ - +",
                   actor ? actor : "", CA_AUDIT_MAX_ACTOR);
      return FALSE;
    }
  if (details_json == NULL)
    details_json = "{}";
  details = tg_json_parse_strict (details_json, strlen (details_json), CA_AUDIT_MAX_LINE, error);
  if (details == NULL)
    {
      g_prefix_error (error, "audit details: ");
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (details))
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "audit details must be a JSON object");
      return FALSE;
    }
  canonical = node_to_canonical (details);
  {
    /* the verifier re-reads what we write: the canonical form must be a fixed point */
    g_autoptr (JsonNode) again = tg_json_parse_strict (canonical, strlen (canonical), CA_AUDIT_MAX_LINE, NULL);
    g_autofree char *twice = again ? node_to_canonical (again) : NULL;
    if (twice == NULL || strcmp (twice, canonical) != 0)
      {
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                     "audit details hold a value with no stable canonical form (a number such as -0.0?)");
        return FALSE;
      }
  }
  return append_locked (audit, kind, actor, canonical, time_ms, 0, seq, error);
}

gboolean
ca_audit_append (CaAudit *audit, const char *kind, const char *actor, const char *details_json,
                 gint64 time_ms, GError **error)
{
  return ca_audit_append_full (audit, kind, actor, details_json, time_ms, NULL, error);
}

/* ------------------------------------------------------------ time-stamps */

/* The certificates a token embeds (an empty stack when none). */
static BundleCertStack *
token_certs (PKCS7 *token)
{
  STACK_OF (X509) *certs = NULL;

  if (token != NULL && PKCS7_type_is_signed (token) && token->d.sign != NULL)
    certs = token->d.sign->cert;
  return certs ? X509_chain_up_ref (certs) : sk_X509_new_null ();
}

gboolean
ca_audit_timestamp_head_at (CaAudit *audit, const char *keys_dir, const char *tsa_url,
                            const char *tsa_ca_file, gint64 gen_time, guint64 *seq, GError **error)
{
  g_auto (Tail) t = { 0 };
  g_autoptr (TS_REQ) req = NULL;
  g_autoptr (GBytes) req_der = NULL;
  g_autoptr (GBytes) resp_der = NULL;
  g_autoptr (TS_RESP) resp = NULL;
  g_autoptr (TS_VERIFY_CTX) vctx = NULL;
  g_autoptr (BundleCertStack) roots = NULL;
  g_autoptr (BundleCertStack) tsa_certs = NULL;
  g_autoptr (GBytes) token = NULL;
  g_autofree char *b64 = NULL;
  g_autofree char *roots_path = NULL;
  g_autoptr (GString) details = NULL;
  guint64 nonce = 0;
  guint8 *der = NULL;
  int der_len;
  const guint8 *p;

  g_return_val_if_fail (audit != NULL, FALSE);
  if (seq)
    *seq = 0;
  if (keys_dir == NULL && tsa_url == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "a time-stamp authority is needed: a keys directory (built-in TSA) or a TSA URL");
      return FALSE;
    }
  /* The head, read under a shared lock; the TSA is asked without holding
   * any lock, so a slow TSA never blocks the appenders. */
  if (!lock_fd (audit->fd, LOCK_SH, audit->path, error))
    return FALSE;
  if (!read_tail (audit, &t, error))
    {
      unlock_fd (audit->fd);
      return FALSE;
    }
  unlock_fd (audit->fd);
  if (t.seq == 0 || t.is_timestamp)
    return TRUE; /* nothing to stamp, or already stamped */

  /* imprint = SHA-256(body of the head line) = the head's hash */
  if (RAND_bytes ((guint8 *) &nonce, sizeof nonce) != 1)
    {
      tg_set_error_openssl (error, "cannot draw a nonce");
      return FALSE;
    }
  nonce &= G_GUINT64_CONSTANT (0x7fffffffffffffff);
  req = bundle_ts_request_new ((const guint8 *) t.body, t.body_len, nonce, NULL, error);
  if (req == NULL)
    return FALSE;
  der_len = i2d_TS_REQ (req, &der);
  if (der_len <= 0)
    {
      tg_set_error_openssl (error, "cannot encode the time-stamp request");
      return FALSE;
    }
  req_der = g_bytes_new (der, (gsize) der_len);
  OPENSSL_free (der);
  if (tsa_url != NULL)
    resp_der = bundle_tsa_http_post (tsa_url, req_der, error);
  else
    {
      g_autoptr (BundleTsa) tsa = bundle_tsa_new (keys_dir, error);
      if (tsa != NULL)
        resp_der = bundle_tsa_respond (tsa, req_der, gen_time, error);
    }
  if (resp_der == NULL)
    return FALSE;

  /* Check the reply before appending it: status, imprint, nonce, strict
   * form, and the signer's chain when trust anchors are at hand. */
  p = g_bytes_get_data (resp_der, NULL);
  resp = d2i_TS_RESP (NULL, &p, (long) g_bytes_get_size (resp_der));
  if (resp == NULL)
    {
      tg_set_error_openssl (error, "the TSA reply is not a TimeStampResp");
      return FALSE;
    }
  if (tsa_ca_file != NULL)
    roots_path = g_strdup (tsa_ca_file);
  else if (keys_dir != NULL)
    roots_path = g_build_filename (keys_dir, "root.pem", NULL);
  vctx = TS_REQ_to_TS_VERIFY_CTX (req, NULL);
  if (vctx == NULL)
    {
      tg_set_error_openssl (error, "cannot prepare the time-stamp check");
      return FALSE;
    }
  if (roots_path != NULL)
    {
      X509_STORE *store = X509_STORE_new ();
      if ((roots = bundle_load_certs (roots_path, error)) == NULL)
        {
          X509_STORE_free (store);
          return FALSE;
        }
      for (int i = 0; i < sk_X509_num (roots); i++)
        X509_STORE_add_cert (store, sk_X509_value (roots, i));
      /* the built-in TSA answering at a given time is judged at that time */
      if (tsa_url == NULL && gen_time > 0)
        X509_VERIFY_PARAM_set_time (X509_STORE_get0_param (store), (time_t) gen_time);
      TS_VERIFY_CTX_set_store (vctx, store);
      TS_VERIFY_CTX_add_flags (vctx, TS_VFY_SIGNATURE | TS_VFY_SIGNER);
    }
  if (TS_RESP_verify_response (vctx, resp) != 1)
    {
      tg_set_error_openssl (error, "the time-stamp reply does not verify");
      return FALSE;
    }
  tsa_certs = token_certs (TS_RESP_get_token (resp));
  if (sk_X509_num (tsa_certs) == 0)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_CRYPTO, "the time-stamp token embeds no TSA certificate");
      return FALSE;
    }
  if (!bundle_ts_response_check_strict (resp_der, tsa_certs, error))
    return FALSE;
  token = bundle_ts_response_token (resp_der, error);
  if (token == NULL)
    return FALSE;
  b64 = g_base64_encode (g_bytes_get_data (token, NULL), g_bytes_get_size (token));

  details = g_string_new (NULL);
  g_string_append_printf (details, "{\"head_seq\":%" G_GUINT64_FORMAT ",\"head_hash\":\"%s\",\"token\":\"%s\"}",
                          t.seq, t.hash, b64);
  return append_locked (audit, "timestamp", "system", details->str, 0, t.seq, seq, error);
}

gboolean
ca_audit_timestamp_head_full (CaAudit *audit, const char *keys_dir, const char *tsa_url,
                              const char *tsa_ca_file, guint64 *seq, GError **error)
{
  return ca_audit_timestamp_head_at (audit, keys_dir, tsa_url, tsa_ca_file, 0, seq, error);
}

gboolean
ca_audit_timestamp_head (CaAudit *audit, const char *keys_dir, const char *tsa_url, GError **error)
{
  return ca_audit_timestamp_head_full (audit, keys_dir, tsa_url, NULL, NULL, error);
}

/* ------------------------------------------------------------ verify */

void
ca_audit_report_free (CaAuditReport *report)
{
  if (report == NULL)
    return;
  g_free (report->message);
  g_free (report);
}

static char *
openssl_reason (void)
{
  unsigned long e = ERR_peek_last_error ();
  char buf[256];

  if (e == 0)
    return g_strdup ("no reason given");
  ERR_error_string_n (e, buf, sizeof buf);
  ERR_clear_error ();
  return g_strdup (buf);
}

/* Checks a timestamp entry's token: canonical base64 and DER, TSTInfo with a
 * SHA-256 imprint equal to @head_hash, CMS signature, ESS, and the TSA chain
 * to @roots with the time-stamping EKU, judged at genTime. */
static gboolean
check_token (const char *b64, const char *head_hash, BundleCertStack *roots, gint64 *gen_time, char **why)
{
  gsize len = 0;
  g_autofree guint8 *der = NULL;
  g_autofree char *again = NULL;
  g_autoptr (PKCS7) token = NULL;
  g_autoptr (TS_TST_INFO) tst = NULL;
  g_autoptr (TS_VERIFY_CTX) vctx = NULL;
  TS_MSG_IMPRINT *mi;
  ASN1_OCTET_STRING *imprint;
  const guint8 *p;
  guint8 *re = NULL;
  int re_len;
  guint8 head[HASH_LEN];
  guint8 *expected;
  X509_STORE *store;

  if (*b64 == '\0' || strlen (b64) > CA_AUDIT_MAX_LINE)
    {
      *why = g_strdup ("the token is empty");
      return FALSE;
    }
  der = g_base64_decode (b64, &len);
  again = g_base64_encode (der, len);
  if (len == 0 || strcmp (again, b64) != 0)
    {
      *why = g_strdup ("the token is not canonical base64");
      return FALSE;
    }
  p = der;
  token = d2i_PKCS7 (NULL, &p, (long) len);
  if (token == NULL || p != der + len)
    {
      ERR_clear_error ();
      *why = g_strdup ("the token is not one DER ContentInfo");
      return FALSE;
    }
  re_len = i2d_PKCS7 (token, &re);
  if (re_len != (int) len || memcmp (re, der, len) != 0)
    {
      OPENSSL_free (re);
      *why = g_strdup ("the token is not in the DER encoding it re-encodes to");
      return FALSE;
    }
  OPENSSL_free (re);
  tst = PKCS7_to_TS_TST_INFO (token);
  if (tst == NULL || !bundle_asn1_time_to_unix (TS_TST_INFO_get_time (tst), gen_time))
    {
      ERR_clear_error ();
      *why = g_strdup ("the token holds no readable TSTInfo");
      return FALSE;
    }
  mi = TS_TST_INFO_get_msg_imprint (tst);
  imprint = TS_MSG_IMPRINT_get_msg (mi);
  hex_to_bytes (head_hash, head);
  if (OBJ_obj2nid (TS_MSG_IMPRINT_get_algo (mi)->algorithm) != NID_sha256)
    {
      *why = g_strdup ("the token's imprint is not SHA-256");
      return FALSE;
    }
  if (ASN1_STRING_length (imprint) != HASH_LEN || memcmp (ASN1_STRING_get0_data (imprint), head, HASH_LEN) != 0)
    {
      *why = g_strdup ("the token is over other data, not over head_hash");
      return FALSE;
    }

  vctx = TS_VERIFY_CTX_new ();
  store = X509_STORE_new ();
  for (int i = 0; i < sk_X509_num (roots); i++)
    X509_STORE_add_cert (store, sk_X509_value (roots, i));
  X509_VERIFY_PARAM_set_time (X509_STORE_get0_param (store), (time_t) *gen_time);
  TS_VERIFY_CTX_set_store (vctx, store);
  expected = OPENSSL_malloc (HASH_LEN);
  memcpy (expected, head, HASH_LEN);
  TS_VERIFY_CTX_set_imprint (vctx, expected, HASH_LEN);
  TS_VERIFY_CTX_add_flags (vctx, TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_SIGNER | TS_VFY_IMPRINT);
  if (TS_RESP_verify_token (vctx, token) != 1)
    {
      g_autofree char *reason = openssl_reason ();
      *why = g_strdup_printf ("the token does not verify against the TSA roots: %s", reason);
      return FALSE;
    }
  return TRUE;
}

/* A capped line reader. */
typedef struct {
  int fd;
  GByteArray *buf;
  gsize pos;        /* start of the unread data in buf */
  gboolean eof;
} Reader;

typedef enum { READ_LINE, READ_EOF, READ_TORN, READ_LONG, READ_ERROR } ReadStatus;

static ReadStatus
reader_next (Reader *r, const char **line, gsize *len, GError **error)
{
  for (;;)
    {
      guint8 *start = r->buf->data + r->pos;
      gsize avail = r->buf->len - r->pos;
      guint8 *nl = avail ? memchr (start, '\n', avail) : NULL;
      guint8 chunk[65536];
      ssize_t n;

      if (nl != NULL)
        {
          *line = (const char *) start;
          *len = (gsize) (nl - start);
          r->pos += *len + 1;
          return *len > CA_AUDIT_MAX_LINE ? READ_LONG : READ_LINE;
        }
      if (avail > CA_AUDIT_MAX_LINE)
        return READ_LONG;
      if (r->eof)
        {
          *line = (const char *) start;
          *len = avail;
          return avail == 0 ? READ_EOF : READ_TORN;
        }
      if (r->pos > 0)
        {
          g_byte_array_remove_range (r->buf, 0, (guint) r->pos);
          r->pos = 0;
        }
      do
        n = read (r->fd, chunk, sizeof chunk);
      while (n < 0 && errno == EINTR);
      if (n < 0)
        {
          tg_set_error_errno (error, errno, "cannot read");
          return READ_ERROR;
        }
      if (n == 0)
        r->eof = TRUE;
      else
        g_byte_array_append (r->buf, chunk, (guint) n);
    }
}

static CaAuditReport *
report_bad (CaAuditReport *r, guint64 line, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

static CaAuditReport *
report_bad (CaAuditReport *r, guint64 line, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  r->ok = FALSE;
  r->first_bad = line;
  r->message = g_strdup_printf ("line %" G_GUINT64_FORMAT ": %s", line, msg);
  return r;
}

CaAuditReport *
ca_audit_verify (const char *path, const char *tsa_ca_file, GError **error)
{
  g_autoptr (BundleCertStack) roots = NULL;
  g_autoptr (CaAuditReport) r = g_new0 (CaAuditReport, 1);
  g_autoptr (GByteArray) hashes = g_byte_array_new (); /* 32 bytes per entry, by seq */
  g_autoptr (GByteArray) stamps = g_byte_array_new (); /* 1 per entry: is it a time-stamp */
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  char prev[HEX_LEN + 1] = ZERO_HASH;
  guint64 lineno = 0, covered = 0;
  gint64 last_gen = 0;
  Reader reader = { -1, buf, 0, FALSE };
  struct stat st;
  int fd;

  if (tsa_ca_file != NULL && (roots = bundle_load_certs (tsa_ca_file, error)) == NULL)
    return NULL;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    {
      tg_set_error_errno (error, errno, "cannot open the audit log %s", path);
      return NULL;
    }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the audit log %s is not a regular file", path);
      return NULL;
    }
  reader.fd = fd;
  r->ok = TRUE;
  for (;;)
    {
      const char *line = NULL;
      gsize len = 0;
      ReadStatus rs = reader_next (&reader, &line, &len, error);
      Entry e = { 0 };
      g_autofree char *why = NULL;
      LineStatus ls;

      if (rs == READ_ERROR)
        {
          close (fd);
          g_prefix_error (error, "%s: ", path);
          return NULL;
        }
      if (rs == READ_EOF)
        break;
      lineno++;
      if (rs == READ_LONG)
        {
          report_bad (r, lineno, "the line is over %u bytes", CA_AUDIT_MAX_LINE);
          break;
        }
      if (rs == READ_TORN)
        {
          report_bad (r, lineno, "incomplete last line (%" G_GSIZE_FORMAT " bytes, no newline): a write was "
                      "interrupted or the file was cut", len);
          break;
        }
      ls = parse_line (line, len, &e, &why);
      if (ls == LINE_MALFORMED)
        report_bad (r, lineno, "edited: %s", why);
      else if (e.seq != lineno)
        {
          if (e.seq > lineno)
            report_bad (r, lineno, "seq %" G_GUINT64_FORMAT " where %" G_GUINT64_FORMAT " was expected: "
                        "an entry was removed or the lines were reordered", e.seq, lineno);
          else
            report_bad (r, lineno, "seq %" G_GUINT64_FORMAT " where %" G_GUINT64_FORMAT " was expected: "
                        "the lines were reordered or an entry was duplicated", e.seq, lineno);
        }
      else if (ls == LINE_HASH)
        report_bad (r, lineno, "edited: %s", why);
      else if (strcmp (e.prev, prev) != 0)
        report_bad (r, lineno, "prev does not match the hash of line %" G_GUINT64_FORMAT
                    ": an earlier line was edited, replaced or removed", lineno - 1);
      else if (strcmp (e.kind, "timestamp") == 0)
        {
          JsonObject *d = json_node_get_object (e.details);
          JsonNode *hs = json_object_get_member (d, "head_seq");
          const char *hh = member_string (d, "head_hash");
          const char *tok = member_string (d, "token");
          guint64 head_seq = 0;
          gint64 gen = 0;
          g_autofree char *canon = node_to_canonical (e.details);
          g_autofree char *expect = NULL;

          if (hs != NULL && JSON_NODE_TYPE (hs) == JSON_NODE_VALUE && json_node_get_value_type (hs) == G_TYPE_INT64
              && json_node_get_int (hs) > 0)
            head_seq = (guint64) json_node_get_int (hs);
          if (head_seq > 0 && is_hex64 (hh) && tok != NULL)
            expect = g_strdup_printf ("{\"head_seq\":%" G_GUINT64_FORMAT ",\"head_hash\":\"%s\",\"token\":\"%s\"}",
                                      head_seq, hh, tok);
          if (expect == NULL || strcmp (expect, canon) != 0)
            report_bad (r, lineno, "bad time-stamp entry: details must be exactly head_seq, head_hash, token");
          else if (head_seq >= e.seq)
            report_bad (r, lineno, "bad time-stamp entry: head_seq %" G_GUINT64_FORMAT " is not an earlier entry", head_seq);
          else
            {
              g_autofree char *head_hex = tg_hex (hashes->data + (head_seq - 1) * HASH_LEN, HASH_LEN);
              g_autofree char *twhy = NULL;
              if (strcmp (head_hex, hh) != 0)
                report_bad (r, lineno, "bad time-stamp entry: head_hash is not the hash of line %" G_GUINT64_FORMAT,
                            head_seq);
              else if (roots == NULL)
                report_bad (r, lineno, "bad time-stamp entry: no TSA trust anchors were given to check the token");
              else if (!check_token (tok, hh, roots, &gen, &twhy))
                report_bad (r, lineno, "bad time-stamp token: %s", twhy);
              else if (gen < last_gen)
                report_bad (r, lineno, "bad time-stamp token: its genTime is earlier than the previous token's");
              else
                {
                  last_gen = gen;
                  covered = MAX (covered, head_seq);
                  r->timestamps++;
                }
            }
        }

      if (r->ok)
        {
          guint8 h[HASH_LEN];
          hex_to_bytes (e.hash, h);
          guint8 is_stamp = strcmp (e.kind, "timestamp") == 0;
          g_byte_array_append (hashes, h, HASH_LEN);
          g_byte_array_append (stamps, &is_stamp, 1);
          memcpy (prev, e.hash, HEX_LEN + 1);
          r->entries++;
        }
      entry_clear (&e);
      if (!r->ok)
        break;
    }
  close (fd);
  r->last_stamped_time = last_gen;
  /* entries no token covers, time-stamp entries aside (they protect, they hold no event) */
  for (guint64 s = covered; s < r->entries; s++)
    r->unstamped_tail += stamps->data[s] ? 0 : 1;
  if (r->ok)
    {
      if (r->entries == 0)
        r->message = g_strdup ("the log is empty");
      else
        r->message = g_strdup_printf ("%" G_GUINT64_FORMAT " entries, chain intact, %" G_GUINT64_FORMAT
                                      " valid time-stamp(s); %" G_GUINT64_FORMAT
                                      " entr%s after the last time-stamp (not protected against truncation)",
                                      r->entries, r->timestamps, r->unstamped_tail,
                                      r->unstamped_tail == 1 ? "y" : "ies");
    }
  return g_steal_pointer (&r);
}

/* chain.c — checks the rolling SHA-256 chain of events.jsonl against the
 * recording bytes as they stream by (docs/bundle-format.md, "Hash chain"). */
#include "config.h"
#include "bundle-private.h"
#include "tg-schema.h"

#include <json-glib/json-glib.h>
#include <string.h>

typedef struct {
  char *file;
  guint64 offset;
  guint64 length;
  guint8 sha256[32];
} Segment;

struct _BundleChain {
  GArray *segments;      /* Segment, in log order */
  GHashTable *seen;      /* file name -> GINT_TO_POINTER (1) once streamed */
  gint64 session_end;
  /* streaming state */
  char *file;
  guint cursor;          /* index of the next segment of this file */
  guint64 pos;           /* bytes of this file streamed */
  guint64 seg_done;      /* bytes of the current segment hashed */
  EVP_MD_CTX *ctx;
  gboolean in_segment;
};

static void
segment_clear (gpointer p)
{
  g_free (((Segment *) p)->file);
}

/* recording[-N].mkv|webm (one file per part, all tracks) or
 * recording[-N]-PARTY-KIND.mkv|webm (one file per track of a part). */
gboolean
bundle_recording_name_ok (const char *name)
{
  return g_regex_match_simple ("^recording(-[0-9]{1,4})?(-(signatory|officer)-(audio|video))?\\.(mkv|webm)$",
                               name, 0, 0);
}

gboolean
bundle_still_name_ok (const char *name)
{
  return strlen (name) <= 64 && g_regex_match_simple ("^[A-Za-z0-9][A-Za-z0-9._-]*\\.png$", name, 0, 0);
}

gboolean
bundle_document_name_ok (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > 64 || !g_ascii_isalnum (name[0]))
    return FALSE;
  for (gsize i = 1; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static gboolean
hex32 (const char *hex, guint8 out[32])
{
  if (hex == NULL || strlen (hex) != 64)
    return FALSE;
  for (int i = 0; i < 32; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

BundleChain *
bundle_chain_new (const char *events, gsize len, GError **error)
{
  g_autoptr (BundleChain) chain = g_new0 (BundleChain, 1);
  guint8 prev[32] = { 0 };
  gsize start = 0;
  guint line_no = 0;
  gint64 expect_seq = 0;
  GHashTable *next_offset = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  chain->segments = g_array_new (FALSE, TRUE, sizeof (Segment));
  g_array_set_clear_func (chain->segments, segment_clear);
  chain->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  chain->ctx = EVP_MD_CTX_new ();

  if (len > BUNDLE_MAX_EVENTS)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "events.jsonl is over %u bytes", BUNDLE_MAX_EVENTS);
      goto fail;
    }
  if (len > 0 && events[len - 1] != '\n')
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "events.jsonl does not end with a newline");
      goto fail;
    }
  while (start < len)
    {
      const char *nl = memchr (events + start, '\n', len - start);
      gsize line_len = (gsize) (nl - (events + start));
      g_autoptr (JsonNode) node = NULL;
      g_autoptr (GError) local = NULL;
      JsonObject *obj;
      const char *type;

      line_no++;
      node = tg_json_parse_strict (events + start, line_len, BUNDLE_MAX_EVENT_LINE, &local);
      if (node == NULL || !tg_schema_check_event (node, &local))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "events.jsonl line %u: %s", line_no,
                       local->message);
          goto fail;
        }
      start += line_len + 1;
      obj = json_node_get_object (node);
      if (json_object_get_int_member (obj, "seq") != expect_seq)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "events.jsonl line %u: seq %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT,
                       line_no, json_object_get_int_member (obj, "seq"), expect_seq);
          goto fail;
        }
      expect_seq++;
      type = json_object_get_string_member (obj, "type");
      if (g_strcmp0 (type, "session-end") == 0)
        tg_time_parse (json_object_get_string_member (obj, "time"), &chain->session_end);
      if (g_strcmp0 (type, "segment") == 0)
        {
          Segment seg = { 0 };
          guint8 want[32], link[32];
          g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
          const char *file = json_object_get_string_member (obj, "file");
          guint64 *next;

          seg.file = g_strdup (file);
          seg.offset = (guint64) json_object_get_int_member (obj, "offset");
          seg.length = (guint64) json_object_get_int_member (obj, "length");
          if (!bundle_recording_name_ok (file)
              || !hex32 (json_object_get_string_member (obj, "sha256"), seg.sha256)
              || !hex32 (json_object_get_string_member (obj, "chain"), want))
            {
              g_free (seg.file);
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "events.jsonl line %u: malformed segment entry", line_no);
              goto fail;
            }
          next = g_hash_table_lookup (next_offset, file);
          if ((next ? *next : 0) != seg.offset)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "events.jsonl line %u: segment of %s starts at %" G_GUINT64_FORMAT
                           ", expected %" G_GUINT64_FORMAT " (segments must be contiguous)",
                           line_no, file, seg.offset, next ? *next : 0);
              g_free (seg.file);
              goto fail;
            }
          if (next == NULL)
            {
              next = g_new0 (guint64, 1);
              g_hash_table_insert (next_offset, g_strdup (file), next);
            }
          *next = seg.offset + seg.length;
          EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
          EVP_DigestUpdate (md, prev, 32);
          EVP_DigestUpdate (md, seg.sha256, 32);
          EVP_DigestFinal_ex (md, link, NULL);
          if (memcmp (link, want, 32) != 0)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "events.jsonl line %u: chain hash does not follow from the previous entry",
                           line_no);
              g_free (seg.file);
              goto fail;
            }
          memcpy (prev, link, 32);
          g_array_append_val (chain->segments, seg);
        }
    }
  g_hash_table_unref (next_offset);
  return g_steal_pointer (&chain);

fail:
  g_hash_table_unref (next_offset);
  return NULL;
}

void
bundle_chain_free (BundleChain *chain)
{
  if (chain == NULL)
    return;
  g_clear_pointer (&chain->segments, g_array_unref);
  g_clear_pointer (&chain->seen, g_hash_table_unref);
  EVP_MD_CTX_free (chain->ctx);
  g_free (chain->file);
  g_free (chain);
}

gboolean
bundle_chain_covers (BundleChain *chain, const char *file)
{
  for (guint i = 0; i < chain->segments->len; i++)
    if (strcmp (g_array_index (chain->segments, Segment, i).file, file) == 0)
      return TRUE;
  return FALSE;
}

static void
advance_to_next (BundleChain *chain)
{
  while (chain->cursor < chain->segments->len
         && strcmp (g_array_index (chain->segments, Segment, chain->cursor).file, chain->file) != 0)
    chain->cursor++;
  chain->in_segment = chain->cursor < chain->segments->len;
  chain->seg_done = 0;
  if (chain->in_segment)
    EVP_DigestInit_ex (chain->ctx, EVP_sha256 (), NULL);
}

void
bundle_chain_begin_file (BundleChain *chain, const char *file)
{
  g_free (chain->file);
  chain->file = g_strdup (file);
  chain->cursor = 0;
  chain->pos = 0;
  g_hash_table_replace (chain->seen, g_strdup (file), GINT_TO_POINTER (1));
  advance_to_next (chain);
}

gboolean
bundle_chain_feed (BundleChain *chain, const guint8 *data, gsize len, GError **error)
{
  while (len > 0 && chain->in_segment)
    {
      Segment *seg = &g_array_index (chain->segments, Segment, chain->cursor);
      gsize take = (gsize) MIN ((guint64) len, seg->length - chain->seg_done);
      EVP_DigestUpdate (chain->ctx, data, take);
      chain->seg_done += take;
      chain->pos += take;
      data += take;
      len -= take;
      if (chain->seg_done == seg->length)
        {
          guint8 got[32];
          EVP_DigestFinal_ex (chain->ctx, got, NULL);
          if (memcmp (got, seg->sha256, 32) != 0)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT
                           " of %s do not match their hash-chain entry",
                           seg->offset, seg->offset + seg->length, chain->file);
              return FALSE;
            }
          chain->cursor++;
          advance_to_next (chain);
        }
    }
  chain->pos += len;
  return TRUE;
}

gboolean
bundle_chain_end_file (BundleChain *chain, guint64 size, guint64 *unchained, GError **error)
{
  guint64 chained = 0;

  if (chain->in_segment)
    {
      Segment *seg = &g_array_index (chain->segments, Segment, chain->cursor);
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "%s ends at %" G_GUINT64_FORMAT " bytes but the hash chain covers it up to %"
                   G_GUINT64_FORMAT, chain->file, size, seg->offset + seg->length);
      return FALSE;
    }
  for (guint i = 0; i < chain->segments->len; i++)
    {
      Segment *seg = &g_array_index (chain->segments, Segment, i);
      if (strcmp (seg->file, chain->file) == 0)
        chained = seg->offset + seg->length;
    }
  if (unchained)
    *unchained = size - chained;
  return TRUE;
}

gboolean
bundle_chain_check_all_seen (BundleChain *chain, GError **error)
{
  for (guint i = 0; i < chain->segments->len; i++)
    {
      Segment *seg = &g_array_index (chain->segments, Segment, i);
      if (!g_hash_table_contains (chain->seen, seg->file))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "the hash chain names %s, which is not in the bundle", seg->file);
          return FALSE;
        }
    }
  return TRUE;
}

gint64
bundle_chain_session_end (BundleChain *chain)
{
  return chain->session_end;
}

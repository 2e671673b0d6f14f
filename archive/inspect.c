/* inspect.c — `testigo inspect`: what a bundle holds, without judging it. */
#include "config.h"
#include "bundle-private.h"

#include <json-glib/json-glib.h>
#include <string.h>

static void
print_record (FILE *out, const char *text, gsize len)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *root;
  static const char *const fields[][2] = {
    { "case", "id" }, { "case", "action" }, { "case", "reason" }, { "case", "channel" },
    { "holder", "name" }, { "holder", "national_id" }, { "certificate", "serial" },
    { "officer", "id" }, { "officer", "role" }, { "session", "started_at" }, { "session", "ended_at" },
    { "outcome", "result" }, { "outcome", "completed_at" },
  };

  if (!json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      fprintf (out, "record: not readable JSON\n");
      return;
    }
  root = json_node_get_object (json_parser_get_root (parser));
  fprintf (out, "record:\n");
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    {
      JsonObject *o = json_object_has_member (root, fields[i][0])
                          ? json_object_get_object_member (root, fields[i][0]) : NULL;
      JsonNode *n = o && json_object_has_member (o, fields[i][1]) ? json_object_get_member (o, fields[i][1]) : NULL;
      if (n && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
        fprintf (out, "  %s.%s: %s\n", fields[i][0], fields[i][1], json_node_get_string (n));
    }
  if (json_object_has_member (root, "documents") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (root, "documents")))
    {
      JsonArray *docs = json_object_get_array_member (root, "documents");
      for (guint i = 0; i < json_array_get_length (docs); i++)
        {
          JsonNode *d = json_array_get_element (docs, i);
          JsonObject *o = JSON_NODE_HOLDS_OBJECT (d) ? json_node_get_object (d) : NULL;
          JsonNode *name = o ? json_object_get_member (o, "name") : NULL;
          JsonNode *type = o ? json_object_get_member (o, "media_type") : NULL;
          if (name && JSON_NODE_HOLDS_VALUE (name) && json_node_get_value_type (name) == G_TYPE_STRING)
            fprintf (out, "  document: %s (%s)\n", json_node_get_string (name),
                     type && JSON_NODE_HOLDS_VALUE (type) && json_node_get_value_type (type) == G_TYPE_STRING
                         ? json_node_get_string (type) : "no media type");
        }
    }
}

static void
print_signature (FILE *out, const guint8 *der, gsize len)
{
  const guint8 *p = der;
  g_autoptr (CMS_ContentInfo) cms = d2i_CMS_ContentInfo (NULL, &p, (long) len);
  g_autoptr (BundleCertStack) certs = NULL;
  STACK_OF (CMS_SignerInfo) *sis;

  if (cms == NULL || (sis = CMS_get0_SignerInfos (cms)) == NULL || sk_CMS_SignerInfo_num (sis) < 1)
    {
      ERR_clear_error ();
      fprintf (out, "signature: not readable\n");
      return;
    }
  certs = CMS_get1_certs (cms);
  for (int i = 0; certs && i < sk_X509_num (certs); i++)
    if (CMS_SignerInfo_cert_cmp (sk_CMS_SignerInfo_value (sis, 0), sk_X509_value (certs, i)) == 0)
      {
        g_autofree char *subj = bundle_x509_subject (sk_X509_value (certs, i));
        fprintf (out, "signer: %s\n", subj);
      }
}

static void
print_timestamp (FILE *out, const guint8 *der, gsize len)
{
  const guint8 *p = der;
  g_autoptr (TS_RESP) resp = d2i_TS_RESP (NULL, &p, (long) len);
  TS_TST_INFO *tst = resp ? TS_RESP_get_tst_info (resp) : NULL;
  gint64 t;
  char policy[128] = "";

  if (tst == NULL || !bundle_asn1_time_to_unix (TS_TST_INFO_get_time (tst), &t))
    {
      ERR_clear_error ();
      fprintf (out, "time-stamp: not readable\n");
      return;
    }
  {
    g_autofree char *gt = tg_time_format (t);
    OBJ_obj2txt (policy, sizeof policy, TS_TST_INFO_get_policy_id (tst), 1);
    fprintf (out, "genTime: %s\ntime-stamp policy: %s\n", gt, policy);
  }
}

gboolean
bundle_inspect (const char *path, FILE *out, GError **error)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  g_autoptr (GByteArray) record = NULL, p7s = NULL, tsr = NULL;
  int r;

  archive_read_support_format_tar (a);
  if (archive_read_open_filename (a, path, 1 << 20) != ARCHIVE_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_IO, "cannot read %s: %s", path, archive_error_string (a));
      archive_read_free (a);
      return FALSE;
    }
  fprintf (out, "members of %s:\n", path);
  while ((r = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    {
      const char *name = archive_entry_pathname (e);
      la_int64_t size = archive_entry_size (e);
      GByteArray **keep = NULL;
      const void *block;
      size_t len;
      la_int64_t off;

      fprintf (out, "  %c %12" G_GINT64_FORMAT "  %s\n", archive_entry_filetype (e) == AE_IFDIR ? 'd' : '-',
               (gint64) size, name ? name : "(no name)");
      if (name && g_str_has_suffix (name, "/data/record.json") && size <= (la_int64_t) BUNDLE_MAX_RECORD)
        keep = &record;
      else if (name && g_str_has_suffix (name, "/tagmanifest-sha256.txt.p7s") && size <= (la_int64_t) BUNDLE_MAX_SIGNATURE)
        keep = &p7s;
      else if (name && g_str_has_suffix (name, "/tagmanifest-sha256.txt.p7s.tsr") && size <= (la_int64_t) BUNDLE_MAX_SIGNATURE)
        keep = &tsr;
      if (keep == NULL)
        continue;
      g_clear_pointer (keep, g_byte_array_unref);
      *keep = g_byte_array_new ();
      while (archive_read_data_block (a, &block, &len, &off) == ARCHIVE_OK)
        g_byte_array_append (*keep, block, (guint) len);
    }
  if (r != ARCHIVE_EOF)
    fprintf (out, "(the archive is broken here: %s)\n", archive_error_string (a));
  archive_read_free (a);
  if (record)
    print_record (out, (const char *) record->data, record->len);
  if (p7s)
    print_signature (out, p7s->data, p7s->len);
  if (tsr)
    print_timestamp (out, tsr->data, tsr->len);
  fprintf (out, "(inspect does not judge trust; run testigo verify)\n");
  return TRUE;
}

/* record.c — what the (schema-checked) validation record says about the
 * payload of its bundle: the record version, the channel, and the documents
 * it lists. Shared by the sealer and the verifier, so both apply one rule. */
#include "config.h"
#include "bundle-private.h"

#include <string.h>

void
bundle_record_info_free (BundleRecordInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->channel);
  g_free (info->email_sha256);
  g_clear_pointer (&info->documents, g_hash_table_unref);
  g_free (info);
}

static JsonObject *
member_object (JsonObject *o, const char *name)
{
  JsonNode *n;

  if (o == NULL || (n = json_object_get_member (o, name)) == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    return NULL;
  return json_node_get_object (n);
}

static const char *
member_string (JsonObject *o, const char *name)
{
  JsonNode *n;

  if (o == NULL || (n = json_object_get_member (o, name)) == NULL || json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

BundleRecordInfo *
bundle_record_info_new (JsonNode *record, GError **error)
{
  g_autoptr (BundleRecordInfo) info = g_new0 (BundleRecordInfo, 1);
  JsonObject *root = JSON_NODE_HOLDS_OBJECT (record) ? json_node_get_object (record) : NULL;
  JsonObject *kase = member_object (root, "case");
  JsonNode *n;

  if (root == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the record is not an object");
      return NULL;
    }
  /* The schema made it 1 or 2; JSON Schema also counts 2.0 as the integer 2. */
  n = json_object_get_member (root, "version");
  if (n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_INT64)
    info->version = json_node_get_int (n);
  else if (n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_DOUBLE
           && json_node_get_double (n) >= 1 && json_node_get_double (n) <= 1000)
    info->version = (gint64) json_node_get_double (n);
  info->channel = g_strdup (member_string (kase, "channel"));
  info->email_sha256 = g_strdup (member_string (member_object (kase, "email"), "message_sha256"));
  info->documents = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  n = json_object_get_member (root, "documents");
  if (n != NULL && JSON_NODE_HOLDS_ARRAY (n))
    {
      JsonArray *a = json_node_get_array (n);
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonNode *e = json_array_get_element (a, i);
          JsonObject *d = JSON_NODE_HOLDS_OBJECT (e) ? json_node_get_object (e) : NULL;
          const char *name = member_string (d, "name");
          const char *sha = member_string (d, "sha256");
          if (name == NULL || sha == NULL || !bundle_document_name_ok (name))
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "/documents/%u is not a document entry", i);
              return NULL;
            }
          if (g_hash_table_contains (info->documents, name))
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the record lists document %s twice", name);
              return NULL;
            }
          g_hash_table_insert (info->documents, g_strdup (name), g_ascii_strdown (sha, -1));
        }
    }
  return g_steal_pointer (&info);
}

gboolean
bundle_record_email_listed (const BundleRecordInfo *info)
{
  GHashTableIter it;
  gpointer sha;

  if (info->email_sha256 == NULL || info->version < 2)
    return TRUE;
  g_hash_table_iter_init (&it, info->documents);
  while (g_hash_table_iter_next (&it, NULL, &sha))
    if (g_ascii_strcasecmp (sha, info->email_sha256) == 0)
      return TRUE;
  return FALSE;
}

gboolean
bundle_record_needs_recording (const BundleRecordInfo *info)
{
  return info->version < 2 || g_strcmp0 (info->channel, "teleconference") == 0;
}

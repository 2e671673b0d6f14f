/* test-schema.c — tg_json_parse_strict(), the schema interpreter and the
 * built-in evidence schemas against evidence-schema/examples/.
 *
 * TG_SCHEMA_DIR names the evidence-schema folder (meson sets it).
 */
#include "tg-common.h"
#include "tg-schema-private.h"

#include <string.h>

static const char *schema_dir;

/* ---- examples ---------------------------------------------------------- */

typedef struct {
  char *path;
  gboolean is_event;
  gboolean expect_valid;
} Example;

static void
example_free (gpointer data)
{
  Example *ex = data;

  g_free (ex->path);
  g_free (ex);
}

static gboolean
check_file (const char *path, gboolean is_event, GError **error)
{
  g_autofree char *data = NULL;
  g_autoptr (JsonNode) root = NULL;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, error))
    return FALSE;
  root = tg_json_parse_strict (data, len, is_event ? TG_SCHEMA_EVENT_MAX_SIZE : TG_SCHEMA_RECORD_MAX_SIZE, error);
  if (root == NULL)
    return FALSE;
  return is_event ? tg_schema_check_event (root, error) : tg_schema_check_record (root, error);
}

static void
test_example (gconstpointer data)
{
  const Example *ex = data;
  g_autoptr (GError) error = NULL;
  gboolean ok = check_file (ex->path, ex->is_event, &error);

  if (ex->expect_valid)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
    }
  else
    {
      g_assert_false (ok);
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
      /* The message starts with the JSON pointer of the failing value. */
      g_assert_true (error->message[0] == '/' || g_str_has_prefix (error->message, "(root): "));
      g_test_message ("%s: %s", ex->path, error->message);
    }
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static guint
add_examples (const char *folder, gboolean is_event, gboolean expect_valid)
{
  g_autofree char *dir_path = g_build_filename (schema_dir, "examples", folder, NULL);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  const char *name;

  dir = g_dir_open (dir_path, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".json"))
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint k = 0; k < names->len; k++)
    {
      Example *ex = g_new0 (Example, 1);
      g_autofree char *test_path = NULL;

      ex->path = g_build_filename (dir_path, g_ptr_array_index (names, k), NULL);
      ex->is_event = is_event;
      ex->expect_valid = expect_valid;
      test_path = g_strdup_printf ("/schema/examples/%s/%s", folder, (char *) g_ptr_array_index (names, k));
      g_test_add_data_func_full (test_path, ex, test_example, example_free);
    }
  return names->len;
}

/* The error names the JSON pointer of the value that failed. */
static void
test_error_pointers (void)
{
  static const struct {
    const char *file;
    const char *prefix;
  } cases[] = {
    { "invalid/suspension-days-16.json", "/case/suspension_days: 16 is above the maximum 15" },
    { "invalid/suspension-without-days.json", "/case/suspension_days: required member is missing" },
    { "invalid/days-without-suspension.json", "/case/suspension_days: member not allowed here" },
    { "invalid/extra-property-root.json", "/extra: member not allowed here" },
    { "invalid/extra-property-nested.json", "/case/priority: member not allowed here" },
    { "invalid/extra-property-in-track.json", "/recording/parts/0/tracks/0/bitrate: " },
    { "invalid/missing-holder.json", "/holder: required member is missing" },
    { "invalid/bad-hex-serial.json", "/certificate/serial: \"4F:1A:9C:0B\" does not match" },
    { "invalid/too-few-security-features.json", "/security_features: must have at least 3 items" },
    { "invalid/one-optically-variable.json", "/security_features: must contain at least 2 items" },
    { "invalid/wrong-type-version.json", "/version: must be of type integer, not string" },
    { "invalid/bad-date-feb-30.json", "/session/started_at: \"2025-02-30T10:00:00Z\" is not a valid date-time" },
    { "invalid/wrong-enum-action.json", "/case/action: \"cancel\" is not one of" },
    { "invalid/root-is-array.json", "(root): must be of type object" },
    { "invalid/approved-without-face-still.json", "/stills: must contain at least 1 item" },
    { "invalid/v2-in-person-without-documents.json", "/documents: required member is missing" },
    { "invalid/v2-in-person-empty-documents.json", "/documents: must have at least 1 items" },
    { "invalid/v2-document-without-sha256.json", "/documents/0/sha256: required member is missing" },
    { "invalid/v2-system-with-consent.json", "/consent: member not allowed here" },
    { "invalid/v2-system-without-officer.json", "/officer: required member is missing" },
    { "invalid/v2-system-human-officer.json", "/officer/role: must be \"system\"" },
    { "invalid/v2-portal-officer-not-holder.json", "/officer/role: must be \"holder\"" },
    { "invalid/v2-unknown-channel.json", "/case/channel: \"fax\" is not one of" },
    { "invalid/v1-with-documents.json", "/documents: member not allowed here" },
    { "invalid/version-3.json", "/version: 3 is not one of 1, 2" },
  };

  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autofree char *path = g_build_filename (schema_dir, "examples", cases[k].file, NULL);
      g_autoptr (GError) error = NULL;

      g_assert_false (check_file (path, FALSE, &error));
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
      if (!g_str_has_prefix (error->message, cases[k].prefix))
        g_error ("%s: expected a message starting \"%s\", got \"%s\"", cases[k].file, cases[k].prefix,
                 error->message);
    }
}

/* Versions: a version 1 record keeps the rules of version 1 (no documents,
 * no system channel, consent on every channel), a version 2 record gets the
 * rules of version 2, whatever else the record says. */
static gboolean
check_with_version (const char *file, gint64 version, const char *set_channel, GError **error)
{
  g_autofree char *path = g_build_filename (schema_dir, "examples", file, NULL);
  g_autofree char *data = NULL;
  g_autoptr (JsonNode) record = NULL;
  JsonObject *root;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  record = tg_json_parse_strict (data, len, TG_SCHEMA_RECORD_MAX_SIZE, NULL);
  g_assert_nonnull (record);
  root = json_node_get_object (record);
  json_object_set_int_member (root, "version", version);
  if (set_channel != NULL)
    json_object_set_string_member (json_object_get_object_member (root, "case"), "channel", set_channel);
  return tg_schema_check_record (record, error);
}

static void
test_versions (void)
{
  static const struct {
    const char *file;
    gint64 version;
    const char *channel;
    const char *error_prefix; /* NULL: valid */
  } cases[] = {
    /* teleconference records mean the same in both versions */
    { "valid/approved-teleconference.json", 2, NULL, NULL },
    { "valid/v2-approved-teleconference.json", 1, NULL, NULL },
    { "valid/aborted-no-show.json", 2, NULL, NULL },
    /* version 1 records of the other channels need no documents; as version 2 they do */
    { "valid/suspension-signed-email.json", 2, NULL, "/documents: required member is missing" },
    { "valid/revocation-in-person.json", 2, NULL, "/documents: required member is missing" },
    /* version 2 records are not version 1 records */
    { "valid/v2-suspension-signed-email.json", 1, NULL, "/consent: required member is missing" },
    { "valid/v2-revocation-in-person.json", 1, NULL, "/documents: member not allowed here" },
    { "valid/v2-revocation-system.json", 1, NULL, "/consent: required member is missing" },
    /* consent: required in person and by teleconference unless aborted; optional otherwise */
    { "valid/v2-revocation-portal.json", 2, "signed-email", "/case/email: required member is missing" },
    { "valid/v2-revocation-portal.json", 2, "in-person", "/consent: required member is missing" },
    { "valid/v2-revocation-system.json", 2, "portal", "/officer/role: must be \"holder\"" },
    { "valid/v2-revocation-portal.json", 2, "system", "/officer/role: must be \"system\"" },
  };

  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr (GError) error = NULL;
      gboolean ok = check_with_version (cases[k].file, cases[k].version, cases[k].channel, &error);

      if (cases[k].error_prefix == NULL && !ok)
        g_error ("%s as version %" G_GINT64_FORMAT ": expected valid, got \"%s\"", cases[k].file, cases[k].version,
                 error->message);
      if (cases[k].error_prefix != NULL
          && (ok || !g_str_has_prefix (error->message, cases[k].error_prefix)))
        g_error ("%s as version %" G_GINT64_FORMAT " (channel %s): expected \"%s…\", got %s", cases[k].file,
                 cases[k].version, cases[k].channel ? cases[k].channel : "unchanged", cases[k].error_prefix,
                 ok ? "valid" : error->message);
    }
}

/* First use of the built-in schemas from many threads at once (g_once). */
static gpointer
check_in_thread (gpointer data)
{
  JsonNode *record = data;
  gboolean ok = TRUE;

  for (int k = 0; k < 50 && ok; k++)
    ok = tg_schema_check_record (record, NULL);
  return GINT_TO_POINTER (ok);
}

static void
test_threads (void)
{
  g_autofree char *path = g_build_filename (schema_dir, "examples", "valid", "approved-teleconference.json", NULL);
  g_autofree char *data = NULL;
  g_autoptr (JsonNode) record = NULL;
  GThread *threads[8];
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  record = tg_json_parse_strict (data, len, TG_SCHEMA_RECORD_MAX_SIZE, NULL);
  g_assert_nonnull (record);
  for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
    threads[k] = g_thread_new ("check", check_in_thread, record);
  for (guint k = 0; k < G_N_ELEMENTS (threads); k++)
    g_assert_true (GPOINTER_TO_INT (g_thread_join (threads[k])));
}

/* ---- strict parsing ---------------------------------------------------- */

enum { OK, INVALID, TOO_BIG };

typedef struct {
  const char *what;
  const char *data;
  gssize len; /* -1: strlen */
  int expect;
} ParseCase;

static const ParseCase parse_cases[] = {
  { "object", "{\"a\":1}", -1, OK },
  { "surrounding whitespace", " \t\r\n{\"a\":[1,2,{}]}\n\n", -1, OK },
  { "scalar root", "\"text\"", -1, OK },
  { "number root", "-0.5e-3", -1, OK },
  { "paired surrogates", "[\"\\ud83d\\ude00\"]", -1, OK },
  { "all escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]", -1, OK },
  { "raw UTF-8", "[\"Núñez 😀\"]", -1, OK },
  { "int64 extremes", "[9223372036854775807,-9223372036854775808]", -1, OK },
  { "empty containers", "[{},[],\"\"]", -1, OK },

  { "duplicate member", "{\"a\":1,\"a\":2}", -1, INVALID },
  { "duplicate member, nested", "{\"x\":{\"b\":1,\"c\":2,\"b\":3}}", -1, INVALID },
  { "duplicate member, escaped", "{\"a\":1,\"\\u0061\":2}", -1, INVALID },
  { "duplicate member in an array element", "[{},{\"k\":[],\"k\":[]}]", -1, INVALID },
  { "trailing garbage", "{} x", -1, INVALID },
  { "second value", "{}{}", -1, INVALID },
  { "trailing comma", "[1,]", -1, INVALID },
  { "trailing comma in object", "{\"a\":1,}", -1, INVALID },
  { "empty", "", -1, INVALID },
  { "whitespace only", "  \n", -1, INVALID },
  { "block comment", "/*c*/{}", -1, INVALID },
  { "line comment", "{}//c", -1, INVALID },
  { "single quotes", "{'a':1}", -1, INVALID },
  { "bare name", "{a:1}", -1, INVALID },
  { "hex number", "[0x10]", -1, INVALID },
  { "leading zero", "[01]", -1, INVALID },
  { "leading dot", "[.5]", -1, INVALID },
  { "trailing dot", "[1.]", -1, INVALID },
  { "plus sign", "[+1]", -1, INVALID },
  { "bare minus", "[-]", -1, INVALID },
  { "exponent without digits", "[1e]", -1, INVALID },
  { "NaN", "[NaN]", -1, INVALID },
  { "Infinity", "[Infinity]", -1, INVALID },
  { "integer overflow", "[9223372036854775808]", -1, INVALID },
  { "integer underflow", "[-9223372036854775809]", -1, INVALID },
  { "double overflow", "[1e400]", -1, INVALID },
  { "raw tab in string", "[\"a\tb\"]", -1, INVALID },
  { "raw newline in string", "[\"a\nb\"]", -1, INVALID },
  { "unknown escape", "[\"\\x41\"]", -1, INVALID },
  { "escaped quote", "[\"\\'\"]", -1, INVALID },
  { "\\u0000", "[\"a\\u0000b\"]", -1, INVALID },
  { "lone high surrogate", "[\"\\ud800\"]", -1, INVALID },
  { "lone low surrogate", "[\"\\udc00\"]", -1, INVALID },
  { "reversed surrogates", "[\"\\ude00\\ud83d\"]", -1, INVALID },
  { "short \\u", "[\"\\u12\"]", -1, INVALID },
  { "unterminated string", "[\"abc", -1, INVALID },
  { "unterminated array", "[1,2", -1, INVALID },
  { "truncated literal", "[tru]", -1, INVALID },
  { "literal with tail", "[truex]", -1, INVALID },
  { "byte-order mark", "\xef\xbb\xbf{}", -1, INVALID },
  { "invalid UTF-8 byte", "[\"\xff\"]", -1, INVALID },
  { "overlong UTF-8", "[\"\xc0\xaf\"]", -1, INVALID },
  { "UTF-16 surrogate in UTF-8", "[\"\xed\xa0\x80\"]", -1, INVALID },
  { "truncated UTF-8", "[\"\xc3\"]", -1, INVALID },
  { "NUL byte", "[\"a\0b\"]", 7, INVALID },
  { "NUL after value", "{}\0", 3, INVALID },
  { "missing colon", "{\"a\" 1}", -1, INVALID },
  { "missing comma", "[1 2]", -1, INVALID },
  { "mismatched close", "[1}", -1, INVALID },
  { "close without open", "]", -1, INVALID },
  /* The cap is checked before any byte is read. */
  { "over the cap", "[\"0123456789\"]", 4097, TOO_BIG },
};

static void
test_parse_cases (void)
{
  for (gsize k = 0; k < G_N_ELEMENTS (parse_cases); k++)
    {
      const ParseCase *pc = &parse_cases[k];
      gsize len = pc->len < 0 ? strlen (pc->data) : (gsize) pc->len;
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) root = tg_json_parse_strict (pc->data, len, 4096, &error);

      g_test_message ("%s: %s", pc->what, error != NULL ? error->message : "ok");
      if (pc->expect == OK)
        {
          g_assert_no_error (error);
          g_assert_nonnull (root);
        }
      else
        {
          int code = pc->expect == TOO_BIG ? TG_ERROR_TOO_BIG : TG_ERROR_INVALID;

          g_assert_null (root);
          g_assert_error (error, TG_ERROR, code);
        }
    }
}

static void
test_parse_duplicate_message (void)
{
  g_autoptr (GError) error = NULL;
  const char *data = "{\"case\":{\"id\":\"a\",\"id\":\"b\"}}";

  g_assert_null (tg_json_parse_strict (data, strlen (data), 4096, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "duplicate member name \"id\""));
}

static void
test_parse_size_cap (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *big = g_strnfill (TG_SCHEMA_RECORD_MAX_SIZE + 1, ' ');
  g_autoptr (JsonNode) root = NULL;
  const char *small = "[1,2,3]";

  big[0] = '[';
  big[TG_SCHEMA_RECORD_MAX_SIZE] = ']';
  root = tg_json_parse_strict (big, TG_SCHEMA_RECORD_MAX_SIZE + 1, TG_SCHEMA_RECORD_MAX_SIZE, &error);
  g_assert_null (root);
  g_assert_error (error, TG_ERROR, TG_ERROR_TOO_BIG);
  g_clear_error (&error);

  /* Exactly at the cap is fine. */
  root = tg_json_parse_strict (big + 1, TG_SCHEMA_RECORD_MAX_SIZE, TG_SCHEMA_RECORD_MAX_SIZE, &error);
  g_assert_null (root); /* "   ...]" is not JSON, but not too big either */
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);

  root = tg_json_parse_strict (small, strlen (small), strlen (small) - 1, &error);
  g_assert_error (error, TG_ERROR, TG_ERROR_TOO_BIG);
  g_clear_error (&error);
  root = tg_json_parse_strict (small, strlen (small), strlen (small), &error);
  g_assert_no_error (error);
  g_assert_nonnull (root);
}

static char *
nested (guint depth, gboolean objects)
{
  GString *s = g_string_new (NULL);

  for (guint k = 0; k < depth; k++)
    g_string_append (s, objects ? "{\"a\":" : "[");
  g_string_append (s, "1");
  for (guint k = 0; k < depth; k++)
    g_string_append_c (s, objects ? '}' : ']');
  return g_string_free (s, FALSE);
}

static void
test_parse_depth (void)
{
  for (int objects = 0; objects <= 1; objects++)
    {
      g_autofree char *at_limit = nested (TG_JSON_MAX_DEPTH, objects);
      g_autofree char *over = nested (TG_JSON_MAX_DEPTH + 1, objects);
      g_autofree char *huge = nested (200000, objects);
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) root = NULL;

      root = tg_json_parse_strict (at_limit, strlen (at_limit), G_MAXSIZE, &error);
      g_assert_no_error (error);
      g_assert_nonnull (root);
      g_clear_pointer (&root, json_node_unref);

      g_assert_null (tg_json_parse_strict (over, strlen (over), G_MAXSIZE, &error));
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
      g_assert_nonnull (strstr (error->message, "nesting"));
      g_clear_error (&error);

      /* Refused before json-glib's recursive descent could exhaust the stack. */
      g_assert_null (tg_json_parse_strict (huge, strlen (huge), G_MAXSIZE, &error));
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
    }
}

/* Every example is valid UTF-8 and checked in full; cut one short anywhere
 * and it must be refused, never crash. */
static void
test_parse_truncations (void)
{
  g_autofree char *path = g_build_filename (schema_dir, "examples", "valid", "aborted-interruption.json", NULL);
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  for (gsize cut = 0; cut < len; cut++)
    {
      g_autoptr (JsonNode) root = tg_json_parse_strict (data, cut, TG_SCHEMA_RECORD_MAX_SIZE, NULL);
      gboolean only_space = TRUE;

      for (gsize k = cut; k < len; k++)
        only_space = only_space && g_ascii_isspace (data[k]);
      if (root != NULL)
        g_assert_true (only_space);
    }
}

/* ---- the interpreter ----------------------------------------------------- */

#define DIALECT "\"$schema\":\"https://json-schema.org/draft/2020-12/schema\""

static void
test_loader_refuses (void)
{
  static const struct {
    const char *schema;
    const char *needle;
  } cases[] = {
    { "{" DIALECT ",\"uniqueItems\":true}", "uniqueItems" },
    { "{" DIALECT ",\"properties\":{\"a\":{\"maxContains\":1}}}", "#/properties/a/maxContains" },
    { "{" DIALECT ",\"additionalProperties\":true}", "only false" },
    { "{" DIALECT ",\"additionalProperties\":{\"type\":\"string\"}}", "only false" },
    { "{" DIALECT ",\"$ref\":\"#/$defs/missing\"}", "no definition" },
    { "{" DIALECT ",\"$ref\":\"other.json#/x\"}", "only \"#/$defs/NAME\"" },
    { "{" DIALECT ",\"$ref\":\"#/properties/a\"}", "only \"#/$defs/NAME\"" },
    { "{" DIALECT ",\"format\":\"email\"}", "date-time" },
    { "{" DIALECT ",\"pattern\":\"^\\\\d+$\"}", "portable" },
    { "{" DIALECT ",\"pattern\":\"^\\\\s$\"}", "portable" },
    { "{" DIALECT ",\"pattern\":\"^a.b$\"}", "'.'" },
    { "{" DIALECT ",\"pattern\":\"^(?i)a$\"}", "'(?'" },
    { "{" DIALECT ",\"pattern\":\"^[a-\"}", "class" },
    { "{" DIALECT ",\"pattern\":\"(\"}", "pattern" },
    { "{" DIALECT ",\"then\":{}}", "without \"if\"" },
    { "{" DIALECT ",\"minContains\":2}", "without \"contains\"" },
    { "{" DIALECT ",\"type\":\"int\"}", "unknown type" },
    { "{" DIALECT ",\"minItems\":-1}", "non-negative" },
    { "{" DIALECT ",\"minItems\":1.5}", "non-negative" },
    { "{" DIALECT ",\"required\":[\"a\",\"a\"]}", "distinct" },
    { "{" DIALECT ",\"enum\":[]}", "non-empty" },
    { "{" DIALECT ",\"allOf\":[]}", "non-empty" },
    { "{" DIALECT ",\"items\":[{}]}", "schema must be an object or a boolean" },
    { "{" DIALECT ",\"properties\":{\"a\":{\"$defs\":{}}}}", "only at the root" },
    { "{\"$schema\":\"http://json-schema.org/draft-07/schema#\"}", "2020-12" },
    { "{\"type\":\"object\"}", "$schema" },
    { "{" DIALECT ",\"type\":\"object\",\"type\":\"array\"}", "duplicate member name" },
    { "[]", "root" },
  };

  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (TgSchema) schema = tg_schema_new_from_data ("test", cases[k].schema, strlen (cases[k].schema), &error);

      g_assert_null (schema);
      g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
      if (strstr (error->message, cases[k].needle) == NULL)
        g_error ("%s: expected \"%s\" in \"%s\"", cases[k].schema, cases[k].needle, error->message);
    }
}

static void
expect (TgSchema *schema, const char *instance, gboolean valid)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = tg_json_parse_strict (instance, strlen (instance), 4096, &error);
  gboolean ok;

  g_assert_no_error (error);
  ok = tg_schema_validate (schema, node, &error);
  if (ok != valid)
    g_error ("%s: expected %s, got %s", instance, valid ? "valid" : "invalid",
             error != NULL ? error->message : "valid");
  if (!valid)
    g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
}

static TgSchema *
schema_from (const char *text)
{
  g_autoptr (GError) error = NULL;
  TgSchema *schema = tg_schema_new_from_data ("test", text, strlen (text), &error);

  g_assert_no_error (error);
  g_assert_nonnull (schema);
  return schema;
}

static void
test_semantics (void)
{
  g_autoptr (TgSchema) integer = schema_from ("{" DIALECT ",\"type\":\"integer\",\"minimum\":1,\"maximum\":15}");
  g_autoptr (TgSchema) length = schema_from ("{" DIALECT ",\"type\":\"string\",\"minLength\":3,\"maxLength\":3}");
  g_autoptr (TgSchema) anchored = schema_from ("{" DIALECT ",\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}");
  g_autoptr (TgSchema) unanchored = schema_from ("{" DIALECT ",\"type\":\"string\",\"pattern\":\"b[0-9]\"}");
  g_autoptr (TgSchema) one_of = schema_from ("{" DIALECT ",\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}");
  g_autoptr (TgSchema) any_of = schema_from ("{" DIALECT ",\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"null\"}]}");
  g_autoptr (TgSchema) not_ = schema_from ("{" DIALECT ",\"not\":{\"const\":{\"a\":[1,true,null]}}}");
  g_autoptr (TgSchema) excl = schema_from ("{" DIALECT ",\"exclusiveMinimum\":0,\"exclusiveMaximum\":240}");
  g_autoptr (TgSchema) boolean = schema_from ("{" DIALECT ",\"properties\":{\"a\":false,\"b\":true}}");
  g_autoptr (TgSchema) contains = schema_from (
    "{" DIALECT ",\"type\":\"array\",\"contains\":{\"const\":1},\"minContains\":2}");
  g_autoptr (TgSchema) types = schema_from ("{" DIALECT ",\"type\":[\"string\",\"null\"]}");
  g_autoptr (TgSchema) date_time = schema_from ("{" DIALECT ",\"format\":\"date-time\"}");
  g_autoptr (TgSchema) date = schema_from ("{" DIALECT ",\"format\":\"date\"}");

  /* 1.0 and 1e1 are integers in JSON Schema; 1.5 is not. */
  expect (integer, "1", TRUE);
  expect (integer, "1.0", TRUE);
  expect (integer, "1e1", TRUE);
  expect (integer, "1.5", FALSE);
  expect (integer, "16", FALSE);
  expect (integer, "0", FALSE);
  expect (integer, "\"7\"", FALSE);
  expect (integer, "true", FALSE);

  /* Characters, not bytes (and not UTF-16 units). */
  expect (length, "\"abc\"", TRUE);
  expect (length, "\"ñéü\"", TRUE);
  expect (length, "\"😀😀😀\"", TRUE);
  expect (length, "\"\\ud83d\\ude00ab\"", TRUE);
  expect (length, "\"ab\"", FALSE);
  expect (length, "\"abcd\"", FALSE);

  /* "$" is the very end, as in ECMAScript: not before a final newline. */
  expect (anchored, "\"abc\"", TRUE);
  expect (anchored, "\"abc\\n\"", FALSE);
  expect (anchored, "\"\\nabc\"", FALSE);
  expect (anchored, "\"ABC\"", FALSE);
  /* Unanchored patterns search, as JSON Schema says. */
  expect (unanchored, "\"xxb7yy\"", TRUE);
  expect (unanchored, "\"xxbyy\"", FALSE);

  expect (one_of, "1.5", TRUE);
  expect (one_of, "1", FALSE); /* both alternatives */
  expect (one_of, "\"1\"", FALSE);
  expect (any_of, "null", TRUE);
  expect (any_of, "2", TRUE);
  expect (any_of, "2.5", FALSE);

  expect (not_, "{\"a\":[1,true,null]}", FALSE);
  expect (not_, "{\"a\":[1.0,true,null]}", FALSE);
  expect (not_, "{\"a\":[1,true]}", TRUE);
  expect (not_, "{\"a\":[1,true,null],\"b\":1}", TRUE);

  expect (excl, "0", FALSE);
  expect (excl, "0.001", TRUE);
  expect (excl, "240", FALSE);
  expect (excl, "239.99", TRUE);
  expect (excl, "\"no number\"", TRUE); /* limits apply to numbers only */

  expect (boolean, "{\"b\":1}", TRUE);
  expect (boolean, "{\"a\":null}", FALSE);
  expect (boolean, "{\"c\":1}", TRUE); /* not closed */

  expect (contains, "[1,2,1]", TRUE);
  expect (contains, "[1,2,3]", FALSE);
  expect (contains, "[]", FALSE);

  expect (types, "null", TRUE);
  expect (types, "\"s\"", TRUE);
  expect (types, "1", FALSE);

  /* date-time as ajv-formats checks it. */
  expect (date_time, "\"2024-02-29T12:00:00Z\"", TRUE);
  expect (date_time, "\"2023-02-29T12:00:00Z\"", FALSE);
  expect (date_time, "\"2000-02-29T00:00:00Z\"", TRUE);
  expect (date_time, "\"1900-02-29T00:00:00Z\"", FALSE);
  expect (date_time, "\"2025-04-31T00:00:00Z\"", FALSE);
  expect (date_time, "\"2025-13-01T00:00:00Z\"", FALSE);
  expect (date_time, "\"2025-00-01T00:00:00Z\"", FALSE);
  expect (date_time, "\"2025-01-00T00:00:00Z\"", FALSE);
  expect (date_time, "\"2025-01-01T23:59:59.999999Z\"", TRUE);
  expect (date_time, "\"2025-01-01T24:00:00Z\"", FALSE);
  expect (date_time, "\"2025-01-01T12:60:00Z\"", FALSE);
  expect (date_time, "\"2016-12-31T23:59:60Z\"", TRUE);
  expect (date_time, "\"2016-12-31T23:59:60.5Z\"", TRUE);
  expect (date_time, "\"2016-12-31T23:58:60Z\"", FALSE);
  expect (date_time, "\"2017-01-01T00:59:60+01:00\"", TRUE);
  expect (date_time, "\"2025-01-01T12:00:00+01:00\"", TRUE);
  expect (date_time, "\"2025-01-01T12:00:00+0100\"", TRUE);
  expect (date_time, "\"2025-01-01T12:00:00+01\"", TRUE);
  expect (date_time, "\"2025-01-01T12:00:00+01:\"", FALSE);
  expect (date_time, "\"2025-01-01T12:00:00+24:00\"", FALSE);
  expect (date_time, "\"2025-01-01t12:00:00z\"", TRUE);
  expect (date_time, "\"2025-01-01 12:00:00Z\"", TRUE);
  expect (date_time, "\"2025-01-01T12:00:00\"", FALSE);
  expect (date_time, "\"2025-01-01T12:00:00.Z\"", FALSE);
  expect (date_time, "\"2025-01-01TT12:00:00Z\"", FALSE);
  expect (date_time, "\"2025-1-01T12:00:00Z\"", FALSE);
  expect (date_time, "\"\"", FALSE);
  expect (date_time, "42", TRUE); /* formats apply to strings only */
  expect (date, "\"2024-02-29\"", TRUE);
  expect (date, "\"2025-02-29\"", FALSE);
  expect (date, "\"2025-02-28T00:00:00Z\"", FALSE);
}

/* Input text reaches messages escaped, and UTF-8 stays readable. */
static void
test_message_escaping (void)
{
  g_autoptr (TgSchema) closed = schema_from ("{" DIALECT ",\"properties\":{\"a\":{\"const\":\"x\"}},"
                                             "\"additionalProperties\":false}");
  static const struct {
    const char *instance;
    const char *message;
  } cases[] = {
    { "{\"x\\u001b[2J\":1}", "/x\\033[2J: member not allowed here" },
    { "{\"ñ/~\":1}", "/ñ~1~0: member not allowed here" },
    { "{\"a\":\"Nú\\u0007\\\"\"}", "/a: must be \"x\", not \"Nú\\007\\\"\"" },
  };

  for (gsize k = 0; k < G_N_ELEMENTS (cases); k++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (JsonNode) node = tg_json_parse_strict (cases[k].instance, strlen (cases[k].instance), 4096, &error);

      g_assert_no_error (error);
      g_assert_false (tg_schema_validate (closed, node, &error));
      if (!g_str_has_prefix (error->message, cases[k].message))
        g_error ("expected a message starting \"%s\", got \"%s\"", cases[k].message, error->message);
    }
}

/* The fixed paths other code reads. */
static void
test_fixed_paths (void)
{
  g_autofree char *path = g_build_filename (schema_dir, "examples", "valid", "approved-teleconference.json", NULL);
  g_autofree char *data = NULL;
  g_autoptr (JsonNode) record = NULL;
  g_autoptr (JsonPath) jp = json_path_new ();
  static const char *const paths[] = {
    "$.version", "$.case.id", "$.case.action", "$.case.reason", "$.case.channel", "$.holder.name",
    "$.holder.national_id", "$.holder.email", "$.certificate.serial", "$.certificate.issuer", "$.officer.id",
    "$.officer.name", "$.officer.role", "$.session.started_at", "$.session.ended_at", "$.session.duration_s",
    "$.outcome.result", "$.outcome.notes", "$.outcome.completed_at",
  };
  gsize len;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  record = tg_json_parse_strict (data, len, TG_SCHEMA_RECORD_MAX_SIZE, NULL);
  g_assert_nonnull (record);
  for (gsize k = 0; k < G_N_ELEMENTS (paths); k++)
    {
      g_autoptr (JsonNode) found = NULL;

      g_assert_true (json_path_compile (jp, paths[k], NULL));
      found = json_path_match (jp, record);
      if (json_array_get_length (json_node_get_array (found)) != 1)
        g_error ("%s missing from the approved example", paths[k]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  schema_dir = g_getenv ("TG_SCHEMA_DIR");
  if (schema_dir == NULL)
    g_error ("TG_SCHEMA_DIR must name the evidence-schema folder");

  /* First: the built-in schemas' first load happens here, in threads. */
  g_test_add_func ("/schema/builtin/threads", test_threads);

  g_assert_cmpuint (add_examples ("valid", FALSE, TRUE), >=, 4);
  g_assert_cmpuint (add_examples ("invalid", FALSE, FALSE), >=, 10);
  g_assert_cmpuint (add_examples ("events-valid", TRUE, TRUE), >=, 4);
  g_assert_cmpuint (add_examples ("events-invalid", TRUE, FALSE), >=, 6);
  g_test_add_func ("/schema/builtin/error-pointers", test_error_pointers);
  g_test_add_func ("/schema/builtin/fixed-paths", test_fixed_paths);
  g_test_add_func ("/schema/builtin/versions", test_versions);

  g_test_add_func ("/schema/parse/cases", test_parse_cases);
  g_test_add_func ("/schema/parse/duplicate-message", test_parse_duplicate_message);
  g_test_add_func ("/schema/parse/size-cap", test_parse_size_cap);
  g_test_add_func ("/schema/parse/depth", test_parse_depth);
  g_test_add_func ("/schema/parse/truncations", test_parse_truncations);

  g_test_add_func ("/schema/interpreter/loader-refuses", test_loader_refuses);
  g_test_add_func ("/schema/interpreter/semantics", test_semantics);
  g_test_add_func ("/schema/interpreter/message-escaping", test_message_escaping);

  return g_test_run ();
}

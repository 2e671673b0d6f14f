/* fuzz-record.c — libFuzzer target for the validation-record reader:
 * tg_json_parse_strict() with the record cap, then tg_schema_check_record().
 * Seed corpus: tests/fuzz/corpus/record/ (the schema examples and inputs
 * aimed at the strict parser's guards). Any crash, hang, sanitizer report or
 * GLib critical is a bug; a refusal is not.
 */
#include "tg-schema.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) error = NULL;

  root = tg_json_parse_strict ((const char *) data, size, TG_SCHEMA_RECORD_MAX_SIZE, &error);
  if (root == NULL)
    {
      g_assert_nonnull (error);
      return 0;
    }
  g_assert_no_error (error);
  if (!tg_schema_check_record (root, &error))
    g_assert_nonnull (error);
  return 0;
}

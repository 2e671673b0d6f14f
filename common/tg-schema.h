/* tg-schema.h — strict JSON parsing and Testigo's own check of the evidence
 * schemas (evidence-schema/validation-record.schema.json and
 * evidence-schema/event.schema.json).
 *
 * The schema files are compiled into the binary (GResource) and interpreted
 * by a small JSON Schema 2020-12 checker that implements exactly the keywords
 * those files use and refuses to load a schema with any other keyword, so the
 * schema cannot silently outgrow the checker. The JSON files stay the single
 * source of truth; tests/integration/schema-agree.mjs checks that this
 * checker and ajv agree on every example.
 *
 * Errors are in the TG_ERROR domain (tg-common.h): TG_ERROR_TOO_BIG for input
 * over its cap, TG_ERROR_INVALID for anything malformed or not matching the
 * schema.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/** Size cap for data/record.json. */
#define TG_SCHEMA_RECORD_MAX_SIZE ((gsize) 1024 * 1024)
/** Size cap for one line of data/events.jsonl, newline excluded. */
#define TG_SCHEMA_EVENT_MAX_SIZE ((gsize) 64 * 1024)
/** Deepest nesting of arrays and objects tg_json_parse_strict() accepts. */
#define TG_JSON_MAX_DEPTH 32

/**
 * tg_json_parse_strict:
 * @data: the JSON text (need not be NUL-terminated)
 * @len: its length in bytes
 * @max_len: the size cap; a longer input fails with TG_ERROR_TOO_BIG
 * @error: return location for a #GError
 *
 * Parses one JSON text (RFC 8259) strictly, so that this parser and any other
 * conforming one see the same value. Rejected with TG_ERROR_INVALID: input
 * that is not UTF-8 (or holds a NUL byte), a byte-order mark, anything
 * json-glib would tolerate beyond the RFC (comments, single quotes, hex or
 * leading-zero numbers, unescaped control characters, unknown escapes),
 * "\u0000" and unpaired surrogate escapes, integers outside the int64 range,
 * numbers that overflow a double, nesting deeper than %TG_JSON_MAX_DEPTH,
 * duplicate member names in an object, and anything after the value except
 * whitespace. An empty input is invalid.
 *
 * Returns: (transfer full) (nullable): the root node, or %NULL with @error set.
 */
JsonNode *tg_json_parse_strict (const char *data, gsize len, gsize max_len, GError **error);

/**
 * tg_schema_check_record:
 * @record: (transfer none): a parsed validation record
 * @error: return location for a #GError
 *
 * Checks @record against evidence-schema/validation-record.schema.json.
 * On failure the TG_ERROR_INVALID message starts with the JSON pointer of the
 * first failing value ("/case/suspension_days: ...", "(root)" for the
 * record itself) and ends with the schema location that rejected it.
 * Thread-safe; the schemas are loaded once, on first use.
 *
 * Returns: %TRUE if the record is valid.
 */
gboolean tg_schema_check_record (JsonNode *record, GError **error);

/**
 * tg_schema_check_event:
 * @event: (transfer none): one parsed line of data/events.jsonl
 * @error: return location for a #GError
 *
 * Checks @event against evidence-schema/event.schema.json, with errors as for
 * tg_schema_check_record(). The order of seq values and the hash chain are
 * not checked here (they span lines).
 *
 * Returns: %TRUE if the event is valid.
 */
gboolean tg_schema_check_event (JsonNode *event, GError **error);

G_END_DECLS

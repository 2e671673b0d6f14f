/* tg-schema-private.h — the schema interpreter behind tg-schema.h, for
 * common/ itself and its tests. Other folders use tg-schema.h only.
 */
#pragma once

#include "tg-schema.h"

G_BEGIN_DECLS

typedef struct _TgSchema TgSchema;

/**
 * tg_schema_new_from_data:
 * @name: what to call the schema in messages ("record", "event")
 * @data: the schema document, JSON Schema 2020-12
 * @len: its length in bytes
 * @error: return location for a #GError
 *
 * Parses (strictly) and compiles a schema. Refuses, with TG_ERROR_INVALID
 * naming the schema location, any keyword the interpreter does not
 * implement, a keyword with a malformed value, a $ref other than to
 * "#/$defs/NAME" or to a missing definition, a format other than
 * "date-time" and "date", "additionalProperties" other than false, and a
 * pattern outside the subset that PCRE and ECMAScript (ajv) read alike.
 *
 * Returns: (transfer full) (nullable): the compiled schema.
 */
TgSchema *tg_schema_new_from_data (const char *name, const char *data, gsize len, GError **error);

/**
 * tg_schema_validate:
 * @schema: a compiled schema
 * @instance: (transfer none): the value to check
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @instance is valid; otherwise %FALSE with @error set as
 * described for tg_schema_check_record().
 */
gboolean tg_schema_validate (TgSchema *schema, JsonNode *instance, GError **error);

/** tg_schema_free: frees @schema; %NULL is allowed. */
void tg_schema_free (TgSchema *schema);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TgSchema, tg_schema_free)

G_END_DECLS

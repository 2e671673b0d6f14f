/* schema-check-tool — Testigo's own schema check of JSON files, for the ajv
 * agreement test (schema-agree.mjs).
 *
 *   schema-check-tool record|event FILE...
 *
 * Prints one line per FILE: "FILE: valid" or "FILE: invalid: REASON" (the
 * reason on one line). An event file holds one line of events.jsonl: its one
 * final newline is not part of the line, and any other newline is refused.
 *
 * Exit status: 0 every file valid, 1 some file invalid, 2 usage error or a
 * file could not be read.
 */
#include "tg-common.h"
#include "tg-schema.h"

#include <stdio.h>
#include <string.h>

static gboolean
check (const char *data, gsize len, gboolean is_event, GError **error)
{
  g_autoptr (JsonNode) root = NULL;

  if (is_event)
    {
      if (len > 0 && data[len - 1] == '\n')
        len--;
      if (memchr (data, '\n', len) != NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "an event is one line");
          return FALSE;
        }
    }
  root = tg_json_parse_strict (data, len, is_event ? TG_SCHEMA_EVENT_MAX_SIZE : TG_SCHEMA_RECORD_MAX_SIZE, error);
  if (root == NULL)
    return FALSE;
  return is_event ? tg_schema_check_event (root, error) : tg_schema_check_record (root, error);
}

int
main (int argc, char **argv)
{
  gboolean is_event;
  int status = 0;

  if (argc < 3 || (strcmp (argv[1], "record") != 0 && strcmp (argv[1], "event") != 0))
    {
      fprintf (stderr, "usage: %s record|event FILE...\n", argv[0]);
      return 2;
    }
  is_event = strcmp (argv[1], "event") == 0;

  for (int k = 2; k < argc; k++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *data = NULL;
      gsize len;

      /* Read a little past the cap so that the parser reports TOO_BIG. */
      if (!tg_file_get_contents_capped (argv[k], TG_SCHEMA_RECORD_MAX_SIZE + 1, &data, &len, &error))
        {
          if (g_error_matches (error, TG_ERROR, TG_ERROR_TOO_BIG))
            {
              printf ("%s: invalid: %s\n", argv[k], error->message);
              status = MAX (status, 1);
              continue;
            }
          fprintf (stderr, "%s: %s\n", argv[k], error->message);
          return 2;
        }
      if (check (data, len, is_event, &error))
        printf ("%s: valid\n", argv[k]);
      else
        {
          g_strdelimit (error->message, "\r\n", ' ');
          printf ("%s: invalid: %s\n", argv[k], error->message);
          status = MAX (status, 1);
        }
    }
  return status;
}

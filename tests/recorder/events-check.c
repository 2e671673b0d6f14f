/* events-check — checks an events.jsonl line by line with Testigo's own
 * parser and schema checker, and that seq runs 0, 1, 2, ... without a gap.
 *
 *   events-check FILE      exit 0 valid; 1 invalid (the reason on stderr); 2 usage
 */
#include "tg-common.h"
#include "tg-schema.h"

#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) e = NULL;
  gsize len = 0, start = 0;
  gint64 seq = 0;

  if (argc != 2)
    {
      fprintf (stderr, "usage: events-check FILE\n");
      return 2;
    }
  if (!tg_file_get_contents_capped (argv[1], 64 * 1024 * 1024, &text, &len, &e))
    {
      fprintf (stderr, "events-check: %s\n", e->message);
      return 2;
    }
  if (len > 0 && text[len - 1] != '\n')
    {
      fprintf (stderr, "events-check: the last line has no newline\n");
      return 1;
    }
  while (start < len)
    {
      const char *nl = memchr (text + start, '\n', len - start);
      gsize l = (gsize) (nl - (text + start));
      g_autoptr (JsonNode) node = tg_json_parse_strict (text + start, l, TG_SCHEMA_EVENT_MAX_SIZE, &e);
      if (node == NULL || !tg_schema_check_event (node, &e))
        {
          fprintf (stderr, "events-check: line %" G_GINT64_FORMAT ": %s\n", seq + 1, e->message);
          return 1;
        }
      if (json_object_get_int_member (json_node_get_object (node), "seq") != seq)
        {
          fprintf (stderr, "events-check: line %" G_GINT64_FORMAT ": seq is not %" G_GINT64_FORMAT "\n", seq + 1, seq);
          return 1;
        }
      seq++;
      start += l + 1;
    }
  printf ("%" G_GINT64_FORMAT " events valid\n", seq);
  return 0;
}

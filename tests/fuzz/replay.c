/* replay.c — the corpus-replay driver (GStreamer's localfuzzer.c, in small):
 * runs a libFuzzer target's LLVMFuzzerTestOneInput over every file of the
 * corpus directories or files given, so CI exercises the fuzz targets
 * without clang's libFuzzer. Exit status 0 when every input ran. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerInitialize (int *argc, char ***argv) __attribute__ ((weak));
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static guint count;

static int
cmp_path (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

static void
run_file (const char *path)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr (GError) error = NULL;

  if (!g_file_get_contents (path, &data, &len, &error))
    g_error ("%s", error->message);
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  count++;
}

static void
run_path (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      if (dir == NULL)
        g_error ("cannot open %s", path);
      while ((name = g_dir_read_name (dir)) != NULL)
        g_ptr_array_add (names, g_build_filename (path, name, NULL));
      g_ptr_array_sort (names, cmp_path);
      for (guint i = 0; i < names->len; i++)
        run_path (g_ptr_array_index (names, i));
    }
  else
    run_file (path);
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
      return 2;
    }
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize (&argc, &argv);
  for (int i = 1; i < argc; i++)
    run_path (argv[i]);
  if (count == 0)
    {
      fprintf (stderr, "no inputs found\n");
      return 1;
    }
  printf ("1..1\nok 1 - replayed %u inputs\n", count);
  return 0;
}

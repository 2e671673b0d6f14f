/* test-common.c — common/: atomic evidence writes, capped reads, time. */
#include "tg-common.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

static char *
tmpdir (void)
{
  g_autoptr (GError) error = NULL;
  char *dir = g_dir_make_tmp ("tg-unit-XXXXXX", &error);

  g_assert_no_error (error);
  return dir;
}

static void
test_atomic_commit (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *path = g_build_filename (dir, "out.bin", NULL);
  g_autofree char *partial = g_strconcat (path, ".partial", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *back = NULL;
  TgAtomicFile *f;
  struct stat st;

  f = tg_atomic_file_new (path, 0444, FALSE, &error);
  g_assert_no_error (error);
  g_assert_true (tg_atomic_file_write (f, "evidence", 8, &error));
  /* before commit only the partial exists, private to us */
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  g_assert_cmpint (stat (partial, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (tg_atomic_file_commit (f, &error));
  g_assert_no_error (error);
  tg_atomic_file_free (f);
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
  g_assert_cmpint (stat (path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0444);
  g_assert_true (g_file_get_contents (path, &back, NULL, NULL));
  g_assert_cmpstr (back, ==, "evidence");

  /* never overwrites */
  f = tg_atomic_file_new (path, 0444, FALSE, &error);
  g_assert_null (f);
  g_assert_error (error, TG_ERROR, TG_ERROR_EXISTS);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_atomic_abort (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *path = g_build_filename (dir, "out.bin", NULL);
  g_autofree char *partial = g_strconcat (path, ".partial", NULL);
  g_autoptr (GError) error = NULL;
  TgAtomicFile *f = tg_atomic_file_new (path, 0444, FALSE, &error);

  g_assert_no_error (error);
  g_assert_true (tg_atomic_file_write (f, "half", 4, &error));
  tg_atomic_file_free (f); /* a failed seal: nothing is left behind */
  g_assert_false (g_file_test (partial, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));

  /* a stale partial from someone else is neither reused nor removed */
  g_assert_true (g_file_set_contents (partial, "x", 1, NULL));
  f = tg_atomic_file_new (path, 0444, FALSE, &error);
  g_assert_null (f);
  g_assert_error (error, TG_ERROR, TG_ERROR_EXISTS);
  g_assert_true (g_file_test (partial, G_FILE_TEST_EXISTS));
  g_unlink (partial);
  g_rmdir (dir);
}

static void
test_nospace (void)
{
  g_autoptr (GError) error = NULL;

  /* /dev/full answers every write with ENOSPC: the error says "disk full". */
  int fd = open ("/dev/full", O_WRONLY);

  g_assert_cmpint (fd, >=, 0);
  g_assert_false (tg_write_all (fd, "x", 1, "/dev/full", &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_NOSPACE);
  close (fd);
}

static void
test_capped_read (void)
{
  g_autofree char *dir = tmpdir ();
  g_autofree char *path = g_build_filename (dir, "f", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;

  g_assert_true (g_file_set_contents (path, "0123456789", 10, NULL));
  g_assert_true (tg_file_get_contents_capped (path, 10, &data, &len, &error));
  g_assert_cmpuint (len, ==, 10);
  g_assert_cmpint (data[10], ==, '\0');
  g_clear_pointer (&data, g_free);
  g_assert_false (tg_file_get_contents_capped (path, 9, &data, &len, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_TOO_BIG);
  g_clear_error (&error);
  g_assert_false (tg_file_get_contents_capped (dir, 100, &data, &len, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_time (void)
{
  gint64 t = 0;
  g_autofree char *s = tg_time_format (0);

  g_assert_cmpstr (s, ==, "1970-01-01T00:00:00Z");
  g_assert_true (tg_time_parse ("2026-11-25T12:00:00Z", &t));
  g_assert_cmpint (t, ==, 1795608000);
  g_assert_true (tg_time_parse ("2026-11-25T13:00:00+01:00", &t));
  g_assert_cmpint (t, ==, 1795608000);
  g_assert_true (tg_time_parse ("2026-11-25T12:00:00.250Z", &t));
  g_assert_false (tg_time_parse ("2026-11-25", &t));
  g_assert_false (tg_time_parse ("2026-11-25t12:00:00Z", &t));
  g_assert_false (tg_time_parse ("2026-11-25T12:00Z", &t));
  g_assert_false (tg_time_parse ("2026-11-25T12:00:00", &t));
  g_assert_false (tg_time_parse (NULL, &t));
}

static void
test_hex (void)
{
  g_autofree char *h = tg_sha256_hex ("abc", 3);

  g_assert_cmpstr (h, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/common/atomic/commit", test_atomic_commit);
  g_test_add_func ("/common/atomic/abort", test_atomic_abort);
  g_test_add_func ("/common/write/nospace", test_nospace);
  g_test_add_func ("/common/read/capped", test_capped_read);
  g_test_add_func ("/common/time", test_time);
  g_test_add_func ("/common/sha256", test_hex);
  return g_test_run ();
}

/* test-rec-chain — the recorder's events.jsonl writer and recording file
 * writer (recorder/rec-log.c, rec-file.c) against archive/'s chain reader:
 * what the recorder writes is what the verifier accepts. */
#include "config.h"
#include "bundle-private.h"
#include "recorder-private.h"
#include "tg-common.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

static void
feed_file (BundleChain *chain, const char *dir, const char *name, guint64 *unchained)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr (GError) e = NULL;

  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  bundle_chain_begin_file (chain, name);
  g_assert_true (bundle_chain_feed (chain, (const guint8 *) data, len, &e));
  g_assert_no_error (e);
  g_assert_true (bundle_chain_end_file (chain, len, unchained, &e));
  g_assert_no_error (e);
}

static BundleChain *
read_chain (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "events.jsonl", NULL);
  g_autofree char *text = NULL;
  gsize len;
  g_autoptr (GError) e = NULL;
  BundleChain *chain;

  g_assert_true (g_file_get_contents (path, &text, &len, NULL));
  chain = bundle_chain_new (text, len, &e);
  g_assert_no_error (e);
  return chain;
}

static void
write_bytes (RecPartFile *f, guint8 seed, gsize n)
{
  g_autofree guint8 *buf = g_malloc (n);
  g_autoptr (GError) e = NULL;
  for (gsize i = 0; i < n; i++)
    buf[i] = (guint8) (seed + i * 7);
  g_assert_true (rec_part_file_write (f, buf, n, &e));
  g_assert_no_error (e);
}

static void
test_chain_across_parts (void)
{
  g_autofree char *dir = g_dir_make_tmp ("rec-chain-XXXXXX", NULL);
  g_autofree char *events = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (GError) e = NULL;
  guint64 unchained = 1;

  {
    g_autoptr (RecLog) log = rec_log_open (events, "test", &e);
    g_autoptr (RecPartFile) f1 = NULL, f2 = NULL;
    g_autoptr (JsonObject) ev = json_object_new ();
    g_assert_no_error (e);
    json_object_set_string_member (ev, "type", "session-start");
    json_object_set_int_member (ev, "version", 1);
    json_object_set_string_member (ev, "session_id", "s1");
    json_object_set_string_member (ev, "case_id", "c1");
    json_object_set_string_member (ev, "officer_id", "o1");
    g_assert_true (rec_log_append (log, ev, &e));
    g_assert_no_error (e);

    f1 = rec_part_file_new (dir, "recording-1.mkv", log, &e);
    g_assert_no_error (e);
    write_bytes (f1, 1, 1000);
    write_bytes (f1, 2, 17);
    g_assert_true (rec_part_file_flush (f1, 1000, &e));
    /* flushing with nothing pending writes nothing */
    g_assert_true (rec_part_file_flush (f1, 1001, &e));
    write_bytes (f1, 3, 4096);
    g_assert_true (rec_part_file_flush (f1, 2000, &e));
    f2 = rec_part_file_new (dir, "recording-2.mkv", log, &e);
    g_assert_no_error (e);
    write_bytes (f2, 4, 333);
    g_assert_true (rec_part_file_flush (f2, 3000, &e));
    write_bytes (f2, 5, 99);  /* not chained: the unchained tail */
    g_assert_no_error (e);
    g_assert_cmpuint (rec_log_next_seq (log), ==, 4);
    /* a part file is never overwritten */
    g_assert_null (rec_part_file_new (dir, "recording-2.mkv", log, &e));
    g_clear_error (&e);
  }
  {
    g_autoptr (BundleChain) chain = read_chain (dir);
    feed_file (chain, dir, "recording-1.mkv", &unchained);
    g_assert_cmpuint (unchained, ==, 0);
    feed_file (chain, dir, "recording-2.mkv", &unchained);
    g_assert_cmpuint (unchained, ==, 99);
    g_assert_true (bundle_chain_check_all_seen (chain, &e));
  }
  /* A torn last line (a crash mid-write) is cut; seq and chain continue. */
  {
    FILE *fp = fopen (events, "a");
    g_autoptr (RecLog) log = NULL;
    g_autoptr (RecPartFile) f3 = NULL;
    g_autofree char *head = NULL;
    fputs ("{\"seq\":4,\"time\":\"2026-01-0", fp);
    fclose (fp);
    log = rec_log_open (events, "test", &e);
    g_assert_no_error (e);
    g_assert_cmpuint (rec_log_next_seq (log), ==, 4);
    head = rec_log_chain_hex (log);
    g_assert_cmpstr (head, !=, "0000000000000000000000000000000000000000000000000000000000000000");
    f3 = rec_part_file_new (dir, "recording-3.mkv", log, &e);
    write_bytes (f3, 6, 5000);
    g_assert_true (rec_part_file_flush (f3, 4000, &e));
    g_assert_no_error (e);
  }
  {
    g_autoptr (BundleChain) chain = read_chain (dir);
    feed_file (chain, dir, "recording-1.mkv", &unchained);
    feed_file (chain, dir, "recording-2.mkv", &unchained);
    feed_file (chain, dir, "recording-3.mkv", &unchained);
    g_assert_cmpuint (unchained, ==, 0);
  }
  /* A corrupted byte is found. */
  {
    g_autofree char *p1 = g_build_filename (dir, "recording-1.mkv", NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr (BundleChain) chain = read_chain (dir);
    g_assert_true (g_file_get_contents (p1, &data, &len, NULL));
    data[500] ^= 1;
    bundle_chain_begin_file (chain, "recording-1.mkv");
    g_assert_false (bundle_chain_feed (chain, (const guint8 *) data, len, &e));
    g_assert_error (e, TG_ERROR, TG_ERROR_INVALID);
  }
  {
    const char *names[] = { "recording-1.mkv", "recording-2.mkv", "recording-3.mkv", "events.jsonl" };
    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      {
        g_autofree char *p = g_build_filename (dir, names[i], NULL);
        g_unlink (p);
      }
    g_rmdir (dir);
  }
}

static void
test_log_refuses (void)
{
  g_autofree char *dir = g_dir_make_tmp ("rec-log-XXXXXX", NULL);
  g_autofree char *events = g_build_filename (dir, "events.jsonl", NULL);
  g_autoptr (GError) e = NULL;
  g_autoptr (RecLog) log = rec_log_open (events, "test", &e);
  g_autoptr (JsonObject) bad = json_object_new ();
  g_autoptr (JsonObject) seq = json_object_new ();

  json_object_set_string_member (bad, "type", "leave");  /* no party */
  g_assert_false (rec_log_append (log, bad, &e));
  g_assert_error (e, REC_ERROR, REC_ERROR_INVALID);
  g_clear_error (&e);
  json_object_set_int_member (seq, "seq", 0);
  json_object_set_string_member (seq, "type", "leave");
  json_object_set_string_member (seq, "party", "officer");
  g_assert_false (rec_log_append (log, seq, &e));
  g_clear_error (&e);
  g_assert_cmpuint (rec_log_next_seq (log), ==, 0);
  g_unlink (events);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  gst_init (NULL, NULL);
  rec_debug_init ();
  g_test_add_func ("/recorder/chain/across-parts", test_chain_across_parts);
  g_test_add_func ("/recorder/log/refuses", test_log_refuses);
  return g_test_run ();
}

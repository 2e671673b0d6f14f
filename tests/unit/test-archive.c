/* test-archive.c — archive/ internals: member names, the canonical tar
 * header, and the events hash chain (direct and on the worker thread). */
#include "bundle-private.h"

#include <string.h>

static void
test_names (void)
{
  const char *good[] = { "C-1/", "C-1/data/record.json", "C-1/data/stills/", "a.b_c-d/e" };
  const char *bad[] = { "", "/etc/passwd", "C/../x", "../x", "C/./x", "C//x", "C/x y", "C/é",
                        "C/x\\y", "..", "C/..", "./C" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    g_assert_true (bundle_name_is_safe (good[i]));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (bundle_name_is_safe (bad[i]));
  g_assert_true (bundle_recording_name_ok ("recording.mkv"));
  g_assert_true (bundle_recording_name_ok ("recording-12.webm"));
  g_assert_false (bundle_recording_name_ok ("recording-12345.mkv"));
  g_assert_false (bundle_recording_name_ok ("evil.mkv"));
  g_assert_true (bundle_recording_name_ok ("recording-1-signatory-video.mkv"));
  g_assert_true (bundle_recording_name_ok ("recording-0-officer-audio.webm"));
  g_assert_true (bundle_recording_name_ok ("recording-officer-video.mkv"));
  g_assert_false (bundle_recording_name_ok ("recording-1-judge-video.mkv"));
  g_assert_false (bundle_recording_name_ok ("recording-1-signatory.mkv"));
  g_assert_false (bundle_recording_name_ok ("recording-signatory-video-1.mkv"));
  g_assert_false (bundle_recording_name_ok ("recording-1-signatory-video.mp4"));
  g_assert_false (bundle_recording_name_ok ("recording-1-signatory-video.mkv/"));
  g_assert_true (bundle_still_name_ok ("doc-front.png"));
  g_assert_false (bundle_still_name_ok (".png"));
  g_assert_false (bundle_still_name_ok ("a/b.png"));
}

static void
test_tar_header (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) a = bundle_tar_header ("C/data/x", FALSE, 10, 1700000000, &error);
  g_autoptr (GBytes) b = bundle_tar_header ("C/data/x", FALSE, 10, 1700000000, &error);
  g_autoptr (GBytes) c = bundle_tar_header ("C/data/x", FALSE, 11, 1700000000, &error);
  g_autoptr (GBytes) big = bundle_tar_header ("C/data/x", FALSE, G_GUINT64_CONSTANT (10) << 30, 1700000000, &error);
  const guint8 *h;

  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (a, b));        /* deterministic */
  g_assert_false (g_bytes_equal (a, c));       /* the size is in it */
  g_assert_cmpuint (g_bytes_get_size (a), ==, 512); /* plain ustar when it fits */
  h = g_bytes_get_data (a, NULL);
  g_assert_cmpmem (h + 257, 5, "ustar", 5);
  g_assert_cmpstr ((const char *) h, ==, "C/data/x");
  /* over 8 GiB the size goes to a pax extended header */
  g_assert_cmpuint (g_bytes_get_size (big), >, 512);
  g_assert_cmpuint (g_bytes_get_size (big) % 512, ==, 0);
}

/* events.jsonl text over @data cut in segments of @seg bytes */
static char *
make_events (const guint8 *data, gsize len, gsize seg)
{
  GString *s = g_string_new (NULL);
  guint8 prev[32] = { 0 };
  guint seq = 0;

  g_string_append_printf (s, "{\"seq\":%u,\"time\":\"2025-03-03T09:00:02Z\",\"type\":\"session-start\","
                             "\"version\":1,\"session_id\":\"s1\",\"case_id\":\"C-1\",\"officer_id\":\"o1\"}\n", seq++);
  for (gsize off = 0; off < len; off += seg)
    {
      gsize n = MIN (seg, len - off);
      guint8 h[32], link[32];
      g_autofree char *hh = NULL, *lh = NULL;
      g_autoptr (EVP_MD_CTX) md = EVP_MD_CTX_new ();
      EVP_Digest (data + off, n, h, NULL, EVP_sha256 (), NULL);
      EVP_DigestInit_ex (md, EVP_sha256 (), NULL);
      EVP_DigestUpdate (md, prev, 32);
      EVP_DigestUpdate (md, h, 32);
      EVP_DigestFinal_ex (md, link, NULL);
      memcpy (prev, link, 32);
      hh = tg_hex (h, 32);
      lh = tg_hex (link, 32);
      g_string_append_printf (s, "{\"seq\":%u,\"time\":\"2025-03-03T09:00:03Z\",\"type\":\"segment\",\"file\":"
                                 "\"recording.mkv\",\"offset\":%" G_GSIZE_FORMAT ",\"length\":%" G_GSIZE_FORMAT
                                 ",\"sha256\":\"%s\",\"chain\":\"%s\",\"running_time_ns\":0}\n",
                              seq++, off, n, hh, lh);
    }
  return g_string_free (s, FALSE);
}

static void
feed_in_pieces (BundleChain *chain, const guint8 *data, gsize len, gboolean *ok, GError **error)
{
  bundle_chain_begin_file (chain, "recording.mkv");
  *ok = TRUE;
  for (gsize off = 0; off < len && *ok; off += 777)
    *ok = bundle_chain_feed (chain, data + off, MIN (777, len - off), error);
}

static void
test_chain (void)
{
  guint8 data[10000];
  g_autofree char *events = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BundleChain) chain = NULL;
  guint64 unchained = 99;
  gboolean ok;

  for (guint i = 0; i < sizeof data; i++)
    data[i] = (guint8) (i * 7);
  events = make_events (data, 9000, 1000); /* the last 1000 bytes are unchained */
  chain = bundle_chain_new (events, strlen (events), &error);
  g_assert_no_error (error);
  g_assert_true (bundle_chain_covers (chain, "recording.mkv"));
  g_assert_false (bundle_chain_covers (chain, "recording-2.mkv"));
  feed_in_pieces (chain, data, sizeof data, &ok, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_true (bundle_chain_end_file (chain, sizeof data, &unchained, &error));
  g_assert_cmpuint (unchained, ==, 1000);

  /* a changed byte inside a chained segment is found */
  data[4321] ^= 1;
  feed_in_pieces (chain, data, sizeof data, &ok, &error);
  g_assert_false (ok);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "4000..5000"));
  g_clear_error (&error);
  data[4321] ^= 1;

  /* a recording shorter than its chain */
  feed_in_pieces (chain, data, 8500, &ok, &error);
  g_assert_true (ok);
  g_assert_false (bundle_chain_end_file (chain, 8500, NULL, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
}

static void
test_chain_rejects (void)
{
  guint8 data[3000] = { 0 };
  g_autofree char *events = make_events (data, sizeof data, 1000);
  g_autoptr (GError) error = NULL;
  BundleChain *chain;
  char *p;

  /* a broken link: change one hex digit of the second chain value */
  p = strstr (strstr (events, "\"chain\":\"") + 1, "\"chain\":\"");
  p += 9;
  *p = *p == 'a' ? 'b' : 'a';
  chain = bundle_chain_new (events, strlen (events), &error);
  g_assert_null (chain);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  /* no trailing newline */
  chain = bundle_chain_new ("{}", 2, &error);
  g_assert_null (chain);
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
}

static void
test_worker (void)
{
  gsize len = 5u << 20;
  g_autofree guint8 *data = g_malloc (len);
  g_autofree char *events = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (BundleChain) chain = NULL;
  g_autoptr (BundleRing) ring = bundle_ring_new (3, 1u << 20);
  BundleChainWorker *w;
  guint64 unchained = 1;

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) (i ^ (i >> 9));
  events = make_events (data, len, 300000);
  chain = bundle_chain_new (events, strlen (events), &error);
  g_assert_no_error (error);
  w = bundle_chain_worker_new (chain, ring);

  for (int round = 0; round < 2; round++)
    {
      gboolean ok;
      if (round == 1)
        data[len - 3] ^= 0x80; /* second round: the last segment is wrong */
      bundle_chain_worker_begin (w, "recording.mkv");
      for (gsize off = 0; off < len;)
        {
          gsize size;
          guint8 *buf = bundle_ring_next (ring, &size);
          gsize n = MIN (size, len - off);
          memcpy (buf, data + off, n);
          bundle_chain_worker_feed (w, buf, n / 2);          /* from the ring, in place */
          bundle_chain_worker_feed (w, data + off + n / 2, n - n / 2); /* elsewhere: copied */
          off += n;
        }
      ok = bundle_chain_worker_end (w, len, &unchained, &error);
      if (round == 0)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpuint (unchained, ==, 0);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
          g_clear_error (&error);
        }
    }
  bundle_chain_worker_free (w);
}

/* Test vectors: the verifier accepts only headers byte-identical to what
 * libarchive writes today. If a libarchive update changes its encoding,
 * bundles already sealed would stop verifying: this test fails first. */
static void
test_tar_vectors (void)
{
  g_autoptr (GBytes) f = bundle_tar_header ("C-1/data/recording.mkv", FALSE, 1234567, 1700000000, NULL);
  g_autoptr (GBytes) d = bundle_tar_header ("C-1/data/", TRUE, 0, 1700000000, NULL);
  g_autofree char *fh = tg_sha256_hex (g_bytes_get_data (f, NULL), g_bytes_get_size (f));
  g_autofree char *dh = tg_sha256_hex (g_bytes_get_data (d, NULL), g_bytes_get_size (d));

  g_assert_cmpstr (fh, ==, "b8314145bd5154f95d86aa65ce08de12bcb171571a819feec59bbe6ecf738801");
  g_assert_cmpstr (dh, ==, "913cdaddbd18360ce8ca415acde037ed94842cf52605f39ca300fc2e57159879");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/archive/names", test_names);
  g_test_add_func ("/archive/tar-header", test_tar_header);
  g_test_add_func ("/archive/tar-vectors", test_tar_vectors);
  g_test_add_func ("/archive/chain", test_chain);
  g_test_add_func ("/archive/chain-rejects", test_chain_rejects);
  g_test_add_func ("/archive/chain-worker", test_worker);
  return g_test_run ();
}

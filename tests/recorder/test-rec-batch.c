/* test-rec-batch — recorder/rec-batch.c, the writer's queue of a recorded
 * track: its thread pushes what waits in batches (not one wake-up per
 * buffer), in order; after an idle interval the next item goes at once, the
 * ones after it wait for the next batch; an EOS goes at once; beyond the age
 * bound the oldest buffers (never events) are dropped; what waits at
 * teardown is freed. */
#include "config.h"
#include "recorder-private.h"

#include <gst/check/gstharness.h>

static gint drained;

static void
count_drained (RecBatch *batch, gpointer user_data)
{
  g_atomic_int_inc (&drained);
}

static GstHarness *
harness_new (guint interval_ms, gsize max_bytes, guint max_age_ms)
{
  GstHarness *h = gst_harness_new_with_element (rec_batch_new (interval_ms, max_bytes, max_age_ms, count_drained,
                                                               NULL),
                                                "sink", "src");
  g_atomic_int_set (&drained, 0);
  gst_harness_set_src_caps_str (h, "application/x-test");
  return h;
}

static GstBuffer *
numbered (guint n, gsize size)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);
  gst_buffer_memset (buf, 0, (guint8) n, size);
  GST_BUFFER_PTS (buf) = n * GST_MSECOND;
  return buf;
}

static guint
number_of (GstBuffer *buf)
{
  g_assert_nonnull (buf);
  return (guint) (GST_BUFFER_PTS (buf) / GST_MSECOND);
}

/* Skips events until @type; fails if none comes. */
static void
expect_event (GstHarness *h, GstEventType type)
{
  for (;;)
    {
      GstEvent *ev = gst_harness_pull_event (h);
      gboolean found;
      g_assert_nonnull (ev);
      found = GST_EVENT_TYPE (ev) == type;
      gst_event_unref (ev);
      if (found)
        return;
    }
}

static void
test_batches (void)
{
  GstHarness *h = harness_new (200, 1 << 20, 10000);
  guint n = 20;

  expect_event (h, GST_EVENT_SEGMENT);
  g_atomic_int_set (&drained, 0);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (gst_harness_push (h, numbered (i, 100)), ==, GST_FLOW_OK);
  for (guint i = 0; i < n; i++)
    {
      GstBuffer *buf = gst_harness_pull (h);
      g_assert_cmpuint (number_of (buf), ==, i);
      gst_buffer_unref (buf);
    }
  /* A wake-up or two for the lot (a few if this machine is very slow), not
   * one per buffer. (The count may lag the last pull: drained is called
   * after the batch's pushes.) */
  g_assert_cmpint (g_atomic_int_get (&drained), <, (gint) n / 4);
  g_assert_null (gst_harness_try_pull (h));
  gst_harness_teardown (h);
}

static void
test_idle_then_batch (void)
{
  GstHarness *h = harness_new (1000, 1 << 20, 10000);
  gint64 t0;
  GstBuffer *buf;

  expect_event (h, GST_EVENT_SEGMENT);
  /* Nothing for more than an interval: the writer waits for an item. */
  g_usleep (1200 * G_TIME_SPAN_MILLISECOND);
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (gst_harness_push (h, numbered (1, 100)), ==, GST_FLOW_OK);
  buf = gst_harness_pull (h);
  g_assert_cmpuint (number_of (buf), ==, 1);
  gst_buffer_unref (buf);
  /* ... and pushes it at once, not after the 1 s interval ... */
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 500 * G_TIME_SPAN_MILLISECOND);
  /* ... while the next one waits for the next batch, an interval after it. */
  t0 = g_get_monotonic_time ();
  g_assert_cmpint (gst_harness_push (h, numbered (2, 100)), ==, GST_FLOW_OK);
  buf = gst_harness_pull (h);
  g_assert_cmpuint (number_of (buf), ==, 2);
  gst_buffer_unref (buf);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 500 * G_TIME_SPAN_MILLISECOND);
  gst_harness_teardown (h);
}

static void
test_eos_at_once (void)
{
  GstHarness *h = harness_new (60 * 1000, 1 << 20, 120 * 1000);
  gint64 t0 = g_get_monotonic_time ();
  GstBuffer *buf;

  g_assert_cmpint (gst_harness_push (h, numbered (7, 100)), ==, GST_FLOW_OK);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  /* Not the 60 s interval: the EOS takes what waits with it. */
  buf = gst_harness_pull (h);
  g_assert_cmpuint (number_of (buf), ==, 7);
  gst_buffer_unref (buf);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 30 * G_USEC_PER_SEC);
  expect_event (h, GST_EVENT_EOS);
  gst_harness_teardown (h);
}

static void
test_leak_oldest (void)
{
  GstHarness *h = harness_new (60 * 1000, 1 << 20, 100);
  GstBuffer *buf;

  /* The stream's first events went at once; the writer now sleeps 60 s. */
  expect_event (h, GST_EVENT_SEGMENT);
  g_assert_cmpint (gst_harness_push (h, numbered (1, 100)), ==, GST_FLOW_OK);
  g_assert_true (gst_harness_push_event (h, gst_event_new_tag (gst_tag_list_new_empty ())));
  g_usleep (300 * G_TIME_SPAN_MILLISECOND);
  /* Buffer 1 has waited longer than 100 ms: dropped; the event after it, as old, kept. */
  g_assert_cmpint (gst_harness_push (h, numbered (2, 100)), ==, GST_FLOW_OK);
  g_assert_cmpint (gst_harness_push (h, numbered (3, 100)), ==, GST_FLOW_OK);
  g_assert_true (gst_harness_push_event (h, gst_event_new_eos ()));
  expect_event (h, GST_EVENT_TAG);
  buf = gst_harness_pull (h);
  g_assert_cmpuint (number_of (buf), ==, 2);
  gst_buffer_unref (buf);
  buf = gst_harness_pull (h);
  g_assert_cmpuint (number_of (buf), ==, 3);
  gst_buffer_unref (buf);
  expect_event (h, GST_EVENT_EOS);
  g_assert_null (gst_harness_try_pull (h));
  gst_harness_teardown (h);
}

static void
test_teardown_with_waiting (void)
{
  /* What still waits when the element stops is freed (ASan's leak check). */
  GstHarness *h = harness_new (60 * 1000, 1 << 20, 120 * 1000);

  /* The stream's first events went at once; the writer now sleeps 60 s. */
  expect_event (h, GST_EVENT_SEGMENT);
  for (guint i = 0; i < 5; i++)
    g_assert_cmpint (gst_harness_push (h, numbered (i, 1000)), ==, GST_FLOW_OK);
  g_assert_null (gst_harness_try_pull (h));
  gst_harness_teardown (h);
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rec-batch/batches", test_batches);
  g_test_add_func ("/rec-batch/idle-then-batch", test_idle_then_batch);
  g_test_add_func ("/rec-batch/eos-at-once", test_eos_at_once);
  g_test_add_func ("/rec-batch/leak-oldest", test_leak_oldest);
  g_test_add_func ("/rec-batch/teardown-with-waiting", test_teardown_with_waiting);
  return g_test_run ();
}

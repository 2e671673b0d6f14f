/* test-rec-forward — recorder/rec-forward.c, the element that takes the place
 * of rtpbin's jitter buffer: packets pass in arrival order, in the caller's
 * thread, timestamped; reordered and duplicated ones are counted; rtpbin
 * takes it through "request-jitterbuffer" without adding a thread. */
#include "config.h"
#include "recorder-private.h"

#include <gst/check/gstharness.h>
#include <gst/rtp/rtp.h>

static GstBuffer *
rtp_packet (guint16 seq, GstClockTime pts)
{
  GstBuffer *buf = gst_rtp_buffer_new_allocate (4, 0, 0);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;

  g_assert_true (gst_rtp_buffer_map (buf, GST_MAP_WRITE, &rtp));
  gst_rtp_buffer_set_seq (&rtp, seq);
  gst_rtp_buffer_set_payload_type (&rtp, 96);
  gst_rtp_buffer_set_ssrc (&rtp, 0x1234);
  gst_rtp_buffer_set_timestamp (&rtp, seq * 3000u);
  gst_rtp_buffer_unmap (&rtp);
  GST_BUFFER_PTS (buf) = pts;
  return buf;
}

static guint16
seq_of (GstBuffer *buf)
{
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  guint16 seq;

  g_assert_true (gst_rtp_buffer_map (buf, GST_MAP_READ, &rtp));
  seq = gst_rtp_buffer_get_seq (&rtp);
  gst_rtp_buffer_unmap (&rtp);
  return seq;
}

static guint
late_of (GstElement *e)
{
  guint late = 0;
  g_object_get (e, "late", &late, NULL);
  return late;
}

static void
test_order_and_late (void)
{
  GstElement *fwd = rec_forward_new ();
  GstHarness *h = gst_harness_new_with_element (fwd, "sink", "src");
  /* 65535 → 0 is a wrap, not a step back; 3 after 4 and the second 4 are late */
  static const guint16 seqs[] = { 65534, 65535, 0, 1, 2, 4, 3, 4, 5 };
  static const guint want_late[] = { 0, 0, 0, 0, 0, 0, 1, 2, 2 };

  gst_harness_set_src_caps_str (h, "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96");
  for (guint i = 0; i < G_N_ELEMENTS (seqs); i++)
    {
      GstBuffer *out;
      g_assert_cmpint (gst_harness_push (h, rtp_packet (seqs[i], (i + 1) * GST_MSECOND)), ==, GST_FLOW_OK);
      /* no thread and no holding back: the packet is out before push returns */
      g_assert_cmpuint (gst_harness_buffers_in_queue (h), ==, 1);
      out = gst_harness_pull (h);
      g_assert_cmpuint (seq_of (out), ==, seqs[i]);
      g_assert_cmpuint (GST_BUFFER_PTS (out), ==, (i + 1) * GST_MSECOND); /* arrival stamp kept */
      g_assert_cmpuint (late_of (fwd), ==, want_late[i]);
      gst_buffer_unref (out);
    }
  gst_harness_teardown (h);
}

static void
test_untimed_packet_gets_running_time (void)
{
  GstElement *fwd = rec_forward_new ();
  GstHarness *h = gst_harness_new_with_element (fwd, "sink", "src");
  GstBuffer *out;

  gst_harness_set_src_caps_str (h, "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111");
  g_assert_true (gst_harness_set_time (h, 5 * GST_SECOND));
  g_assert_cmpint (gst_harness_push (h, rtp_packet (7, GST_CLOCK_TIME_NONE)), ==, GST_FLOW_OK);
  out = gst_harness_pull (h);
  g_assert_true (GST_BUFFER_PTS_IS_VALID (out));
  g_assert_cmpuint (GST_BUFFER_PTS (out), ==, 5 * GST_SECOND - gst_element_get_base_time (fwd));
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

static void
test_properties_rtpbin_sets (void)
{
  GstElement *fwd = gst_object_ref_sink (rec_forward_new ());
  guint latency = 0;
  gboolean rtx = FALSE;

  g_object_set (fwd, "latency", 200u, "do-retransmission", TRUE, NULL);
  g_object_get (fwd, "latency", &latency, "do-retransmission", &rtx, NULL);
  g_assert_cmpuint (latency, ==, 200);
  g_assert_true (rtx);
  gst_object_unref (fwd);
}

static GstElement *
request_forwarder (GstElement *rtpbin, guint session, gpointer user_data)
{
  GstElement **made = user_data;
  *made = rec_forward_new ();
  return *made;
}

static void
on_pad_added (GstElement *rtpbin, GstPad *pad, gpointer user_data)
{
  GstHarness *out = user_data;
  if (g_str_has_prefix (GST_PAD_NAME (pad), "recv_rtp_src_"))
    g_assert_cmpint (gst_pad_link (pad, out->sinkpad), ==, GST_PAD_LINK_OK);
}

/* rtpbin builds its per-SSRC stream around the element it is given: a packet
 * entering recv_rtp_sink_0 leaves recv_rtp_src_0_<ssrc>_<pt> in the same
 * thread, with no rtpjitterbuffer in the bin. */
static void
test_in_rtpbin (void)
{
  GstElement *pipe = gst_pipeline_new (NULL);
  GstElement *rtpbin = gst_element_factory_make ("rtpbin", NULL);
  GstElement *made = NULL;
  GstPad *sink;
  GstHarness *in, *out;
  GstIterator *it;
  GValue v = G_VALUE_INIT;
  gboolean has_jb = FALSE;
  guint queued;

  g_assert_nonnull (rtpbin);
  gst_bin_add (GST_BIN (pipe), rtpbin);
  out = gst_harness_new_with_padnames ("identity", "sink", NULL);
  g_signal_connect (rtpbin, "request-jitterbuffer", G_CALLBACK (request_forwarder), &made);
  g_signal_connect (rtpbin, "pad-added", G_CALLBACK (on_pad_added), out);
  sink = gst_element_request_pad_simple (rtpbin, "recv_rtp_sink_0");
  in = gst_harness_new_with_padnames ("identity", NULL, "src");
  g_assert_cmpint (gst_pad_link (in->srcpad, sink), ==, GST_PAD_LINK_OK);
  g_assert_cmpint (gst_element_set_state (pipe, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  gst_harness_set_src_caps_str (in, "application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96");
  /* the RTP session validates a new source after a few packets in sequence */
  for (guint16 seq = 1; seq <= 3; seq++)
    g_assert_cmpint (gst_harness_push (in, rtp_packet (seq, seq * 33 * GST_MSECOND)), ==, GST_FLOW_OK);
  g_assert_nonnull (made);
  queued = gst_harness_buffers_in_queue (out);
  g_assert_cmpuint (queued, >=, 1);
  for (guint16 seq = 4; seq <= 6; seq++)
    {
      g_assert_cmpint (gst_harness_push (in, rtp_packet (seq, seq * 33 * GST_MSECOND)), ==, GST_FLOW_OK);
      /* out before push returned: no thread in between */
      g_assert_cmpuint (gst_harness_buffers_in_queue (out), ==, ++queued);
    }

  it = gst_bin_iterate_recurse (GST_BIN (rtpbin));
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK)
    {
      GstElementFactory *f = gst_element_get_factory (g_value_get_object (&v));
      if (f != NULL && g_str_equal (GST_OBJECT_NAME (f), "rtpjitterbuffer"))
        has_jb = TRUE;
      g_value_reset (&v);
    }
  g_value_unset (&v);
  gst_iterator_free (it);
  g_assert_false (has_jb);

  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_element_release_request_pad (rtpbin, sink);
  gst_object_unref (sink);
  gst_harness_teardown (in);
  gst_harness_teardown (out);
  gst_object_unref (pipe);
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
  rec_debug_init ();
  g_test_add_func ("/rec-forward/element/order-and-late", test_order_and_late);
  g_test_add_func ("/rec-forward/element/untimed-packet", test_untimed_packet_gets_running_time);
  g_test_add_func ("/rec-forward/element/properties", test_properties_rtpbin_sets);
  g_test_add_func ("/rec-forward/rtpbin/no-thread", test_in_rtpbin);
  return g_test_run ();
}

/* test-rec-send — recorder/rec-send.c on webrtcbin 1.22's send path for a
 * track (clocksync → bin [rtpulpfecenc → rtpredenc] → rtpfunnel, the real
 * elements): with the encoders' defaults (RED allowed without redundant
 * blocks) buffers go through them; once FEC and RED are off as webrtcbin
 * sets them when not negotiated, buffers reach the funnel without passing
 * the encoders, in order, after the stream's events (which take the full
 * path); with a ULPFEC payload type or a RED distance set they go through
 * the encoders again, and past them once unset. A send path of another
 * shape is left alone. The funnel sends a switch between inputs no
 * segment or TOS event while the inputs' are equal (position aside). */
#include "config.h"
#include "recorder-private.h"
#include "rtp-fixture.h"

/* webrtcbin's send path of one track, into a funnel and a fakesink; with
 * @middle NULL the FEC bin, else that element instead */
static GstElement *
send_path (GstElement *pipeline, const char *middle, GstElement **clocksync, GstElement **fecenc,
           GstElement **redenc, GstPad **funnel_sink)
{
  GstElement *funnel = make ("rtpfunnel"), *sink = make ("fakesink"), *mid;
  GstPad *pad;

  *clocksync = make ("clocksync");
  g_object_set (*clocksync, "sync", TRUE, NULL);
  g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
  if (middle == NULL)
    {
      mid = gst_bin_new (NULL);
      *fecenc = make ("rtpulpfecenc");
      *redenc = make ("rtpredenc");
      gst_bin_add_many (GST_BIN (mid), *fecenc, *redenc, NULL);
      g_assert_true (gst_element_link (*fecenc, *redenc));
      pad = gst_element_get_static_pad (*fecenc, "sink");
      gst_element_add_pad (mid, gst_ghost_pad_new ("sink", pad));
      gst_object_unref (pad);
      pad = gst_element_get_static_pad (*redenc, "src");
      gst_element_add_pad (mid, gst_ghost_pad_new ("src", pad));
      gst_object_unref (pad);
    }
  else
    {
      mid = make (middle);
      *fecenc = *redenc = NULL;
    }
  gst_bin_add_many (GST_BIN (pipeline), *clocksync, mid, funnel, sink, NULL);
  g_assert_true (gst_element_link (*clocksync, mid));
  *funnel_sink = gst_element_request_pad_simple (funnel, "sink_%u");
  pad = gst_element_get_static_pad (mid, "src");
  g_assert_cmpint (gst_pad_link (pad, *funnel_sink), ==, GST_PAD_LINK_OK);
  gst_object_unref (pad);
  g_assert_true (gst_element_link (funnel, sink));
  return mid;
}

static void
push_n (GstPad *sink, guint16 *seq, guint n)
{
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (gst_pad_chain (sink, rtp_packet ((*seq)++, 96)), ==, GST_FLOW_OK);
}

static void
test_passthrough (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *clocksync, *fecenc, *redenc;
  GstPad *funnel_sink, *sink, *fec_sink;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  rec_send_bypass (pipeline);
  send_path (pipeline, NULL, &clocksync, &fecenc, &redenc, &funnel_sink);
  g_assert_nonnull (g_object_get_data (G_OBJECT (clocksync), "rec-send-bypass"));
  gst_pad_add_probe (funnel_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, consumer_probe,
                     seen, NULL);
  fec_sink = gst_element_get_static_pad (fecenc, "sink");
  gst_pad_add_probe (fec_sink, GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  sink = gst_element_get_static_pad (clocksync, "sink");
  start_stream (sink);

  /* The encoders' defaults (RED may be sent without redundant blocks):
   * through them. */
  push_n (sink, &seq, 5);
  g_assert_cmpuint (seen->n, ==, 5);
  g_assert_cmpuint (seen->through, ==, 5);
  g_assert_true (seen->segment_first);

  /* FEC and RED off, as webrtcbin sets them when not negotiated: past them */
  g_object_set (fecenc, "pt", 255, NULL);
  g_object_set (redenc, "pt", 0, "allow-no-red-blocks", FALSE, NULL);
  push_n (sink, &seq, 15);
  g_assert_cmpuint (seen->n, ==, 20);
  g_assert_cmpuint (seen->through, ==, 5);

  /* ULPFEC given a payload type: through the encoders */
  g_object_set (fecenc, "pt", 100, NULL);
  push_n (sink, &seq, 10);
  g_assert_cmpuint (seen->through, ==, 15);
  g_assert_cmpuint (seen->n, >=, 30);   /* the media packets (the encoder may add FEC packets) */
  g_object_set (fecenc, "pt", 255, NULL);

  /* RED with a distance: through the encoders */
  g_object_set (redenc, "distance", 1, NULL);
  push_n (sink, &seq, 5);
  g_assert_cmpuint (seen->through, ==, 20);
  g_object_set (redenc, "distance", 0, NULL);

  /* both off again: past them, in order */
  {
    guint before = seen->n;
    push_n (sink, &seq, 10);
    g_assert_cmpuint (seen->through, ==, 20);
    g_assert_cmpuint (seen->n, ==, before + 10);
    for (guint i = before; i < seen->n; i++)
      g_assert_cmpuint (seen->seq[i], ==, seen->seq[i - 1] + 1);
  }
  for (guint i = 1; i < 20; i++)
    g_assert_cmpuint (seen->seq[i], ==, i);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (fec_sink);
  gst_object_unref (funnel_sink);
  gst_object_unref (pipeline);
  seen_free (seen);
}

static void
test_other_shape (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *clocksync, *fecenc, *redenc, *identity;
  GstPad *funnel_sink, *sink, *id_sink;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  rec_send_bypass (pipeline);
  identity = send_path (pipeline, "identity", &clocksync, &fecenc, &redenc, &funnel_sink);
  gst_pad_add_probe (funnel_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, consumer_probe,
                     seen, NULL);
  id_sink = gst_element_get_static_pad (identity, "sink");
  gst_pad_add_probe (id_sink, GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  sink = gst_element_get_static_pad (clocksync, "sink");
  start_stream (sink);
  push_n (sink, &seq, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 10);   /* through the element in between */

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (id_sink);
  gst_object_unref (funnel_sink);
  gst_object_unref (pipeline);
  seen_free (seen);
}

/* rtpfunnel re-sends an input's segment and TOS event downstream at every
 * switch between inputs unless they are the events its source pad holds:
 * with the relayed tracks' segments (equal but for the position) and
 * webrtcbin's TOS events, alternating inputs sends only the first ones;
 * segments that differ otherwise are sent at every switch as before. */
typedef struct
{
  gint segments, tos; /* atomic: at the funnel's source pad */
} FunnelSeen;

static GstPadProbeReturn
funnel_src_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  FunnelSeen *fs = user_data;
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (ev) == GST_EVENT_SEGMENT)
    g_atomic_int_inc (&fs->segments);
  else if (gst_event_has_name (ev, "GstWebRtcBinUpdateTos"))
    g_atomic_int_inc (&fs->tos);
  return GST_PAD_PROBE_OK;
}

static void
funnel_input (GstPad *sink, const char *media, const char *mid, GstClockTime position, GstClockTime base)
{
  GstSegment seg;
  GstCaps *caps = gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, media, "payload", G_TYPE_INT,
                                       96, "clock-rate", G_TYPE_INT, 90000, NULL);
  gst_segment_init (&seg, GST_FORMAT_TIME);
  seg.position = position;
  seg.base = base;
  g_assert_true (gst_pad_send_event (sink, gst_event_new_stream_start (media)));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_caps (caps)));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_segment (&seg)));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM_STICKY,
                     gst_structure_new ("GstWebRtcBinUpdateTos", "mid", G_TYPE_STRING, mid, NULL))));
  gst_caps_unref (caps);
}

static void
funnel_switches (GstClockTime audio_base, gint *segments, gint *tos)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *funnel, *sink;
  GstPad *video, *audio, *src;
  FunnelSeen fs = { 0, 0 };
  guint16 seq = 0;

  rec_send_bypass (pipeline);
  funnel = make ("rtpfunnel");
  sink = make ("fakesink");
  g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add_many (GST_BIN (pipeline), funnel, sink, NULL);
  g_assert_true (gst_element_link (funnel, sink));
  video = gst_element_request_pad_simple (funnel, "sink_%u");
  audio = gst_element_request_pad_simple (funnel, "sink_%u");
  src = gst_element_get_static_pad (funnel, "src");
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, funnel_src_probe, &fs, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  funnel_input (video, "video", "video0", 40 * GST_MSECOND, 0);
  funnel_input (audio, "audio", "audio1", 60 * GST_MSECOND, audio_base);
  for (guint i = 0; i < 20; i++)
    g_assert_cmpint (gst_pad_chain (i % 2 ? audio : video, rtp_packet (seq++, 96)), ==, GST_FLOW_OK);
  *segments = g_atomic_int_get (&fs.segments);
  *tos = g_atomic_int_get (&fs.tos);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_element_release_request_pad (funnel, video);
  gst_element_release_request_pad (funnel, audio);
  gst_object_unref (video);
  gst_object_unref (audio);
  gst_object_unref (src);
  gst_object_unref (pipeline);
}

static void
test_funnel_events (void)
{
  gint segments, tos;

  funnel_switches (0, &segments, &tos);
  g_assert_cmpint (segments, ==, 1);
  g_assert_cmpint (tos, ==, 1);

  /* a segment that differs in more than its position: sent at the switches */
  funnel_switches (GST_SECOND, &segments, &tos);
  g_assert_cmpint (segments, >=, 19);
  g_assert_cmpint (tos, ==, 1);
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rec-send/passthrough", test_passthrough);
  g_test_add_func ("/rec-send/other-shape", test_other_shape);
  g_test_add_func ("/rec-send/funnel-events", test_funnel_events);
  return g_test_run ();
}

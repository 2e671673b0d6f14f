/* test-rec-shortcut — recorder/rec-shortcut.c on the real elements, in the
 * shapes webrtcbin 1.22 builds them (gstwebrtcbin.c): the aux receiver bin
 * (rtprtxreceive → rtpreddec behind ghost pads), the aux sender bin
 * (rtprtxsend), and rtpptdemux → rtpulpfecdec inside a bin (rtpbin) whose
 * ghost pad the consumer is linked to.
 *
 * While the elements are idle as webrtcbin leaves them without RTX, RED or
 * ULPFEC, buffers reach the consumer without passing them, in order, after
 * the stream's events (which take the full path); once an RTX payload type,
 * a RED payload type or ULPFEC is set, they go through again, and past them
 * once unset. The demuxer's first buffer (it makes the pad) and the first
 * after a caps event take the full path; a second payload type leaves the
 * demuxer alone from then on. A bin of another shape is left alone. Runs of
 * ghost pads of webrtcbin's inner bins (here rtpbin's) are crossed in one
 * step unless a pad of the run is blocked; other bins' are crossed as
 * before. A capsfilter is skipped once its output has caps, but for the
 * buffer after an event it held back. (The whole recorder, on real
 * webrtcbins, is checked by recorder-jitter.) */
#include "config.h"
#include "recorder-private.h"
#include "rtp-fixture.h"

static void
probe (GstElement *e, const char *pad_name, GstPadProbeType type, GstPadProbeCallback cb, gpointer seen)
{
  GstPad *pad = gst_element_get_static_pad (e, pad_name);
  g_assert_nonnull (pad);
  gst_pad_add_probe (pad, type, cb, seen, NULL);
  gst_object_unref (pad);
}

static void
push_n (GstPad *sink, guint16 *seq, guint8 pt, guint n)
{
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (gst_pad_chain (sink, rtp_packet ((*seq)++, pt)), ==, GST_FLOW_OK);
}

static void
assert_in_order (Seen *seen)
{
  g_assert_cmpuint (seen->n, <=, G_N_ELEMENTS (seen->seq));
  for (guint i = 1; i < seen->n; i++)
    g_assert_cmpuint (seen->seq[i], ==, seen->seq[i - 1] + 1);
}

static GstStructure *
rtx_map (gboolean with_rtx)
{
  GstStructure *map = gst_structure_new_empty ("application/x-rtp-pt-map");
  if (with_rtx)
    gst_structure_set (map, "96", G_TYPE_UINT, 97u, NULL);   /* original 96, its RTX 97 */
  return map;
}

static void
set_rtx_map (GstElement *rtx, gboolean with_rtx)
{
  GstStructure *map = rtx_map (with_rtx);
  g_object_set (rtx, "payload-type-map", map, NULL);
  gst_structure_free (map);
}

static void
set_red_payloads (GstElement *reddec, gint red_pt)
{
  GValue arr = G_VALUE_INIT, v = G_VALUE_INIT;
  g_value_init (&arr, GST_TYPE_ARRAY);
  if (red_pt >= 0)
    {
      g_value_init (&v, G_TYPE_INT);
      g_value_set_int (&v, red_pt);
      gst_value_array_append_value (&arr, &v);
      g_value_unset (&v);
    }
  g_object_set_property (G_OBJECT (reddec), "payloads", &arr);
  g_value_unset (&arr);
}

/* An aux bin as webrtcbin makes it: @a (→ @b) behind ghost pads sink_0 and
 * src_0, in a pipeline with the shortcuts installed, linked to a fakesink;
 * @seen counts what reaches the fakesink and what goes into @a. The RTX map
 * and RED payloads are set as webrtcbin sets them when neither is
 * negotiated; the pipeline plays and the stream has started. */
static GstElement *
aux_bin (const char *a, const char *b, Seen *seen, GstElement **ea, GstElement **eb, GstPad **entry)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *bin = gst_bin_new (NULL), *last, *consumer;
  GstPad *pad;

  rec_shortcut_install (pipeline);
  *ea = make (a);
  gst_bin_add (GST_BIN (bin), *ea);
  last = *ea;
  if (b)
    {
      *eb = make (b);
      gst_bin_add (GST_BIN (bin), *eb);
      g_assert_true (gst_element_link (*ea, *eb));
      last = *eb;
    }
  pad = gst_element_get_static_pad (*ea, "sink");
  gst_element_add_pad (bin, gst_ghost_pad_new ("sink_0", pad));
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (last, "src");
  gst_element_add_pad (bin, gst_ghost_pad_new ("src_0", pad));
  gst_object_unref (pad);

  consumer = make ("fakesink");
  g_object_set (consumer, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add_many (GST_BIN (pipeline), bin, consumer, NULL);
  g_assert_true (gst_element_link_pads (bin, "src_0", consumer, "sink"));
  g_assert_nonnull (g_object_get_data (G_OBJECT (bin), "rec-shortcut"));
  probe (consumer, "sink", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, consumer_probe, seen);
  probe (*ea, "sink", GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen);
  set_rtx_map (*ea, FALSE);
  if (b != NULL && g_strcmp0 (b, "rtpreddec") == 0)
    set_red_payloads (*eb, -1);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  *entry = gst_element_get_static_pad (bin, "sink_0");
  start_stream (*entry);
  return pipeline;
}

static void
finish (GstElement *pipeline, GstPad *entry, Seen *seen)
{
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (entry);
  gst_object_unref (pipeline);
  seen_free (seen);
}

static void
test_aux_receiver (void)
{
  GstElement *rtx, *red = NULL, *pipeline;
  GstPad *entry;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  pipeline = aux_bin ("rtprtxreceive", "rtpreddec", seen, &rtx, &red, &entry);

  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 0);
  g_assert_true (seen->segment_first);

  /* RTX negotiated: through the elements */
  set_rtx_map (rtx, TRUE);
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->n, ==, 15);
  g_assert_cmpuint (seen->through, ==, 5);
  set_rtx_map (rtx, FALSE);
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->through, ==, 5);

  /* RED negotiated (a payload list, or the single payload type): through */
  set_red_payloads (red, 100);
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->through, ==, 10);
  set_red_payloads (red, -1);
  g_object_set (red, "pt", 100, NULL);
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->through, ==, 15);
  g_object_set (red, "pt", -1, NULL);

  /* idle again: past them */
  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (seen->through, ==, 15);
  g_assert_cmpuint (seen->n, ==, 40);
  assert_in_order (seen);

  finish (pipeline, entry, seen);
}

static void
test_aux_sender (void)
{
  GstElement *rtx, *none = NULL, *pipeline;
  GstPad *entry;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  pipeline = aux_bin ("rtprtxsend", NULL, seen, &rtx, &none, &entry);
  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 0);
  g_assert_true (seen->segment_first);
  set_rtx_map (rtx, TRUE);   /* the sender keeps packets for retransmission now */
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->through, ==, 5);
  set_rtx_map (rtx, FALSE);
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (seen->through, ==, 5);
  g_assert_cmpuint (seen->n, ==, 20);
  assert_in_order (seen);

  finish (pipeline, entry, seen);
}

static void
test_other_shape (void)
{
  GstElement *rtx, *identity = NULL, *pipeline;
  GstPad *entry;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  pipeline = aux_bin ("rtprtxreceive", "identity", seen, &rtx, &identity, &entry);
  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 10);   /* an element the shortcut does not know: all through */

  finish (pipeline, entry, seen);
}

static GstCaps *
on_request_pt_map (GstElement *demux, guint pt, gpointer user_data)
{
  GstCaps *caps = vp8_caps ();
  gst_caps_set_simple (caps, "payload", G_TYPE_INT, (gint) pt, NULL);
  return caps;
}

static void
on_demux_pad_added (GstElement *demux, GstPad *pad, gpointer user_data)
{
  GstElement *fecdec = user_data;
  GstPad *sink = gst_element_get_static_pad (fecdec, "sink");
  /* the first payload type's pad only; a second stays unlinked */
  if (!gst_pad_is_linked (sink))
    g_assert_cmpint (gst_pad_link (pad, sink), ==, GST_PAD_LINK_OK);
  gst_object_unref (sink);
}

static void
test_pt_demux (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *rtpbin = gst_bin_new ("rtpbin");
  GstElement *demux = make ("rtpptdemux"), *fecdec = make ("rtpulpfecdec"), *consumer = make ("fakesink");
  GstPad *entry, *pad;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  rec_shortcut_install (pipeline);
  gst_bin_add (GST_BIN (pipeline), rtpbin);   /* elements added to a bin inside: found all the same */
  gst_bin_add_many (GST_BIN (rtpbin), demux, fecdec, NULL);
  g_assert_nonnull (g_object_get_data (G_OBJECT (demux), "rec-shortcut"));
  pad = gst_element_get_static_pad (fecdec, "src");
  gst_element_add_pad (rtpbin, gst_ghost_pad_new ("recv_rtp_src_0", pad));
  gst_object_unref (pad);
  g_object_set (consumer, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add (GST_BIN (pipeline), consumer);
  g_assert_true (gst_element_link_pads (rtpbin, "recv_rtp_src_0", consumer, "sink"));
  g_signal_connect (demux, "request-pt-map", G_CALLBACK (on_request_pt_map), NULL);
  g_signal_connect (demux, "pad-added", G_CALLBACK (on_demux_pad_added), fecdec);
  probe (consumer, "sink", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, consumer_probe, seen);
  probe (fecdec, "sink", GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen);
  /* as webrtcbin sets it with no ULPFEC negotiated */
  g_object_set (fecdec, "passthrough", TRUE, "pt", 0, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  entry = gst_element_get_static_pad (demux, "sink");
  start_stream (entry);

  /* the first makes the demuxer's pad (full path), the others skip it */
  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 1);
  g_assert_true (seen->segment_first);

  /* a caps event: the next buffer through the demuxer (it renews its pad's
   * caps), then past it again */
  {
    GstCaps *caps = vp8_caps ();
    g_assert_true (gst_pad_send_event (entry, gst_event_new_caps (caps)));
    gst_caps_unref (caps);
  }
  push_n (entry, &seq, 96, 4);
  g_assert_cmpuint (seen->through, ==, 2);
  g_assert_cmpuint (seen->n, ==, 14);
  assert_in_order (seen);

  /* ULPFEC on: through the decoder (which numbers packets itself, after a
   * discontinuity); off: past it */
  g_object_set (fecdec, "passthrough", FALSE, NULL);
  push_n (entry, &seq, 96, 3);
  g_assert_cmpuint (seen->through, ==, 5);
  g_object_set (fecdec, "passthrough", TRUE, NULL);
  push_n (entry, &seq, 96, 3);
  g_assert_cmpuint (seen->through, ==, 5);
  g_assert_cmpuint (seen->n, ==, 20);

  /* a second payload type: the demuxer decides from then on */
  g_assert_cmpint (gst_pad_chain (entry, rtp_packet (seq++, 97)), ==, GST_FLOW_NOT_LINKED);
  push_n (entry, &seq, 96, 3);
  g_assert_cmpuint (seen->through, ==, 8);
  g_assert_cmpuint (seen->n, ==, 23);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (entry);
  gst_object_unref (pipeline);
  seen_free (seen);
}

static GstPadProbeReturn
pass_block (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  return GST_PAD_PROBE_PASS;   /* the pad counts as blocked, the data goes on */
}

/* rtpfunnel → rtpbin's ghost sink pad → (inside) identity → rtpbin's ghost
 * source pad → fakesink: buffers go from the funnel's source pad straight to
 * the identity, past both pads of the ghost; the identity's are not ghost
 * pads of a webrtcbin bin: through them. While a pad of the run is blocked,
 * the full path. A ghost pad of another bin is crossed as before. */
static void
test_ghost_pads (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *funnel = make ("rtpfunnel"), *rtpbin = make ("rtpbin");
  GstElement *inner = make ("identity"), *consumer = make ("fakesink");
  GstPad *pad, *ghost_sink, *inside, *fsink;
  Seen *seen = seen_new ();
  guint16 seq = 0;
  gulong block;

  rec_shortcut_install (pipeline);
  gst_bin_add_many (GST_BIN (pipeline), funnel, rtpbin, consumer, NULL);
  gst_bin_add (GST_BIN (rtpbin), inner);
  pad = gst_element_get_static_pad (inner, "sink");
  ghost_sink = gst_ghost_pad_new ("test_sink", pad);
  gst_object_unref (pad);
  gst_element_add_pad (rtpbin, ghost_sink);
  inside = GST_PAD (gst_proxy_pad_get_internal (GST_PROXY_PAD (ghost_sink)));
  pad = gst_element_get_static_pad (inner, "src");
  gst_element_add_pad (rtpbin, gst_ghost_pad_new ("test_src", pad));
  gst_object_unref (pad);
  g_object_set (consumer, "sync", FALSE, "async", FALSE, NULL);
  g_assert_true (gst_element_link_pads (funnel, "src", rtpbin, "test_sink"));
  g_assert_true (gst_element_link_pads (rtpbin, "test_src", consumer, "sink"));
  g_assert_nonnull (g_object_get_data (G_OBJECT (funnel->srcpads->data), "rec-shortcut"));
  probe (consumer, "sink", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, consumer_probe, seen);
  gst_pad_add_probe (inside, GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  fsink = gst_element_request_pad_simple (funnel, "sink_%u");
  start_stream (fsink);

  push_n (fsink, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 0);   /* past the ghost's inner pad */
  g_assert_true (seen->segment_first);

  /* a blocking probe on the inner pad: the full path while it is there */
  block = gst_pad_add_probe (inside, GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER, pass_block, NULL, NULL);
  push_n (fsink, &seq, 96, 4);
  g_assert_cmpuint (seen->through, ==, 4);
  gst_pad_remove_probe (inside, block);
  push_n (fsink, &seq, 96, 6);
  g_assert_cmpuint (seen->through, ==, 4);
  g_assert_cmpuint (seen->n, ==, 20);
  assert_in_order (seen);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_element_release_request_pad (funnel, fsink);
  gst_object_unref (fsink);
  gst_object_unref (inside);
  gst_object_unref (pipeline);
  seen_free (seen);
}

static void
test_ghost_pads_other_bin (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *funnel = make ("rtpfunnel"), *bin = gst_bin_new (NULL);
  GstElement *inner = make ("identity"), *consumer = make ("fakesink");
  GstPad *pad, *ghost_sink, *inside, *fsink;
  Seen *seen = seen_new ();
  guint16 seq = 0;

  rec_shortcut_install (pipeline);
  gst_bin_add_many (GST_BIN (pipeline), funnel, bin, consumer, NULL);
  gst_bin_add (GST_BIN (bin), inner);
  pad = gst_element_get_static_pad (inner, "sink");
  ghost_sink = gst_ghost_pad_new ("sink", pad);
  gst_object_unref (pad);
  gst_element_add_pad (bin, ghost_sink);
  inside = GST_PAD (gst_proxy_pad_get_internal (GST_PROXY_PAD (ghost_sink)));
  pad = gst_element_get_static_pad (inner, "src");
  gst_element_add_pad (bin, gst_ghost_pad_new ("src", pad));
  gst_object_unref (pad);
  g_object_set (consumer, "sync", FALSE, "async", FALSE, NULL);
  g_assert_true (gst_element_link_many (funnel, bin, consumer, NULL));
  probe (consumer, "sink", GST_PAD_PROBE_TYPE_BUFFER, consumer_probe, seen);
  gst_pad_add_probe (inside, GST_PAD_PROBE_TYPE_BUFFER, through_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  fsink = gst_element_request_pad_simple (funnel, "sink_%u");
  start_stream (fsink);
  push_n (fsink, &seq, 96, 10);
  g_assert_cmpuint (seen->n, ==, 10);
  g_assert_cmpuint (seen->through, ==, 10);   /* a plain bin's ghost pad: crossed */

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_element_release_request_pad (funnel, fsink);
  gst_object_unref (fsink);
  gst_object_unref (inside);
  gst_object_unref (pipeline);
  seen_free (seen);
}

typedef struct
{
  GMutex lock;
  guint buffers;       /* at the consumer */
  guint lists;         /* lists at the consumer (none: buffer by buffer) */
  guint segments;      /* segments at the consumer */
  guint segment_at;    /* buffers before the last segment */
} Order;

static GstPadProbeReturn
order_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Order *o = user_data;
  g_mutex_lock (&o->lock);
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0)
    o->buffers++;
  else if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0)
    o->lists++;
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_SEGMENT)
    {
      o->segments++;
      o->segment_at = o->buffers;
    }
  g_mutex_unlock (&o->lock);
  return GST_PAD_PROBE_OK;
}

/* A capsfilter whose input has no caps (nicesrc → capsfilter in webrtcbin's
 * receive bin): the first buffer through it (it sets its output's caps), the
 * others past it; a segment it holds back (no input caps) comes out before
 * the next buffer, which goes through it; a payloader's list comes out buffer
 * by buffer, as the capsfilter would pass it. */
static void
test_capsfilter (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL), *capsf = make ("capsfilter"), *consumer = make ("fakesink");
  GstPad *entry;
  Seen *seen = seen_new ();
  Order o = { 0 };
  GstCaps *caps = vp8_caps ();
  GstSegment seg;
  guint16 seq = 0;

  g_mutex_init (&o.lock);
  g_object_set (capsf, "caps", caps, NULL);
  gst_caps_unref (caps);
  g_object_set (consumer, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add_many (GST_BIN (pipeline), capsf, consumer, NULL);
  g_assert_true (gst_element_link (capsf, consumer));
  rec_shortcut_capsfilter (capsf);
  probe (capsf, "src", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, through_probe, seen);
  probe (consumer, "sink", GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST
         | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, order_probe, &o);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  entry = gst_element_get_static_pad (capsf, "sink");
  gst_segment_init (&seg, GST_FORMAT_TIME);
  g_assert_true (gst_pad_send_event (entry, gst_event_new_stream_start ("test")));
  g_assert_true (gst_pad_send_event (entry, gst_event_new_segment (&seg)));   /* no caps: as nicesrc */

  push_n (entry, &seq, 96, 10);
  g_assert_cmpuint (o.buffers, ==, 10);
  g_assert_cmpuint (seen->through, ==, 1);
  g_assert_cmpuint (o.segments, ==, 1);
  g_assert_cmpuint (o.segment_at, ==, 0);

  /* a new segment: held by the capsfilter, out before the next buffer */
  seg.base = GST_SECOND;
  g_assert_true (gst_pad_send_event (entry, gst_event_new_segment (&seg)));
  push_n (entry, &seq, 96, 5);
  g_assert_cmpuint (o.segments, ==, 2);
  g_assert_cmpuint (o.segment_at, ==, 10);
  g_assert_cmpuint (seen->through, ==, 2);
  g_assert_cmpuint (o.buffers, ==, 15);

  /* a list, buffer by buffer */
  {
    GstBufferList *list = gst_buffer_list_new ();
    for (guint i = 0; i < 3; i++)
      gst_buffer_list_add (list, rtp_packet (seq++, 96));
    g_assert_cmpint (gst_pad_chain_list (entry, list), ==, GST_FLOW_OK);
  }
  g_assert_cmpuint (o.buffers, ==, 18);
  g_assert_cmpuint (o.lists, ==, 0);
  g_assert_cmpuint (seen->through, ==, 2);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (entry);
  gst_object_unref (pipeline);
  g_mutex_clear (&o.lock);
  seen_free (seen);
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rec-shortcut/aux-receiver", test_aux_receiver);
  g_test_add_func ("/rec-shortcut/aux-sender", test_aux_sender);
  g_test_add_func ("/rec-shortcut/other-shape", test_other_shape);
  g_test_add_func ("/rec-shortcut/pt-demux", test_pt_demux);
  g_test_add_func ("/rec-shortcut/ghost-pads", test_ghost_pads);
  g_test_add_func ("/rec-shortcut/ghost-pads-other-bin", test_ghost_pads_other_bin);
  g_test_add_func ("/rec-shortcut/capsfilter", test_capsfilter);
  return g_test_run ();
}

/* rec-send.c — relayed packets go from the payloader straight to webrtcbin's
 * RTP funnel, past the clock sync and the FEC/RED encoders that have nothing
 * to do.
 *
 * webrtcbin 1.22 sends each media track as (gstwebrtcbin.c, _connect_input_stream)
 *
 *   sink_%u → clocksync (sync=TRUE) → bin [ rtpulpfecenc → rtpredenc ] → rtpfunnel (or rtpbin)
 *
 * For the recorder those three elements pass every packet on unchanged:
 * clocksync waits until a buffer's running time, and a relayed packet is
 * timestamped when it was received, so its time has always passed; the
 * ULPFEC encoder passes packets through while it has no payload type
 * (pt 255: ULPFEC not negotiated, and the recorder's answers offer only VP8
 * and Opus), the RED encoder while its distance is 0 and it may not send RED
 * without redundant blocks. Each still costs a pad push, a lock or a clock
 * entry per packet. So a probe on clocksync's sink pad hands buffers straight
 * to the bin's downstream peer while both encoders are in pass-through (as
 * their properties say, followed through notify); events keep the full path,
 * in the same thread, so their order with the buffers is kept. A bin of
 * another shape (another GStreamer) is left alone.
 *
 * And the funnel after them is kept from re-sending its inputs' segment and
 * TOS events at every switch between audio and video (below). */
#include "config.h"
#include "recorder-private.h"

#define ULPFEC_UNDEF_PT 255

typedef struct
{
  GMutex lock;
  gint state;            /* atomic: 0 not looked at yet, 1 bypassing, -1 left alone */
  gint passthrough;      /* atomic: both encoders pass packets on unchanged */
  GstElement *fecenc;    /* (owned) */
  GstElement *redenc;    /* (owned) */
  GstPad *target;        /* (owned) the encoders' downstream peer */
} SendBypass;

static void
send_bypass_free (gpointer data)
{
  SendBypass *b = data;
  if (b->fecenc)
    g_signal_handlers_disconnect_by_data (b->fecenc, b);
  if (b->redenc)
    g_signal_handlers_disconnect_by_data (b->redenc, b);
  g_clear_object (&b->fecenc);
  g_clear_object (&b->redenc);
  g_clear_object (&b->target);
  g_mutex_clear (&b->lock);
  g_free (b);
}

static void
update_passthrough (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  SendBypass *b = user_data;
  guint fec_pt = 0, distance = 1;
  gboolean allow_no_red = TRUE;

  g_object_get (b->fecenc, "pt", &fec_pt, NULL);
  g_object_get (b->redenc, "distance", &distance, "allow-no-red-blocks", &allow_no_red, NULL);
  g_atomic_int_set (&b->passthrough, fec_pt == ULPFEC_UNDEF_PT && distance == 0 && !allow_no_red);
}

/* clocksync's src peer is the ghost sink of a bin holding exactly
 * rtpulpfecenc → rtpredenc; the bin's src ghost is linked: take its peer. */
static gboolean
resolve (SendBypass *b, GstElement *clocksync)
{
  GstPad *src = gst_element_get_static_pad (clocksync, "src");
  GstPad *peer = src ? gst_pad_get_peer (src) : NULL;
  GstElement *bin = peer ? gst_pad_get_parent_element (peer) : NULL;
  GstIterator *it;
  GValue v = G_VALUE_INIT;
  guint children = 0;
  gboolean ok = FALSE;

  if (bin == NULL || !GST_IS_BIN (bin) || !GST_IS_GHOST_PAD (peer))
    goto out;
  it = gst_bin_iterate_elements (GST_BIN (bin));
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK)
    {
      GstElement *child = g_value_get_object (&v);
      children++;
      if (rec_is_factory (child, "rtpulpfecenc") && b->fecenc == NULL)
        b->fecenc = gst_object_ref (child);
      else if (rec_is_factory (child, "rtpredenc") && b->redenc == NULL)
        b->redenc = gst_object_ref (child);
      g_value_reset (&v);
    }
  g_value_unset (&v);
  gst_iterator_free (it);
  if (children == 2 && b->fecenc && b->redenc)
    {
      GstPad *bin_src = gst_element_get_static_pad (bin, "src");
      b->target = bin_src ? gst_pad_get_peer (bin_src) : NULL;
      g_clear_object (&bin_src);
      ok = b->target != NULL;
    }
  if (ok)
    {
      g_signal_connect (b->fecenc, "notify::pt", G_CALLBACK (update_passthrough), b);
      g_signal_connect (b->redenc, "notify::distance", G_CALLBACK (update_passthrough), b);
      g_signal_connect (b->redenc, "notify::allow-no-red-blocks", G_CALLBACK (update_passthrough), b);
      update_passthrough (NULL, NULL, b);
    }
  else
    {
      g_clear_object (&b->fecenc);
      g_clear_object (&b->redenc);
      g_clear_object (&b->target);
    }
out:
  g_clear_object (&bin);
  g_clear_object (&peer);
  g_clear_object (&src);
  return ok;
}

static GstPadProbeReturn
clocksync_sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  SendBypass *b = user_data;

  if (g_atomic_int_get (&b->state) == 0)
    {
      GstElement *clocksync = gst_pad_get_parent_element (pad);
      g_mutex_lock (&b->lock);
      if (g_atomic_int_get (&b->state) == 0)
        {
          gboolean ok = clocksync != NULL && resolve (b, clocksync);
          g_atomic_int_set (&b->state, ok ? 1 : -1);
          if (ok)
            GST_INFO_OBJECT (pad, "relayed packets go straight to %" GST_PTR_FORMAT " while FEC and RED are off",
                             b->target);
          else
            GST_INFO_OBJECT (pad, "webrtcbin's send path is not clocksync → FEC bin: left alone");
        }
      g_mutex_unlock (&b->lock);
      g_clear_object (&clocksync);
    }
  if (g_atomic_int_get (&b->state) < 0)
    return GST_PAD_PROBE_REMOVE;
  if (!g_atomic_int_get (&b->passthrough))
    return GST_PAD_PROBE_OK;
  return rec_probe_hand_on (info, b->target);
}

/* rtpfunnel sends an input's segment and custom sticky events downstream
 * whenever the next packet comes from another input than the last (audio
 * after video: tens of times a second), through rtpbin's session, the aux
 * sender and DTLS/SRTP to nicesink — unless each is the very event its source
 * pad holds already: a sticky event stored and sent once is not sent again
 * (gstpad.c, store_sticky_event). The relayed tracks' events differ in what
 * nothing after the funnel reads:
 *   - segments: equal (the payloaders pass on the depayloaders' TIME segments
 *     from 0) but for their position (each track's first buffer);
 *   - webrtcbin's "GstWebRtcBinUpdateTos" (one per track, naming its mid):
 *     read only by webrtcbin's probe on nicesink, which sets the socket's DSCP
 *     from that track's sender priority and kind. The recorder never sets a
 *     priority, and for the default (or any up to "low") the DSCP is the same
 *     for audio and video (0, or CS1 for "very low"; draft-ietf-tsvwg-rtcweb-qos
 *     section 5).
 * So such an event reaching an input of the funnel is replaced by the one of
 * its kind seen last on any input (for a segment: if equal, position aside):
 * a switch then sends nothing. A segment that differs goes on as it is and is
 * the one kept from then on. */
typedef struct
{
  GMutex lock;
  GstEvent *segment; /* (owned) (nullable) */
  GstEvent *tos;     /* (owned) (nullable) */
} FunnelEvents;

static void
funnel_events_free (gpointer data)
{
  FunnelEvents *fe = data;
  gst_clear_event (&fe->segment);
  gst_clear_event (&fe->tos);
  g_mutex_clear (&fe->lock);
  g_free (fe);
}

static gboolean
same_segment (GstEvent *a, GstEvent *b)
{
  const GstSegment *sa, *sb;
  GstSegment c;
  gst_event_parse_segment (a, &sa);
  gst_event_parse_segment (b, &sb);
  gst_segment_copy_into (sa, &c);
  c.position = sb->position;
  return gst_segment_is_equal (&c, sb) && gst_event_get_running_time_offset (a) == gst_event_get_running_time_offset (b);
}

static GstPadProbeReturn
funnel_events_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  FunnelEvents *fe = user_data;
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  GstEvent **kept;

  if (GST_EVENT_TYPE (ev) == GST_EVENT_SEGMENT)
    kept = &fe->segment;
  else if (GST_EVENT_TYPE (ev) == GST_EVENT_CUSTOM_DOWNSTREAM_STICKY
           && gst_event_has_name (ev, "GstWebRtcBinUpdateTos"))
    kept = &fe->tos;
  else
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&fe->lock);
  if (*kept != NULL && *kept != ev && (kept == &fe->tos || same_segment (ev, *kept)))
    {
      GST_INFO_OBJECT (pad, "%s replaced by the one sent already: switching inputs sends none",
                       GST_EVENT_TYPE_NAME (ev));
      info->data = gst_event_ref (*kept);
      gst_event_unref (ev);
    }
  else
    gst_event_replace (kept, ev);
  g_mutex_unlock (&fe->lock);
  return GST_PAD_PROBE_OK;
}

static void
on_funnel_pad_added (GstElement *funnel, GstPad *pad, gpointer user_data)
{
  if (GST_PAD_IS_SINK (pad))
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, funnel_events_probe,
                       g_object_get_data (G_OBJECT (funnel), "rec-send-events"), NULL);
}

static void
on_element_added (GstBin *webrtc, GstElement *element, gpointer user_data)
{
  SendBypass *b;
  GstPad *sink;

  if (rec_is_factory (element, "rtpfunnel") && !g_object_get_data (G_OBJECT (element), "rec-send-events"))
    {
      FunnelEvents *fe = g_new0 (FunnelEvents, 1);
      g_mutex_init (&fe->lock);
      g_object_set_data_full (G_OBJECT (element), "rec-send-events", fe, funnel_events_free);
      g_signal_connect (element, "pad-added", G_CALLBACK (on_funnel_pad_added), NULL);
      return;
    }
  if (!rec_is_factory (element, "clocksync") || g_object_get_data (G_OBJECT (element), "rec-send-bypass"))
    return;
  b = g_new0 (SendBypass, 1);
  g_mutex_init (&b->lock);
  g_object_set_data_full (G_OBJECT (element), "rec-send-bypass", b, send_bypass_free);
  sink = gst_element_get_static_pad (element, "sink");
  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, clocksync_sink_probe, b,
                     NULL);
  gst_object_unref (sink);
}

void
rec_send_bypass (GstElement *webrtc)
{
  g_signal_connect (webrtc, "element-added", G_CALLBACK (on_element_added), NULL);
}

/* rec-forward.c — takes the place of rtpbin's jitter buffer inside each
 * webrtcbin (rtpbin's "request-jitterbuffer" signal): RTP packets go on as
 * they arrive, in the thread that received and decrypted them, stamped with
 * their arrival time — what an SFU does. No thread, no latency added.
 *
 * rtpjitterbuffer pushes every packet from a thread of its own and holds it
 * for its latency (200 ms by default): one more thread wake-up per relayed
 * packet (about an eighth of the recorder's CPU) and 200 ms before the first
 * keyframe is recorded or relayed. What it gives in exchange — reordering
 * within its latency, lip-sync offsets from RTCP — a relay of two browsers on
 * a decent network hardly needs: the receiving browser has its own jitter
 * buffer, a packet that arrives out of order is dropped by the depayloader as
 * late (a keyframe is then requested), and the recording keeps every track as
 * it arrived. Operators on a network that reorders set
 * [recorder] jitter-buffer-ms to get rtpbin's jitter buffer back.
 *
 * rtpbin and webrtcbin set "latency" and "do-retransmission" on whatever
 * element they are given (the others they look up first): both exist here,
 * are kept and read back, and change nothing — no latency, no NACKs.
 *
 * Packets whose sequence number is not after the last one seen (reordered or
 * duplicated on the way) are counted ("late", read-only) and logged — the
 * operator's sign that the network reorders and a jitter buffer would help;
 * they are passed on all the same (the depayloader decides). */
#include "config.h"
#include "recorder-private.h"

#include <gst/rtp/rtp.h>

#define LATE_LOG_EVERY 500

struct _RecForward {
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  guint latency;          /* ms, as set by rtpbin; not applied */
  gboolean rtx;           /* as set by webrtcbin; not applied */
  gboolean have_seq;      /* streaming thread only */
  guint16 last_seq;       /* newest sequence number seen */
  gint late;              /* atomic */
};

G_DEFINE_TYPE (RecForward, rec_forward, GST_TYPE_ELEMENT)

enum { PROP_0, PROP_LATENCY, PROP_DO_RETRANSMISSION, PROP_LATE };

static GstStaticPadTemplate sink_templ = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                                                                  GST_STATIC_CAPS ("application/x-rtp"));
static GstStaticPadTemplate src_templ = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                                                                 GST_STATIC_CAPS ("application/x-rtp"));

static GstFlowReturn
rec_forward_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  RecForward *self = (RecForward *) parent;
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;

  if (gst_rtp_buffer_map (buf, GST_MAP_READ, &rtp))
    {
      guint16 seq = gst_rtp_buffer_get_seq (&rtp);
      gst_rtp_buffer_unmap (&rtp);
      if (self->have_seq && gst_rtp_buffer_compare_seqnum (self->last_seq, seq) <= 0)
        {
          gint late = g_atomic_int_add (&self->late, 1) + 1;
          if (late == 1 || late % LATE_LOG_EVERY == 0)
            GST_CAT_WARNING_OBJECT (rec_debug, self,
                                    "%d RTP packets arrived out of order or twice (seq %u after %u); if this "
                                    "goes on, set [recorder] jitter-buffer-ms", late, seq, self->last_seq);
        }
      else
        {
          self->last_seq = seq;
          self->have_seq = TRUE;
        }
    }

  /* nicesrc stamps every packet with its arrival running time; keep it. A
   * packet without one (none seen here) gets the current running time, so
   * that the muxer never sees an untimed buffer. */
  if (G_UNLIKELY (!GST_BUFFER_PTS_IS_VALID (buf)))
    {
      GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
      if (clock != NULL)
        {
          GstClockTime now = gst_clock_get_time (clock), base = gst_element_get_base_time (GST_ELEMENT (self));
          buf = gst_buffer_make_writable (buf);
          GST_BUFFER_PTS (buf) = GST_BUFFER_DTS (buf) = now > base ? now - base : 0;
          gst_object_unref (clock);
        }
    }
  return gst_pad_push (self->srcpad, buf);
}

static void
rec_forward_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  RecForward *self = (RecForward *) object;
  switch (id)
    {
    case PROP_LATENCY:
      self->latency = g_value_get_uint (value);
      break;
    case PROP_DO_RETRANSMISSION:
      self->rtx = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
rec_forward_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  RecForward *self = (RecForward *) object;
  switch (id)
    {
    case PROP_LATENCY:
      g_value_set_uint (value, self->latency);
      break;
    case PROP_DO_RETRANSMISSION:
      g_value_set_boolean (value, self->rtx);
      break;
    case PROP_LATE:
      g_value_set_uint (value, (guint) g_atomic_int_get (&self->late));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
rec_forward_init (RecForward *self)
{
  rec_passthrough_pads (GST_ELEMENT (self), rec_forward_chain, NULL, &self->sinkpad, &self->srcpad);
}

static void
rec_forward_class_init (RecForwardClass *klass)
{
  GObjectClass *ok = G_OBJECT_CLASS (klass);
  GstElementClass *ek = GST_ELEMENT_CLASS (klass);

  ok->set_property = rec_forward_set_property;
  ok->get_property = rec_forward_get_property;
  g_object_class_install_property (ok, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency", "Set by rtpbin; this element adds none (ms)", 0, G_MAXUINT, 0,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (ok, PROP_DO_RETRANSMISSION,
      g_param_spec_boolean ("do-retransmission", "Retransmission", "Set by webrtcbin; no NACKs are sent",
                            FALSE, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (ok, PROP_LATE,
      g_param_spec_uint ("late", "Late packets", "Packets whose sequence number was not after the last one's",
                         0, G_MAXUINT, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  gst_element_class_add_static_pad_template (ek, &sink_templ);
  gst_element_class_add_static_pad_template (ek, &src_templ);
  gst_element_class_set_static_metadata (ek, "Testigo RTP forwarder", "Filter/Network/RTP",
                                         "Passes RTP packets on as they arrive, in place of rtpjitterbuffer",
                                         "Testigo");
}

GstElement *
rec_forward_new (void)
{
  return g_object_new (REC_TYPE_FORWARD, NULL);
}

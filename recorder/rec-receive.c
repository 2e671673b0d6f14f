/* rec-receive.c — received packets go from libnice's nicesrc straight into
 * DTLS/SRTP, in nicesrc's own thread, once the transport is up.
 *
 * webrtcbin 1.22 receives each transport as
 *
 *   nicesrc → capsfilter → queue → dtlssrtpdec → …
 *
 * (transportreceivebin.c). The queue is there for the time before ICE and
 * DTLS are up: webrtcbin then blocks the queue's src pad and makes the queue
 * leaky, so that nicesrc — whose thread also runs libnice's STUN — never
 * blocks. Once the transport passes data (webrtcbin sets the queue to
 * leaky=no and lifts the block) the queue only hands every packet from the
 * nicesrc thread to the queue's thread: one more thread wake-up for every
 * received packet, which on this kind of machine (a paravirtualised guest,
 * where a wake-up costs tens of microseconds of kernel time) is a large share
 * of what relaying a call costs (docs/benchmarks.md).
 *
 * So a probe on the queue's sink pad passes each buffer straight to the
 * queue's downstream peer (gst_pad_chain) while the queue is not leaky
 * (webrtcbin's "pass" state), holds nothing and has nothing on its way out.
 * Otherwise — before the transport is up, while it is blocked again, or
 * while items the queue took are still to come out — the buffer goes into the
 * queue as before. Order is kept: an item the queue took has entered the
 * downstream pad (whose stream lock it then holds until it is done) before a
 * buffer may go past the queue; items the queue dropped (leaky, or flushed)
 * are written off once the queue is empty and nothing went into it for
 * STALE_US. Events always go through the queue.
 *
 * A downstream error is not returned to nicesrc (it would stop nicesrc's
 * thread and with it STUN): the packet is dropped, as the leaky queue would.
 *
 * If webrtcbin's receive bin is not made as above (another GStreamer), the
 * bin is left alone and packets take the queue. */
#include "config.h"
#include "recorder-private.h"

#define STALE_US (200 * G_TIME_SPAN_MILLISECOND)

typedef struct
{
  GstElement *queue;   /* (owned) */
  GstPad *target;      /* (owned) the queue's downstream peer */
  gint pass;           /* atomic: the queue is not leaky (webrtcbin's pass state) */
  gint pending;        /* atomic: items into the queue not yet at target */
  gint64 last_queued;  /* nicesrc's thread only: when an item last went into the queue */
  gint direct;         /* atomic: buffers passed straight (for the log) */
} Bypass;

/* Set while this thread chains a buffer straight to the target, so that the
 * target's probe does not count it as having come out of the queue. */
static __thread Bypass *in_bypass;

static void
bypass_free (gpointer data)
{
  Bypass *b = data;
  gst_object_unref (b->queue);
  gst_object_unref (b->target);
  g_free (b);
}

static void
on_leaky (GObject *queue, GParamSpec *pspec, gpointer user_data)
{
  Bypass *b = user_data;
  gint leaky = 0;
  g_object_get (queue, "leaky", &leaky, NULL);
  g_atomic_int_set (&b->pass, leaky == 0);
}

static gboolean
queue_drained (Bypass *b)
{
  guint level = 0;

  if (g_atomic_int_get (&b->pending) <= 0)
    return TRUE;
  /* Still some on their way, or dropped by the queue (leaky or flushed)? */
  g_object_get (b->queue, "current-level-buffers", &level, NULL);
  if (level == 0 && g_get_monotonic_time () - b->last_queued > STALE_US)
    {
      g_atomic_int_set (&b->pending, 0);
      return TRUE;
    }
  return FALSE;
}

static GstPadProbeReturn
queue_sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bypass *b = user_data;
  GstFlowReturn ret;

  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0)
    {
      if (!GST_EVENT_IS_SERIALIZED (GST_PAD_PROBE_INFO_EVENT (info)))
        return GST_PAD_PROBE_OK;
    }
  else if (g_atomic_int_get (&b->pass) && queue_drained (b))
    {
      in_bypass = b;
      if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0)
        ret = gst_pad_chain_list (b->target, GST_PAD_PROBE_INFO_BUFFER_LIST (info));
      else
        ret = gst_pad_chain (b->target, GST_PAD_PROBE_INFO_BUFFER (info));
      in_bypass = NULL;
      if (ret != GST_FLOW_OK)
        GST_LOG_OBJECT (pad, "packet dropped downstream: %s", gst_flow_get_name (ret));
      if (g_atomic_int_add (&b->direct, 1) == 0)
        GST_INFO_OBJECT (pad, "transport up: received packets go straight to %" GST_PTR_FORMAT, b->target);
      info->data = NULL;
      GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_OK;
      return GST_PAD_PROBE_HANDLED;
    }
  g_atomic_int_inc (&b->pending);
  b->last_queued = g_get_monotonic_time ();
  return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
target_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bypass *b = user_data;

  if (in_bypass == b)
    return GST_PAD_PROBE_OK;
  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0
      && !GST_EVENT_IS_SERIALIZED (GST_PAD_PROBE_INFO_EVENT (info)))
    return GST_PAD_PROBE_OK;
  /* Never below zero: a flush may have reset the count meanwhile. */
  for (;;)
    {
      gint p = g_atomic_int_get (&b->pending);
      if (p <= 0 || g_atomic_int_compare_and_exchange (&b->pending, p, p - 1))
        break;
    }
  return GST_PAD_PROBE_OK;
}

static gboolean
has_factory (GstPad *pad, const char *name)
{
  GstElement *e;
  GstElementFactory *f;
  gboolean ok;

  if (pad == NULL)
    return FALSE;
  e = gst_pad_get_parent_element (pad);
  if (e == NULL)
    return FALSE;
  f = gst_element_get_factory (e);
  ok = f != NULL && g_strcmp0 (GST_OBJECT_NAME (f), name) == 0;
  gst_object_unref (e);
  return ok;
}

/* peer of the pad named @pad_name of @e, or NULL */
static GstPad *
peer_of (GstElement *e, const char *pad_name)
{
  GstPad *pad = e ? gst_element_get_static_pad (e, pad_name) : NULL;
  GstPad *peer = pad ? gst_pad_get_peer (pad) : NULL;
  g_clear_object (&pad);
  return peer;
}

/* Is @queue webrtcbin's nicesrc → capsfilter → queue → dtlssrtpdec? */
static GstPad *
receive_queue_target (GstElement *queue)
{
  GstPad *up = peer_of (queue, "sink"), *down = peer_of (queue, "src");
  GstPad *target = NULL;

  if (has_factory (up, "capsfilter") && has_factory (down, "dtlssrtpdec"))
    {
      GstElement *capsf = gst_pad_get_parent_element (up);
      GstPad *src = peer_of (capsf, "sink");
      if (has_factory (src, "nicesrc"))
        target = gst_object_ref (down);
      g_clear_object (&src);
      g_clear_object (&capsf);
    }
  g_clear_object (&up);
  g_clear_object (&down);
  return target;
}

static void
install (GstElement *queue, GstPad *target)
{
  Bypass *b = g_new0 (Bypass, 1);
  GstPad *sink = gst_element_get_static_pad (queue, "sink");

  b->queue = gst_object_ref (queue);
  b->target = target;
  g_object_set_data_full (G_OBJECT (queue), "rec-receive-bypass", b, bypass_free);
  g_signal_connect (queue, "notify::leaky", G_CALLBACK (on_leaky), b);
  on_leaky (G_OBJECT (queue), NULL, b);
  gst_pad_add_probe (target, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, target_probe, b, NULL);
  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, queue_sink_probe, b, NULL);
  gst_object_unref (sink);
  GST_DEBUG_OBJECT (queue, "receive bypass installed before %" GST_PTR_FORMAT, target);
}

static void
on_element_added (GstBin *webrtc, GstElement *element, gpointer user_data)
{
  GstIterator *it;
  GValue v = G_VALUE_INIT;

  if (!GST_IS_BIN (element))
    return;
  it = gst_bin_iterate_elements (GST_BIN (element));
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK)
    {
      GstElement *child = g_value_get_object (&v);
      GstElementFactory *f = gst_element_get_factory (child);
      if (f && g_strcmp0 (GST_OBJECT_NAME (f), "queue") == 0
          && g_object_get_data (G_OBJECT (child), "rec-receive-bypass") == NULL)
        {
          GstPad *target = receive_queue_target (child);
          if (target)
            install (child, target);
        }
      g_value_reset (&v);
    }
  g_value_unset (&v);
  gst_iterator_free (it);
}

void
rec_receive_bypass (GstElement *webrtc)
{
  g_signal_connect (webrtc, "element-added", G_CALLBACK (on_element_added), NULL);
}

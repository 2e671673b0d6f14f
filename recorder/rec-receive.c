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
 * (webrtcbin's "pass" state). Otherwise — before the transport is up, or
 * while webrtcbin blocks it again — buffers go into the queue as before.
 * Order is kept at the switch: before the first buffer goes past the queue,
 * a marker event is sent through the queue and waited for (at most
 * SYNC_TIMEOUT_US) at the downstream pad, so everything the queue took has
 * come out first; a serialized event from nicesrc (it sends none once
 * streaming) goes through the queue and makes the next buffer wait for a
 * marker again.
 *
 * Packets that wait, wait in the queue rather than in the kernel: while
 * nicesrc's thread relays a packet it does not read the socket, whose buffer
 * (net.core.rmem_default, ~200 KiB: about a second of a call) then holds what
 * comes in. A packet whose way downstream took more than SLOW_US (the
 * process starved of CPU, or something downstream blocking) sends the next
 * ones through the queue again for QUEUE_AFTER_SLOW_US, so that nicesrc goes
 * back to draining the socket while the queue's thread catches up.
 *
 * A downstream error is not returned to nicesrc (it would stop nicesrc's
 * thread and with it STUN): the packet is dropped, as the leaky queue would.
 *
 * If webrtcbin's receive bin is not made as above (another GStreamer), the
 * bin is left alone and packets take the queue. */
#include "config.h"
#include "recorder-private.h"

#define SYNC_TIMEOUT_US (200 * G_TIME_SPAN_MILLISECOND)
#define SLOW_US (50 * G_TIME_SPAN_MILLISECOND)
#define QUEUE_AFTER_SLOW_US (2 * G_TIME_SPAN_SECOND)
#define MARKER "rec-receive-marker"

typedef struct
{
  GstPad *queue_sink;  /* (owned) */
  GstPad *target;      /* (owned) the queue's downstream peer */
  gint pass;           /* atomic: the queue is not leaky (webrtcbin's pass state) */
  gboolean synced;     /* nicesrc's thread only: nothing of the queue's is still to come out */
  GMutex lock;
  GCond cond;
  guint marker_sent;   /* nicesrc's thread only */
  guint marker_seen;   /* under lock */
  gint64 queue_until;  /* nicesrc's thread only: through the queue until then (a slow packet) */
  guint slow;          /* nicesrc's thread only: slow packets seen (for the log) */
  gint direct;         /* atomic: buffers passed straight (for the log) */
} Bypass;

static void
bypass_free (gpointer data)
{
  Bypass *b = data;
  gst_object_unref (b->queue_sink);
  gst_object_unref (b->target);
  g_mutex_clear (&b->lock);
  g_cond_clear (&b->cond);
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

/* nicesrc's thread: sends a marker through the queue and waits for it at the
 * target. */
static gboolean
sync_with_queue (Bypass *b)
{
  guint id = ++b->marker_sent;
  gint64 deadline = g_get_monotonic_time () + SYNC_TIMEOUT_US;
  gboolean seen;
  GstEvent *marker = gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
                                           gst_structure_new (MARKER, "id", G_TYPE_UINT, id, NULL));

  if (!gst_pad_send_event (b->queue_sink, marker))
    return FALSE;
  g_mutex_lock (&b->lock);
  while (b->marker_seen != id)
    if (!g_cond_wait_until (&b->cond, &b->lock, deadline))
      break;
  seen = b->marker_seen == id;
  g_mutex_unlock (&b->lock);
  return seen;
}

static GstPadProbeReturn
queue_sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bypass *b = user_data;
  GstFlowReturn ret;
  gint64 t0, t1;

  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0)
    {
      GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
      /* nicesrc's own serialized events (not our markers) go through the
       * queue, and buffers after them wait for it to pass them on. */
      if (GST_EVENT_IS_SERIALIZED (ev) && !gst_event_has_name (ev, MARKER))
        b->synced = FALSE;
      return GST_PAD_PROBE_OK;
    }
  t0 = g_get_monotonic_time ();
  if (!g_atomic_int_get (&b->pass) || t0 < b->queue_until)
    {
      b->synced = FALSE;
      return GST_PAD_PROBE_OK;
    }
  if (!b->synced)
    {
      if (!(b->synced = sync_with_queue (b)))
        return GST_PAD_PROBE_OK;
      t0 = g_get_monotonic_time ();
    }
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0)
    ret = gst_pad_chain_list (b->target, GST_PAD_PROBE_INFO_BUFFER_LIST (info));
  else
    ret = gst_pad_chain (b->target, GST_PAD_PROBE_INFO_BUFFER (info));
  t1 = g_get_monotonic_time ();
  if (t1 - t0 > SLOW_US)
    {
      b->queue_until = t1 + QUEUE_AFTER_SLOW_US;
      if (b->slow++ % 100 == 0)
        GST_WARNING_OBJECT (pad, "a received packet took %" G_GINT64_FORMAT " ms downstream (%u so far): "
                            "through the queue for %d s", (t1 - t0) / 1000, b->slow,
                            (int) (QUEUE_AFTER_SLOW_US / G_USEC_PER_SEC));
    }
  if (ret != GST_FLOW_OK)
    GST_LOG_OBJECT (pad, "packet dropped downstream: %s", gst_flow_get_name (ret));
  if (g_atomic_int_add (&b->direct, 1) == 0)
    GST_INFO_OBJECT (pad, "transport up: received packets go straight to %" GST_PTR_FORMAT, b->target);
  info->data = NULL;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_OK;
  return GST_PAD_PROBE_HANDLED;
}

/* The queue's thread: our markers stop here. */
static GstPadProbeReturn
target_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bypass *b = user_data;
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  const GstStructure *st;
  guint id = 0;

  if (!gst_event_has_name (ev, MARKER))
    return GST_PAD_PROBE_OK;
  st = gst_event_get_structure (ev);
  if (gst_structure_get_uint (st, "id", &id))
    {
      g_mutex_lock (&b->lock);
      b->marker_seen = id;
      g_cond_broadcast (&b->cond);
      g_mutex_unlock (&b->lock);
    }
  return GST_PAD_PROBE_DROP;
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

  b->queue_sink = gst_element_get_static_pad (queue, "sink");
  b->target = target;
  g_mutex_init (&b->lock);
  g_cond_init (&b->cond);
  g_object_set_data_full (G_OBJECT (queue), "rec-receive-bypass", b, bypass_free);
  g_signal_connect (queue, "notify::leaky", G_CALLBACK (on_leaky), b);
  on_leaky (G_OBJECT (queue), NULL, b);
  gst_pad_add_probe (target, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, target_probe, b, NULL);
  gst_pad_add_probe (b->queue_sink, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, queue_sink_probe, b, NULL);
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

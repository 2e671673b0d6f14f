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
 * Reading the socket. nicesrc gets each packet by running its own GLib main
 * loop until libnice's receive callback quits it: per packet a loop run and
 * quit, the wake-up of its context, and GLib taking the socket's fd out of
 * the poll set and putting it back around the dispatch (two eventfd writes
 * and an extra poll). So at nicesrc's first packet, libnice's receive
 * callback for that component is moved (nice_agent_attach_recv) to one
 * receive thread per process ("nicerecv") whose loop runs for good, and the
 * socket sources it dispatches are marked as allowed to recurse (the thread
 * never iterates its context from a callback, so GLib need not block them
 * while they run). Packets are timestamped as nicesrc would (its running
 * time) and handed to nicesrc's downstream peer under a lock shared with
 * nicesrc's thread, which from then on only pushes what it had already read
 * (a packet or two of the DTLS handshake, whose order DTLS does not rely
 * on); nicesrc's thread stays blocked in its own loop, and libnice's STUN
 * (consent checks) is answered from the receive thread. When nicesrc stops
 * (PAUSED to READY) it detaches the callback itself; the state is freed in
 * the receive thread, after any packet it was still handing on.
 *
 * If webrtcbin's receive bin is not made as above (another GStreamer), the
 * bin is left alone and packets take the queue. */
#include "config.h"
#include "recorder-private.h"

#include <nice/agent.h>

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
  gint refs;           /* atomic: the queue's, and the receive thread's once it reads */
  /* the socket read in the receive thread */
  GstElement *nicesrc; /* (owned) */
  GstPad *nice_peer;   /* (owned) nicesrc's downstream peer (the capsfilter's sink) */
  GMutex push_lock;    /* one thread at a time hands packets to nice_peer */
  gint reading;        /* atomic: the receive thread has the component */
} Bypass;

static void
bypass_unref (gpointer data)
{
  Bypass *b = data;
  if (!g_atomic_int_dec_and_test (&b->refs))
    return;
  gst_object_unref (b->queue_sink);
  gst_object_unref (b->target);
  g_clear_object (&b->nicesrc);
  g_clear_object (&b->nice_peer);
  g_mutex_clear (&b->lock);
  g_cond_clear (&b->cond);
  g_mutex_clear (&b->push_lock);
  g_free (b);
}

/* ---- the receive thread ---- */

static GMainContext *rx_context;

static gpointer
rx_thread (gpointer data)
{
  GMainLoop *loop = g_main_loop_new (rx_context, FALSE);
  g_main_loop_run (loop);   /* for the life of the process */
  g_main_loop_unref (loop);
  return NULL;
}

static GMainContext *
rx_context_get (void)
{
  static gsize once;
  if (g_once_init_enter (&once))
    {
      rx_context = g_main_context_new ();
      g_thread_unref (g_thread_new ("nicerecv", rx_thread, NULL));
      g_once_init_leave (&once, 1);
    }
  return rx_context;
}

/* libnice's receive callback, in the receive thread. */
static void
on_nice_recv (NiceAgent *agent, guint stream_id, guint component_id, guint len, gchar *data, gpointer user_data)
{
  Bypass *b = user_data;
  GSource *source = g_main_current_source ();
  GstBuffer *buf;
  GstClockTime now;

  /* Not blocked while dispatched: no fd removal and re-adding (and wake-up)
   * around every packet. Safe: this thread never iterates recursively. */
  if (source != NULL && !g_source_get_can_recurse (source))
    g_source_set_can_recurse (source, TRUE);
  buf = gst_buffer_new_memdup (data, len);
  now = gst_element_get_current_running_time (b->nicesrc);   /* nicesrc's do-timestamp */
  GST_BUFFER_PTS (buf) = now;
  GST_BUFFER_DTS (buf) = now;
  g_mutex_lock (&b->push_lock);
  (void) gst_pad_chain (b->nice_peer, buf);   /* a refused packet is dropped, as nicesrc's queue would */
  g_mutex_unlock (&b->push_lock);
}

static gboolean
release_in_rx_thread (gpointer data)
{
  bypass_unref (data);
  return G_SOURCE_REMOVE;
}

/* The queue is gone: nicesrc stopped (and detached the callback) before.
 * The receive thread's reference goes in that thread, after any packet it
 * was still handing on. */
static void
bypass_release (gpointer data)
{
  Bypass *b = data;
  if (g_atomic_int_get (&b->reading))
    g_main_context_invoke (rx_context, release_in_rx_thread, b);
  bypass_unref (b);
}

/* nicesrc's thread: a packet read there (its first, or the packet or two it
 * had read at that moment, or any after it attached its own callback again
 * on a restart) gives the reading to the receive thread. */
static GstPadProbeReturn
nicesrc_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Bypass *b = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  NiceAgent *agent = NULL;
  guint stream = 0, component = 0;

  g_mutex_lock (&b->push_lock);
  g_object_get (b->nicesrc, "agent", &agent, "stream", &stream, "component", &component, NULL);
  if (agent != NULL && stream != 0 && component != 0)
    {
      GMainContext *context = rx_context_get ();
      if (!g_atomic_int_get (&b->reading))
        {
          g_atomic_int_inc (&b->refs);
          g_atomic_int_set (&b->reading, 1);
          GST_INFO_OBJECT (pad, "stream %u component %u read in the receive thread", stream, component);
        }
      nice_agent_attach_recv (agent, stream, component, context, on_nice_recv, b);
    }
  g_clear_object (&agent);
  (void) gst_pad_chain (b->nice_peer, buf);
  g_mutex_unlock (&b->push_lock);
  info->data = NULL;
  GST_PAD_PROBE_INFO_FLOW_RETURN (info) = GST_FLOW_OK;
  return GST_PAD_PROBE_HANDLED;
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
  GstElement *e = pad ? gst_pad_get_parent_element (pad) : NULL;
  gboolean ok = rec_is_factory (e, name);

  g_clear_object (&e);
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
  GstPad *capsf_src = peer_of (queue, "sink");
  GstElement *capsf = gst_pad_get_parent_element (capsf_src);
  GstPad *nicepad;

  b->refs = 1;
  b->queue_sink = gst_element_get_static_pad (queue, "sink");
  b->target = target;
  g_mutex_init (&b->lock);
  g_cond_init (&b->cond);
  g_mutex_init (&b->push_lock);
  nicepad = peer_of (capsf, "sink");
  b->nice_peer = gst_pad_get_peer (nicepad);
  b->nicesrc = gst_pad_get_parent_element (nicepad);
  gst_pad_add_probe (nicepad, GST_PAD_PROBE_TYPE_BUFFER, nicesrc_probe, b, NULL);
  gst_object_unref (nicepad);
  gst_object_unref (capsf);
  gst_object_unref (capsf_src);
  g_object_set_data_full (G_OBJECT (queue), "rec-receive-bypass", b, bypass_release);
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

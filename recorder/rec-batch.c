/* rec-batch.c — the writer's queue of one recorded track: like GStreamer's
 * queue (its own thread, so that a slow disk never holds up the relay; bounded,
 * the oldest dropped when full), but its thread wakes for a batch, not for
 * every buffer.
 *
 * GStreamer's queue wakes its thread for each buffer it is given: four tracks
 * of a call are ~140 wake-ups a second, each two futex calls in the receiving
 * and the writing thread, plus two write(2) calls for every frame matroskamux
 * puts out. Here the receiving thread only appends under a mutex; after a
 * batch the writing thread sleeps for @interval whatever comes meanwhile (an
 * EOS, a flush or more than half the byte limit wakes it early), then pushes
 * everything waiting and calls the drained function, with which the writer
 * writes the batch's bytes in one write(2) (rec-session.c). Found nothing, it
 * waits for the next item, and pushes that one at once; so do an event with
 * no buffer waiting (the stream's start) and an EOS. At the default
 * 200 ms that is 5 wake-ups a second per track that keeps sending.
 *
 * What is held is at most @interval more than before: what a SIGKILL can
 * lose (the call's media are relayed at once; only the recording waits).
 *
 * Bounds: @max_bytes and @max_age_us (arrival time of the oldest buffer):
 * beyond either, the oldest buffers are dropped (never events) and counted,
 * as the leaky queue did. Serialized queries are answered only when nothing
 * is waiting (otherwise refused), never waited for. */
#include "config.h"
#include "recorder-private.h"

typedef struct
{
  GstMiniObject *obj;
  gint64 arrived_us;
  gsize bytes;
} Item;

struct _RecBatch {
  GstElement parent;
  GstPad *sinkpad, *srcpad;

  GMutex lock;
  GCond cond;
  GQueue items;          /* of Item*, under lock */
  gsize bytes;           /* buffer bytes waiting */
  gboolean flushing;     /* src pad inactive or flush-start */
  gboolean urgent;       /* an EOS or a flush waits: push now */
  gboolean idle;         /* the writer waits for an item, not for a time */
  gint64 next_batch;     /* monotonic µs: the writer's next wake-up while not idle */

  gint64 interval_us;
  gsize max_bytes;
  gint64 max_age_us;
  guint64 dropped;       /* under lock */

  RecBatchDrainedFunc drained;
  gpointer drained_data;
};

G_DEFINE_TYPE (RecBatch, rec_batch, GST_TYPE_ELEMENT)

static GstStaticPadTemplate sink_templ = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                                                                  GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_templ = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
                                                                 GST_STATIC_CAPS_ANY);

static void
item_free (gpointer data)
{
  Item *it = data;
  gst_mini_object_unref (it->obj);
  g_free (it);
}

/* under lock */
static void
clear_items (RecBatch *self)
{
  g_queue_clear_full (&self->items, item_free);
  self->bytes = 0;
}

/* under lock: drop the oldest buffers while over a bound */
static void
leak (RecBatch *self, gint64 now)
{
  GList *l = self->items.head;

  while (l != NULL)
    {
      Item *it = l->data;
      GList *next = l->next;
      gboolean over = self->bytes > self->max_bytes || now - it->arrived_us > self->max_age_us;
      if (!over)
        break;
      if (GST_IS_BUFFER (it->obj))
        {
          self->bytes -= it->bytes;
          if (self->dropped++ == 0)
            GST_WARNING_OBJECT (self, "the writer is behind by more than %" G_GINT64_FORMAT " ms or %" G_GSIZE_FORMAT
                                " bytes: dropping the oldest buffers", self->max_age_us / 1000, self->max_bytes);
          g_queue_delete_link (&self->items, l);
          item_free (it);
        }
      l = next;
    }
}

/* @urgent: push now (an EOS). An event with no buffer waiting (the stream's
 * start) goes at once too. */
static GstFlowReturn
enqueue (RecBatch *self, GstMiniObject *obj, gsize bytes, gboolean urgent)
{
  Item *it;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&self->lock);
  if (self->flushing)
    {
      g_mutex_unlock (&self->lock);
      gst_mini_object_unref (obj);
      return GST_FLOW_FLUSHING;
    }
  if (GST_IS_EVENT (obj) && self->bytes == 0)
    urgent = TRUE;
  it = g_new (Item, 1);
  it->obj = obj;
  it->arrived_us = now;
  it->bytes = bytes;
  g_queue_push_tail (&self->items, it);
  self->bytes += bytes;
  leak (self, now);
  /* Only what cannot wait wakes the writer, and the first item after it
   * found nothing (it then sleeps with no deadline). */
  if (urgent)
    self->urgent = TRUE;
  if (urgent || self->idle || self->bytes > self->max_bytes / 2)
    g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

static GstFlowReturn
rec_batch_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  RecBatch *self = (RecBatch *) parent;
  return enqueue (self, GST_MINI_OBJECT_CAST (buf), gst_buffer_get_size (buf), FALSE);
}

static void
set_flushing (RecBatch *self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  if (flushing)
    clear_items (self);
  self->urgent = FALSE;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void rec_batch_loop (gpointer data);

static gboolean
rec_batch_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  RecBatch *self = (RecBatch *) parent;

  switch (GST_EVENT_TYPE (event))
    {
    case GST_EVENT_FLUSH_START:
      set_flushing (self, TRUE);
      gst_pad_push_event (self->srcpad, event);
      gst_pad_pause_task (self->srcpad);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      gst_pad_push_event (self->srcpad, event);
      set_flushing (self, FALSE);
      return gst_pad_start_task (self->srcpad, rec_batch_loop, self, NULL);
    default:
      if (!GST_EVENT_IS_SERIALIZED (event))
        return gst_pad_push_event (self->srcpad, event);
      return enqueue (self, GST_MINI_OBJECT_CAST (event), 0, GST_EVENT_TYPE (event) == GST_EVENT_EOS)
             == GST_FLOW_OK;
    }
}

static gboolean
rec_batch_sink_query (GstPad *pad, GstObject *parent, GstQuery *query)
{
  RecBatch *self = (RecBatch *) parent;
  gboolean empty;

  if (GST_QUERY_IS_SERIALIZED (query))
    {
      g_mutex_lock (&self->lock);
      empty = self->items.length == 0;
      g_mutex_unlock (&self->lock);
      if (!empty)
        return FALSE;
    }
  return gst_pad_peer_query (self->srcpad, query);
}

static void
rec_batch_loop (gpointer data)
{
  RecBatch *self = data;
  GQueue batch = G_QUEUE_INIT;
  GstFlowReturn ret = GST_FLOW_OK;
  Item *it;

  g_mutex_lock (&self->lock);
  for (;;)
    {
      if (self->flushing)
        {
          self->idle = FALSE;
          g_mutex_unlock (&self->lock);
          gst_pad_pause_task (self->srcpad);
          return;
        }
      if (self->items.length > 0
          && (self->idle || self->urgent || self->bytes > self->max_bytes / 2
              || g_get_monotonic_time () >= self->next_batch))
        break;
      if (self->items.length == 0 && g_get_monotonic_time () >= self->next_batch)
        {
          /* Nothing came for a whole interval: the next item goes at once. */
          self->idle = TRUE;
          g_cond_wait (&self->cond, &self->lock);
        }
      else
        g_cond_wait_until (&self->cond, &self->lock, self->next_batch);
    }
  self->idle = FALSE;
  self->next_batch = g_get_monotonic_time () + self->interval_us;
  batch = self->items;
  g_queue_init (&self->items);
  self->bytes = 0;
  self->urgent = FALSE;
  g_mutex_unlock (&self->lock);

  while ((it = g_queue_pop_head (&batch)) != NULL)
    {
      GstMiniObject *obj = it->obj;
      it->obj = NULL;
      g_free (it);
      if (ret == GST_FLOW_FLUSHING)
        {
          gst_mini_object_unref (obj);
          continue;
        }
      if (GST_IS_BUFFER (obj))
        {
          /* Whatever goes wrong downstream (rec-insulator's rule), the
           * relay upstream never hears of it; only a flush stops the batch. */
          ret = gst_pad_push (self->srcpad, GST_BUFFER_CAST (obj));
          if (ret != GST_FLOW_OK && ret != GST_FLOW_FLUSHING)
            GST_DEBUG_OBJECT (self, "downstream: %s", gst_flow_get_name (ret));
        }
      else
        gst_pad_push_event (self->srcpad, GST_EVENT_CAST (obj));
    }
  if (self->drained)
    self->drained (self, self->drained_data);
}

static gboolean
rec_batch_src_activate_mode (GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active)
{
  RecBatch *self = (RecBatch *) parent;

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (active)
    {
      set_flushing (self, FALSE);
      return gst_pad_start_task (pad, rec_batch_loop, self, NULL);
    }
  set_flushing (self, TRUE);
  return gst_pad_stop_task (pad);
}

static gboolean
rec_batch_sink_activate_mode (GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active)
{
  RecBatch *self = (RecBatch *) parent;

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  if (!active)
    set_flushing (self, TRUE);
  return TRUE;
}

static void
rec_batch_finalize (GObject *object)
{
  RecBatch *self = REC_BATCH (object);

  clear_items (self);
  if (self->dropped > 0)
    GST_WARNING_OBJECT (self, "%" G_GUINT64_FORMAT " buffers dropped in all", self->dropped);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (rec_batch_parent_class)->finalize (object);
}

static void
rec_batch_class_init (RecBatchClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->finalize = rec_batch_finalize;
  gst_element_class_add_static_pad_template (element_class, &sink_templ);
  gst_element_class_add_static_pad_template (element_class, &src_templ);
  gst_element_class_set_static_metadata (element_class, "Testigo recording batch queue", "Generic",
                                         "A writer's queue whose thread wakes per batch, not per buffer", "Testigo");
}

static void
rec_batch_init (RecBatch *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->items);
  self->flushing = TRUE;

  self->sinkpad = gst_pad_new_from_static_template (&sink_templ, "sink");
  gst_pad_set_chain_function (self->sinkpad, rec_batch_chain);
  gst_pad_set_event_function (self->sinkpad, rec_batch_sink_event);
  gst_pad_set_query_function (self->sinkpad, rec_batch_sink_query);
  gst_pad_set_activatemode_function (self->sinkpad, rec_batch_sink_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_templ, "src");
  gst_pad_set_activatemode_function (self->srcpad, rec_batch_src_activate_mode);
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

GstElement *
rec_batch_new (guint interval_ms, gsize max_bytes, guint max_age_ms, RecBatchDrainedFunc drained, gpointer data)
{
  RecBatch *self = g_object_new (REC_TYPE_BATCH, NULL);

  self->interval_us = (gint64) interval_ms * G_TIME_SPAN_MILLISECOND;
  self->max_bytes = max_bytes;
  self->max_age_us = (gint64) max_age_ms * G_TIME_SPAN_MILLISECOND;
  self->drained = drained;
  self->drained_data = data;
  return GST_ELEMENT (self);
}

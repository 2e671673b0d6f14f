/* test-rec-receive — recorder/rec-receive.c on webrtcbin 1.22's receive bin
 * layout (nicesrc → capsfilter → queue → dtlssrtpdec, the real elements):
 * while the queue is leaky (webrtcbin holding the transport back) buffers
 * take the queue's thread; once it is not, they go straight to dtlssrtpdec in
 * the pushing thread, in order across the switch (the queue still holding
 * some then); after a packet that took
 * more than 50 ms downstream the next ones take the queue again for 2 s, then
 * go straight again; leaky again, the queue again. A bin of another shape is
 * left alone. The test's probe on dtlssrtpdec's sink pad records each
 * buffer's number and thread and drops it (no DTLS is set up); events go on. */
#include "config.h"
#include "recorder-private.h"

#define N_MAX 1024

typedef struct
{
  GMutex lock;
  GCond cond;
  guint n;
  guint seq[N_MAX];
  GThread *thread[N_MAX];
  guint slow_seq;      /* the probe sleeps 60 ms on this one */
} Seen;

static GstPadProbeReturn
record_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Seen *seen = user_data;
  GstBuffer *buf;
  guint seq;

  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) == 0)
    return GST_PAD_PROBE_OK;   /* stream-start, caps, segment on to dtlssrtpdec (markers stop before) */
  buf = GST_PAD_PROBE_INFO_BUFFER (info);
  seq = (guint) GST_BUFFER_OFFSET (buf);
  if (seq == seen->slow_seq)
    g_usleep (60 * G_TIME_SPAN_MILLISECOND);
  g_mutex_lock (&seen->lock);
  if (seen->n < N_MAX)
    {
      seen->seq[seen->n] = seq;
      seen->thread[seen->n] = g_thread_self ();
      seen->n++;
    }
  g_cond_broadcast (&seen->cond);
  g_mutex_unlock (&seen->lock);
  return GST_PAD_PROBE_DROP;
}

static void
wait_for (Seen *seen, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  g_mutex_lock (&seen->lock);
  while (seen->n < n)
    if (!g_cond_wait_until (&seen->cond, &seen->lock, deadline))
      break;
  g_mutex_unlock (&seen->lock);
  g_assert_cmpuint (seen->n, ==, n);
}

static void
push (GstPad *sink, guint seq)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 100, NULL);
  GST_BUFFER_OFFSET (buf) = seq;
  g_assert_cmpint (gst_pad_chain (sink, buf), ==, GST_FLOW_OK);
}

/* Was buffer @i seen in this (the pushing) thread? */
static gboolean
straight (Seen *seen, guint i)
{
  return seen->thread[i] == g_thread_self ();
}

static GstElement *
make (const char *factory)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  if (e == NULL)
    g_error ("GStreamer element %s is missing (gstreamer1.0-nice, gstreamer1.0-plugins-bad)", factory);
  return e;
}

/* webrtcbin's receive bin, as transportreceivebin.c builds it (with
 * @middle "capsfilter"), or of another shape */
static GstElement *
receive_bin (const char *middle, GstElement **queue, GstElement **dtls)
{
  GstElement *bin = gst_bin_new ("receive");
  GstElement *nicesrc = make ("nicesrc"), *mid = make (middle);

  *queue = make ("queue");
  *dtls = make ("dtlssrtpdec");
  g_object_set (*queue, "leaky", 2, "max-size-time", (guint64) 0, "max-size-buffers", 0,
                "max-size-bytes", 5 * 1024 * 1024, NULL);
  g_object_set (*dtls, "connection-id", "test", NULL);
  gst_bin_add_many (GST_BIN (bin), nicesrc, mid, *queue, *dtls, NULL);
  g_assert_true (gst_element_link_many (nicesrc, mid, *queue, NULL));
  g_assert_true (gst_element_link_pads (*queue, "src", *dtls, "sink"));
  /* no ICE agent here: nicesrc stays stopped, the test pushes into the queue */
  gst_element_set_locked_state (nicesrc, TRUE);
  return bin;
}

static void
start_stream (GstPad *sink)
{
  GstSegment seg;
  gst_segment_init (&seg, GST_FORMAT_TIME);
  g_assert_true (gst_pad_send_event (sink, gst_event_new_stream_start ("test")));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_caps (gst_caps_new_empty_simple ("application/x-rtp"))));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_segment (&seg)));
}

static void
test_paths (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *queue, *dtls, *bin;
  GstPad *qsink, *target;
  Seen *seen = g_new0 (Seen, 1);
  guint n = 0, i;

  g_mutex_init (&seen->lock);
  g_cond_init (&seen->cond);
  seen->slow_seq = 2;   /* held in the queue's thread: 3 and 4 still wait in the queue at the switch */
  rec_receive_bypass (pipeline);
  bin = receive_bin ("capsfilter", &queue, &dtls);
  gst_bin_add (GST_BIN (pipeline), bin);
  g_assert_nonnull (g_object_get_data (G_OBJECT (queue), "rec-receive-bypass"));
  target = gst_element_get_static_pad (dtls, "sink");
  gst_pad_add_probe (target, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, record_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  qsink = gst_element_get_static_pad (queue, "sink");
  start_stream (qsink);

  /* Held back (leaky): through the queue's thread. Then let through while
   * the queue still holds some: what follows goes straight, but only after
   * them (the marker). */
  for (; n < 5; n++)
    push (qsink, n);
  g_object_set (queue, "leaky", 0, NULL);
  for (; n < 200; n++)
    push (qsink, n);
  wait_for (seen, n);
  for (i = 0; i < n; i++)
    g_assert_cmpuint (seen->seq[i], ==, i);
  for (i = 0; i < 5; i++)
    g_assert_false (straight (seen, i));
  for (i = 5; i < n; i++)
    g_assert_true (straight (seen, i));

  /* A slow packet: the next ones through the queue for 2 s. */
  seen->slow_seq = n;
  for (guint k = 0; k < 11; k++, n++)
    push (qsink, n);
  wait_for (seen, n);
  g_assert_true (straight (seen, n - 11));
  for (i = n - 10; i < n; i++)
    {
      g_assert_cmpuint (seen->seq[i], ==, i);
      g_assert_false (straight (seen, i));
    }
  g_usleep (2100 * G_TIME_SPAN_MILLISECOND);
  push (qsink, n++);
  wait_for (seen, n);
  g_assert_cmpuint (seen->seq[n - 1], ==, n - 1);
  g_assert_true (straight (seen, n - 1));

  /* Held back again: the queue again. */
  g_object_set (queue, "leaky", 2, NULL);
  push (qsink, n++);
  wait_for (seen, n);
  g_assert_false (straight (seen, n - 1));

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (qsink);
  gst_object_unref (target);
  gst_object_unref (pipeline);
  g_mutex_clear (&seen->lock);
  g_cond_clear (&seen->cond);
  g_free (seen);
}

static void
test_other_shape (void)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *queue, *dtls;

  rec_receive_bypass (pipeline);
  gst_bin_add (GST_BIN (pipeline), receive_bin ("identity", &queue, &dtls));
  g_assert_null (g_object_get_data (G_OBJECT (queue), "rec-receive-bypass"));
  gst_object_unref (pipeline);
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rec-receive/paths", test_paths);
  g_test_add_func ("/rec-receive/other-shape", test_other_shape);
  return g_test_run ();
}

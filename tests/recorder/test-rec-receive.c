/* test-rec-receive — recorder/rec-receive.c on webrtcbin 1.22's receive bin
 * layout (nicesrc → capsfilter → queue → dtlssrtpdec, the real elements):
 * while the queue is leaky (webrtcbin holding the transport back) buffers
 * take the queue's thread; once it is not, they go straight to dtlssrtpdec in
 * the pushing thread, in order across the switch (the queue still holding
 * some then); after a packet that took
 * more than 50 ms downstream the next ones take the queue again for 2 s, then
 * go straight again; leaky again, the queue again. A bin of another shape is
 * left alone. The test's probe on dtlssrtpdec's sink pad records each
 * buffer's number and thread and drops it (no DTLS is set up); events go on.
 *
 * /rec-receive/nice-thread: two real libnice agents connected over loopback,
 * one read by nicesrc in the receive bin: packets sent by the other arrive
 * at dtlssrtpdec all, in order, timestamped, and — after the first, which
 * nicesrc reads — in the receive thread ("nicerecv"), not nicesrc's; the
 * connection stays up (STUN answered) meanwhile. */
#include "config.h"
#include "recorder-private.h"

#include <nice/agent.h>
#include <sys/prctl.h>

#define N_MAX 1024

typedef struct
{
  GMutex lock;
  GCond cond;
  guint n;
  guint seq[N_MAX];
  GThread *thread[N_MAX];
  guint slow_seq;      /* the probe sleeps 60 ms on this one */
  gboolean seq_in_data;  /* the number is in the buffer's bytes 4-7 (big-endian), not its offset */
  char thread_name[N_MAX][16];
  GstClockTime pts[N_MAX];
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
  if (seen->seq_in_data)
    {
      guint8 b[4] = { 0 };
      gst_buffer_extract (buf, 4, b, 4);
      seq = (guint) b[0] << 24 | (guint) b[1] << 16 | (guint) b[2] << 8 | b[3];
    }
  if (seq == seen->slow_seq)
    g_usleep (60 * G_TIME_SPAN_MILLISECOND);
  g_mutex_lock (&seen->lock);
  if (seen->n < N_MAX)
    {
      seen->seq[seen->n] = seq;
      seen->thread[seen->n] = g_thread_self ();
      prctl (PR_GET_NAME, seen->thread_name[seen->n], 0, 0, 0);
      seen->pts[seen->n] = GST_BUFFER_PTS (buf);
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

/* ---- /rec-receive/nice-thread ---- */

static gpointer
loop_thread (gpointer data)
{
  g_main_loop_run (data);
  return NULL;
}

static void
drop_recv (NiceAgent *agent, guint stream, guint component, guint len, gchar *buf, gpointer data)
{
}

static void
wait_state (NiceAgent *agent, guint stream, NiceComponentState want)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  while (nice_agent_get_component_state (agent, stream, 1) != want && g_get_monotonic_time () < deadline)
    g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (nice_agent_get_component_state (agent, stream, 1), ==, want);
}

static void
wait_gathered (NiceAgent *agent, guint stream)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  GSList *c = NULL;
  while ((c = nice_agent_get_local_candidates (agent, stream, 1)) == NULL && g_get_monotonic_time () < deadline)
    g_usleep (10 * G_TIME_SPAN_MILLISECOND);
  g_assert_nonnull (c);
  g_slist_free_full (c, (GDestroyNotify) nice_candidate_free);
}

static void
exchange (NiceAgent *from, guint from_stream, NiceAgent *to, guint to_stream)
{
  gchar *ufrag = NULL, *pwd = NULL;
  GSList *c;
  g_assert_true (nice_agent_get_local_credentials (from, from_stream, &ufrag, &pwd));
  g_assert_true (nice_agent_set_remote_credentials (to, to_stream, ufrag, pwd));
  c = nice_agent_get_local_candidates (from, from_stream, 1);
  g_assert_cmpint (nice_agent_set_remote_candidates (to, to_stream, 1, c), >, 0);
  g_slist_free_full (c, (GDestroyNotify) nice_candidate_free);
  g_free (ufrag);
  g_free (pwd);
}

static NiceAgent *
loopback_agent (GMainContext *ctx, gboolean controlling, guint *stream)
{
  NiceAgent *agent = nice_agent_new (ctx, NICE_COMPATIBILITY_RFC5245);
  NiceAddress addr;
  g_object_set (agent, "controlling-mode", controlling, "ice-tcp", FALSE, "upnp", FALSE, NULL);
  nice_address_init (&addr);
  g_assert_true (nice_address_set_from_string (&addr, "127.0.0.1"));
  g_assert_true (nice_agent_add_local_address (agent, &addr));
  *stream = nice_agent_add_stream (agent, 1);
  g_assert_cmpuint (*stream, >, 0);
  return agent;
}

static void
test_nice_thread (void)
{
  GMainContext *ctx = g_main_context_new ();
  GMainLoop *loop = g_main_loop_new (ctx, FALSE);
  GThread *thread = g_thread_new ("agents", loop_thread, loop);
  guint sa = 0, sb = 0, n = 300, i;
  NiceAgent *a = loopback_agent (ctx, TRUE, &sa), *b = loopback_agent (ctx, FALSE, &sb);
  GstElement *pipeline = gst_pipeline_new (NULL), *bin = gst_bin_new ("receive");
  GstElement *nicesrc, *capsf = make ("capsfilter"), *queue = make ("queue"), *dtls = make ("dtlssrtpdec");
  GstPad *target;
  Seen *seen = g_new0 (Seen, 1);

  g_mutex_init (&seen->lock);
  g_cond_init (&seen->cond);
  seen->slow_seq = G_MAXUINT;
  seen->seq_in_data = TRUE;
  nice_agent_attach_recv (a, sa, 1, ctx, drop_recv, NULL);
  g_assert_true (nice_agent_gather_candidates (a, sa));
  g_assert_true (nice_agent_gather_candidates (b, sb));
  wait_gathered (a, sa);
  wait_gathered (b, sb);

  /* webrtcbin's receive bin, reading agent b; the transport already let
   * through (queue not leaky) */
  nicesrc = gst_element_factory_make_full ("nicesrc", "agent", b, "stream", sb, "component", 1, NULL);
  g_assert_nonnull (nicesrc);
  g_object_set (queue, "leaky", 0, NULL);
  {
    GstCaps *caps = gst_caps_new_empty_simple ("application/x-rtp");   /* as transportreceivebin.c */
    g_object_set (capsf, "caps", caps, NULL);
    gst_caps_unref (caps);
  }
  g_object_set (dtls, "connection-id", "test-nice", NULL);
  rec_receive_bypass (pipeline);
  gst_bin_add_many (GST_BIN (bin), nicesrc, capsf, queue, dtls, NULL);
  g_assert_true (gst_element_link_many (nicesrc, capsf, queue, NULL));
  g_assert_true (gst_element_link_pads (queue, "src", dtls, "sink"));
  gst_bin_add (GST_BIN (pipeline), bin);
  g_assert_nonnull (g_object_get_data (G_OBJECT (queue), "rec-receive-bypass"));
  target = gst_element_get_static_pad (dtls, "sink");
  gst_pad_add_probe (target, GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM, record_probe, seen, NULL);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);

  exchange (a, sa, b, sb);
  exchange (b, sb, a, sa);
  wait_state (a, sa, NICE_COMPONENT_STATE_READY);
  wait_state (b, sb, NICE_COMPONENT_STATE_READY);

  for (i = 0; i < n; i++)
    {
      guint8 pkt[200] = { 0x80, 96 };   /* RTP-like: libnice takes a first byte of 0-3 for STUN */
      pkt[4] = (guint8) (i >> 24);
      pkt[5] = (guint8) (i >> 16);
      pkt[6] = (guint8) (i >> 8);
      pkt[7] = (guint8) i;
      g_assert_cmpint (nice_agent_send (a, sa, 1, sizeof pkt, (const gchar *) pkt), ==, (gint) sizeof pkt);
      if (i == 0)
        wait_for (seen, 1);   /* the first is read by nicesrc, which then hands over */
      g_usleep (2 * G_TIME_SPAN_MILLISECOND);
    }
  wait_for (seen, n);
  for (i = 0; i < n; i++)
    {
      g_assert_cmpuint (seen->seq[i], ==, i);
      g_assert_true (GST_CLOCK_TIME_IS_VALID (seen->pts[i]));
      if (i > 0)
        g_assert_cmpuint (seen->pts[i], >=, seen->pts[i - 1]);
    }
  g_assert_cmpstr (seen->thread_name[0], !=, "nicerecv");
  for (i = 1; i < n; i++)
    g_assert_cmpstr (seen->thread_name[i], ==, "nicerecv");
  /* STUN (consent, keepalives) still answered: the pair stays up */
  g_assert_cmpint (nice_agent_get_component_state (b, sb, 1), ==, NICE_COMPONENT_STATE_READY);

  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (target);
  gst_object_unref (pipeline);
  g_object_unref (a);
  g_object_unref (b);
  g_main_loop_quit (loop);
  g_thread_join (thread);
  g_main_loop_unref (loop);
  g_main_context_unref (ctx);
  g_mutex_clear (&seen->lock);
  g_cond_clear (&seen->cond);
  g_free (seen);
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rec-receive/paths", test_paths);
  g_test_add_func ("/rec-receive/other-shape", test_other_shape);
  g_test_add_func ("/rec-receive/nice-thread", test_nice_thread);
  return g_test_run ();
}

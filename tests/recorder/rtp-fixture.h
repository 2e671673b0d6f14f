/* rtp-fixture.h — what the recorder's element tests share: real elements
 * by name, RTP packets, a video stream's first events, and what reached a
 * consumer (Seen, consumer_probe) or went through an element (through_probe). */
#pragma once

#include <gst/gst.h>
#include <gst/rtp/rtp.h>

static inline GstElement *
make (const char *factory)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  if (e == NULL)
    g_error ("GStreamer element %s is missing (gstreamer1.0-plugins-good, -base)", factory);
  return e;
}

/* A 100-byte RTP packet of SSRC 0x1234, stamped at 0 (long past: a clocksync
 * does not wait for it). */
static inline GstBuffer *
rtp_packet (guint16 seq, guint8 pt)
{
  GstBuffer *buf = gst_rtp_buffer_new_allocate (100, 0, 0);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  g_assert_true (gst_rtp_buffer_map (buf, GST_MAP_WRITE, &rtp));
  gst_rtp_buffer_set_payload_type (&rtp, pt);
  gst_rtp_buffer_set_seq (&rtp, seq);
  gst_rtp_buffer_set_timestamp (&rtp, seq * 3000u);
  gst_rtp_buffer_set_ssrc (&rtp, 0x1234);
  gst_rtp_buffer_unmap (&rtp);
  GST_BUFFER_PTS (buf) = 0;
  return buf;
}

static inline GstCaps *
vp8_caps (void)
{
  return gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name", G_TYPE_STRING,
                              "VP8", "payload", G_TYPE_INT, 96, "clock-rate", G_TYPE_INT, 90000, NULL);
}

/* stream-start, VP8 caps, a TIME segment */
static inline void
start_stream (GstPad *sink)
{
  GstSegment seg;
  GstCaps *caps = vp8_caps ();
  gst_segment_init (&seg, GST_FORMAT_TIME);
  g_assert_true (gst_pad_send_event (sink, gst_event_new_stream_start ("test")));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_caps (caps)));
  g_assert_true (gst_pad_send_event (sink, gst_event_new_segment (&seg)));
  gst_caps_unref (caps);
}

typedef struct
{
  GMutex lock;
  guint n;                /* buffers at the consumer */
  guint seq[256];
  guint through;          /* buffers at the first element skipped */
  gboolean segment_first; /* a segment reached the consumer before any buffer */
} Seen;

static inline Seen *
seen_new (void)
{
  Seen *seen = g_new0 (Seen, 1);
  g_mutex_init (&seen->lock);
  return seen;
}

static inline void
seen_free (Seen *seen)
{
  g_mutex_clear (&seen->lock);
  g_free (seen);
}

static inline GstPadProbeReturn
consumer_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Seen *seen = user_data;
  g_mutex_lock (&seen->lock);
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0)
    {
      GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
      g_assert_true (gst_rtp_buffer_map (GST_PAD_PROBE_INFO_BUFFER (info), GST_MAP_READ, &rtp));
      if (seen->n < G_N_ELEMENTS (seen->seq))
        seen->seq[seen->n] = gst_rtp_buffer_get_seq (&rtp);
      seen->n++;
      gst_rtp_buffer_unmap (&rtp);
    }
  else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_SEGMENT && seen->n == 0)
    seen->segment_first = TRUE;
  g_mutex_unlock (&seen->lock);
  return GST_PAD_PROBE_OK;
}

static inline GstPadProbeReturn
through_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Seen *seen = user_data;
  g_mutex_lock (&seen->lock);
  seen->through++;
  g_mutex_unlock (&seen->lock);
  return GST_PAD_PROBE_OK;
}

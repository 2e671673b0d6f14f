/* rtc-peer — a GStreamer test participant for testigo-recorder (tests and
 * bench/recorder). It plays a signatory or an officer: a webrtcbin that
 * offers, sends PRE-ENCODED VP8 + Opus read once from a WebM file (looped, no
 * encoder in the loop; a keyframe request makes it jump to the next keyframe,
 * as an encoder would answer a PLI), and counts the other side's media.
 *
 *   rtc-peer --media FILE.webm [--loopback] [--no-decode]
 *       stdout: {"type":"offer","sdp":S} {"type":"ice","candidate":C,"sdpMLineIndex":N}
 *               {"type":"stats","video_frames":N,"audio_buffers":N,"first_frame_ms":N,...} (every second and at exit)
 *       stdin:  {"type":"answer","sdp":S} {"type":"ice",...} {"type":"bye"}; end of stdin or SIGTERM ends it.
 *               {"type":"request-keyframe"}: an upstream GstForceKeyUnit into webrtcbin's src pad of
 *               the received video (webrtcbin sends a PLI/FIR to the recorder), as a browser does when
 *               it cannot decode; answered with {"type":"keyframe-request-sent","ok":B,
 *               "remote_ssrc":S} (S: the SSRC the video is received with, or -1).
 *               {"type":"pause","kind":"video"|"audio","ms":N}: that track sends nothing for N ms
 *               (a phone's camera paused in a background tab), then goes on with time moved on.
 *     --report-keyframe-requests: every keyframe request that reaches this peer's own senders (its
 *               webrtcbin's RTP session turns a PLI/FIR for one of its SSRCs into an upstream
 *               GstForceKeyUnit) is printed as {"type":"keyframe-request","kind":K,"ssrc":S,
 *               "own_ssrc":O} (S: the event's "ssrc" field or -1; O: the SSRC this peer sends with).
 *   rtc-peer --check-recording FILE.mkv
 *       decodes every track to EOS; prints {"video_tracks":N,"audio_tracks":N,"video_frames":[..],
 *       "audio_buffers":[..],"eos":true,"duration_ms":N}; exit 0 when it reached EOS with no error.
 *   rtc-peer --check-png FILE.png      exit 0 when the file decodes to one frame.
 */
#include <gst/gst.h>
#include <gst/app/app.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  GPtrArray *frames;   /* GstBuffer */
  GstCaps *caps;
  GstClockTime duration;
} Track;

typedef struct {
  Track *track;
  GstElement *src;
  GThread *thread;
  gint want_key;
  gint pause_ms;       /* atomic: a pause asked for ({"type":"pause"}) */
} Feeder;

static GMainLoop *loop;
static GstElement *pipe_, *webrtc;
static Feeder feeders[2];
static gint stop_flag;
static gint video_frames, audio_buffers, video_sent;
static gint64 start_us, first_frame_us;
static GMutex out_lock;
static gboolean decode = TRUE;
static gboolean no_video;   /* a participant without a camera: video is recvonly */
static gboolean report_fku; /* --report-keyframe-requests */
static GstPad *recv_video;  /* webrtcbin's src pad of the received video; main thread */
static GstElement *pays[2]; /* own payloaders, video (0) and audio (1) */

static void
emit (JsonObject *o)
{
  g_autoptr (JsonNode) n = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) g = json_generator_new ();
  g_autofree char *t = NULL;
  json_node_set_object (n, o);
  json_generator_set_root (g, n);
  t = json_generator_to_data (g, NULL);
  g_mutex_lock (&out_lock);
  printf ("%s\n", t);
  fflush (stdout);
  g_mutex_unlock (&out_lock);
}

/* ---- media loading ---- */

static gboolean
load_media (const char *path, Track *video, Track *audio)
{
  g_autofree char *desc = g_strdup_printf ("filesrc location=\"%s\" ! matroskademux name=d "
                                           "d.video_0 ! queue ! appsink name=v sync=false "
                                           "d.audio_0 ! queue ! appsink name=a sync=false", path);
  g_autoptr (GError) e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  Track *tracks[2] = { video, audio };
  const char *names[2] = { "v", "a" };

  if (p == NULL)
    {
      fprintf (stderr, "rtc-peer: %s\n", e->message);
      return FALSE;
    }
  gst_element_set_state (p, GST_STATE_PLAYING);
  for (int i = 0; i < 2; i++)
    {
      GstElement *sink = gst_bin_get_by_name (GST_BIN (p), names[i]);
      GstSample *s;
      tracks[i]->frames = g_ptr_array_new_with_free_func ((GDestroyNotify) gst_buffer_unref);
      while ((s = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND)) != NULL)
        {
          GstBuffer *b = gst_sample_get_buffer (s);
          if (tracks[i]->caps == NULL)
            tracks[i]->caps = gst_caps_ref (gst_sample_get_caps (s));
          g_ptr_array_add (tracks[i]->frames, gst_buffer_ref (b));
          if (GST_BUFFER_PTS_IS_VALID (b))
            tracks[i]->duration = MAX (tracks[i]->duration, GST_BUFFER_PTS (b)
                                       + (GST_BUFFER_DURATION_IS_VALID (b) ? GST_BUFFER_DURATION (b) : 0));
          gst_sample_unref (s);
        }
      gst_object_unref (sink);
    }
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (p);
  return video->frames->len > 0 && audio->frames->len > 0;
}

/* Pushes the pre-encoded frames in a loop; clocksync downstream paces them. */
static gpointer
feed_thread (gpointer data)
{
  Feeder *f = data;
  Track *t = f->track;
  gint64 offset = 0;   /* added to the file's timestamps; negative after a jump ahead */
  GstClockTime last = 0;
  guint i = 0;

  while (!g_atomic_int_get (&stop_flag))
    {
      GstBuffer *src, *b;
      if (i >= t->frames->len)
        {
          i = 0;
          offset = (gint64) (last + 50 * GST_MSECOND);
        }
      {
        gint ms = g_atomic_int_get (&f->pause_ms);
        if (ms > 0 && g_atomic_int_compare_and_exchange (&f->pause_ms, ms, 0))
          {
            /* Nothing sent for @ms; then the timestamps have moved on as much. */
            gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;
            while (!g_atomic_int_get (&stop_flag) && g_get_monotonic_time () < until)
              g_usleep (20 * 1000);
            offset += (gint64) ms * GST_MSECOND;
            last += (GstClockTime) ms * GST_MSECOND;
          }
      }
      if (g_atomic_int_compare_and_exchange (&f->want_key, 1, 0))
        {
          /* An encoder answers a PLI with a keyframe: jump to the next one. */
          guint j = i;
          while (j < t->frames->len
                 && GST_BUFFER_FLAG_IS_SET (g_ptr_array_index (t->frames, j), GST_BUFFER_FLAG_DELTA_UNIT))
            j++;
          if (j >= t->frames->len)
            j = 0;
          if (j != i)
            {
              GstClockTime pts_j = GST_BUFFER_PTS (g_ptr_array_index (t->frames, j));
              /* keep time running: the keyframe comes one frame after the last */
              offset = (gint64) (last + 50 * GST_MSECOND) - (gint64) pts_j;
              i = j;
            }
        }
      src = g_ptr_array_index (t->frames, i);
      b = gst_buffer_copy (src);
      GST_BUFFER_PTS (b) = (GstClockTime) ((gint64) GST_BUFFER_PTS (src) + offset);
      GST_BUFFER_DTS (b) = GST_CLOCK_TIME_NONE;
      last = GST_BUFFER_PTS (b);
      if (gst_app_src_push_buffer (GST_APP_SRC (f->src), b) != GST_FLOW_OK)
        break;
      i++;
    }
  return NULL;
}

/* The SSRC this peer sends @kind with (from its payloader's output caps), or -1. */
static gint64
own_ssrc (int kind)
{
  GstPad *src = pays[kind] ? gst_element_get_static_pad (pays[kind], "src") : NULL;
  GstCaps *caps = src ? gst_pad_get_current_caps (src) : NULL;
  guint ssrc = 0;
  gint64 v = -1;
  if (caps && gst_structure_get_uint (gst_caps_get_structure (caps, 0), "ssrc", &ssrc))
    v = ssrc;
  if (caps)
    gst_caps_unref (caps);
  if (src)
    gst_object_unref (src);
  return v;
}

static void
report_keyframe_request (int kind, GstEvent *ev)
{
  g_autoptr (JsonObject) o = json_object_new ();
  const GstStructure *st = gst_event_get_structure (ev);
  guint ssrc = 0;
  json_object_set_string_member (o, "type", "keyframe-request");
  json_object_set_string_member (o, "kind", kind == 0 ? "video" : "audio");
  json_object_set_int_member (o, "ssrc", st && gst_structure_get_uint (st, "ssrc", &ssrc) ? (gint64) ssrc : -1);
  json_object_set_int_member (o, "own_ssrc", own_ssrc (kind));
  json_object_set_int_member (o, "ms", (g_get_monotonic_time () - start_us) / 1000);
  emit (o);
}

static GstPadProbeReturn
fku_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Feeder *f = user_data;
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER)
    {
      g_atomic_int_inc (&video_sent);
      return GST_PAD_PROBE_OK;
    }
  if (gst_video_event_is_force_key_unit (GST_PAD_PROBE_INFO_EVENT (info)))
    {
      g_atomic_int_set (&f->want_key, 1);
      if (report_fku)
        report_keyframe_request (0, GST_PAD_PROBE_INFO_EVENT (info));
    }
  return GST_PAD_PROBE_OK;
}

/* Audio has no keyframes; a request is only reported (the test checks that a
 * video PLI reaches the video sender only). */
static GstPadProbeReturn
audio_fku_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  if (report_fku && gst_video_event_is_force_key_unit (GST_PAD_PROBE_INFO_EVENT (info)))
    report_keyframe_request (1, GST_PAD_PROBE_INFO_EVENT (info));
  return GST_PAD_PROBE_OK;
}

/* Main thread: asks the recorder for a keyframe of the received video, as a
 * browser does when it cannot decode (webrtcbin sends the PLI). */
static void
request_keyframe (void)
{
  g_autoptr (JsonObject) o = json_object_new ();
  GstCaps *caps = recv_video ? gst_pad_get_current_caps (recv_video) : NULL;
  guint ssrc = 0;
  gboolean ok = FALSE;
  if (recv_video)
    ok = gst_pad_send_event (recv_video, gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE, 0));
  json_object_set_string_member (o, "type", "keyframe-request-sent");
  json_object_set_boolean_member (o, "ok", ok);
  json_object_set_int_member (o, "remote_ssrc",
                              caps && gst_structure_get_uint (gst_caps_get_structure (caps, 0), "ssrc", &ssrc)
                              ? (gint64) ssrc : -1);
  if (caps)
    gst_caps_unref (caps);
  json_object_set_int_member (o, "ms", (g_get_monotonic_time () - start_us) / 1000);
  emit (o);
}

/* ---- receiving ---- */

static GstPadProbeReturn
count_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  if (GPOINTER_TO_INT (user_data) == 0)
    {
      if (g_atomic_int_add (&video_frames, 1) == 0)
        first_frame_us = g_get_monotonic_time ();
    }
  else
    g_atomic_int_inc (&audio_buffers);
  return GST_PAD_PROBE_OK;
}

static gboolean
set_recv_video (gpointer data)
{
  gst_clear_object (&recv_video);
  recv_video = data;
  return G_SOURCE_REMOVE;
}

static void
on_pad_added (GstElement *w, GstPad *pad, gpointer user_data)
{
  GstCaps *caps;
  const char *media;
  GstElement *bin;
  GstPad *sink, *fsink;
  g_autoptr (GError) e = NULL;
  gboolean video;
  const char *desc;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  caps = gst_pad_get_current_caps (pad);
  media = gst_structure_get_string (gst_caps_get_structure (caps, 0), "media");
  video = g_strcmp0 (media, "video") == 0;
  gst_caps_unref (caps);
  if (video)
    desc = decode ? "queue ! rtpvp8depay ! vp8dec ! fakesink name=fs sync=false async=false"
                  : "queue ! rtpvp8depay ! fakesink name=fs sync=false async=false";
  else
    desc = decode ? "queue ! rtpopusdepay ! opusdec ! fakesink name=fs sync=false async=false"
                  : "queue ! rtpopusdepay ! fakesink name=fs sync=false async=false";
  bin = gst_parse_bin_from_description (desc, TRUE, &e);
  gst_bin_add (GST_BIN (pipe_), bin);
  fsink = gst_element_get_static_pad (gst_bin_get_by_name (GST_BIN (bin), "fs"), "sink");
  gst_pad_add_probe (fsink, GST_PAD_PROBE_TYPE_BUFFER, count_probe, GINT_TO_POINTER (video ? 0 : 1), NULL);
  gst_object_unref (fsink);
  gst_element_sync_state_with_parent (bin);
  sink = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sink);
  gst_object_unref (sink);
  /* pad-added runs on a streaming thread; the pad is used from the main loop */
  if (video)
    g_main_context_invoke (NULL, set_recv_video, gst_object_ref (pad));
}

/* ---- signaling ---- */

static void
on_offer_created (GstPromise *promise, gpointer user_data)
{
  const GstStructure *reply = gst_promise_get_reply (promise);
  GstWebRTCSessionDescription *offer = NULL;
  g_autoptr (JsonObject) o = json_object_new ();
  g_autofree char *text = NULL;

  gst_structure_get (reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
  gst_promise_unref (promise);
  if (offer == NULL)
    {
      fprintf (stderr, "rtc-peer: no offer\n");
      g_main_loop_quit (loop);
      return;
    }
  g_signal_emit_by_name (webrtc, "set-local-description", offer, NULL);
  text = gst_sdp_message_as_text (offer->sdp);
  json_object_set_string_member (o, "type", "offer");
  json_object_set_string_member (o, "sdp", text);
  emit (o);
  gst_webrtc_session_description_free (offer);
}

static void
on_negotiation_needed (GstElement *w, gpointer user_data)
{
  static gboolean done;
  if (done)
    return;
  done = TRUE;
  g_signal_emit_by_name (webrtc, "create-offer", NULL,
                         gst_promise_new_with_change_func (on_offer_created, NULL, NULL));
}

static void
on_ice_candidate (GstElement *w, guint mline, const char *cand, gpointer user_data)
{
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_string_member (o, "type", "ice");
  json_object_set_string_member (o, "candidate", cand);
  json_object_set_int_member (o, "sdpMLineIndex", mline);
  emit (o);
}

static void
emit_stats (void)
{
  g_autoptr (JsonObject) o = json_object_new ();
  json_object_set_string_member (o, "type", "stats");
  json_object_set_int_member (o, "video_frames", g_atomic_int_get (&video_frames));
  json_object_set_int_member (o, "audio_buffers", g_atomic_int_get (&audio_buffers));
  json_object_set_int_member (o, "video_sent", g_atomic_int_get (&video_sent));
  json_object_set_int_member (o, "first_frame_ms", first_frame_us ? (first_frame_us - start_us) / 1000 : -1);
  emit (o);
}

static gboolean
on_stats_tick (gpointer data)
{
  emit_stats ();
  return G_SOURCE_CONTINUE;
}

static void
handle_line (const char *line)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  JsonObject *o;
  const char *type;

  if (!json_parser_load_from_data (p, line, -1, NULL) || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    return;
  o = json_node_get_object (json_parser_get_root (p));
  type = json_object_get_string_member_with_default (o, "type", "");
  if (strcmp (type, "answer") == 0)
    {
      GstSDPMessage *sdp;
      GstWebRTCSessionDescription *answer;
      if (gst_sdp_message_new_from_text (json_object_get_string_member (o, "sdp"), &sdp) != GST_SDP_OK)
        return;
      answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
      g_signal_emit_by_name (webrtc, "set-remote-description", answer, NULL);
      gst_webrtc_session_description_free (answer);
    }
  else if (strcmp (type, "ice") == 0)
    {
      const char *c = json_object_get_string_member_with_default (o, "candidate", "");
      if (*c)
        g_signal_emit_by_name (webrtc, "add-ice-candidate",
                               (guint) json_object_get_int_member (o, "sdpMLineIndex"), c);
    }
  else if (strcmp (type, "request-keyframe") == 0)
    request_keyframe ();
  else if (strcmp (type, "pause") == 0)
    {
      const char *kind = json_object_get_string_member_with_default (o, "kind", "");
      gint64 ms = json_object_get_int_member_with_default (o, "ms", 0);
      Feeder *f = strcmp (kind, "video") == 0 ? &feeders[0] : strcmp (kind, "audio") == 0 ? &feeders[1] : NULL;
      if (f != NULL && ms > 0 && ms <= 600000)
        g_atomic_int_set (&f->pause_ms, (gint) ms);
    }
  else if (strcmp (type, "bye") == 0)
    g_main_loop_quit (loop);
}

static GString *inbuf;

static gboolean
on_stdin (gint fd, GIOCondition cond, gpointer data)
{
  char chunk[65536];
  ssize_t n = read (fd, chunk, sizeof chunk);
  char *nl;
  if (n <= 0)
    {
      g_main_loop_quit (loop);
      return G_SOURCE_REMOVE;
    }
  g_string_append_len (inbuf, chunk, n);
  while ((nl = memchr (inbuf->str, '\n', inbuf->len)) != NULL)
    {
      *nl = '\0';
      handle_line (inbuf->str);
      g_string_erase (inbuf, 0, nl - inbuf->str + 1);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_signal (gpointer data)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static int
run_peer (const char *media, gboolean loopback)
{
  Track video = { 0 }, audio = { 0 };
  g_autoptr (GError) e = NULL;
  const char *desc_no_video =
    "webrtcbin name=w bundle-policy=max-bundle "
    "appsrc name=asrc is-live=true format=time block=true max-bytes=256 ! clocksync ! "
    "rtpopuspay name=apay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w.";
  const char *desc =
    "webrtcbin name=w bundle-policy=max-bundle "
    "appsrc name=vsrc is-live=true format=time block=true max-bytes=1024 ! clocksync ! "
    "rtpvp8pay name=vpay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96 ! w. "
    "appsrc name=asrc is-live=true format=time block=true max-bytes=256 ! clocksync ! "
    "rtpopuspay name=apay pt=111 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111 ! w.";
  GstPad *pad;
  GstElement *pay;

  if (!load_media (media, &video, &audio))
    {
      fprintf (stderr, "rtc-peer: cannot load VP8 + Opus from %s\n", media);
      return 1;
    }
  pipe_ = gst_parse_launch (no_video ? desc_no_video : desc, &e);
  if (pipe_ == NULL)
    {
      fprintf (stderr, "rtc-peer: %s\n", e->message);
      return 1;
    }
  webrtc = gst_bin_get_by_name (GST_BIN (pipe_), "w");
  feeders[1].track = &audio;
  feeders[1].src = gst_bin_get_by_name (GST_BIN (pipe_), "asrc");
  g_object_set (feeders[1].src, "caps", audio.caps, NULL);
  if (no_video)
    {
      /* Receive video without sending any: a recvonly m-line. */
      GstWebRTCRTPTransceiver *trans = NULL;
      GstCaps *vcaps = gst_caps_from_string ("application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000");
      g_signal_emit_by_name (webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, vcaps, &trans);
      gst_caps_unref (vcaps);
      if (trans)
        gst_object_unref (trans);
    }
  else
    {
      feeders[0].track = &video;
      feeders[0].src = gst_bin_get_by_name (GST_BIN (pipe_), "vsrc");
      g_object_set (feeders[0].src, "caps", video.caps, NULL);
      pay = gst_bin_get_by_name (GST_BIN (pipe_), "vpay");
      pad = gst_element_get_static_pad (pay, "sink");
      gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM | GST_PAD_PROBE_TYPE_BUFFER, fku_probe, &feeders[0], NULL);
      gst_object_unref (pad);
      pays[0] = pay;
    }
  pays[1] = gst_bin_get_by_name (GST_BIN (pipe_), "apay");
  pad = gst_element_get_static_pad (pays[1], "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, audio_fku_probe, NULL, NULL);
  gst_object_unref (pad);
  if (loopback)
    {
      GObject *agent = NULL;
      gboolean ok = FALSE;
      g_object_get (webrtc, "ice-agent", &agent, NULL);
      g_signal_emit_by_name (agent, "add-local-ip-address", "127.0.0.1", &ok);
      g_object_unref (agent);
    }
  g_signal_connect (webrtc, "on-negotiation-needed", G_CALLBACK (on_negotiation_needed), NULL);
  g_signal_connect (webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate), NULL);
  g_signal_connect (webrtc, "pad-added", G_CALLBACK (on_pad_added), NULL);
  start_us = g_get_monotonic_time ();
  gst_element_set_state (pipe_, GST_STATE_PLAYING);
  for (int i = 0; i < 2; i++)
    if (feeders[i].src)
      feeders[i].thread = g_thread_new ("feed", feed_thread, &feeders[i]);
  inbuf = g_string_new (NULL);
  g_unix_fd_add (0, G_IO_IN | G_IO_HUP, on_stdin, NULL);
  g_unix_signal_add (SIGTERM, on_signal, NULL);
  g_unix_signal_add (SIGINT, on_signal, NULL);
  g_timeout_add (1000, on_stats_tick, NULL);
  g_main_loop_run (loop);
  emit_stats ();
  g_atomic_int_set (&stop_flag, 1);
  /* Unblock the feeders, then stop. webrtcbin 1.22 may hang closing (fact 12): exit anyway. */
  for (int i = 0; i < 2; i++)
    if (feeders[i].src)
      gst_app_src_end_of_stream (GST_APP_SRC (feeders[i].src));
  fflush (stdout);
  _exit (0);
}

/* ---- recording check ---- */

typedef struct {
  GstElement *pipe;
  GArray *vcount, *acount;  /* gint per track, index = order of appearance */
} Check;

static gint64 check_end_ns;   /* latest buffer end seen, any track */
static GMutex check_lock;

static GstPadProbeReturn
check_count (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER (info);
  g_atomic_int_inc ((gint *) user_data);
  if (GST_BUFFER_PTS_IS_VALID (b))
    {
      gint64 end = (gint64) (GST_BUFFER_PTS (b) + (GST_BUFFER_DURATION_IS_VALID (b) ? GST_BUFFER_DURATION (b) : 0));
      g_mutex_lock (&check_lock);
      check_end_ns = MAX (check_end_ns, end);
      g_mutex_unlock (&check_lock);
    }
  return GST_PAD_PROBE_OK;
}

static void
check_pad_added (GstElement *demux, GstPad *pad, gpointer user_data)
{
  Check *c = user_data;
  gboolean video = g_str_has_prefix (GST_PAD_NAME (pad), "video");
  g_autoptr (GError) e = NULL;
  GstElement *bin = gst_parse_bin_from_description (
    video ? "queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! vp8dec ! fakesink name=fs sync=false"
          : "queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! opusdec ! fakesink name=fs sync=false",
    TRUE, &e);
  gint *counter = g_new0 (gint, 1);
  GstElement *fs = gst_bin_get_by_name (GST_BIN (bin), "fs");
  GstPad *fpad = gst_element_get_static_pad (fs, "sink"), *sink;

  g_array_append_val (video ? c->vcount : c->acount, counter);
  gst_pad_add_probe (fpad, GST_PAD_PROBE_TYPE_BUFFER, check_count, counter, NULL);
  gst_object_unref (fpad);
  gst_object_unref (fs);
  gst_bin_add (GST_BIN (c->pipe), bin);
  gst_element_sync_state_with_parent (bin);
  sink = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sink);
  gst_object_unref (sink);
}

static int
check_recording (const char *path)
{
  Check c = { 0 };
  GstElement *src = gst_element_factory_make ("filesrc", NULL), *demux = gst_element_factory_make ("matroskademux", NULL);
  GstBus *bus;
  GstMessage *m;
  gboolean eos = FALSE;
  g_autoptr (JsonObject) o = json_object_new ();
  JsonArray *va = json_array_new (), *aa = json_array_new ();
  gboolean all_decoded = TRUE;
  g_autoptr (JsonNode) n = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) g = json_generator_new ();
  g_autofree char *t = NULL;

  c.pipe = gst_pipeline_new (NULL);
  c.vcount = g_array_new (FALSE, FALSE, sizeof (gint *));
  c.acount = g_array_new (FALSE, FALSE, sizeof (gint *));
  g_object_set (src, "location", path, NULL);
  gst_bin_add_many (GST_BIN (c.pipe), src, demux, NULL);
  gst_element_link (src, demux);
  g_signal_connect (demux, "pad-added", G_CALLBACK (check_pad_added), &c);
  gst_element_set_state (c.pipe, GST_STATE_PLAYING);
  bus = gst_element_get_bus (c.pipe);
  m = gst_bus_timed_pop_filtered (bus, 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (m && GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS)
    eos = TRUE;
  else if (m)
    {
      g_autoptr (GError) err = NULL;
      gst_message_parse_error (m, &err, NULL);
      fprintf (stderr, "rtc-peer: %s: %s\n", path, err->message);
    }
  if (m)
    gst_message_unref (m);
  gst_object_unref (bus);
  gst_element_set_state (c.pipe, GST_STATE_NULL);
  for (guint i = 0; i < c.vcount->len; i++)
    {
      gint v = *g_array_index (c.vcount, gint *, i);
      json_array_add_int_element (va, v);
      all_decoded &= v > 0;
    }
  for (guint i = 0; i < c.acount->len; i++)
    {
      gint v = *g_array_index (c.acount, gint *, i);
      json_array_add_int_element (aa, v);
      all_decoded &= v > 0;
    }
  json_object_set_int_member (o, "video_tracks", c.vcount->len);
  json_object_set_int_member (o, "audio_tracks", c.acount->len);
  json_object_set_array_member (o, "video_frames", va);
  json_object_set_array_member (o, "audio_buffers", aa);
  json_object_set_boolean_member (o, "eos", eos);
  json_object_set_int_member (o, "duration_ms", check_end_ns / 1000000);
  json_node_set_object (n, o);
  json_generator_set_root (g, n);
  t = json_generator_to_data (g, NULL);
  printf ("%s\n", t);
  return eos && all_decoded ? 0 : 1;
}

static int
check_png (const char *path)
{
  g_autofree char *desc = g_strdup_printf ("filesrc location=\"%s\" ! pngdec ! appsink name=s sync=false", path);
  g_autoptr (GError) e = NULL;
  GstElement *p = gst_parse_launch (desc, &e);
  GstElement *s;
  GstSample *sample;
  int rc = 1;

  if (p == NULL)
    return 1;
  s = gst_bin_get_by_name (GST_BIN (p), "s");
  gst_element_set_state (p, GST_STATE_PLAYING);
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (s), 10 * GST_SECOND);
  if (sample)
    {
      GstVideoInfo vi;
      if (gst_video_info_from_caps (&vi, gst_sample_get_caps (sample)))
        {
          printf ("{\"width\":%d,\"height\":%d}\n", vi.width, vi.height);
          rc = vi.width > 0 && vi.height > 0 ? 0 : 1;
        }
      gst_sample_unref (sample);
    }
  gst_element_set_state (p, GST_STATE_NULL);
  return rc;
}

int
main (int argc, char **argv)
{
  g_autofree char *media = NULL, *rec = NULL, *png = NULL;
  gboolean loopback = FALSE, no_decode = FALSE;
  GOptionEntry entries[] = {
    { "media", 0, 0, G_OPTION_ARG_FILENAME, &media, "pre-encoded VP8 + Opus WebM to send", "FILE" },
    { "loopback", 0, 0, G_OPTION_ARG_NONE, &loopback, "ICE on 127.0.0.1", NULL },
    { "no-decode", 0, 0, G_OPTION_ARG_NONE, &no_decode, "count received frames without decoding", NULL },
    { "no-video", 0, 0, G_OPTION_ARG_NONE, &no_video, "send no video (receive it: recvonly)", NULL },
    { "report-keyframe-requests", 0, 0, G_OPTION_ARG_NONE, &report_fku,
      "print every keyframe request that reaches this peer's senders", NULL },
    { "check-recording", 0, 0, G_OPTION_ARG_FILENAME, &rec, "decode every track of a recording", "FILE" },
    { "check-png", 0, 0, G_OPTION_ARG_FILENAME, &png, "decode a PNG", "FILE" },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("— Testigo recorder test peer");
  g_autoptr (GError) e = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &e))
    {
      fprintf (stderr, "rtc-peer: %s\n", e->message);
      return 2;
    }
  gst_init (NULL, NULL);
  if (rec)
    return check_recording (rec);
  if (png)
    return check_png (png);
  if (media == NULL)
    {
      fprintf (stderr, "rtc-peer: --media, --check-recording or --check-png\n");
      return 2;
    }
  decode = !no_decode;
  loop = g_main_loop_new (NULL, FALSE);
  return run_peer (media, loopback);
}

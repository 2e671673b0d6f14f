/* rec-session.c — one session's pipeline: a webrtcbin per participant, relay
 * without transcoding (depay → tee → re-pay with the receiving peer's payload
 * type), every received track recorded into its own Matroska file per part
 * (one timeline per part) written by rec-file.c, keyframe requests, stills,
 * and the control protocol.
 *
 * Facts this code relies on are numbered as in
 * shared/design/recording.md ("fact N"). */
#include "config.h"
#include "recorder-private.h"
#include "tg-common.h"
#include "tg-schema.h"

#include <gst/app/app.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#define GST_USE_UNSTABLE_API
#include <gst/webrtc/webrtc.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

typedef enum { PARTY_SIGNATORY, PARTY_OFFICER, N_PARTIES } Party;
typedef enum { KIND_VIDEO, KIND_AUDIO, N_KINDS } Kind;

static const char *const party_names[N_PARTIES] = { "signatory", "officer" };
static const char *const kind_names[N_KINDS] = { "video", "audio" };

#define SDP_MAX_LEN (60 * 1024)
#define CANDIDATE_MAX_LEN 4096
#define FKU_MIN_INTERVAL_US (300 * 1000)   /* fact 18: rate-limit keyframe requests */
#define EOS_TIMEOUT_US (3 * G_USEC_PER_SEC)
#define STILL_TIMEOUT_US (6 * G_USEC_PER_SEC)
#define TRACK_FPS_WINDOW (2500 * GST_MSECOND)
#define TRACK_FPS_SETTLE (500 * GST_MSECOND)
#define RECORD_BATCH_MS 200                /* rec-batch.c: the writer wakes 5 times a second */
#define RECORD_WRITE_MAX (1024 * 1024)     /* bytes held before a write(2) within a batch */

typedef struct _Peer Peer;
typedef struct _Part Part;

typedef struct {
  Peer *peer;
  Kind kind;
  GstElement *depay, *parse, *tee;
  gint64 last_fku_us;  /* guarded by fku_lock */
  gint flowing;        /* atomic: a buffer went through */
  GMutex fku_lock;
} InTrack;

typedef struct {
  Peer *peer;
  Kind kind;
  int pt;
  GstElement *insul, *pay, *capsf;
  GstPad *tee_pad;     /* request pad on the other peer's tee, while linked */
  GstElement *tee;     /* that tee (ref) */
} OutTrack;

struct _Peer {
  RecSession *s;
  Party party;
  GstElement *webrtc;
  gboolean offered[N_KINDS];
  InTrack *in[N_KINDS];
  OutTrack *out[N_KINDS];
  gint64 joined_us;
  gint connected;    /* atomic: ICE and DTLS up, the relay may send */
};

typedef struct {
  Part *part;
  Party party;
  Kind kind;
  GstElement *insul, *queue, *mux, *sink;
  GstPad *qsrc;      /* the queue's source pad (ref): the part's time offset */
  char *file;        /* recording-<part>-<party>-<kind>.mkv */
  RecPartFile *out;
  GByteArray *pending; /* muxed bytes of the batch being pushed; the writer's thread only */
  GstPad *tee_pad;   /* on the peer's in-track tee, while linked */
  GstElement *tee;   /* ref */
  gint seen_key;     /* atomic */
  gint disk_full;    /* atomic: writing stopped */
  gboolean eos;      /* at the writer; guarded by part->lock */
  gboolean zeroed;   /* the queue's pad offset is set; streaming thread only */
  gint closed;       /* atomic */
  gint logged;       /* atomic: track event written */
  gint64 since_us;   /* the party's join, or the part's start if later */
  /* guarded by part->lock */
  guint64 frames;
  GstClockTime first_rt, last_rt;
  GstClockTime deltas[64];   /* frame intervals after the settle time, for the frame rate */
  guint n_deltas;
  int width, height, rate, channels;
} RecTrack;

/* A part: one file per track, all on one timeline whose zero is t0. */
struct _Part {
  RecSession *s;
  guint index;
  RecTrack *tracks[N_PARTIES][N_KINDS];
  GMutex lock;
  GCond cond;        /* a track's EOS reached its writer */
  GstClockTime t0;   /* running time of the part's first recorded buffer, guarded by lock */
  gint64 started_us;
};

typedef struct {
  char *name;
  char *kind;
  gint64 deadline_us;
  gint taken; /* atomic */
} Still;

struct _RecSession {
  char *sid;
  char *dir;
  char *stun, *turn;
  gboolean loopback;
  gint64 segment_us, keyframe_us;
  guint jitter_ms;          /* 0: rec-forward.c in place of rtpbin's jitter buffer */
  gboolean receive_queue;   /* keep webrtcbin's receive queue (no rec-receive.c) */
  gboolean send_encoders;   /* keep webrtcbin's clocksync and FEC/RED encoders (no rec-send.c) */
  gboolean rtp_elements;    /* keep the idle RTX/RED/FEC elements, demuxer, DTLS clocksync (no rec-shortcut.c) */
  RecEmitFunc emit;
  gpointer emit_data;
  GMutex emit_lock;
  GRecMutex lock;           /* peers, part, links */
  GstElement *pipeline;
  guint bus_watch;
  RecLog *log;
  Peer *peers[N_PARTIES];
  Part *part;
  JsonArray *done_parts;
  guint next_part;
  guint timer;
  gint64 last_periodic_fku;
  GMutex still_lock;
  Still *still;             /* guarded by still_lock */
  gboolean stopping, stopped;
};

/* ------------------------------------------------------------------ output */

static void
emit_obj (RecSession *s, JsonObject *obj)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *text = NULL;

  json_node_set_object (node, obj);
  json_generator_set_root (gen, node);
  text = json_generator_to_data (gen, NULL);
  g_mutex_lock (&s->emit_lock);
  s->emit (text, s->emit_data);
  g_mutex_unlock (&s->emit_lock);
}

static JsonObject *
msg_new (const char *type)
{
  JsonObject *o = json_object_new ();
  json_object_set_string_member (o, "type", type);
  return o;
}

static void
emit_error (RecSession *s, const char *code, const char *request, const char *peer,
            const char *fmt, ...) G_GNUC_PRINTF (5, 6);

static void
emit_error (RecSession *s, const char *code, const char *request, const char *peer, const char *fmt, ...)
{
  g_autoptr (JsonObject) o = msg_new ("error");
  g_autofree char *msg = NULL;
  va_list ap;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  json_object_set_string_member (o, "code", code);
  if (request)
    json_object_set_string_member (o, "request", request);
  if (peer)
    json_object_set_string_member (o, "peer", peer);
  json_object_set_string_member (o, "message", msg);
  REC_WARN (s->sid, "error (%s): %s", code, msg);
  emit_obj (s, o);
}

static const char *
error_code (const GError *e)
{
  if (e->domain == TG_ERROR && e->code == TG_ERROR_NOSPACE)
    return "disk-full";
  if (e->domain == REC_ERROR)
    switch ((RecError) e->code)
      {
      case REC_ERROR_INVALID: return "invalid";
      case REC_ERROR_STATE: return "state";
      case REC_ERROR_PIPELINE: return "pipeline";
      case REC_ERROR_TIMEOUT: return "timeout";
      case REC_ERROR_NOSPACE: return "disk-full";
      default: break;
      }
  if (e->domain == TG_ERROR && e->code == TG_ERROR_INVALID)
    return "invalid";
  if (e->domain == TG_ERROR && e->code == TG_ERROR_TOO_BIG)
    return "too-big";
  if (e->domain == TG_ERROR)
    return "io";
  return "failed";
}

static guint64
running_time_now (RecSession *s)
{
  GstClock *clock = gst_element_get_clock (s->pipeline);
  guint64 rt = 0;
  if (clock != NULL)
    {
      GstClockTime now = gst_clock_get_time (clock), base = gst_element_get_base_time (s->pipeline);
      rt = now > base ? now - base : 0;
      gst_object_unref (clock);
    }
  return rt;
}

static void
log_event (RecSession *s, JsonObject *ev)
{
  g_autoptr (GError) e = NULL;
  if (!rec_log_append (s->log, ev, &e))
    emit_error (s, error_code (e), NULL, NULL, "events.jsonl: %s", e->message);
}

typedef struct {
  RecSession *s;
  JsonObject *ev, *msg;
} Deferred;

static gboolean
deferred_cb (gpointer data)
{
  Deferred *d = data;
  if (d->ev)
    {
      log_event (d->s, d->ev);
      json_object_unref (d->ev);
    }
  if (d->msg)
    {
      emit_obj (d->s, d->msg);
      json_object_unref (d->msg);
    }
  g_free (d);
  return G_SOURCE_REMOVE;
}

/* Events noticed on a streaming thread are written from the main thread: an
 * fsync of events.jsonl must not stall the media (the relay shares the
 * thread). Runs at once when called from the main thread. "time" is taken
 * now; rec_session_stop() drains what is pending. */
static void
log_and_emit_later (RecSession *s, JsonObject *ev, JsonObject *msg)
{
  Deferred *d = g_new0 (Deferred, 1);
  d->s = s;
  if (ev)
    {
      if (!json_object_has_member (ev, "time"))
        {
          g_autofree char *now = rec_time_now ();
          json_object_set_string_member (ev, "time", now);
        }
      d->ev = json_object_ref (ev);
    }
  if (msg)
    d->msg = json_object_ref (msg);
  g_main_context_invoke (NULL, deferred_cb, d);
}

/* ---------------------------------------------------------- pad helpers */

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean done;
} Detach;

static GstPadProbeReturn
detach_idle_cb (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Detach *d = user_data;
  GstPad *peer = gst_pad_get_peer (pad);
  if (peer != NULL)
    {
      gst_pad_unlink (pad, peer);
      gst_object_unref (peer);
    }
  g_mutex_lock (&d->lock);
  d->done = TRUE;
  g_cond_signal (&d->cond);
  g_mutex_unlock (&d->lock);
  return GST_PAD_PROBE_REMOVE;
}

/* Drops at the tee, before the branch, once the branch is closed: a push
 * into a branch being torn down (flushing) would return FLUSHING to the tee,
 * which passes it upstream and stops the sender's stream for every branch. */
static GstPadProbeReturn
tee_pad_closed_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  return g_atomic_int_get ((gint *) user_data) ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

static GstPad *
request_tee_pad (GstElement *tee)
{
  GstPad *pad = gst_element_request_pad_simple (tee, "src_%u");
  gint *closed = g_new0 (gint, 1);
  g_object_set_data_full (G_OBJECT (pad), "rec-closed", closed, g_free);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, tee_pad_closed_probe,
                     closed, NULL);
  return pad;
}

/* Closes a tee's request pad, unlinks it once it is idle, then releases it. */
static void
detach_tee_pad (RecSession *s, GstElement *tee, GstPad **tee_pad)
{
  Detach d = { 0 };
  gint64 deadline = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;
  GstPad *pad = *tee_pad;
  gint *closed;

  if (pad == NULL)
    return;
  *tee_pad = NULL;
  closed = g_object_get_data (G_OBJECT (pad), "rec-closed");
  if (closed)
    g_atomic_int_set (closed, 1);
  g_mutex_init (&d.lock);
  g_cond_init (&d.cond);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_IDLE, detach_idle_cb, &d, NULL);
  g_mutex_lock (&d.lock);
  while (!d.done)
    if (!g_cond_wait_until (&d.cond, &d.lock, deadline))
      break;
  g_mutex_unlock (&d.lock);
  if (!d.done)
    {
      /* Still busy after 2 s: unlink anyway; later pushes are dropped at the tee. */
      REC_WARN (s->sid, "%s:%s not idle after 2 s, unlinking anyway", GST_DEBUG_PAD_NAME (pad));
      GstPad *peer = gst_pad_get_peer (pad);
      if (peer)
        {
          gst_pad_unlink (pad, peer);
          gst_object_unref (peer);
        }
    }
  gst_element_release_request_pad (tee, pad);
  gst_object_unref (pad);
  g_mutex_clear (&d.lock);
  g_cond_clear (&d.cond);
}

static void
remove_elements (GstElement *pipeline, GstElement **elements, guint n)
{
  for (guint i = 0; i < n; i++)
    if (elements[i] != NULL)
      {
        gst_element_set_locked_state (elements[i], TRUE);
        gst_element_set_state (elements[i], GST_STATE_NULL);
        gst_bin_remove (GST_BIN (pipeline), elements[i]);
        elements[i] = NULL;
      }
}

static GstElement *
make (const char *factory, GError **error)
{
  GstElement *e = gst_element_factory_make (factory, NULL);
  if (e == NULL)
    g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE, "GStreamer element %s is missing", factory);
  return e;
}

static GstElement *
request_forwarder (GstElement *rtpbin, guint session, gpointer user_data)
{
  return rec_forward_new ();
}

/* What stands between a webrtcbin's RTP session and its src pads: by default
 * rec-forward.c (packets go on as they arrive, in the receiving thread);
 * with a jitter buffer configured, rtpbin's own with that latency. */
static gboolean
use_jitter_buffer (RecSession *s, GstElement *webrtc, GError **error)
{
  GstElement *rtpbin;

  if (s->jitter_ms > 0)
    {
      g_object_set (webrtc, "latency", s->jitter_ms, NULL);
      return TRUE;
    }
  /* webrtcbin 1.22 names its rtpbin "rtpbin" and exposes no other handle. */
  rtpbin = gst_bin_get_by_name (GST_BIN (webrtc), "rtpbin");
  if (rtpbin == NULL || g_signal_lookup ("request-jitterbuffer", G_OBJECT_TYPE (rtpbin)) == 0)
    {
      g_clear_object (&rtpbin);
      g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE,
                   "webrtcbin has no rtpbin with request-jitterbuffer (GStreamer 1.18 or later needed)");
      return FALSE;
    }
  g_signal_connect (rtpbin, "request-jitterbuffer", G_CALLBACK (request_forwarder), NULL);
  gst_object_unref (rtpbin);
  return TRUE;
}

/* ------------------------------------------------------------- keyframes */

/* Sends a keyframe request upstream from the in-track towards its sender
 * (fact 14); rate-limited in fku_probe. */
static void
request_keyframe (InTrack *in)
{
  GstPad *sink;
  if (in == NULL || in->kind != KIND_VIDEO || in->tee == NULL)
    return;
  sink = gst_element_get_static_pad (in->tee, "sink");
  gst_pad_push_event (sink, gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref (sink);
}

/* Fact 18: a keyframe request that comes up the relay carries the relay
 * payloader's SSRC, which the sender's RTP session ignores. Replace it by one
 * without an SSRC, at most one per FKU_MIN_INTERVAL_US. */
static GstPadProbeReturn
fku_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  InTrack *in = user_data;
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  gint64 now;
  gboolean pass;

  if (!gst_video_event_is_force_key_unit (ev))
    return GST_PAD_PROBE_OK;
  /* Before any media the sender's RTP session cannot act on it, and the
   * request would only use up the rate limit (and RTCP's early-feedback slot). */
  if (!g_atomic_int_get (&in->flowing))
    return GST_PAD_PROBE_DROP;
  now = g_get_monotonic_time ();
  g_mutex_lock (&in->fku_lock);
  pass = in->last_fku_us == 0 || now - in->last_fku_us >= FKU_MIN_INTERVAL_US;
  if (pass)
    in->last_fku_us = now;
  g_mutex_unlock (&in->fku_lock);
  if (!pass)
    return GST_PAD_PROBE_DROP;
  gst_event_unref (ev);
  GST_PAD_PROBE_INFO_DATA (info) = gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE, 0);
  return GST_PAD_PROBE_OK;
}

/* ---------------------------------------------------------------- parts */

static GstClockTime
buffer_running_time (GstPad *pad, GstBuffer *buf)
{
  GstEvent *sev = gst_pad_get_sticky_event (pad, GST_EVENT_SEGMENT, 0);
  GstClockTime rt = GST_CLOCK_TIME_NONE;
  if (sev != NULL)
    {
      const GstSegment *seg;
      gst_event_parse_segment (sev, &seg);
      if (seg->format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID (buf))
        rt = gst_segment_to_running_time (seg, GST_FORMAT_TIME, GST_BUFFER_PTS (buf));
      gst_event_unref (sev);
    }
  return rt;
}

/* VP8 key frame header (RFC 6386 9.1): 3-byte tag, start code 9d 01 2a,
 * 14-bit width and height. */
static gboolean
vp8_dimensions (GstBuffer *buf, int *w, int *h)
{
  guint8 hdr[10];
  if (gst_buffer_extract (buf, 0, hdr, sizeof hdr) != sizeof hdr || (hdr[0] & 1) != 0
      || hdr[3] != 0x9d || hdr[4] != 0x01 || hdr[5] != 0x2a)
    return FALSE;
  *w = (hdr[6] | hdr[7] << 8) & 0x3fff;
  *h = (hdr[8] | hdr[9] << 8) & 0x3fff;
  return *w > 0 && *h > 0;
}

/* Capture parameters of a track, as received (fills t->w/h or rate/channels). */
static void
probe_params (RecTrack *t, GstPad *pad, GstBuffer *buf)
{
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstStructure *st = caps ? gst_caps_get_structure (caps, 0) : NULL;

  if (t->kind == KIND_VIDEO)
    {
      if (!vp8_dimensions (buf, &t->width, &t->height) && st != NULL)
        {
          gst_structure_get_int (st, "width", &t->width);
          gst_structure_get_int (st, "height", &t->height);
        }
    }
  else
    {
      guint8 toc;
      t->rate = 48000;
      t->channels = 0;
      if (st != NULL)
        {
          gst_structure_get_int (st, "rate", &t->rate);
          gst_structure_get_int (st, "channels", &t->channels);
        }
      if (t->channels <= 0 && gst_buffer_extract (buf, 0, &toc, 1) == 1)
        t->channels = (toc & 0x04) ? 2 : 1;   /* Opus TOC stereo flag (RFC 6716 3.1) */
    }
  if (caps)
    gst_caps_unref (caps);
}

/* The track event and message; once per track and part (t->logged). */
static void
log_track (RecTrack *t)
{
  RecSession *s = t->part->s;
  g_autoptr (JsonObject) ev = json_object_new ();
  g_autoptr (JsonObject) msg = msg_new ("track");
  double fps = 0;

  g_mutex_lock (&t->part->lock);
  /* The median frame interval: the burst the jitter buffer releases at the
   * start and the odd late frame do not move it. */
  if (t->n_deltas >= 3)
    {
      GstClockTime sorted[G_N_ELEMENTS (t->deltas)];
      memcpy (sorted, t->deltas, t->n_deltas * sizeof sorted[0]);
      for (guint i = 1; i < t->n_deltas; i++)
        for (guint j = i; j > 0 && sorted[j - 1] > sorted[j]; j--)
          {
            GstClockTime x = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = x;
          }
      if (sorted[t->n_deltas / 2] > 0)
        fps = (double) GST_SECOND / (double) sorted[t->n_deltas / 2];
    }
  g_mutex_unlock (&t->part->lock);
  fps = CLAMP (((gint64) (fps * 10 + 0.5)) / 10.0, 0, 240);

  json_object_set_string_member (ev, "type", "track");
  json_object_set_int_member (ev, "part", t->part->index);
  json_object_set_string_member (ev, "party", party_names[t->party]);
  json_object_set_string_member (ev, "kind", kind_names[t->kind]);
  json_object_set_string_member (ev, "file", t->file);
  json_object_set_string_member (msg, "peer", party_names[t->party]);
  json_object_set_string_member (msg, "file", t->file);
  json_object_set_int_member (msg, "part", t->part->index);
  json_object_set_string_member (msg, "kind", kind_names[t->kind]);
  if (t->kind == KIND_VIDEO)
    {
      JsonObject *objs[2] = { ev, msg };
      for (int i = 0; i < 2; i++)
        {
          json_object_set_string_member (objs[i], "codec", "vp8");
          json_object_set_int_member (objs[i], "width", CLAMP (t->width, 1, 16384));
          json_object_set_int_member (objs[i], "height", CLAMP (t->height, 1, 16384));
          if (fps > 0)
            json_object_set_double_member (objs[i], "framerate", fps);
        }
    }
  else
    {
      JsonObject *objs[2] = { ev, msg };
      for (int i = 0; i < 2; i++)
        {
          json_object_set_string_member (objs[i], "codec", "opus");
          json_object_set_int_member (objs[i], "sample_rate", CLAMP (t->rate, 8000, 192000));
          json_object_set_int_member (objs[i], "channels", CLAMP (t->channels, 1, 8));
        }
    }
  log_and_emit_later (s, ev, msg);
}

/* Gate before the muxer: nothing after close, no video before a keyframe. */
static GstPadProbeReturn
record_gate_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  RecTrack *t = user_data;
  Part *part = t->part;
  RecSession *s = part->s;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstClockTime rt;

  if (g_atomic_int_get (&t->closed))
    return GST_PAD_PROBE_DROP;
  if (t->kind == KIND_VIDEO && !g_atomic_int_get (&t->seen_key))
    {
      if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT))
        {
          /* Up through the tee: rate-limited by fku_probe. */
          gst_pad_push_event (pad, gst_video_event_new_upstream_force_key_unit (GST_CLOCK_TIME_NONE, TRUE, 0));
          return GST_PAD_PROBE_DROP;
        }
      g_atomic_int_set (&t->seen_key, 1);
      rt = buffer_running_time (pad, buf);
      {
        g_autoptr (JsonObject) ev = json_object_new ();
        g_autoptr (JsonObject) msg = msg_new ("first-keyframe");
        gint64 since = t->since_us;
        json_object_set_string_member (ev, "type", "keyframe");
        json_object_set_int_member (ev, "part", part->index);
        json_object_set_string_member (ev, "party", party_names[t->party]);
        json_object_set_int_member (ev, "running_time_ns",
                                    GST_CLOCK_TIME_IS_VALID (rt) ? (gint64) rt : (gint64) running_time_now (s));
        json_object_set_boolean_member (ev, "requested", TRUE);
        json_object_set_string_member (msg, "peer", party_names[t->party]);
        json_object_set_int_member (msg, "part", part->index);
        json_object_set_int_member (msg, "delay_ms", (g_get_monotonic_time () - since) / 1000);
        log_and_emit_later (s, ev, msg);
        REC_INFO (s->sid, "part %u: first %s keyframe after %" G_GINT64_FORMAT " ms", part->index,
                  party_names[t->party], (g_get_monotonic_time () - since) / 1000);
      }
    }
  rt = buffer_running_time (pad, buf);
  {
    gboolean log_now;
    GstClockTime t0;
    g_mutex_lock (&part->lock);
    if (GST_CLOCK_TIME_IS_VALID (rt) && !GST_CLOCK_TIME_IS_VALID (part->t0))
      part->t0 = rt;
    t0 = part->t0;
    if (t->frames == 0)
      {
        probe_params (t, pad, buf);
        t->first_rt = rt;
      }
    else if (GST_CLOCK_TIME_IS_VALID (rt) && GST_CLOCK_TIME_IS_VALID (t->last_rt) && rt > t->last_rt
             && rt >= t->first_rt + TRACK_FPS_SETTLE && t->n_deltas < G_N_ELEMENTS (t->deltas))
      t->deltas[t->n_deltas++] = rt - t->last_rt;
    t->frames++;
    if (GST_CLOCK_TIME_IS_VALID (rt))
      t->last_rt = rt;
    /* Audio at once; video once its frame rate can be measured (2 s). */
    log_now = t->kind == KIND_AUDIO
              || (GST_CLOCK_TIME_IS_VALID (t->first_rt) && GST_CLOCK_TIME_IS_VALID (rt)
                  && rt >= t->first_rt + TRACK_FPS_WINDOW);
    g_mutex_unlock (&part->lock);
    if (log_now && g_atomic_int_compare_and_exchange (&t->logged, 0, 1))
      log_track (t);
    /* One timeline for the part's files: zero is the part's first recorded
     * buffer (t0), whichever track it came in. The queue re-sends its segment
     * with the offset before this buffer; a buffer from before t0 (another
     * track's came in first) is put at zero, not clipped by the muxer. */
    if (GST_CLOCK_TIME_IS_VALID (t0))
      {
        if (!t->zeroed)
          {
            gst_pad_set_offset (t->qsrc, -(gint64) t0);
            t->zeroed = TRUE;
          }
        if (GST_CLOCK_TIME_IS_VALID (rt) && rt < t0)
          {
            buf = gst_buffer_make_writable (buf);
            GST_BUFFER_PTS (buf) += t0 - rt;
            GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
            GST_PAD_PROBE_INFO_DATA (info) = buf;
          }
      }
  }
  return GST_PAD_PROBE_OK;
}

static void
part_disk_full (RecTrack *t, const GError *e)
{
  RecSession *s = t->part->s;
  g_autoptr (JsonObject) msg = msg_new ("disk-full");

  if (!g_atomic_int_compare_and_exchange (&t->disk_full, 0, 1))
    return;
  json_object_set_int_member (msg, "part", t->part->index);
  json_object_set_string_member (msg, "file", t->file);
  json_object_set_int_member (msg, "bytes", (gint64) rec_part_file_size (t->out));
  json_object_set_string_member (msg, "message", e->message);
  REC_ERR (s->sid, "part %u: %s", t->part->index, e->message);
  emit_obj (s, msg);
}

/* Chains the durable bytes of @t's file (rec-file.c). */
static void
track_flush (RecTrack *t)
{
  RecSession *s = t->part->s;
  g_autoptr (GError) e = NULL;

  if (!rec_part_file_flush (t->out, running_time_now (s), &e))
    {
      if (g_error_matches (e, TG_ERROR, TG_ERROR_NOSPACE))
        part_disk_full (t, e);
      else
        emit_error (s, error_code (e), NULL, NULL, "%s", e->message);
    }
}

/* Writes what matroskamux put out for the batch (rec-batch.c) in one
 * write(2); the writer's thread. */
static void
track_write_pending (RecTrack *t)
{
  RecSession *s = t->part->s;
  g_autoptr (GError) e = NULL;

  if (t->pending->len > 0 && !g_atomic_int_get (&t->disk_full)
      && !rec_part_file_write (t->out, t->pending->data, t->pending->len, &e))
    {
      if (g_error_matches (e, TG_ERROR, TG_ERROR_NOSPACE))
        part_disk_full (t, e);
      else if (g_atomic_int_compare_and_exchange (&t->disk_full, 0, 1))  /* stop writing either way */
        emit_error (s, error_code (e), NULL, NULL, "%s", e->message);
    }
  g_byte_array_set_size (t->pending, 0);
  /* Chain durable bytes at least every segment interval. */
  if (rec_part_file_due (t->out, s->segment_us))
    track_flush (t);
}

static void
track_batch_drained (RecBatch *batch, gpointer user_data)
{
  track_write_pending (user_data);
}

static GstFlowReturn
sink_new_sample (GstAppSink *sink, gpointer user_data)
{
  RecTrack *t = user_data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buf;
  GstMapInfo map;

  if (sample == NULL)
    return GST_FLOW_OK;
  buf = gst_sample_get_buffer (sample);
  if (buf != NULL && gst_buffer_map (buf, &map, GST_MAP_READ))
    {
      g_byte_array_append (t->pending, map.data, map.size);
      gst_buffer_unmap (buf, &map);
    }
  gst_sample_unref (sample);
  /* A batch is at most half rec-batch's byte bound; still, write a large
   * one as it comes. Never stop the pipeline for the recording. */
  if (t->pending->len >= RECORD_WRITE_MAX)
    track_write_pending (t);
  return GST_FLOW_OK;
}

static void
sink_eos (GstAppSink *sink, gpointer user_data)
{
  RecTrack *t = user_data;
  track_write_pending (t);
  g_mutex_lock (&t->part->lock);
  t->eos = TRUE;
  g_cond_broadcast (&t->part->cond);
  g_mutex_unlock (&t->part->lock);
}

static void
link_record_track (RecSession *s, RecTrack *t)
{
  Peer *peer = s->peers[t->party];
  InTrack *in = peer ? peer->in[t->kind] : NULL;
  GstPad *sink;

  if (in == NULL || t->tee_pad != NULL || g_atomic_int_get (&t->closed))
    return;
  t->tee = gst_object_ref (in->tee);
  t->tee_pad = request_tee_pad (in->tee);
  sink = gst_element_get_static_pad (t->insul, "sink");
  if (gst_pad_link (t->tee_pad, sink) != GST_PAD_LINK_OK)
    REC_ERR (s->sid, "cannot link %s %s to the recording", party_names[t->party], kind_names[t->kind]);
  gst_object_unref (sink);
  request_keyframe (in);
}

static void record_track_free (RecSession *s, RecTrack *t);

/* Frees a track that never recorded (its branch could not be built or
 * started) and removes its file, created empty. */
static void
record_track_discard (RecSession *s, RecTrack *t)
{
  g_autofree char *path = g_build_filename (s->dir, t->file, NULL);
  record_track_free (s, t);
  g_unlink (path);
}

/* One recorded track: insulator → queue → matroskamux → appsink, writing
 * its own file. A muxer per track: matroskamux waits for data on every pad
 * before writing any (collect pads), so with one muxer the four recording
 * threads woke each other for every frame, and a track that stops (a phone's
 * camera paused in a background tab) held the others back until their
 * queues dropped media. */
static RecTrack *
record_track_new (RecSession *s, Part *part, Party party, Kind kind, GError **error)
{
  RecTrack *t = g_new0 (RecTrack, 1);
  GstAppSinkCallbacks cb = { 0 };
  GstPad *mux_pad, *qsrc, *qsink;
  gboolean linked;

  t->part = part;
  t->party = party;
  t->kind = kind;
  t->file = g_strdup_printf ("recording-%u-%s-%s.mkv", part->index, party_names[party], kind_names[kind]);
  t->out = rec_part_file_new (s->dir, t->file, s->log, error);
  if (t->out == NULL)
    goto fail;
  if (!(t->mux = make ("matroskamux", error)) || !(t->sink = make ("appsink", error)))
    goto fail;
  t->since_us = MAX (s->peers[party]->joined_us, part->started_us);
  t->pending = g_byte_array_new ();
  /* The writer's thread: a slow disk never holds up the relay; it wakes once
   * per batch. Bounded; the oldest is dropped if writing stalls for 10 s. */
  t->queue = rec_batch_new (RECORD_BATCH_MS, 32 * 1024 * 1024, 10 * 1000, track_batch_drained, t);
  /* Append-only output (no seeking back, fact 13); timestamps are the part's
   * (the gate's pad offset), not each file's own zero. */
  g_object_set (t->mux, "streamable", TRUE, NULL);
  g_object_set (t->sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, "max-buffers", 0, NULL);
  cb.new_sample = sink_new_sample;
  cb.eos = sink_eos;
  gst_app_sink_set_callbacks (GST_APP_SINK (t->sink), &cb, t, NULL);
  t->insul = rec_insulator_new (s->sid);
  gst_bin_add_many (GST_BIN (s->pipeline), t->insul, t->queue, t->mux, t->sink, NULL);
  mux_pad = gst_element_request_pad_simple (t->mux, kind == KIND_VIDEO ? "video_%u" : "audio_%u");
  t->qsrc = qsrc = gst_element_get_static_pad (t->queue, "src");
  linked = mux_pad != NULL && gst_element_link (t->insul, t->queue) && gst_pad_link (qsrc, mux_pad) == GST_PAD_LINK_OK
           && gst_element_link (t->mux, t->sink);
  if (mux_pad)
    gst_object_unref (mux_pad);
  if (!linked)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_FAILED, "cannot build the recording of the %s %s",
                   party_names[party], kind_names[kind]);
      record_track_discard (s, t);
      return NULL;
    }
  qsink = gst_element_get_static_pad (t->queue, "sink");
  gst_pad_add_probe (qsink, GST_PAD_PROBE_TYPE_BUFFER, record_gate_probe, t, NULL);
  gst_object_unref (qsink);
  return t;

fail:
  /* not in the pipeline yet: floating references */
  if (t->mux)
    gst_object_unref (gst_object_ref_sink (t->mux));
  if (t->sink)
    gst_object_unref (gst_object_ref_sink (t->sink));
  if (t->out != NULL)
    {
      g_autofree char *path = g_build_filename (s->dir, t->file, NULL);
      rec_part_file_free (t->out);
      g_unlink (path);  /* created empty above */
    }
  g_free (t->file);
  g_free (t);
  return NULL;
}

static void
record_track_start (RecSession *s, RecTrack *t)
{
  gst_element_sync_state_with_parent (t->sink);
  gst_element_sync_state_with_parent (t->mux);
  gst_element_sync_state_with_parent (t->queue);
  gst_element_sync_state_with_parent (t->insul);
  link_record_track (s, t);
}

/* Adds @party's offered tracks to @part. With @live, the new branches are
 * started and linked at once. FALSE (nothing added) on failure. */
static gboolean
part_add_party (RecSession *s, Part *part, Party party, gboolean live)
{
  Peer *peer = s->peers[party];
  RecTrack *added[N_KINDS] = { NULL, NULL };

  if (peer == NULL)
    return TRUE;
  for (int k = 0; k < N_KINDS; k++)
    {
      g_autoptr (GError) e = NULL;
      if (!peer->offered[k] || part->tracks[party][k] != NULL)
        continue;
      added[k] = record_track_new (s, part, party, (Kind) k, &e);
      if (added[k] == NULL)
        {
          REC_ERR (s->sid, "part %u: %s", part->index, e->message);
          for (int j = 0; j < N_KINDS; j++)
            if (added[j])
              record_track_discard (s, added[j]);
          return FALSE;
        }
    }
  for (int k = 0; k < N_KINDS; k++)
    if (added[k])
      {
        part->tracks[party][k] = added[k];
        if (live)
          record_track_start (s, added[k]);
      }
  return TRUE;
}

static gboolean
part_has_media (Part *part)
{
  gboolean media = FALSE;
  g_mutex_lock (&part->lock);
  for (int p = 0; p < N_PARTIES; p++)
    for (int k = 0; k < N_KINDS; k++)
      {
        RecTrack *t = part->tracks[p][k];
        if (t && (t->frames > 0 || rec_part_file_size (t->out) > 0))
          media = TRUE;
      }
  g_mutex_unlock (&part->lock);
  return media;
}

/* TRUE if a file of part @index exists in @dir (its tracks' or, from an
 * older recorder, the part's single recording-N.mkv). */
static gboolean
part_index_taken (const char *dir, guint index)
{
  g_autofree char *prefix = g_strdup_printf ("recording-%u-", index);
  g_autofree char *single = g_strdup_printf ("recording-%u.mkv", index);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    if (strcmp (name, single) == 0 || g_str_has_prefix (name, prefix))
      return TRUE;
  return FALSE;
}

static Part *
part_start (RecSession *s, GError **error)
{
  Part *part = g_new0 (Part, 1);
  g_autoptr (JsonObject) ev = json_object_new ();
  g_autoptr (JsonObject) msg = msg_new ("part-started");
  g_autofree char *now = NULL;
  guint64 rt;

  g_mutex_init (&part->lock);
  g_cond_init (&part->cond);
  part->s = s;
  part->t0 = GST_CLOCK_TIME_NONE;
  part->started_us = g_get_monotonic_time ();
  do
    part->index = s->next_part++;
  while (part->index <= 999 && part_index_taken (s->dir, part->index));
  if (part->index > 999)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_STATE, "too many parts");
      g_mutex_clear (&part->lock);
      g_cond_clear (&part->cond);
      g_free (part);
      return NULL;
    }

  /* Every track's branch now, before media flows (fact 2): the signatory's
   * offered tracks and the officer's, if the officer is in the call. */
  for (int p = 0; p < N_PARTIES; p++)
    if (!part_add_party (s, part, (Party) p, FALSE))
      REC_ERR (s->sid, "part %u: cannot record the %s", part->index, party_names[p]);
  for (int p = 0; p < N_PARTIES; p++)
    for (int k = 0; k < N_KINDS; k++)
      if (part->tracks[p][k])
        record_track_start (s, part->tracks[p][k]);

  /* The part's running-time ↔ UTC mapping (fact 15), read together. */
  rt = running_time_now (s);
  now = rec_time_now ();
  json_object_set_string_member (ev, "time", now);
  json_object_set_string_member (ev, "type", "part-start");
  json_object_set_int_member (ev, "part", part->index);
  json_object_set_int_member (ev, "running_time_ns", (gint64) rt);
  log_event (s, ev);
  json_object_set_int_member (msg, "part", part->index);
  json_object_set_int_member (msg, "running_time_ns", (gint64) rt);
  emit_obj (s, msg);
  REC_INFO (s->sid, "part %u started", part->index);
  return part;
}

/* EOS into one recorded track's branch (fact 4); the probe drops what follows. */
static void
record_track_close (RecTrack *t)
{
  GstPad *qsink;
  if (t == NULL || !g_atomic_int_compare_and_exchange (&t->closed, 0, 1))
    return;
  qsink = gst_element_get_static_pad (t->queue, "sink");
  gst_pad_send_event (qsink, gst_event_new_eos ());
  gst_object_unref (qsink);
}

/* Unlinks and removes @t's elements; its file stays open. */
static void
record_track_remove (RecSession *s, RecTrack *t)
{
  GstElement *el[4] = { t->insul, t->queue, t->mux, t->sink };
  record_track_close (t);
  if (t->tee)
    {
      detach_tee_pad (s, t->tee, &t->tee_pad);
      gst_clear_object (&t->tee);
    }
  remove_elements (s->pipeline, el, 4);
  t->insul = t->queue = t->mux = t->sink = NULL;
}

static void
record_track_free (RecSession *s, RecTrack *t)
{
  if (t == NULL)
    return;
  record_track_remove (s, t);
  gst_clear_object (&t->qsrc);
  rec_part_file_free (t->out);
  if (t->pending)
    g_byte_array_unref (t->pending);
  g_free (t->file);
  g_free (t);
}

/* Finalises a part: EOS into each branch, wait for it at the writers, chain
 * the last bytes, remove the elements and any empty file. Called without
 * s->lock held. */
static void
part_finish (RecSession *s, Part *part)
{
  gint64 deadline = g_get_monotonic_time () + EOS_TIMEOUT_US;
  gboolean all_eos = TRUE;

  for (int p = 0; p < N_PARTIES; p++)
    for (int k = 0; k < N_KINDS; k++)
      {
        RecTrack *t = part->tracks[p][k];
        gboolean recorded;
        record_track_close (t);
        if (t == NULL)
          continue;
        /* A part shorter than the frame-rate window still logs its tracks. */
        g_mutex_lock (&part->lock);
        recorded = t->frames > 0;
        g_mutex_unlock (&part->lock);
        if (recorded && g_atomic_int_compare_and_exchange (&t->logged, 0, 1))
          log_track (t);
      }
  for (int p = 0; p < N_PARTIES; p++)
    for (int k = 0; k < N_KINDS; k++)
      {
        RecTrack *t = part->tracks[p][k];
        g_autoptr (JsonObject) summary = NULL;
        gboolean eos;
        guint64 size;
        if (t == NULL)
          continue;
        g_mutex_lock (&part->lock);
        while (!t->eos)
          if (!g_cond_wait_until (&part->cond, &part->lock, deadline))
            break;
        eos = t->eos;
        g_mutex_unlock (&part->lock);
        if (!eos)
          {
            all_eos = FALSE;
            REC_WARN (s->sid, "part %u: no EOS at the writer of %s after %d s; closing anyway", part->index,
                      t->file, (int) (EOS_TIMEOUT_US / G_USEC_PER_SEC));
          }
        /* The elements go first: nothing writes while the last bytes are chained. */
        record_track_remove (s, t);
        track_flush (t);
        size = rec_part_file_size (t->out);
        if (size == 0)
          {
            /* Nothing was recorded (the track sent nothing): no empty file. */
            g_autofree char *path = g_build_filename (s->dir, t->file, NULL);
            g_unlink (path);
          }
        else
          {
            summary = json_object_new ();
            json_object_set_int_member (summary, "part", part->index);
            json_object_set_string_member (summary, "file", t->file);
            json_object_set_int_member (summary, "bytes", (gint64) size);
            json_object_set_boolean_member (summary, "complete", eos && !rec_part_file_failed (t->out));
            json_array_add_object_element (s->done_parts, json_object_ref (summary));
          }
        REC_INFO (s->sid, "part %u: %s finished: %" G_GUINT64_FORMAT " bytes%s", part->index, t->file, size,
                  eos ? "" : " (no EOS)");
        record_track_free (s, t);
        part->tracks[p][k] = NULL;
      }
  REC_INFO (s->sid, "part %u finished%s", part->index, all_eos ? "" : " (not every track reached EOS)");
  g_mutex_clear (&part->lock);
  g_cond_clear (&part->cond);
  g_free (part);
}

static void
end_current_part (RecSession *s)
{
  Part *part;
  g_rec_mutex_lock (&s->lock);
  part = g_steal_pointer (&s->part);
  g_rec_mutex_unlock (&s->lock);
  if (part)
    part_finish (s, part);
}

/* ---------------------------------------------------------------- peers */

static void
link_relay (RecSession *s, InTrack *in, OutTrack *out)
{
  GstPad *sink;
  if (in == NULL || out == NULL || out->tee_pad != NULL || in->tee == NULL)
    return;
  out->tee = gst_object_ref (in->tee);
  out->tee_pad = request_tee_pad (in->tee);
  sink = gst_element_get_static_pad (out->insul, "sink");
  if (gst_pad_link (out->tee_pad, sink) != GST_PAD_LINK_OK)
    REC_ERR (s->sid, "cannot relay %s %s to the %s", party_names[in->peer->party], kind_names[in->kind],
             party_names[out->peer->party]);
  else
    REC_INFO (s->sid, "relaying %s %s to the %s", party_names[in->peer->party], kind_names[in->kind],
              party_names[out->peer->party]);
  gst_object_unref (sink);
  request_keyframe (in);
}

static Peer *
other_peer (RecSession *s, Peer *peer)
{
  return s->peers[peer->party == PARTY_SIGNATORY ? PARTY_OFFICER : PARTY_SIGNATORY];
}

static void
on_ice_candidate (GstElement *webrtc, guint mline, const char *candidate, gpointer user_data)
{
  Peer *peer = user_data;
  g_autoptr (JsonObject) o = msg_new ("ice");
  json_object_set_string_member (o, "peer", party_names[peer->party]);
  json_object_set_string_member (o, "candidate", candidate);
  json_object_set_int_member (o, "sdpMLineIndex", mline);
  emit_obj (peer->s, o);
}

static GstPadProbeReturn
first_buffer_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  InTrack *in = user_data;
  g_atomic_int_set (&in->flowing, 1);
  return GST_PAD_PROBE_REMOVE;
}

static void
on_pad_added (GstElement *webrtc, GstPad *pad, gpointer user_data)
{
  Peer *peer = user_data;
  RecSession *s = peer->s;
  GstCaps *caps;
  const GstStructure *st;
  const char *media, *enc;
  InTrack *in;
  Kind kind;
  GstPad *qsink, *teesink;
  g_autoptr (GError) e = NULL;

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  caps = gst_pad_get_current_caps (pad);
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  st = gst_caps_get_structure (caps, 0);
  media = gst_structure_get_string (st, "media");
  enc = gst_structure_get_string (st, "encoding-name");
  if (g_strcmp0 (media, "video") == 0 && g_ascii_strcasecmp (enc ? enc : "", "VP8") == 0)
    kind = KIND_VIDEO;
  else if (g_strcmp0 (media, "audio") == 0 && g_ascii_strcasecmp (enc ? enc : "", "OPUS") == 0)
    kind = KIND_AUDIO;
  else
    {
      emit_error (s, "unsupported", NULL, party_names[peer->party], "received %s %s: not recorded",
                  media ? media : "?", enc ? enc : "?");
      gst_caps_unref (caps);
      return;
    }
  gst_caps_unref (caps);

  g_rec_mutex_lock (&s->lock);
  if (s->peers[peer->party] != peer || peer->in[kind] != NULL)
    {
      g_rec_mutex_unlock (&s->lock);
      return;
    }
  in = g_new0 (InTrack, 1);
  g_mutex_init (&in->fku_lock);
  in->peer = peer;
  in->kind = kind;
  if (kind == KIND_VIDEO)
    {
      in->depay = make ("rtpvp8depay", &e);
      if (in->depay)
        g_object_set (in->depay, "request-keyframe", TRUE, "wait-for-keyframe", TRUE, NULL);
    }
  else
    {
      in->depay = make ("rtpopusdepay", &e);
      in->parse = make ("opusparse", &e);
    }
  in->tee = gst_element_factory_make ("tee", NULL);
  if (in->depay == NULL || (kind == KIND_AUDIO && in->parse == NULL))
    {
      emit_error (s, "pipeline", NULL, party_names[peer->party], "%s", e->message);
      g_rec_mutex_unlock (&s->lock);
      return;
    }
  g_object_set (in->tee, "allow-not-linked", TRUE, NULL);
  /* No queue: webrtcbin's jitterbuffer already pushes from its own thread. */
  gst_bin_add_many (GST_BIN (s->pipeline), in->depay, in->tee, NULL);
  if (in->parse)
    {
      gst_bin_add (GST_BIN (s->pipeline), in->parse);
      gst_element_link_many (in->depay, in->parse, in->tee, NULL);
    }
  else
    gst_element_link_many (in->depay, in->tee, NULL);
  teesink = gst_element_get_static_pad (in->tee, "sink");
  gst_pad_add_probe (teesink, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, fku_probe, in, NULL);
  gst_pad_add_probe (teesink, GST_PAD_PROBE_TYPE_BUFFER, first_buffer_probe, in, NULL);
  gst_object_unref (teesink);
  peer->in[kind] = in;
  gst_element_sync_state_with_parent (in->tee);
  if (in->parse)
    gst_element_sync_state_with_parent (in->parse);
  gst_element_sync_state_with_parent (in->depay);
  qsink = gst_element_get_static_pad (in->depay, "sink");
  gst_pad_link (pad, qsink);
  gst_object_unref (qsink);
  REC_INFO (s->sid, "receiving %s %s", party_names[peer->party], kind_names[kind]);

  /* Link whatever already exists, in whatever order it appeared (fact 19). */
  if (other_peer (s, peer))
    link_relay (s, in, other_peer (s, peer)->out[kind]);
  if (s->part && s->part->tracks[peer->party][kind])
    link_record_track (s, s->part->tracks[peer->party][kind]);
  g_rec_mutex_unlock (&s->lock);
}

static void
peer_free (RecSession *s, Peer *peer)
{
  Peer *other = s->peers[peer->party == PARTY_SIGNATORY ? PARTY_OFFICER : PARTY_SIGNATORY];

  /* Relays into this peer, then out of it. */
  for (int k = 0; k < N_KINDS; k++)
    {
      OutTrack *out = peer->out[k];
      if (out && out->tee)
        {
          detach_tee_pad (s, out->tee, &out->tee_pad);
          gst_clear_object (&out->tee);
        }
      if (other && other->out[k] && other->out[k]->tee_pad && peer->in[k]
          && other->out[k]->tee == peer->in[k]->tee)
        {
          detach_tee_pad (s, other->out[k]->tee, &other->out[k]->tee_pad);
          gst_clear_object (&other->out[k]->tee);
        }
    }
  if (peer->webrtc)
    {
      gst_element_set_locked_state (peer->webrtc, TRUE);
      gst_element_set_state (peer->webrtc, GST_STATE_NULL);
      /* A pending promise may keep webrtcbin alive: no callback into freed state. */
      g_signal_handlers_disconnect_by_data (peer->webrtc, peer);
    }
  for (int k = 0; k < N_KINDS; k++)
    {
      InTrack *in = peer->in[k];
      OutTrack *out = peer->out[k];
      if (in)
        {
          GstElement *el[3] = { in->depay, in->parse, in->tee };
          remove_elements (s->pipeline, el, 3);
          g_mutex_clear (&in->fku_lock);
          g_free (in);
        }
      if (out)
        {
          GstElement *el[3] = { out->insul, out->pay, out->capsf };
          remove_elements (s->pipeline, el, 3);
          g_free (out);
        }
    }
  if (peer->webrtc)
    gst_bin_remove (GST_BIN (s->pipeline), peer->webrtc);
  g_free (peer);
}

/* Tears a peer's webrtcbin down. The signatory's part ends with it; the
 * officer's tracks end in the current part. Call without s->lock. */
static void
peer_leave (RecSession *s, Party party)
{
  Peer *peer;

  if (party == PARTY_SIGNATORY)
    end_current_part (s);
  g_rec_mutex_lock (&s->lock);
  peer = s->peers[party];
  if (peer && s->part)
    for (int k = 0; k < N_KINDS; k++)
      {
        RecTrack *t = s->part->tracks[party][k];
        if (t)
          {
            record_track_close (t);
            if (t->tee)
              {
                detach_tee_pad (s, t->tee, &t->tee_pad);
                gst_clear_object (&t->tee);
              }
          }
      }
  /* Unpublish first: a late pad-added for this peer then does nothing. */
  s->peers[party] = NULL;
  g_rec_mutex_unlock (&s->lock);
  if (peer == NULL)
    return;
  /* No lock while webrtcbin goes to NULL: its threads may call back. */
  peer_free (s, peer);
  REC_INFO (s->sid, "%s left", party_names[party]);
}

typedef struct {
  RecSession *s;
  Party party;
  GstElement *webrtc;
} AnswerCtx;

static void
on_answer_created (GstPromise *promise, gpointer user_data)
{
  AnswerCtx *ctx = user_data;
  const GstStructure *reply = gst_promise_get_reply (promise);
  GstWebRTCSessionDescription *answer = NULL;
  GError *err = NULL;

  if (reply != NULL)
    {
      gst_structure_get (reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL);
      gst_structure_get (reply, "error", G_TYPE_ERROR, &err, NULL);
    }
  if (answer == NULL)
    emit_error (ctx->s, "negotiation", "offer", party_names[ctx->party], "webrtcbin created no answer%s%s",
                err ? ": " : "", err ? err->message : "");
  else
    {
      g_autoptr (JsonObject) o = msg_new ("answer");
      g_autofree char *text = gst_sdp_message_as_text (answer->sdp);
      g_signal_emit_by_name (ctx->webrtc, "set-local-description", answer, NULL);
      json_object_set_string_member (o, "peer", party_names[ctx->party]);
      json_object_set_string_member (o, "sdp", text);
      emit_obj (ctx->s, o);
      gst_webrtc_session_description_free (answer);
    }
  g_clear_error (&err);
  gst_promise_unref (promise);
  gst_object_unref (ctx->webrtc);
  g_free (ctx);
}

static void
on_remote_set (GstPromise *promise, gpointer user_data)
{
  AnswerCtx *ctx = user_data;
  const GstStructure *reply = gst_promise_get_reply (promise);
  GError *err = NULL;

  if (reply && gst_structure_get (reply, "error", G_TYPE_ERROR, &err, NULL) && err)
    {
      emit_error (ctx->s, "negotiation", "offer", party_names[ctx->party], "the offer was refused: %s",
                  err->message);
      g_clear_error (&err);
      gst_object_unref (ctx->webrtc);
      g_free (ctx);
    }
  else
    {
      GstPromise *p = gst_promise_new_with_change_func (on_answer_created, ctx, NULL);
      g_signal_emit_by_name (ctx->webrtc, "create-answer", NULL, p);
    }
  gst_promise_unref (promise);
}

/* The first payload type of @media for VP8 (video) or Opus (audio), or -1. */
static int
find_pt (const GstSDPMedia *media, Kind kind)
{
  const char *want = kind == KIND_VIDEO ? "VP8/90000" : "opus/48000";
  for (guint i = 0; i < gst_sdp_media_formats_len (media); i++)
    {
      int pt = atoi (gst_sdp_media_get_format (media, i));
      for (guint a = 0; a < gst_sdp_media_attributes_len (media); a++)
        {
          const GstSDPAttribute *attr = gst_sdp_media_get_attribute (media, a);
          g_autofree char *prefix = g_strdup_printf ("%d ", pt);
          if (g_strcmp0 (attr->key, "rtpmap") == 0 && attr->value && g_str_has_prefix (attr->value, prefix)
              && g_ascii_strncasecmp (attr->value + strlen (prefix), want, strlen (want)) == 0)
            return pt;
        }
    }
  return -1;
}

static GstPadProbeReturn
relay_gate_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Peer *peer = user_data;
  return g_atomic_int_get (&peer->connected) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static void
on_connection_state (GObject *webrtc, GParamSpec *pspec, gpointer user_data)
{
  Peer *peer = user_data;
  GstWebRTCPeerConnectionState state;
  g_object_get (webrtc, "connection-state", &state, NULL);
  g_atomic_int_set (&peer->connected, state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED);
  REC_INFO (peer->s->sid, "%s connection state %d", party_names[peer->party], (int) state);
}

static gboolean
add_out_track (RecSession *s, Peer *peer, Kind kind, int pt, GError **error)
{
  OutTrack *out = g_new0 (OutTrack, 1);
  g_autoptr (GstCaps) caps = NULL;
  GstPad *src, *sink;
  GstPadTemplate *templ;

  out->peer = peer;
  out->kind = kind;
  out->pt = pt;
  peer->out[kind] = out;
  out->pay = make (kind == KIND_VIDEO ? "rtpvp8pay" : "rtpopuspay", error);
  out->capsf = gst_element_factory_make ("capsfilter", NULL);
  if (out->pay == NULL)
    return FALSE;
  /* Fact 6: the receiving peer's own payload type. */
  g_object_set (out->pay, "pt", pt, NULL);
  if (kind == KIND_VIDEO)
    caps = gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name",
                                G_TYPE_STRING, "VP8", "payload", G_TYPE_INT, pt, "clock-rate", G_TYPE_INT,
                                90000, NULL);
  else
    caps = gst_caps_new_simple ("application/x-rtp", "media", G_TYPE_STRING, "audio", "encoding-name",
                                G_TYPE_STRING, "OPUS", "payload", G_TYPE_INT, pt, "clock-rate", G_TYPE_INT,
                                48000, NULL);
  g_object_set (out->capsf, "caps", caps, NULL);
  out->insul = rec_insulator_new (s->sid);
  gst_bin_add_many (GST_BIN (s->pipeline), out->insul, out->pay, out->capsf, NULL);
  gst_element_link_many (out->insul, out->pay, out->capsf, NULL);
  if (!s->rtp_elements)
    rec_shortcut_capsfilter (out->capsf);
  /* Fact 21: a peer that does not take media yet must not block the tee.
   * Instead of a leaky queue (a thread and two context switches per packet),
   * drop in the sender's thread until this peer's connection is up. */
  {
    GstPad *pay_sink = gst_element_get_static_pad (out->pay, "sink");
    gst_pad_add_probe (pay_sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                       relay_gate_probe, peer, NULL);
    gst_object_unref (pay_sink);
  }
  /* Fact 19: sink pads with the payloader linked before set-remote-description. */
  templ = gst_element_get_pad_template (peer->webrtc, "sink_%u");
  sink = gst_element_request_pad (peer->webrtc, templ, NULL, caps);
  src = gst_element_get_static_pad (out->capsf, "src");
  if (sink == NULL || gst_pad_link (src, sink) != GST_PAD_LINK_OK)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE, "cannot link the %s sender to webrtcbin",
                   kind_names[kind]);
      gst_object_unref (src);
      if (sink)
        gst_object_unref (sink);
      return FALSE;
    }
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_element_sync_state_with_parent (out->capsf);
  gst_element_sync_state_with_parent (out->pay);
  gst_element_sync_state_with_parent (out->insul);
  return TRUE;
}

static gboolean
handle_offer (RecSession *s, Party party, const char *sdp_text, GError **error)
{
  g_autoptr (GstSDPMessage) sdp = NULL;
  GstWebRTCSessionDescription *offer;
  Peer *peer;
  int pts[N_KINDS] = { -1, -1 };
  gboolean sends[N_KINDS] = { FALSE, FALSE }, receives[N_KINDS] = { FALSE, FALSE };
  gboolean restart_part = FALSE;
  AnswerCtx *ctx;
  GstPromise *promise;

  if (s->peers[party] != NULL)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_STATE,
                   "the %s is already connected: a new PeerConnection needs peer-left first",
                   party_names[party]);
      return FALSE;
    }
  if (gst_sdp_message_new_from_text (sdp_text, &sdp) != GST_SDP_OK || gst_sdp_message_medias_len (sdp) == 0)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "the offer is not an SDP with media");
      return FALSE;
    }
  for (guint i = 0; i < gst_sdp_message_medias_len (sdp); i++)
    {
      const GstSDPMedia *m = gst_sdp_message_get_media (sdp, i);
      const char *media = gst_sdp_media_get_media (m);
      Kind kind;
      if (g_strcmp0 (media, "video") == 0)
        kind = KIND_VIDEO;
      else if (g_strcmp0 (media, "audio") == 0)
        kind = KIND_AUDIO;
      else
        continue;
      if (pts[kind] < 0 && (pts[kind] = find_pt (m, kind)) >= 0)
        {
          /* Only what the browser sends gets a muxer pad (an empty pad would
           * hold the whole part back); only what it receives gets a relay. */
          gboolean inactive = gst_sdp_media_get_attribute_val (m, "inactive") != NULL;
          gboolean sendonly = gst_sdp_media_get_attribute_val (m, "sendonly") != NULL;
          gboolean recvonly = gst_sdp_media_get_attribute_val (m, "recvonly") != NULL;
          sends[kind] = !inactive && !recvonly;
          receives[kind] = !inactive && !sendonly;
        }
    }
  if (pts[KIND_VIDEO] < 0 && pts[KIND_AUDIO] < 0)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "the offer has neither VP8 video nor Opus audio");
      return FALSE;
    }

  peer = g_new0 (Peer, 1);
  peer->s = s;
  peer->party = party;
  peer->joined_us = g_get_monotonic_time ();
  peer->webrtc = make ("webrtcbin", error);
  if (peer->webrtc == NULL)
    {
      g_free (peer);
      return FALSE;
    }
  g_object_set (peer->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
  if (!use_jitter_buffer (s, peer->webrtc, error))
    {
      gst_object_unref (gst_object_ref_sink (peer->webrtc));
      g_free (peer);
      return FALSE;
    }
  if (!s->receive_queue)
    rec_receive_bypass (peer->webrtc);
  if (!s->send_encoders)
    rec_send_bypass (peer->webrtc);
  if (!s->rtp_elements)
    rec_shortcut_install (peer->webrtc);
  if (s->stun)
    g_object_set (peer->webrtc, "stun-server", s->stun, NULL);
  if (s->turn)
    {
      gboolean ok = FALSE;
      g_signal_emit_by_name (peer->webrtc, "add-turn-server", s->turn, &ok);
    }
  g_signal_connect (peer->webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate), peer);
  g_signal_connect (peer->webrtc, "pad-added", G_CALLBACK (on_pad_added), peer);
  g_signal_connect (peer->webrtc, "notify::connection-state", G_CALLBACK (on_connection_state), peer);
  gst_bin_add (GST_BIN (s->pipeline), peer->webrtc);
  if (s->loopback)
    {
      /* Fact 1: the signal returns a gboolean; omitting &ok crashes. */
      GObject *agent = NULL;
      gboolean ok = FALSE;
      g_object_get (peer->webrtc, "ice-agent", &agent, NULL);
      if (agent)
        {
          g_signal_emit_by_name (agent, "add-local-ip-address", "127.0.0.1", &ok);
          g_object_unref (agent);
        }
    }
  g_rec_mutex_lock (&s->lock);
  s->peers[party] = peer;
  for (int k = 0; k < N_KINDS; k++)
    if (pts[k] >= 0)
      {
        peer->offered[k] = sends[k];
        if (receives[k] && !add_out_track (s, peer, (Kind) k, pts[k], error))
          {
            g_rec_mutex_unlock (&s->lock);
            peer_leave (s, party);
            return FALSE;
          }
      }
  /* Relay the other peer's media into this one as soon as both ends exist. */
  {
    Peer *other = other_peer (s, peer);
    for (int k = 0; k < N_KINDS; k++)
      if (other)
        link_relay (s, other->in[k], peer->out[k]);
  }
  /* A part is one signatory PeerConnection. An officer joining a part that
   * has recorded media starts a new part (the tracks of a part start
   * together); before that, the officer's tracks are added. */
  if (party == PARTY_SIGNATORY)
    restart_part = TRUE;
  else if (s->part != NULL)
    {
      /* tracks of an earlier officer connection are closed: a new part then */
      gboolean had_tracks = s->part->tracks[party][KIND_VIDEO] || s->part->tracks[party][KIND_AUDIO];
      if (had_tracks || part_has_media (s->part) || !part_add_party (s, s->part, party, TRUE))
        restart_part = TRUE;
      else
        REC_INFO (s->sid, "part %u: the officer's tracks added before any media", s->part->index);
    }
  g_rec_mutex_unlock (&s->lock);
  gst_element_sync_state_with_parent (peer->webrtc);

  if (restart_part)
    {
      Part *part;
      end_current_part (s);
      g_rec_mutex_lock (&s->lock);
      if (s->peers[PARTY_SIGNATORY] != NULL)
        {
          part = part_start (s, error);
          if (part == NULL)
            {
              g_rec_mutex_unlock (&s->lock);
              return FALSE;
            }
          s->part = part;
        }
      g_rec_mutex_unlock (&s->lock);
    }

  offer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER, g_steal_pointer (&sdp));
  ctx = g_new0 (AnswerCtx, 1);
  ctx->s = s;
  ctx->party = party;
  ctx->webrtc = gst_object_ref (peer->webrtc);
  promise = gst_promise_new_with_change_func (on_remote_set, ctx, NULL);
  g_signal_emit_by_name (peer->webrtc, "set-remote-description", offer, promise);
  gst_webrtc_session_description_free (offer);
  REC_INFO (s->sid, "%s offered (video pt %d, audio pt %d)", party_names[party], pts[KIND_VIDEO],
            pts[KIND_AUDIO]);
  return TRUE;
}

/* --------------------------------------------------------------- stills */

static gboolean
still_name_ok (const char *name)
{
  return strlen (name) <= 64 && g_regex_match_simple ("^[A-Za-z0-9][A-Za-z0-9._-]*\\.png$", name, 0, 0);
}

static GBytes *
decode_to_png (GstBuffer *buf, GstCaps *caps, GError **error)
{
  g_autoptr (GstElement) pipe = NULL;
  g_autoptr (GstElement) src = NULL, sink = NULL;
  g_autoptr (GError) perr = NULL;
  GstSample *sample;
  GBytes *png = NULL;

  pipe = gst_parse_launch ("appsrc name=src format=time ! vp8dec ! videoconvert ! pngenc snapshot=true "
                           "! appsink name=sink sync=false",
                           &perr);
  if (pipe == NULL)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE, "still decoder: %s", perr->message);
      return NULL;
    }
  src = gst_bin_get_by_name (GST_BIN (pipe), "src");
  sink = gst_bin_get_by_name (GST_BIN (pipe), "sink");
  g_object_set (src, "caps", caps, NULL);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  buf = gst_buffer_copy (buf);
  GST_BUFFER_PTS (buf) = 0;
  GST_BUFFER_DTS (buf) = GST_CLOCK_TIME_NONE;
  gst_app_src_push_buffer (GST_APP_SRC (src), buf);
  gst_app_src_end_of_stream (GST_APP_SRC (src));
  sample = gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 3 * GST_SECOND);
  if (sample != NULL)
    {
      GstBuffer *out = gst_sample_get_buffer (sample);
      GstMapInfo map;
      if (out && gst_buffer_map (out, &map, GST_MAP_READ))
        {
          png = g_bytes_new (map.data, map.size);
          gst_buffer_unmap (out, &map);
        }
      gst_sample_unref (sample);
    }
  gst_element_set_state (pipe, GST_STATE_NULL);
  if (png == NULL)
    g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE, "the keyframe did not decode to a PNG");
  return png;
}

typedef struct {
  RecSession *s;
  GstBuffer *buf;
  GstCaps *caps;
  GstClockTime rt;
} StillFrame;

static gboolean
still_save (gpointer user_data)
{
  StillFrame *f = user_data;
  RecSession *s = f->s;
  Still *still;
  Part *part;
  g_autoptr (GError) e = NULL;
  g_autoptr (GBytes) png = NULL;
  g_autofree char *dir = g_build_filename (s->dir, "stills", NULL);
  g_autofree char *path = NULL;
  guint part_index = 0;
  gint64 offset_ms = 0;

  g_mutex_lock (&s->still_lock);
  still = g_steal_pointer (&s->still);
  g_mutex_unlock (&s->still_lock);
  g_rec_mutex_lock (&s->lock);
  part = s->part;
  if (part)
    {
      part_index = part->index;
      g_mutex_lock (&part->lock);
      if (GST_CLOCK_TIME_IS_VALID (part->t0) && GST_CLOCK_TIME_IS_VALID (f->rt) && f->rt > part->t0)
        offset_ms = (gint64) ((f->rt - part->t0) / GST_MSECOND);
      g_mutex_unlock (&part->lock);
    }
  g_rec_mutex_unlock (&s->lock);
  if (still == NULL)
    goto out;
  path = g_build_filename (dir, still->name, NULL);
  png = decode_to_png (f->buf, f->caps, &e);
  if (png != NULL && g_mkdir_with_parents (dir, 0750) != 0)
    tg_set_error_errno (&e, errno, "cannot create %s", dir);
  if (png != NULL && e == NULL)
    {
      g_autoptr (TgAtomicFile) af = tg_atomic_file_new (path, 0640, FALSE, &e);
      gsize len;
      const void *data = g_bytes_get_data (png, &len);
      if (af && tg_atomic_file_write (af, data, len, &e))
        tg_atomic_file_commit (af, &e);
    }
  if (e != NULL)
    emit_error (s, error_code (e), "still", "signatory", "still %s: %s", still->name, e->message);
  else
    {
      g_autoptr (JsonObject) ev = json_object_new ();
      g_autoptr (JsonObject) msg = msg_new ("still-saved");
      json_object_set_string_member (ev, "type", "still");
      json_object_set_string_member (ev, "name", still->name);
      json_object_set_string_member (ev, "kind", still->kind);
      json_object_set_int_member (ev, "part", part_index);
      json_object_set_int_member (ev, "offset_ms", MIN (offset_ms, 86400000));
      log_event (s, ev);
      json_object_set_string_member (msg, "name", still->name);
      json_object_set_string_member (msg, "kind", still->kind);
      json_object_set_int_member (msg, "part", part_index);
      json_object_set_int_member (msg, "offset_ms", MIN (offset_ms, 86400000));
      emit_obj (s, msg);
      REC_INFO (s->sid, "still %s saved (part %u, %" G_GINT64_FORMAT " ms)", still->name, part_index, offset_ms);
    }
  g_free (still->name);
  g_free (still->kind);
  g_free (still);
out:
  gst_buffer_unref (f->buf);
  gst_caps_unref (f->caps);
  g_free (f);
  return G_SOURCE_REMOVE;
}

/* On the signatory's video tee: hand the next keyframe to still_save. */
static GstPadProbeReturn
still_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  RecSession *s = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  StillFrame *f;
  gboolean take = FALSE;

  if (GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT))
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&s->still_lock);
  if (s->still != NULL && g_atomic_int_compare_and_exchange (&s->still->taken, 0, 1))
    take = TRUE;
  g_mutex_unlock (&s->still_lock);
  if (!take)
    return GST_PAD_PROBE_OK;
  f = g_new0 (StillFrame, 1);
  f->s = s;
  f->buf = gst_buffer_ref (buf);
  f->caps = gst_pad_get_current_caps (pad);
  if (f->caps == NULL)
    f->caps = gst_caps_new_empty_simple ("video/x-vp8");
  f->rt = buffer_running_time (pad, buf);
  g_main_context_invoke (NULL, still_save, f);
  return GST_PAD_PROBE_OK;
}

static gboolean
handle_still (RecSession *s, const char *kind, const char *name, GError **error)
{
  g_autofree char *path = NULL;
  Peer *sig = s->peers[PARTY_SIGNATORY];
  InTrack *in = sig ? sig->in[KIND_VIDEO] : NULL;
  GstPad *teesink;

  if (!still_name_ok (name))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID,
                   "still name must be letters, digits, '.', '_' or '-' ending in .png (at most 64)");
      return FALSE;
    }
  path = g_build_filename (s->dir, "stills", name, NULL);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_STATE, "still %s exists already", name);
      return FALSE;
    }
  if (in == NULL || s->part == NULL)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_STATE, "no signatory video is being received");
      return FALSE;
    }
  g_mutex_lock (&s->still_lock);
  if (s->still != NULL)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_STATE, "still %s is still being taken", s->still->name);
      g_mutex_unlock (&s->still_lock);
      return FALSE;
    }
  s->still = g_new0 (Still, 1);
  s->still->name = g_strdup (name);
  s->still->kind = g_strdup (kind);
  s->still->deadline_us = g_get_monotonic_time () + STILL_TIMEOUT_US;
  g_mutex_unlock (&s->still_lock);
  teesink = gst_element_get_static_pad (in->tee, "sink");
  if (g_object_get_data (G_OBJECT (teesink), "rec-still-probe") == NULL)
    {
      gst_pad_add_probe (teesink, GST_PAD_PROBE_TYPE_BUFFER, still_probe, s, NULL);
      g_object_set_data (G_OBJECT (teesink), "rec-still-probe", GINT_TO_POINTER (1));
    }
  gst_object_unref (teesink);
  request_keyframe (in);
  return TRUE;
}

/* ------------------------------------------------------------- control */

static gboolean
members_only (JsonObject *o, const char *const *allowed, GError **error)
{
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *l = members; l; l = l->next)
    if (!g_strv_contains (allowed, l->data))
      {
        g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "unexpected member \"%s\"", (char *) l->data);
        return FALSE;
      }
  for (guint i = 0; allowed[i]; i++)
    if (!json_object_has_member (o, allowed[i]))
      {
        g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "missing member \"%s\"", allowed[i]);
        return FALSE;
      }
  return TRUE;
}

static const char *
get_string (JsonObject *o, const char *name, gsize max_len, GError **error)
{
  JsonNode *n = json_object_get_member (o, name);
  const char *v;
  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "\"%s\" must be a string", name);
      return NULL;
    }
  v = json_node_get_string (n);
  if (strlen (v) > max_len)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "\"%s\" is longer than %" G_GSIZE_FORMAT, name, max_len);
      return NULL;
    }
  return v;
}

static gboolean
get_party (JsonObject *o, Party *party, GError **error)
{
  const char *v = get_string (o, "peer", 16, error);
  if (v == NULL)
    return FALSE;
  for (int p = 0; p < N_PARTIES; p++)
    if (strcmp (v, party_names[p]) == 0)
      {
        *party = (Party) p;
        return TRUE;
      }
  g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "\"peer\" must be \"signatory\" or \"officer\"");
  return FALSE;
}

/* Events the recorder writes itself: the server may not log them. */
static const char *const own_types[] = { "part-start", "track", "keyframe", "still", "segment", NULL };

static gboolean
handle_log_event (RecSession *s, JsonObject *msg, GError **error)
{
  JsonNode *n = json_object_get_member (msg, "event");
  JsonObject *ev;
  const char *type;

  if (n == NULL || !JSON_NODE_HOLDS_OBJECT (n))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "\"event\" must be an object");
      return FALSE;
    }
  ev = json_node_get_object (n);
  {
    JsonNode *tn = json_object_get_member (ev, "type");
    if (tn == NULL || !JSON_NODE_HOLDS_VALUE (tn) || json_node_get_value_type (tn) != G_TYPE_STRING)
      {
        g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "the event has no type");
        return FALSE;
      }
    type = json_node_get_string (tn);
  }
  if (g_strv_contains (own_types, type))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "%s events are written by the recorder only", type);
      return FALSE;
    }
  return rec_log_append (s->log, ev, error);
}

void
rec_session_handle_line (RecSession *s, const char *line, gsize len)
{
  g_autoptr (GError) e = NULL;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *o;
  const char *type = NULL;
  Party party = PARTY_SIGNATORY;
  gboolean has_party = FALSE;

  if (s->stopped || s->stopping)
    {
      emit_error (s, "state", NULL, NULL, "the session is stopped");
      return;
    }
  root = tg_json_parse_strict (line, len, REC_CONTROL_MAX_LINE, &e);
  if (root == NULL)
    goto bad;
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (&e, REC_ERROR, REC_ERROR_INVALID, "a message is a JSON object");
      goto bad;
    }
  o = json_node_get_object (root);
  type = get_string (o, "type", 32, &e);
  if (type == NULL)
    goto bad;
  if (strcmp (type, "offer") == 0)
    {
      static const char *const m[] = { "type", "peer", "sdp", NULL };
      const char *sdp;
      if (!members_only (o, m, &e) || !(has_party = get_party (o, &party, &e))
          || !(sdp = get_string (o, "sdp", SDP_MAX_LEN, &e)) || !handle_offer (s, party, sdp, &e))
        goto bad;
    }
  else if (strcmp (type, "ice") == 0)
    {
      static const char *const m[] = { "type", "peer", "candidate", "sdpMLineIndex", NULL };
      const char *cand;
      JsonNode *idx;
      gint64 mline;
      if (!members_only (o, m, &e) || !(has_party = get_party (o, &party, &e))
          || !(cand = get_string (o, "candidate", CANDIDATE_MAX_LEN, &e)))
        goto bad;
      idx = json_object_get_member (o, "sdpMLineIndex");
      if (!JSON_NODE_HOLDS_VALUE (idx) || json_node_get_value_type (idx) != G_TYPE_INT64
          || (mline = json_node_get_int (idx)) < 0 || mline > 63)
        {
          g_set_error (&e, REC_ERROR, REC_ERROR_INVALID, "\"sdpMLineIndex\" must be an integer 0..63");
          goto bad;
        }
      if (s->peers[party] == NULL)
        {
          g_set_error (&e, REC_ERROR, REC_ERROR_STATE, "no PeerConnection for the %s", party_names[party]);
          goto bad;
        }
      if (*cand != '\0')  /* empty: end of candidates */
        g_signal_emit_by_name (s->peers[party]->webrtc, "add-ice-candidate", (guint) mline, cand);
    }
  else if (strcmp (type, "peer-left") == 0)
    {
      static const char *const m[] = { "type", "peer", NULL };
      if (!members_only (o, m, &e) || !(has_party = get_party (o, &party, &e)))
        goto bad;
      if (s->peers[party] == NULL)
        {
          g_set_error (&e, REC_ERROR, REC_ERROR_STATE, "the %s is not connected", party_names[party]);
          goto bad;
        }
      peer_leave (s, party);
    }
  else if (strcmp (type, "still") == 0)
    {
      static const char *const m[] = { "type", "kind", "name", NULL };
      static const char *const kinds[] = { "doc-front", "doc-back", "face", "other", NULL };
      const char *kind, *name;
      if (!members_only (o, m, &e) || !(kind = get_string (o, "kind", 16, &e))
          || !(name = get_string (o, "name", 128, &e)))
        goto bad;
      if (!g_strv_contains (kinds, kind))
        {
          g_set_error (&e, REC_ERROR, REC_ERROR_INVALID, "\"kind\" must be doc-front, doc-back, face or other");
          goto bad;
        }
      if (!handle_still (s, kind, name, &e))
        goto bad;
    }
  else if (strcmp (type, "log-event") == 0)
    {
      static const char *const m[] = { "type", "event", NULL };
      if (!members_only (o, m, &e) || !handle_log_event (s, o, &e))
        goto bad;
    }
  else if (strcmp (type, "stop") == 0)
    {
      static const char *const m[] = { "type", NULL };
      if (!members_only (o, m, &e))
        goto bad;
      rec_session_stop (s);
    }
  else
    {
      g_set_error (&e, REC_ERROR, REC_ERROR_INVALID, "unknown message type \"%s\"", type);
      type = NULL;
      goto bad;
    }
  return;

bad:
  emit_error (s, error_code (e), type, has_party ? party_names[party] : NULL, "%s", e->message);
}

/* ------------------------------------------------------------- periodic */

static gboolean
on_tick (gpointer user_data)
{
  RecSession *s = user_data;
  gint64 now = g_get_monotonic_time ();
  Still *timed_out = NULL;

  g_rec_mutex_lock (&s->lock);
  /* A track that stopped sending still has its last bytes chained. */
  for (int p = 0; s->part && p < N_PARTIES; p++)
    for (int k = 0; k < N_KINDS; k++)
      {
        RecTrack *t = s->part->tracks[p][k];
        if (t && rec_part_file_due (t->out, s->segment_us))
          track_flush (t);
      }
  if (now - s->last_periodic_fku >= s->keyframe_us)
    {
      s->last_periodic_fku = now;
      for (int p = 0; p < N_PARTIES; p++)
        if (s->peers[p])
          request_keyframe (s->peers[p]->in[KIND_VIDEO]);
    }
  g_rec_mutex_unlock (&s->lock);
  g_mutex_lock (&s->still_lock);
  if (s->still && now > s->still->deadline_us && !g_atomic_int_get (&s->still->taken))
    timed_out = g_steal_pointer (&s->still);
  g_mutex_unlock (&s->still_lock);
  if (timed_out)
    {
      emit_error (s, "timeout", "still", "signatory", "still %s: no keyframe from the signatory in %d s",
                  timed_out->name, (int) (STILL_TIMEOUT_US / G_USEC_PER_SEC));
      g_free (timed_out->name);
      g_free (timed_out->kind);
      g_free (timed_out);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_bus (GstBus *bus, GstMessage *m, gpointer user_data)
{
  RecSession *s = user_data;
  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
    {
      g_autoptr (GError) err = NULL;
      g_autofree char *dbg = NULL;
      gst_message_parse_error (m, &err, &dbg);
      emit_error (s, "pipeline", NULL, NULL, "%s: %s", GST_OBJECT_NAME (GST_MESSAGE_SRC (m)), err->message);
      REC_ERR (s->sid, "pipeline error detail: %s", dbg ? dbg : "-");
    }
  else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_WARNING)
    {
      g_autoptr (GError) err = NULL;
      gst_message_parse_warning (m, &err, NULL);
      REC_WARN (s->sid, "%s: %s", GST_OBJECT_NAME (GST_MESSAGE_SRC (m)), err->message);
    }
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------- lifecycle */

RecSession *
rec_session_new (const RecOptions *opts, RecEmitFunc emit, gpointer user_data, GError **error)
{
  g_autoptr (RecSession) s = NULL;
  g_autofree char *events = NULL;
  GstBus *bus;

  rec_debug_init ();
  if (opts->session_id == NULL || !g_regex_match_simple ("^[A-Za-z0-9._-]{1,64}$", opts->session_id, 0, 0))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "the session id must match [A-Za-z0-9._-]{1,64}");
      return NULL;
    }
  if (opts->session_dir == NULL || !g_file_test (opts->session_dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, REC_ERROR, REC_ERROR_INVALID, "the session directory does not exist");
      return NULL;
    }
  s = g_new0 (RecSession, 1);
  g_mutex_init (&s->emit_lock);
  g_mutex_init (&s->still_lock);
  g_rec_mutex_init (&s->lock);
  s->sid = g_strdup (opts->session_id);
  s->dir = g_strdup (opts->session_dir);
  s->stun = g_strdup (opts->stun_server);
  s->turn = g_strdup (opts->turn_server);
  s->loopback = opts->loopback;
  s->segment_us = (gint64) CLAMP (opts->segment_interval_ms ? opts->segment_interval_ms : 2000, 100, 5000) * 1000;
  s->keyframe_us = (gint64) (opts->keyframe_interval_ms ? opts->keyframe_interval_ms : 3000) * 1000;
  s->jitter_ms = MIN (opts->jitter_buffer_ms, REC_JITTER_BUFFER_MAX_MS);
  s->receive_queue = opts->receive_queue;
  s->send_encoders = opts->send_encoders;
  s->rtp_elements = opts->rtp_elements;
  s->emit = emit;
  s->emit_data = user_data;
  s->done_parts = json_array_new ();
  events = g_build_filename (s->dir, "events.jsonl", NULL);
  s->log = rec_log_open (events, s->sid, error);
  if (s->log == NULL)
    return NULL;
  s->next_part = rec_log_max_part (s->log) + 1;
  s->pipeline = gst_pipeline_new ("testigo-recorder");
  bus = gst_pipeline_get_bus (GST_PIPELINE (s->pipeline));
  s->bus_watch = gst_bus_add_watch (bus, on_bus, s);
  gst_object_unref (bus);
  if (gst_element_set_state (s->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    {
      g_set_error (error, REC_ERROR, REC_ERROR_PIPELINE, "the pipeline does not start");
      return NULL;
    }
  s->last_periodic_fku = g_get_monotonic_time ();
  s->timer = g_timeout_add (250, on_tick, s);
  {
    g_autoptr (JsonObject) o = msg_new ("ready");
    json_object_set_string_member (o, "session_id", s->sid);
    emit_obj (s, o);
  }
  REC_INFO (s->sid, "ready in %s", s->dir);
  return g_steal_pointer (&s);
}

void
rec_session_stop (RecSession *s)
{
  g_autoptr (JsonObject) o = NULL;

  if (s->stopped || s->stopping)
    return;
  s->stopping = TRUE;
  REC_INFO (s->sid, "stopping");
  end_current_part (s);
  peer_leave (s, PARTY_SIGNATORY);
  peer_leave (s, PARTY_OFFICER);
  g_clear_handle_id (&s->timer, g_source_remove);
  gst_element_set_state (s->pipeline, GST_STATE_NULL);
  /* Events queued by streaming threads before they stopped. */
  while (g_main_context_pending (NULL))
    g_main_context_iteration (NULL, FALSE);
  s->stopped = TRUE;
  o = msg_new ("stopped");
  json_object_set_array_member (o, "parts", json_array_ref (s->done_parts));
  json_object_set_int_member (o, "next_seq", (gint64) rec_log_next_seq (s->log));
  emit_obj (s, o);
  REC_INFO (s->sid, "stopped");
}

gboolean
rec_session_is_stopped (RecSession *s)
{
  return s->stopped;
}

void
rec_session_free (RecSession *s)
{
  if (s == NULL)
    return;
  if (s->pipeline)
    {
      rec_session_stop (s);
      g_clear_handle_id (&s->bus_watch, g_source_remove);
      gst_clear_object (&s->pipeline);
    }
  if (s->still)
    {
      g_free (s->still->name);
      g_free (s->still->kind);
      g_free (s->still);
    }
  g_clear_pointer (&s->done_parts, json_array_unref);
  rec_log_free (s->log);
  g_rec_mutex_clear (&s->lock);
  g_mutex_clear (&s->emit_lock);
  g_mutex_clear (&s->still_lock);
  g_free (s->sid);
  g_free (s->dir);
  g_free (s->stun);
  g_free (s->turn);
  g_free (s);
}

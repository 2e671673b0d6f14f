/* rec-shortcut.c — relayed packets skip the elements of webrtcbin's RTP path
 * that pass them on unchanged in the calls the recorder answers (VP8 and Opus
 * only: no RTX, no RED, no ULPFEC).
 *
 * In webrtcbin 1.22 every received packet goes, after SRTP and rtpbin's
 * session, through
 *
 *   aux receiver bin [ rtprtxreceive → rtpreddec ]         (gstwebrtcbin.c,
 *     → jitter buffer (rec-forward.c)                        on_rtpbin_request_aux_receiver)
 *     → rtpptdemux → rtpulpfecdec → rtpbin's and webrtcbin's ghost pads → depayloader
 *
 * and every sent packet, after rtpbin's session, through
 *
 *   aux sender bin [ rtprtxsend ] → … → dtlssrtpenc [ srtpenc → clocksync → funnel ]
 *
 * Without RTX the two RTX elements only look the payload type up in an empty
 * map; without RED the RED decoder pushes at once; in pass-through the ULPFEC
 * decoder only writes the sequence number it read; with one payload type the
 * demuxer pushes to its one pad; dtlssrtpenc's clocksync does not sync
 * ("rtp-sync" is off). Each is still a pad push with a peer lookup, a lock or
 * an RTP header parse per packet, and the ghost pads between them two more
 * pushes each: about a dozen pushes per relayed packet for nothing.
 *
 * So a probe on the first pad of each such stretch hands buffers straight to
 * the pad after it, while every element skipped says (through its properties,
 * followed by notify) that it passes packets on unchanged; for the demuxer,
 * only packets of the payload type it has its one pad for, and not the first
 * buffer after a caps event (the demuxer updates its pad's caps then). Events
 * and queries keep the full path, in the same thread, so their order with the
 * buffers is kept. A stretch of another shape (another GStreamer, RTX or FEC
 * negotiated, a second payload type) is left alone.
 *
 * The same for the runs of ghost pads between webrtcbin's inner bins (see
 * "ghost pads" below), and for capsfilters — webrtcbin's after nicesrc, the
 * recorder's after each payloader — once their output has caps: a base
 * transform's push per packet for nothing (but for the buffer after an event
 * it held back, and a list goes on buffer by buffer as it would). */
#include "config.h"
#include "recorder-private.h"

#include <stdio.h>

typedef enum
{
  SKIP_AUX_RECEIVER,   /* webrtcbin's aux receiver bin: rtprtxreceive → rtpreddec */
  SKIP_PT_DEMUX,       /* rtpptdemux with one pad → rtpulpfecdec (if any) */
  SKIP_AUX_SENDER,     /* webrtcbin's aux sender bin: rtprtxsend */
  SKIP_DTLS_CLOCKSYNC, /* dtlssrtpenc's clocksync */
  SKIP_CAPSFILTER,     /* a capsfilter: transportreceivebin's, the relay's */
} SkipKind;

static const char *const skip_names[] = { "aux receiver", "payload demuxer", "aux sender", "DTLS clocksync",
                                          "capsfilter" };

typedef struct
{
  SkipKind kind;
  GMutex lock;
  gint state;             /* atomic: 0 not resolved yet, 1 resolved, -1 left alone */
  gint passthrough;       /* atomic: every element skipped passes packets on unchanged */
  gint resync;            /* atomic: the next buffer takes the full path (demuxer: caps; capsfilter: an event) */
  guint pt;               /* SKIP_PT_DEMUX: the payload type of the demuxer's one pad */
  GstElement *entry;      /* (unowned) the element (or bin) whose sink pad has the probe */
  GstElement *watched[2]; /* (owned) the elements whose properties say pass-through */
  GstPad *target;         /* (owned) where the skipped stretch would push */
  GstPad *exit;           /* (owned) DTLS clocksync, capsfilter: its source pad */
} Skip;

gboolean
rec_is_factory (GstElement *e, const char *name)
{
  GstElementFactory *f = e ? gst_element_get_factory (e) : NULL;
  return f != NULL && g_strcmp0 (GST_OBJECT_NAME (f), name) == 0;
}

static void
skip_free (gpointer data)
{
  Skip *sk = data;
  for (guint i = 0; i < G_N_ELEMENTS (sk->watched); i++)
    if (sk->watched[i])
      {
        g_signal_handlers_disconnect_by_data (sk->watched[i], sk);
        gst_object_unref (sk->watched[i]);
      }
  g_clear_object (&sk->target);
  g_clear_object (&sk->exit);
  g_mutex_clear (&sk->lock);
  g_free (sk);
}

/* An RTX element with no payload type to map passes every packet on. */
static gboolean
rtx_map_empty (GstElement *rtx)
{
  GstStructure *map = NULL;
  gboolean empty;
  g_object_get (rtx, "payload-type-map", &map, NULL);
  empty = map == NULL || gst_structure_n_fields (map) == 0;
  if (map)
    gst_structure_free (map);
  return empty;
}

static gboolean
reddec_idle (GstElement *reddec)
{
  GValue payloads = G_VALUE_INIT;
  gint pt = 0;
  gboolean idle;
  g_value_init (&payloads, GST_TYPE_ARRAY);
  g_object_get_property (G_OBJECT (reddec), "payloads", &payloads);
  g_object_get (reddec, "pt", &pt, NULL);
  idle = pt < 0 && gst_value_array_get_size (&payloads) == 0;
  g_value_unset (&payloads);
  return idle;
}

static void
update_passthrough (GObject *object, GParamSpec *pspec, gpointer user_data)
{
  Skip *sk = user_data;
  gboolean through = FALSE;

  switch (sk->kind)
    {
    case SKIP_AUX_RECEIVER:
      through = rtx_map_empty (sk->watched[0]) && reddec_idle (sk->watched[1]);
      break;
    case SKIP_PT_DEMUX:
      through = TRUE;
      if (sk->watched[0])
        g_object_get (sk->watched[0], "passthrough", &through, NULL);
      break;
    case SKIP_AUX_SENDER:
      through = rtx_map_empty (sk->watched[0]);
      break;
    case SKIP_DTLS_CLOCKSYNC:
      {
        gboolean sync = TRUE;
        g_object_get (sk->watched[0], "sync", &sync, NULL);
        through = !sync;
      }
      break;
    case SKIP_CAPSFILTER:
      /* new filter caps: the next buffer through it (it negotiates them) */
      through = TRUE;
      if (object != NULL)
        g_atomic_int_set (&sk->resync, 1);
      break;
    }
  g_atomic_int_set (&sk->passthrough, through);
}

static void
watch (Skip *sk, guint i, GstElement *e, const char *const *props)
{
  sk->watched[i] = gst_object_ref (e);
  for (; *props; props++)
    {
      char *detailed = g_strconcat ("notify::", *props, NULL);
      g_signal_connect (e, detailed, G_CALLBACK (update_passthrough), sk);
      g_free (detailed);
    }
}

/* (transfer full) The pad a buffer pushed on @src ends up in: its peer,
 * followed out of ghost pads (a ghost's inside pad only pushes on the ghost).
 * NULL if not linked all the way. */
static GstPad *
downstream_pad (GstPad *src)
{
  GstPad *pad = gst_pad_get_peer (src);

  for (guint hops = 0; pad != NULL; hops++)
    {
      GstPad *ghost, *next;

      if (!GST_IS_PROXY_PAD (pad) || GST_IS_GHOST_PAD (pad) || GST_PAD_IS_SRC (pad))
        return pad;
      if (hops == 16 || GST_PAD_CHAINFUNC (pad) != gst_proxy_pad_chain_default)
        break;
      ghost = GST_PAD (gst_proxy_pad_get_internal (GST_PROXY_PAD (pad)));
      if (ghost == NULL || !GST_IS_GHOST_PAD (ghost))
        {
          g_clear_object (&ghost);
          break;
        }
      next = gst_pad_get_peer (ghost);
      gst_object_unref (ghost);
      gst_object_unref (pad);
      pad = next;
    }
  g_clear_object (&pad);
  return NULL;
}

/* (transfer full) The one pad of @e in @dir, or NULL if it has none or more. */
static GstPad *
only_pad (GstElement *e, GstPadDirection dir)
{
  GstPad *found = NULL;
  guint n = 0;
  GList *l;

  GST_OBJECT_LOCK (e);
  for (l = dir == GST_PAD_SRC ? e->srcpads : e->sinkpads; l; l = l->next, n++)
    found = l->data;
  if (n == 1)
    gst_object_ref (found);
  else
    found = NULL;
  GST_OBJECT_UNLOCK (e);
  return found;
}

/* The bin's children, if they are exactly the factories named (in any order). */
static gboolean
bin_holds (GstElement *bin, const char *a, const char *b, GstElement **ea, GstElement **eb)
{
  gboolean ok = TRUE;
  guint n = 0;
  GList *l;

  *ea = NULL;
  if (eb)
    *eb = NULL;
  GST_OBJECT_LOCK (bin);
  for (l = GST_BIN (bin)->children; l; l = l->next, n++)
    {
      GstElement *c = l->data;
      if (*ea == NULL && rec_is_factory (c, a))
        *ea = c;
      else if (b && *eb == NULL && rec_is_factory (c, b))
        *eb = c;
      else
        ok = FALSE;
    }
  GST_OBJECT_UNLOCK (bin);
  return ok && *ea != NULL && (b == NULL || *eb != NULL) && n == (b ? 2u : 1u);
}

/* Finds what the stretch from @entry skips and where it ends: 1 (done), 0 (not
 * linked yet: try again with the next buffer) or -1 (another shape). */
static gint
resolve (Skip *sk)
{
  static const char *const rtx_props[] = { "payload-type-map", NULL };
  static const char *const red_props[] = { "pt", "payloads", NULL };
  static const char *const fec_props[] = { "passthrough", NULL };
  static const char *const sync_props[] = { "sync", NULL };
  static const char *const caps_props[] = { "caps", NULL };
  GstElement *a = NULL, *b = NULL;
  GstPad *exit = NULL, *next = NULL;
  gint res = -1;

  switch (sk->kind)
    {
    case SKIP_AUX_RECEIVER:
    case SKIP_AUX_SENDER:
      {
        gboolean rx = sk->kind == SKIP_AUX_RECEIVER;
        if (!bin_holds (sk->entry, rx ? "rtprtxreceive" : "rtprtxsend", rx ? "rtpreddec" : NULL, &a, rx ? &b : NULL))
          goto out;
        exit = only_pad (sk->entry, GST_PAD_SRC);
        if (exit == NULL)
          goto out;
        sk->target = downstream_pad (exit);
        if (sk->target == NULL)
          {
            res = 0;
            goto out;
          }
        watch (sk, 0, a, rtx_props);
        if (rx)
          watch (sk, 1, b, red_props);
        res = 1;
      }
      break;
    case SKIP_PT_DEMUX:
      {
        GstElement *parent;
        guint pt;
        exit = only_pad (sk->entry, GST_PAD_SRC);
        if (exit == NULL)
          {
            GST_OBJECT_LOCK (sk->entry);
            res = sk->entry->numsrcpads == 0 ? 0 : -1;
            GST_OBJECT_UNLOCK (sk->entry);
            goto out;
          }
        if (sscanf (GST_PAD_NAME (exit), "src_%u", &pt) != 1 || pt > 127)
          goto out;
        next = downstream_pad (exit);
        if (next == NULL)
          {
            res = 0;
            goto out;
          }
        parent = gst_pad_get_parent_element (next);
        if (rec_is_factory (parent, "rtpulpfecdec"))
          {
            GstPad *fec_src = gst_element_get_static_pad (parent, "src");
            sk->target = fec_src ? downstream_pad (fec_src) : NULL;
            g_clear_object (&fec_src);
            if (sk->target != NULL)
              watch (sk, 0, parent, fec_props);
          }
        else
          sk->target = gst_object_ref (next);
        g_clear_object (&parent);
        if (sk->target == NULL)
          {
            res = 0;
            goto out;
          }
        sk->pt = pt;
        res = 1;
      }
      break;
    case SKIP_DTLS_CLOCKSYNC:
    case SKIP_CAPSFILTER:
      /* one element, one property */
      exit = gst_element_get_static_pad (sk->entry, "src");
      sk->target = exit ? downstream_pad (exit) : NULL;
      if (sk->target == NULL)
        {
          res = 0;
          goto out;
        }
      sk->exit = gst_object_ref (exit);
      watch (sk, 0, sk->entry, sk->kind == SKIP_CAPSFILTER ? caps_props : sync_props);
      res = 1;
      break;
    }
out:
  if (res == 1)
    update_passthrough (NULL, NULL, sk);
  g_clear_object (&exit);
  g_clear_object (&next);
  return res;
}

/* The payload type of an RTP packet, or -1. */
static gint
payload_type (GstBuffer *buf)
{
  guint8 hdr[2];
  if (gst_buffer_extract (buf, 0, hdr, 2) != 2 || (hdr[0] >> 6) != 2)
    return -1;
  return hdr[1] & 0x7f;
}

GstPadProbeReturn
rec_probe_hand_on (GstPadProbeInfo *info, GstPad *target)
{
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0)
    GST_PAD_PROBE_INFO_FLOW_RETURN (info) = gst_pad_chain_list (target, GST_PAD_PROBE_INFO_BUFFER_LIST (info));
  else
    GST_PAD_PROBE_INFO_FLOW_RETURN (info) = gst_pad_chain (target, GST_PAD_PROBE_INFO_BUFFER (info));
  info->data = NULL;
  return GST_PAD_PROBE_HANDLED;
}

/* A capsfilter (a base transform, no list function) hands a payloader's list
 * on buffer by buffer; so does its shortcut, for what follows (rtpfunnel
 * numbers transport-wide sequence numbers on single buffers only). */
static GstFlowReturn
chain_each (GstPad *target, GstBufferList *list)
{
  GstFlowReturn ret = GST_FLOW_OK;
  guint n = gst_buffer_list_length (list);
  for (guint i = 0; i < n && ret == GST_FLOW_OK; i++)
    ret = gst_pad_chain (target, gst_buffer_ref (gst_buffer_list_get (list, i)));
  gst_buffer_list_unref (list);
  return ret;
}

static GstPadProbeReturn
entry_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  Skip *sk = user_data;
  gint state;

  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0)
    {
      GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
      /* the demuxer renews its pad's caps at the next buffer; a capsfilter
       * whose input has no caps holds sticky events until the next buffer */
      if ((sk->kind == SKIP_PT_DEMUX && GST_EVENT_TYPE (ev) == GST_EVENT_CAPS)
          || (sk->kind == SKIP_CAPSFILTER && GST_EVENT_IS_STICKY (ev)))
        g_atomic_int_set (&sk->resync, 1);
      return GST_PAD_PROBE_OK;
    }
  state = g_atomic_int_get (&sk->state);
  if (state == 0)
    {
      /* Probes run under the pad's stream lock: one buffer at a time. */
      g_mutex_lock (&sk->lock);
      state = resolve (sk);
      g_atomic_int_set (&sk->state, state);
      g_mutex_unlock (&sk->lock);
      if (state > 0)
        GST_INFO_OBJECT (pad, "%s: packets go straight to %" GST_PTR_FORMAT " while it passes them on",
                         skip_names[sk->kind], sk->target);
      else if (state < 0)
        GST_INFO_OBJECT (pad, "%s: not of the shape known: left alone", skip_names[sk->kind]);
    }
  if (state < 0)
    return GST_PAD_PROBE_REMOVE;
  if (state == 0 || !g_atomic_int_get (&sk->passthrough))
    {
      g_atomic_int_set (&sk->resync, 0);   /* this one takes the full path anyway */
      return GST_PAD_PROBE_OK;
    }
  if (g_atomic_int_get (&sk->resync) && g_atomic_int_compare_and_exchange (&sk->resync, 1, 0))
    return GST_PAD_PROBE_OK;
  if (GST_PAD_PEER (sk->target) == NULL)
    {
      /* Unlinked at the end: the full path from now on. */
      g_atomic_int_set (&sk->state, -1);
      return GST_PAD_PROBE_REMOVE;
    }
  /* A capsfilter passes buffers on unchanged once its output has caps and
   * has sent its events (those it holds back come out with the buffer after
   * them: resync above). */
  if (sk->kind == SKIP_CAPSFILTER
      && (GST_PAD_HAS_PENDING_EVENTS (sk->exit) || GST_PAD_NEEDS_RECONFIGURE (sk->exit)
          || !gst_pad_has_current_caps (sk->exit)))
    return GST_PAD_PROBE_OK;
  if (sk->kind == SKIP_PT_DEMUX)
    {
      if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) == 0)
        return GST_PAD_PROBE_OK;
      if (payload_type (GST_PAD_PROBE_INFO_BUFFER (info)) != (gint) sk->pt)
        {
          /* A second payload type: the demuxer switches pads from now on. */
          GST_INFO_OBJECT (pad, "a payload type other than %u: the demuxer decides from now on", sk->pt);
          g_atomic_int_set (&sk->state, -1);
          return GST_PAD_PROBE_REMOVE;
        }
    }
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0 && sk->kind == SKIP_CAPSFILTER)
    {
      GST_PAD_PROBE_INFO_FLOW_RETURN (info) = chain_each (sk->target, GST_PAD_PROBE_INFO_BUFFER_LIST (info));
      info->data = NULL;
      return GST_PAD_PROBE_HANDLED;
    }
  return rec_probe_hand_on (info, sk->target);
}

static void
add_skip (GstElement *entry, SkipKind kind)
{
  Skip *sk;
  GstPad *sink;

  if (g_object_get_data (G_OBJECT (entry), "rec-shortcut"))
    return;
  sink = only_pad (entry, GST_PAD_SINK);
  if (sink == NULL)
    return;
  sk = g_new0 (Skip, 1);
  sk->kind = kind;
  sk->entry = entry;
  g_mutex_init (&sk->lock);
  g_object_set_data_full (G_OBJECT (entry), "rec-shortcut", sk, skip_free);
  gst_pad_add_probe (sink, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST
                     | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, entry_probe, sk, NULL);
  gst_object_unref (sink);
}

/* ---- ghost pads ----
 *
 * Between webrtcbin's inner bins a packet crosses ghost pads: srtpdec →
 * dtlssrtpdec → transportreceivebin → rtpbin → rtpsession on the way in,
 * rtpfunnel → rtpbin, rtpsession → rtpbin → transportsendbin → dtlssrtpenc →
 * srtpenc and dtlssrtpenc's funnel → nicesink on the way out. Each crossing
 * is one more push (the ghost pad's inner proxy only hands the buffer on):
 * eight per relayed packet. A probe on the source pad before such a run
 * hands buffers to the pad after it, while no pad of the run is blocked
 * (transportsendbin blocks one until DTLS has its keys), flushing, or holds
 * events not yet sent; then the full path. Only ghost pads of those bins,
 * to which webrtcbin 1.22 adds no probe but these blocks; events keep the
 * full path. */

#define GHOST_RUN_MAX 12

typedef struct
{
  GMutex lock;
  gint state;                   /* atomic: 0 not resolved yet, 1 resolved, -1 left alone */
  GstPad *run[GHOST_RUN_MAX];   /* (owned) the pads skipped, in order */
  guint n;
  GstPad *target;               /* (owned) */
} GhostSkip;

static void
ghost_skip_free (gpointer data)
{
  GhostSkip *g = data;
  for (guint i = 0; i < g->n; i++)
    gst_object_unref (g->run[i]);
  g_clear_object (&g->target);
  g_mutex_clear (&g->lock);
  g_free (g);
}

static gboolean
of_known_bin (GstPad *ghost)
{
  static const char *const bins[] = { "GstRtpBin", "TransportReceiveBin", "TransportSendBin", "GstDtlsSrtpDec",
                                      "GstDtlsSrtpEnc" };
  GstObject *parent = gst_object_get_parent (GST_OBJECT (ghost));
  gboolean known = FALSE;
  for (guint i = 0; parent != NULL && i < G_N_ELEMENTS (bins); i++)
    known = known || g_strcmp0 (G_OBJECT_TYPE_NAME (parent), bins[i]) == 0;
  g_clear_object (&parent);
  return known;
}

/* Follows @src's peer through ghost pads of the known bins (into a bin
 * through a sink ghost pad, out of one through a source ghost pad's inner
 * pad): 1 if it crossed any, -1 if none, 0 if not linked yet. */
static gint
ghost_resolve (GhostSkip *g, GstPad *src)
{
  GstPad *pad = gst_pad_get_peer (src);

  while (pad != NULL && g->n + 2 <= GHOST_RUN_MAX && GST_PAD_IS_SINK (pad) && GST_IS_PROXY_PAD (pad)
         && GST_PAD_CHAINFUNC (pad) == gst_proxy_pad_chain_default)
    {
      GstPad *other = GST_PAD (gst_proxy_pad_get_internal (GST_PROXY_PAD (pad)));
      GstPad *ghost = GST_IS_GHOST_PAD (pad) ? pad : other;
      GstPad *next;

      if (other == NULL || !GST_IS_GHOST_PAD (ghost) || !of_known_bin (ghost))
        {
          g_clear_object (&other);
          break;
        }
      next = gst_pad_get_peer (other);   /* the inner pad's (into a bin) or the ghost's (out of one) */
      g->run[g->n++] = pad;
      g->run[g->n++] = other;
      pad = next;
    }
  g->target = pad;
  if (g->target == NULL)
    return 0;
  return g->n > 0 ? 1 : -1;
}

static GstPadProbeReturn
ghost_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  GhostSkip *g = user_data;
  gint state = g_atomic_int_get (&g->state);

  if (state == 0)
    {
      g_mutex_lock (&g->lock);
      for (guint i = 0; i < g->n; i++)
        gst_object_unref (g->run[i]);
      g->n = 0;
      g_clear_object (&g->target);
      state = ghost_resolve (g, pad);
      g_atomic_int_set (&g->state, state);
      g_mutex_unlock (&g->lock);
      if (state > 0)
        GST_INFO_OBJECT (pad, "ghost pads: packets go straight to %" GST_PTR_FORMAT " (%u pads fewer)", g->target,
                         g->n);
    }
  if (state < 0)
    return GST_PAD_PROBE_REMOVE;
  if (state == 0)
    return GST_PAD_PROBE_OK;
  if (GST_PAD_PEER (pad) != g->run[0])
    {
      g_atomic_int_set (&g->state, 0);   /* relinked: look again at the next one */
      return GST_PAD_PROBE_OK;
    }
  /* (sticky events wait to be sent on source pads only) */
  for (guint i = 0; i < g->n; i++)
    if (GST_PAD_IS_BLOCKED (g->run[i]) || GST_PAD_IS_FLUSHING (g->run[i])
        || (GST_PAD_IS_SRC (g->run[i]) && GST_PAD_HAS_PENDING_EVENTS (g->run[i])))
      return GST_PAD_PROBE_OK;
  return rec_probe_hand_on (info, g->target);
}

static void
add_ghost_skip (GstPad *src)
{
  GhostSkip *g;

  if (src == NULL || g_object_get_data (G_OBJECT (src), "rec-shortcut"))
    return;
  g = g_new0 (GhostSkip, 1);
  g_mutex_init (&g->lock);
  g_object_set_data_full (G_OBJECT (src), "rec-shortcut", g, ghost_skip_free);
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, ghost_probe, g, NULL);
}

static void
add_ghost_skip_on (GstElement *element, const char *pad_name)
{
  GstPad *src = gst_element_get_static_pad (element, pad_name);
  add_ghost_skip (src);
  g_clear_object (&src);
}

static void
on_session_pad_added (GstElement *session, GstPad *pad, gpointer user_data)
{
  if (g_strcmp0 (GST_PAD_NAME (pad), "send_rtp_src") == 0)
    add_ghost_skip (pad);
}

static void
on_deep_element_added (GstBin *webrtc, GstBin *sub_bin, GstElement *element, gpointer user_data)
{
  GstElement *parent = GST_ELEMENT (sub_bin);

  if (rec_is_factory (element, "rtpptdemux"))
    add_skip (element, SKIP_PT_DEMUX);
  else if (rec_is_factory (element, "clocksync") && rec_is_factory (parent, "dtlssrtpenc"))
    add_skip (element, SKIP_DTLS_CLOCKSYNC);
  else if (rec_is_factory (element, "capsfilter") && g_strcmp0 (G_OBJECT_TYPE_NAME (parent), "TransportReceiveBin") == 0)
    add_skip (element, SKIP_CAPSFILTER);
  /* The aux bins are plain bins: found through what they hold. */
  else if (rec_is_factory (element, "rtprtxreceive") && rec_is_factory (parent, "bin"))
    add_skip (parent, SKIP_AUX_RECEIVER);
  else if (rec_is_factory (element, "rtprtxsend") && rec_is_factory (parent, "bin"))
    add_skip (parent, SKIP_AUX_SENDER);
  /* the runs of ghost pads, from the pad before them */
  else if (rec_is_factory (element, "srtpdec"))
    add_ghost_skip_on (element, "rtp_src");
  else if (rec_is_factory (element, "rtpfunnel") || (rec_is_factory (element, "funnel") && rec_is_factory (parent, "dtlssrtpenc")))
    add_ghost_skip_on (element, "src");
  else if (rec_is_factory (element, "rtpsession"))
    {
      add_ghost_skip_on (element, "send_rtp_src");
      g_signal_connect (element, "pad-added", G_CALLBACK (on_session_pad_added), NULL);
    }
}

void
rec_shortcut_install (GstElement *webrtc)
{
  g_signal_connect (webrtc, "deep-element-added", G_CALLBACK (on_deep_element_added), NULL);
}

void
rec_shortcut_capsfilter (GstElement *capsfilter)
{
  add_skip (capsfilter, SKIP_CAPSFILTER);
}

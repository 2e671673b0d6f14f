/* recorder-private.h — the recorder's own declarations: the events.jsonl
 * writer with the rolling hash chain (rec-log.c) and the append-only recording
 * file writer (rec-file.c). Not for use outside recorder/ and its tests. */
#pragma once

#include "recorder.h"

#include <gst/gst.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (rec_debug);
#define GST_CAT_DEFAULT rec_debug

/* Every log line carries the session id. */
#define REC_LOG(level, sid, fmt, ...) \
  GST_CAT_LEVEL_LOG (rec_debug, level, NULL, "[%s] " fmt, (sid), ##__VA_ARGS__)
#define REC_INFO(sid, fmt, ...) REC_LOG (GST_LEVEL_INFO, sid, fmt, ##__VA_ARGS__)
#define REC_WARN(sid, fmt, ...) REC_LOG (GST_LEVEL_WARNING, sid, fmt, ##__VA_ARGS__)
#define REC_ERR(sid, fmt, ...) REC_LOG (GST_LEVEL_ERROR, sid, fmt, ##__VA_ARGS__)
#define REC_DBG(sid, fmt, ...) REC_LOG (GST_LEVEL_DEBUG, sid, fmt, ##__VA_ARGS__)

void rec_debug_init (void);

/** rec_time_now: (transfer full) RFC 3339 UTC with milliseconds. */
char *rec_time_now (void);

/* ---- rec-insulator.c: keeps one tee branch's errors from the others ---- */

/**
 * rec_passthrough_pads:
 * Gives @element (a thread-less one-in one-out element) its always "sink" and
 * "src" pads from the class's templates, caps and allocation proxied, @chain
 * (and @event, if not %NULL) on the sink pad.
 */
void rec_passthrough_pads (GstElement *element, GstPadChainFunction chain, GstPadEventFunction event,
                           GstPad **sinkpad, GstPad **srcpad);

#define REC_TYPE_INSULATOR (rec_insulator_get_type ())
G_DECLARE_FINAL_TYPE (RecInsulator, rec_insulator, REC, INSULATOR, GstElement)
/** rec_insulator_new: (transfer floating) a pass-through that returns OK upstream whatever happens downstream. */
GstElement *rec_insulator_new (const char *session_id);

/* ---- rec-forward.c: in place of rtpbin's jitter buffer, no thread ---- */

#define REC_TYPE_FORWARD (rec_forward_get_type ())
G_DECLARE_FINAL_TYPE (RecForward, rec_forward, REC, FORWARD, GstElement)
/** rec_forward_new: (transfer floating) passes RTP packets on as they arrive. */
GstElement *rec_forward_new (void);

/* ---- rec-batch.c: the writer's queue, woken per batch ---- */

#define REC_TYPE_BATCH (rec_batch_get_type ())
G_DECLARE_FINAL_TYPE (RecBatch, rec_batch, REC, BATCH, GstElement)

/** RecBatchDrainedFunc: called in the batch's thread after each batch is pushed. */
typedef void (*RecBatchDrainedFunc) (RecBatch *batch, gpointer user_data);

/**
 * rec_batch_new: (transfer floating)
 * A queue with a thread of its own that pushes what waits every @interval_ms
 * (an item after an idle interval, and an EOS, at once), then calls @drained. Beyond
 * @max_bytes, or for buffers older than @max_age_ms, the oldest buffers are
 * dropped.
 */
GstElement *rec_batch_new (guint interval_ms, gsize max_bytes, guint max_age_ms, RecBatchDrainedFunc drained,
                           gpointer user_data);

/* ---- rec-receive.c: received packets skip webrtcbin's receive queue ---- */

/**
 * rec_receive_bypass:
 * Each transport of @webrtc (a webrtcbin not yet in a pipeline) is read by
 * the process's receive thread ("nicerecv") from its first packet on, and
 * once the transport is up its packets go from there straight into
 * DTLS/SRTP instead of through webrtcbin's receive queue and its thread.
 */
void rec_receive_bypass (GstElement *webrtc);

/* ---- rec-shortcut.c: packets skip rtpbin's and dtlssrtpenc's idle elements ---- */

/**
 * rec_shortcut_install:
 * Relayed packets skip the elements of @webrtc's RTP path (a webrtcbin not
 * yet in a pipeline) that pass them on unchanged while RTX, RED and ULPFEC
 * are not negotiated: the aux receiver (rtprtxreceive → rtpreddec), the
 * payload demuxer with one payload type and the ULPFEC decoder after it, the
 * aux sender (rtprtxsend) and dtlssrtpenc's clocksync; and runs of ghost
 * pads between webrtcbin's inner bins are crossed in one step. Events keep
 * the full path.
 */
void rec_shortcut_install (GstElement *webrtc);

/** rec_is_factory: @e (nullable) was made by the element factory @name. */
gboolean rec_is_factory (GstElement *e, const char *name);

/**
 * rec_probe_hand_on:
 * For a buffer (or buffer list) probe: chains the data into @target instead
 * of letting it go its own way, and returns %GST_PAD_PROBE_HANDLED with
 * @target's flow return.
 */
GstPadProbeReturn rec_probe_hand_on (GstPadProbeInfo *info, GstPad *target);

/**
 * rec_shortcut_capsfilter:
 * Buffers skip @capsfilter (one of the recorder's own) while its input has
 * caps and its output has sent them; events and negotiation keep its path.
 */
void rec_shortcut_capsfilter (GstElement *capsfilter);

/* ---- rec-send.c: relayed packets skip webrtcbin's idle send elements ---- */

/**
 * rec_send_bypass:
 * Packets sent by @webrtc (a webrtcbin not yet in a pipeline) go from its
 * sink pads straight to its RTP funnel while its FEC and RED encoders pass
 * them through (FEC and RED not negotiated), skipping those and clocksync.
 */
void rec_send_bypass (GstElement *webrtc);

/* ---- events.jsonl: append-only, one fsync'ed line per event ---- */

typedef struct _RecLog RecLog;

/**
 * rec_log_open:
 * Opens @path for appending, creating it if needed. An existing log (a
 * recorder restarted for the same session) is read back and checked line by
 * line; seq and the hash chain continue from its last entry. A torn last line
 * (no newline: a crash during a write) is cut off.
 * Returns: (transfer full) (nullable)
 */
RecLog *rec_log_open (const char *path, const char *session_id, GError **error);

/**
 * rec_log_append:
 * @event: (transfer none): the event without "seq"; "time" is added if absent.
 * Adds the next seq, checks the line against event.schema.json, writes it and
 * fsyncs. Thread-safe. On failure nothing is written.
 */
gboolean rec_log_append (RecLog *log, JsonObject *event, GError **error);

/**
 * rec_log_append_segment:
 * Appends a "segment" entry for @length bytes of @file at @offset whose
 * SHA-256 is @sha256, chaining it to the previous segment. The caller must
 * have made those bytes durable first. Thread-safe.
 */
gboolean rec_log_append_segment (RecLog *log, const char *file, guint64 offset, guint64 length,
                                 const guint8 sha256[32], guint64 running_time_ns, GError **error);

/** rec_log_next_seq: the seq the next entry will get. */
guint64 rec_log_next_seq (RecLog *log);
/** rec_log_chain_hex: (transfer full) the chain head as hex (zeros before any segment). */
char *rec_log_chain_hex (RecLog *log);
/** rec_log_max_part: highest "part" of a part-start entry read back, or 0. */
guint rec_log_max_part (RecLog *log);
void rec_log_free (RecLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RecLog, rec_log_free)

/* ---- one recording part: write(), hash, fdatasync, chain ---- */

typedef struct _RecPartFile RecPartFile;

/**
 * rec_part_file_new:
 * Creates @dir/@name (O_EXCL, append-only use) whose segments go to @log.
 * Returns: (transfer full) (nullable)
 */
RecPartFile *rec_part_file_new (const char *dir, const char *name, RecLog *log, GError **error);

/**
 * rec_part_file_write:
 * Appends @len bytes with write(2) and hashes them into the pending segment.
 * After a failure (ENOSPC: TG_ERROR_NOSPACE) the file refuses further writes;
 * what was written stays.
 */
gboolean rec_part_file_write (RecPartFile *file, const guint8 *data, gsize len, GError **error);

/**
 * rec_part_file_flush:
 * If bytes are pending: fdatasync, then append their segment entry to the
 * log (so the log never claims bytes that are not durable). Thread-safe.
 */
gboolean rec_part_file_flush (RecPartFile *file, guint64 running_time_ns, GError **error);

/** rec_part_file_due: %TRUE if bytes are pending for longer than @interval_us. */
gboolean rec_part_file_due (RecPartFile *file, gint64 interval_us);
/** rec_part_file_size: bytes written so far. */
guint64 rec_part_file_size (RecPartFile *file);
const char *rec_part_file_name (RecPartFile *file);
/** rec_part_file_failed: %TRUE after a write error. */
gboolean rec_part_file_failed (RecPartFile *file);
/** rec_part_file_free: flushes nothing; closes the descriptor. */
void rec_part_file_free (RecPartFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RecPartFile, rec_part_file_free)

G_END_DECLS

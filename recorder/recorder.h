/* recorder.h — Testigo's per-session recorder: one GStreamer pipeline with a
 * webrtcbin per participant (signatory, officer), relaying media between them
 * without transcoding and recording every track, as received, into Matroska
 * parts in the session directory, with the rolling SHA-256 chain of the bytes
 * written appended to events.jsonl.
 *
 * The recorder runs as its own process, testigo-recorder (one per session),
 * driven by testigod over a line protocol on stdin/stdout: see
 * recorder/README.md. This header is the library's contract with that
 * executable and with tests.
 *
 * Every function that can fail takes GError ** last; errors are in the
 * REC_ERROR domain (or TG_ERROR for I/O errors from common/).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define REC_ERROR (rec_error_quark ())
GQuark rec_error_quark (void);

typedef enum {
  REC_ERROR_FAILED,    /* anything else */
  REC_ERROR_INVALID,   /* a malformed or schema-violating control message */
  REC_ERROR_STATE,     /* a message that does not fit the session's state */
  REC_ERROR_PIPELINE,  /* GStreamer refused (element missing, link, SDP) */
  REC_ERROR_TIMEOUT,   /* something did not happen in time */
  REC_ERROR_NOSPACE,   /* the disk is full: writing stopped */
} RecError;

/** Largest RecOptions.jitter_buffer_ms. */
#define REC_JITTER_BUFFER_MAX_MS 2000

/** Largest control line accepted on stdin, newline excluded. */
#define REC_CONTROL_MAX_LINE ((gsize) 64 * 1024)

/**
 * RecOptions:
 * @session_dir: the session directory (must exist); recording-N.mkv,
 *   events.jsonl and stills/ are written there.
 * @session_id: the session id ([A-Za-z0-9._-]{1,64}), carried by every log line.
 * @stun_server: (nullable): stun://host:port for webrtcbin.
 * @turn_server: (nullable): turn(s)://user:password@host:port for webrtcbin.
 * @loopback: make webrtcbin gather candidates on 127.0.0.1 (tests, one machine).
 * @segment_interval_ms: how often written bytes are made durable and chained
 *   (0: 2000 ms; at most 5000 ms).
 * @keyframe_interval_ms: periodic keyframe request (0: 3000 ms).
 * @jitter_buffer_ms: 0 (the default): received RTP packets are relayed and
 *   recorded as they arrive, in the receiving thread (rec-forward.c); N > 0
 *   (at most 2000): through rtpbin's jitter buffer with N ms of latency, which
 *   reorders late packets at the cost of a thread hop per packet and N ms.
 * @receive_queue: read packets as webrtcbin does (in nicesrc's thread, then
 *   its receive queue's: one more thread hop each); by default one receive
 *   thread reads every transport and, once a transport is up, hands packets
 *   straight to DTLS/SRTP (rec-receive.c). For measurement.
 * @send_encoders: keep webrtcbin's clocksync and FEC/RED encoders in the path
 *   of every relayed packet; by default packets skip them while FEC and RED
 *   are off (rec-send.c). For measurement.
 * @rtp_elements: keep the elements of webrtcbin's RTP path that pass packets
 *   on unchanged (RTX, RED and ULPFEC elements, the payload demuxer, DTLS's
 *   clocksync, the ghost pads between webrtcbin's inner bins, capsfilters) in every
 *   relayed packet's path; by default packets skip them while they are idle
 *   (rec-shortcut.c). For measurement.
 */
typedef struct {
  const char *session_dir;
  const char *session_id;
  const char *stun_server;
  const char *turn_server;
  gboolean loopback;
  guint segment_interval_ms;
  guint keyframe_interval_ms;
  guint jitter_buffer_ms;
  gboolean receive_queue;
  gboolean send_encoders;
  gboolean rtp_elements;
} RecOptions;

/**
 * RecEmitFunc:
 * @line: one JSON object, without a newline
 * @user_data: as given to rec_session_new()
 *
 * Called for every message to the server. Calls are serialised, but may come
 * from any thread.
 */
typedef void (*RecEmitFunc) (const char *line, gpointer user_data);

typedef struct _RecSession RecSession;

/**
 * rec_session_new:
 * Opens (or continues, after a crash) the session's events.jsonl and builds
 * the pipeline. Needs gst_init() and a running default GMainContext.
 * Emits {"type":"ready"} on success.
 * Returns: (transfer full) (nullable): the session, or %NULL with @error set.
 */
RecSession *rec_session_new (const RecOptions *options, RecEmitFunc emit, gpointer user_data,
                             GError **error);

/**
 * rec_session_handle_line:
 * @line: one control line (need not be NUL-terminated), newline excluded
 * @len: its length
 *
 * Validates and executes one control message; a bad message gets an
 * {"type":"error"} reply and changes nothing. Call from the main context.
 */
void rec_session_handle_line (RecSession *session, const char *line, gsize len);

/**
 * rec_session_stop:
 * Finalises every part (EOS into each branch, wait at the file writer with a
 * timeout, pipeline to NULL), chains the last bytes and emits
 * {"type":"stopped","parts":[...]}. Idempotent. Call from the main context.
 */
void rec_session_stop (RecSession *session);

/** rec_session_is_stopped: %TRUE once rec_session_stop() has finished. */
gboolean rec_session_is_stopped (RecSession *session);

/** rec_session_free: stops the session if needed and frees it. */
void rec_session_free (RecSession *session);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (RecSession, rec_session_free)

G_END_DECLS

/* sig-stills.h — GET /api/sessions/<id>/stills/<name>.png: the recorder's
 * stills of a session, for the officer console (docs/protocol.md). */
#pragma once

#include "sig-private.h"

G_BEGIN_DECLS

/* Largest still served; the recorder writes one decoded video frame as PNG,
 * far below this. */
#define SIG_MAX_STILL ((goffset) 16 * 1024 * 1024)

/**
 * sig_still_name_ok:
 * Whether @name is a still file name the recorder may have written:
 * `^[A-Za-z0-9][A-Za-z0-9._-]*\.png$`, at most 64 bytes (bundle-format.md).
 */
gboolean sig_still_name_ok (const char *name);

/**
 * sig_stills_serve:
 * Replies to @msg (the caller has checked the officer's cookie) with the PNG
 * @name saved by the recorder in the folder of session @session_id: 200
 * image/png; 400 for a name that cannot be a still; 404 for an unknown
 * session or a still it does not have (symbolic links and non-regular files
 * are never followed); 500 when the file is larger than SIG_MAX_STILL, is
 * not a PNG or cannot be read.
 */
void sig_stills_serve (SigServer *srv, SoupServerMessage *msg, const char *session_id, const char *name);

G_END_DECLS

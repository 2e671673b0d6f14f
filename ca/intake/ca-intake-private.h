/* ca-intake-private.h — the parts of ca/intake that do not touch OpenSSL: the
 * signed body (one MIME entity, text/plain) and the request template. Kept
 * apart so that they can be read and tested on their own. */
#pragma once

#include "ca-intake.h"

G_BEGIN_DECLS

/**
 * ca_intake_body_text:
 * @content: the signed content exactly as verified (a MIME entity with
 *   headers, or bare text when the signer signed a plain file).
 * @text: (out) (transfer full): the body as UTF-8 text, transfer decoding
 *   (quoted-printable, base64), charset and format=flowed undone.
 *
 * Refuses (TG_ERROR_INVALID) a body that is not text/plain (multipart,
 * HTML), an unknown transfer encoding or charset, malformed quoted-printable
 * or base64, invalid UTF-8; TG_ERROR_TOO_BIG over CA_INTAKE_MAX_BODY.
 */
gboolean ca_intake_body_text (const char *content, gsize len, char **text, GError **error);

/**
 * ca_intake_read_template:
 * Reads the request fields (name, national_id, email, action, reason,
 * suspension_days) of @request from @text and applies the rules that need
 * only the body: TG_ERROR_REFUSED for a missing field, an unknown action, a
 * suspension without a duration or outside 1..15 days, a duration on another
 * action; TG_ERROR_INVALID for a field given twice with different values, an
 * over-long value or control characters.
 */
gboolean ca_intake_read_template (const char *text, CaIntakeRequest *request, GError **error);

/** ca_intake_id_key: (transfer full) the comparison key of a national ID: letters and digits, upper case. */
char *ca_intake_id_key (const char *id);

G_END_DECLS

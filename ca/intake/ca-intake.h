/* ca-intake.h — requests by signed e-mail (S/MIME, RFC 8551): detached
 * (multipart/signed) or opaque (application/pkcs7-mime), LF or CRLF as mail
 * clients write them. The signature must verify and the signer certificate
 * chain to the given CA; the request fields come from the signed body only
 * (the template in docs/intake.md, Spanish or English keys). Errors are in
 * the TG_ERROR domain: TG_ERROR_TOO_BIG, TG_ERROR_INVALID (not S/MIME, bad
 * template), TG_ERROR_CRYPTO (signature or chain), TG_ERROR_REFUSED (a rule:
 * unknown action, suspension over 15 days, ID in the body not the signer's).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CA_INTAKE_MAX_MESSAGE ((gsize) 4 * 1024 * 1024)
/* The signed body, after transfer decoding: a request is a few lines. */
#define CA_INTAKE_MAX_BODY ((gsize) 64 * 1024)

typedef struct {
  /* from the signed body */
  char *name;
  char *national_id;         /* as written, normalised: upper case, e.g. "V-12345678" */
  char *email;
  char *action;              /* "renewal", "suspension", "reactivation", "revocation" */
  char *reason;              /* free text, may be empty for renewal */
  int suspension_days;       /* 1..15 for a suspension, else 0 */
  /* from the message and the signature */
  char *message_sha256;      /* hex, of the message bytes exactly as received (replay key) */
  char *signature_sha256;    /* hex, of the SignerInfo signature value: the same for every copy of
                              * one signed request whatever its headers or line endings (replay key
                              * that survives re-sending; added by ca/intake) */
  char *signer_cert_pem;
  char *signer_serial_hex;   /* upper-case hex */
  char *signer_subject;      /* one-line RFC 2253 */
  char *signer_national_id;  /* subject serialNumber attribute, NULL when absent */
  char *signer_email;        /* SAN rfc822Name or emailAddress, NULL when absent */
  gboolean detached;         /* multipart/signed (TRUE) or opaque (FALSE) */
  gint64 signing_time;       /* the signer's claim (signingTime attribute), 0 when absent; not trusted */
} CaIntakeRequest;

void ca_intake_request_free (CaIntakeRequest *request);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CaIntakeRequest, ca_intake_request_free)

typedef struct {
  const char *ca_file;       /* trust anchors and intermediates, PEM (required) */
  gint64 now;                /* verification time, unix seconds; <= 0 means now */
} CaIntakeOptions;

/**
 * ca_intake_parse:
 * Verifies and reads one message. Returns: (transfer full) the request, or
 * NULL with @error saying exactly why it was refused.
 */
CaIntakeRequest *ca_intake_parse (GBytes *message, const CaIntakeOptions *options, GError **error);

/** ca_intake_request_to_json: (transfer full) the request as a JSON object text (no PEM). */
char *ca_intake_request_to_json (const CaIntakeRequest *request);

G_END_DECLS

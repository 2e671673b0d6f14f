/* fuzz-intake.c — libFuzzer target for the signed e-mail intake: the input
 * is one message given to ca_intake_parse() with $TESTIGO_FUZZ_ROOT
 * (tests/fuzz/corpus-root.pem) as the CA, at a fixed time inside the
 * validity of the corpus signer (Ana Pérez, issued by the corpus root), so
 * that the seed messages reach the template and the certificate checks. The
 * same input is also read as a signed body (MIME entity and template) on its
 * own, since a mutated message seldom verifies. Any crash, hang, sanitizer
 * report or GLib critical is a bug; a refusal of any kind is not.
 */
#include "ca-intake-private.h"
#include "tg-common.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* 2027-01-15: the corpus signer's certificate is valid 2026-11-25 .. 2046. */
#define FUZZ_NOW G_GINT64_CONSTANT (1800000000)

static char *root_pem;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *env = g_getenv ("TESTIGO_FUZZ_ROOT");

  if (env == NULL)
    {
      fprintf (stderr, "fuzz-intake: set TESTIGO_FUZZ_ROOT to tests/fuzz/corpus-root.pem\n");
      abort ();
    }
  root_pem = g_strdup (env);
  return 0;
}

static void
check_request (const CaIntakeRequest *r)
{
  g_autofree char *json = NULL;

  g_assert (r->name != NULL && r->national_id != NULL && r->email != NULL && r->reason != NULL);
  g_assert (g_utf8_validate (r->name, -1, NULL) && g_utf8_validate (r->reason, -1, NULL));
  if (strcmp (r->action, "suspension") == 0)
    g_assert (r->suspension_days >= 1 && r->suspension_days <= 15);
  else
    {
      g_assert (strcmp (r->action, "renewal") == 0 || strcmp (r->action, "reactivation") == 0
                || strcmp (r->action, "revocation") == 0);
      g_assert (r->suspension_days == 0);
    }
  g_assert (strchr (r->email, '@') != NULL);
  json = ca_intake_request_to_json (r);
  g_assert (json != NULL && json[0] == '{');
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) message = g_bytes_new (data, size);
  g_autoptr (CaIntakeRequest) request = NULL;
  g_autoptr (GError) error = NULL;
  CaIntakeOptions opts = { 0 };

  if (root_pem == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  opts.ca_file = root_pem;
  opts.now = FUZZ_NOW;
  request = ca_intake_parse (message, &opts, &error);
  if (request != NULL)
    {
      g_assert (error == NULL);
      g_assert (request->message_sha256 != NULL && strlen (request->message_sha256) == 64);
      g_assert (request->signer_cert_pem != NULL && request->signer_subject != NULL);
      check_request (request);
    }
  else
    {
      g_assert (error != NULL && error->domain == TG_ERROR && error->message[0] != '\0');
      g_assert (error->code == TG_ERROR_INVALID || error->code == TG_ERROR_TOO_BIG
                || error->code == TG_ERROR_CRYPTO || error->code == TG_ERROR_REFUSED);
    }

  /* The body and template readers on the raw input. */
  if (size <= CA_INTAKE_MAX_BODY * 4)
    {
      g_autofree char *text = NULL;
      g_autoptr (GError) body_error = NULL;
      if (ca_intake_body_text ((const char *) data, size, &text, &body_error))
        {
          g_autoptr (CaIntakeRequest) r = g_new0 (CaIntakeRequest, 1);
          g_autoptr (GError) template_error = NULL;
          g_assert (g_utf8_validate (text, -1, NULL));
          if (ca_intake_read_template (text, r, &template_error))
            check_request (r);
          else
            g_assert (template_error != NULL && template_error->message[0] != '\0');
        }
      else
        g_assert (body_error != NULL && body_error->message[0] != '\0');
    }
  return 0;
}

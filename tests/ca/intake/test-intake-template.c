/* test-intake-template.c — the signed body (MIME entity) and the request
 * template of ca/intake, without signatures: table-driven cases for the
 * lenient reading and every refusal (TAP via g_test). */
#include "ca-intake-private.h"
#include "tg-common.h"

#include <string.h>

#define BASE "Nombre: Ana Pérez\nCédula: V-12345678\nCorreo: ana.perez@example.ve\n"

typedef struct {
  const char *name;
  const char *body;
  int code;             /* -1: accepted, else the TG_ERROR code */
  const char *expect;   /* accepted: "action/days/national_id/email/reason"; refused: a substring of the message */
} Case;

static const Case cases[] = {
  /* accepted */
  { "spanish", BASE "Solicitud: suspensión\nMotivo: viaje\nDuración: 10 días\n", -1,
    "suspension/10/V-12345678/ana.perez@example.ve/viaje" },
  { "keys-without-accents-upper", "NOMBRE: Ana\nCEDULA: v-1\nCORREO ELECTRONICO: a@b\nACCION: REACTIVACION\nRAZON: listo\n", -1,
    "reactivation/0/V-1/a@b/listo" },
  { "english", "Full name: Ana\nNational ID: V-1\nMail: mailto:a@b\nAction: revoke\nReason: lost\n", -1,
    "revocation/0/V-1/a@b/lost" },
  { "days-variants-d", BASE "Solicitud: suspender\nMotivo: x\nDuración: 1 d\n", -1, "suspension/1/V-12345678/ana.perez@example.ve/x" },
  { "days-variants-parens", BASE "Solicitud: suspension\nMotivo: x\nDuration: 15 día(s)\n", -1,
    "suspension/15/V-12345678/ana.perez@example.ve/x" },
  { "action-with-suffix", BASE "Solicitud: Renovación del certificado.\n", -1, "renewal/0/V-12345678/ana.perez@example.ve/" },
  { "quoted-and-signature-ignored", BASE "> Solicitud: revocación\nSolicitud: renovación\n-- \nSolicitud: revocación\n", -1,
    "renewal/0/V-12345678/ana.perez@example.ve/" },
  { "same-value-twice", BASE "Solicitud: renovación\nSolicitud: renovación\n", -1, "renewal/0/V-12345678/ana.perez@example.ve/" },
  { "empty-template-lines", BASE "Solicitud: renovación\nMotivo:\nDuración:   \n", -1, "renewal/0/V-12345678/ana.perez@example.ve/" },
  { "crlf", "Nombre: Ana\r\nCI: V 1 2\r\nEmail: a@b\r\nRequest: renewal\r\n", -1, "renewal/0/V12/a@b/" },
  { "colon-in-reason", BASE "Solicitud: revocación\nMotivo: robo: me robaron el token\n", -1,
    "revocation/0/V-12345678/ana.perez@example.ve/robo: me robaron el token" },
  /* refused by a rule */
  { "30-days", BASE "Solicitud: suspensión\nMotivo: x\nDuración: 30 días\n", TG_ERROR_REFUSED, "at most 15 days" },
  { "huge-days", BASE "Solicitud: suspensión\nMotivo: x\nDuración: 99999999999999 días\n", TG_ERROR_REFUSED, "at most 15 days" },
  { "negative-days", BASE "Solicitud: suspensión\nMotivo: x\nDuración: -3\n", TG_ERROR_REFUSED, "is not a number of days" },
  { "days-weeks", BASE "Solicitud: suspensión\nMotivo: x\nDuración: 2 semanas\n", TG_ERROR_REFUSED, "is not a number of days" },
  { "zero-days", BASE "Solicitud: suspensión\nMotivo: x\nDuración: 0 días\n", TG_ERROR_REFUSED, "at least 1 day" },
  { "no-duration", BASE "Solicitud: suspensión\nMotivo: x\n", TG_ERROR_REFUSED, "needs a duration" },
  { "duration-on-revocation", BASE "Solicitud: revocación\nMotivo: x\nDuración: 3\n", TG_ERROR_REFUSED, "only for a suspension" },
  { "unknown", BASE "Solicitud: anulación\n", TG_ERROR_REFUSED, "unknown request \"anulación\"" },
  { "two-words", BASE "Solicitud: renovación y revocación\nMotivo: x\n", TG_ERROR_REFUSED, "unknown request" },
  { "choice-list", BASE "Solicitud: renovación / revocación\n", TG_ERROR_REFUSED, "more than one action" },
  { "no-reason", BASE "Solicitud: reactivación\n", TG_ERROR_REFUSED, "a reactivation needs a reason" },
  { "no-name", "Cédula: V-1\nCorreo: a@b\nSolicitud: renovación\n", TG_ERROR_REFUSED, "no name" },
  { "no-id", "Nombre: Ana\nCorreo: a@b\nSolicitud: renovación\n", TG_ERROR_REFUSED, "no national ID" },
  { "no-email", "Nombre: Ana\nCédula: V-1\nSolicitud: renovación\n", TG_ERROR_REFUSED, "no e-mail" },
  { "no-request", BASE, TG_ERROR_REFUSED, "names no request" },
  { "bad-email", "Nombre: Ana\nCédula: V-1\nCorreo: ana at example\nSolicitud: renovación\n", TG_ERROR_REFUSED,
    "is not an e-mail address" },
  { "two-at", "Nombre: Ana\nCédula: V-1\nCorreo: a@b@c\nSolicitud: renovación\n", TG_ERROR_REFUSED, "is not an e-mail address" },
  { "id-no-alnum", "Nombre: Ana\nCédula: --\nCorreo: a@b\nSolicitud: renovación\n", TG_ERROR_REFUSED, "is not a national ID" },
  /* refused as invalid */
  { "conflict", BASE "Solicitud: renovación\nSolicitud: revocación\n", TG_ERROR_INVALID, "given twice with different values" },
  { "bidi", "Nombre: Ana \xe2\x80\xae" "zereP\nCédula: V-1\nCorreo: a@b\nSolicitud: renovación\n", TG_ERROR_INVALID,
    "control characters" },
  { "control", "Nombre: Ana\x1b[31m\nCédula: V-1\nCorreo: a@b\nSolicitud: renovación\n", TG_ERROR_INVALID, "control characters" },
};

static void
test_template (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (CaIntakeRequest) r = g_new0 (CaIntakeRequest, 1);
  g_autoptr (GError) error = NULL;
  gboolean ok = ca_intake_read_template (c->body, r, &error);

  if (c->code < 0)
    {
      g_autofree char *got = NULL;
      g_assert_no_error (error);
      g_assert_true (ok);
      got = g_strdup_printf ("%s/%d/%s/%s/%s", r->action, r->suspension_days, r->national_id, r->email, r->reason);
      g_assert_cmpstr (got, ==, c->expect);
    }
  else
    {
      g_assert_false (ok);
      g_assert_error (error, TG_ERROR, c->code);
      if (strstr (error->message, c->expect) == NULL)
        g_error ("expected \"%s\" in \"%s\"", c->expect, error->message);
    }
}

static void
test_long_values (void)
{
  g_autofree char *name = g_strnfill (201, 'a');
  g_autofree char *body = g_strdup_printf ("Nombre: %s\nCédula: V-1\nCorreo: a@b\nSolicitud: renovación\n", name);
  g_autoptr (CaIntakeRequest) r = g_new0 (CaIntakeRequest, 1);
  g_autoptr (GError) error = NULL;

  g_assert_false (ca_intake_read_template (body, r, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_assert_nonnull (strstr (error->message, "the field Nombre is over 200 bytes"));
}

typedef struct {
  const char *name;
  const char *entity;
  int code;           /* -1: the text must be @expect */
  const char *expect;
} BodyCase;

static const BodyCase body_cases[] = {
  { "bare-template", "Nombre: Ana\r\nCorreo: a@b\r\n\r\nSolicitud: x\r\n", -1, "Nombre: Ana\nCorreo: a@b\n\nSolicitud: x\n" },
  { "no-headers", "\r\nNombre: Ana\r\n", -1, "Nombre: Ana\n" },
  { "text-plain", "Content-Type: text/plain\r\n\r\nC\xc3\xa9" "dula: 1\r\n", -1, "Cédula: 1\n" },
  { "folded-charset", "Content-Type: text/plain;\r\n\tcharset=\"iso-8859-1\"\r\n\r\nC\xe9" "dula: 1\r\n", -1, "Cédula: 1\n" },
  { "qp", "Content-Transfer-Encoding: quoted-printable\r\n\r\nA=C3=A9 =\r\nB  \r\nC=3D=\n", -1, "Aé B\nC=\n" },
  { "qp-padding", "Content-Transfer-Encoding: quoted-printable\r\n\r\nA=  \r\nB\r\n", -1, "AB\n" },
  { "base64", "Content-Transfer-Encoding: base64\r\n\r\nTm9tYnJlOiBBbmEK\r\n", -1, "Nombre: Ana\n" },
  { "flowed", "Content-Type: text/plain; format=flowed\r\n\r\nMotivo: uno \r\n dos\r\n-- \r\nAna\r\n", -1,
    "Motivo: uno dos\n-- \nAna\n" },
  { "flowed-delsp", "Content-Type: text/plain; format=flowed; delsp=yes\r\n\r\nMotivo: uno\xc2\xa0 \r\ndos\r\n", -1,
    "Motivo: uno\xc2\xa0" "dos\n" },
  { "html", "Content-Type: text/html\r\n\r\n<p>x</p>\r\n", TG_ERROR_INVALID, "is text/html, not text/plain" },
  { "multipart", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n", TG_ERROR_INVALID, "send the request as plain text" },
  { "bad-qp", "Content-Transfer-Encoding: quoted-printable\r\n\r\nA=G1\r\n", TG_ERROR_INVALID, "malformed quoted-printable" },
  { "bad-qp-end", "Content-Transfer-Encoding: quoted-printable\r\n\r\nA=4", TG_ERROR_INVALID, "malformed quoted-printable" },
  { "bad-base64-char", "Content-Transfer-Encoding: base64\r\n\r\nTm9t*nJl\r\n", TG_ERROR_INVALID, "malformed base64" },
  { "bad-base64-len", "Content-Transfer-Encoding: base64\r\n\r\nTm9tY\r\n", TG_ERROR_INVALID, "malformed base64" },
  { "bad-base64-pad", "Content-Transfer-Encoding: base64\r\n\r\nTm==Tm9t\r\n", TG_ERROR_INVALID, "malformed base64" },
  { "unknown-cte", "Content-Transfer-Encoding: x-uuencode\r\n\r\nx\r\n", TG_ERROR_INVALID, "unknown transfer encoding" },
  { "unknown-charset", "Content-Type: text/plain; charset=koi8-r\r\n\r\nx\r\n", TG_ERROR_INVALID, "koi8-r" },
  { "not-utf8", "Content-Type: text/plain\r\n\r\nC\xe9" "dula\r\n", TG_ERROR_INVALID, "not valid UTF-8" },
  { "two-content-types", "Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\nx\r\n", TG_ERROR_INVALID,
    "two Content-Type headers" },
};

static void
test_body (gconstpointer data)
{
  const BodyCase *c = data;
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok = ca_intake_body_text (c->entity, strlen (c->entity), &text, &error);

  if (c->code < 0)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      g_assert_cmpstr (text, ==, c->expect);
    }
  else
    {
      g_assert_false (ok);
      g_assert_error (error, TG_ERROR, c->code);
      if (strstr (error->message, c->expect) == NULL)
        g_error ("expected \"%s\" in \"%s\"", c->expect, error->message);
    }
}

static void
test_body_nul_and_size (void)
{
  static const char nul[] = "Content-Type: text/plain\r\n\r\nA\0B\r\n";
  g_autofree char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *big = g_strnfill (CA_INTAKE_MAX_BODY + 1, 'x');

  g_assert_false (ca_intake_body_text (nul, sizeof nul - 1, &text, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (ca_intake_body_text (big, strlen (big), &text, &error));
  g_assert_error (error, TG_ERROR, TG_ERROR_TOO_BIG);
}

static void
test_id_key (void)
{
  g_autofree char *a = ca_intake_id_key ("v-12.345.678");
  g_autofree char *b = ca_intake_id_key ("J-12345678-9");
  g_assert_cmpstr (a, ==, "V12345678");
  g_assert_cmpstr (b, ==, "J123456789");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *p = g_strdup_printf ("/ca/intake/template/%s", cases[i].name);
      g_test_add_data_func (p, &cases[i], test_template);
    }
  g_test_add_func ("/ca/intake/template/long-values", test_long_values);
  for (gsize i = 0; i < G_N_ELEMENTS (body_cases); i++)
    {
      g_autofree char *p = g_strdup_printf ("/ca/intake/body/%s", body_cases[i].name);
      g_test_add_data_func (p, &body_cases[i], test_body);
    }
  g_test_add_func ("/ca/intake/body/nul-and-size", test_body_nul_and_size);
  g_test_add_func ("/ca/intake/id-key", test_id_key);
  return g_test_run ();
}

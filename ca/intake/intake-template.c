/* intake-template.c — the signed body of an intake message: one MIME entity
 * (text/plain; quoted-printable, base64 or 8bit; UTF-8 or Latin-1;
 * format=flowed) and the request template read from it (docs/intake.md).
 *
 * Only a single entity is read here: OpenSSL has already split the
 * multipart/signed message and verified the signature over these bytes. A
 * body of several parts (multipart/alternative with HTML) is refused, not
 * parsed by hand.
 */
#include "config.h"
#include "ca-intake-private.h"
#include "tg-common.h"

#include <string.h>

/* ---- the MIME entity ---- */

#define MAX_HEADER_BLOCK ((gsize) 16 * 1024)

typedef struct {
  char *content_type; /* media type, lower case; NULL when absent */
  char *charset;      /* lower case; NULL when absent */
  char *encoding;     /* Content-Transfer-Encoding, lower case; NULL when absent */
  gboolean flowed;
  gboolean delsp;
} Entity;

static void
entity_clear (Entity *e)
{
  g_clear_pointer (&e->content_type, g_free);
  g_clear_pointer (&e->charset, g_free);
  g_clear_pointer (&e->encoding, g_free);
}

static gboolean
is_header_name (const char *s, gsize len)
{
  if (len == 0)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if ((guchar) s[i] < 33 || (guchar) s[i] > 126 || s[i] == ':')
      return FALSE;
  return TRUE;
}

static gboolean
is_mime_header (const char *name, gsize len)
{
  return (len > 8 && g_ascii_strncasecmp (name, "content-", 8) == 0)
         || (len == 12 && g_ascii_strncasecmp (name, "mime-version", 12) == 0);
}

/*
 * Does @s start with a header block of MIME headers? A block is a run of
 * "Name: value" lines (with folded continuations) ended by an empty line;
 * it counts only when one of its headers is Content-* or MIME-Version, so
 * that a bare template ("Nombre: Ana") signed as a plain file is not taken
 * for headers. An empty first line is an entity without headers.
 */
static gboolean
find_mime_headers (const char *s, gsize len, gsize *body_off)
{
  gsize pos = 0;
  gboolean mime = FALSE;

  while (pos < len && pos < MAX_HEADER_BLOCK)
    {
      const char *nl = memchr (s + pos, '\n', len - pos);
      gsize end, colon;
      if (nl == NULL)
        return FALSE;
      end = (gsize) (nl - s);
      if (end > pos && s[end - 1] == '\r')
        end--;
      if (end == pos)
        {
          if (pos != 0 && !mime)
            return FALSE;
          *body_off = (gsize) (nl - s) + 1;
          return TRUE;
        }
      if (s[pos] == ' ' || s[pos] == '\t')
        {
          if (pos == 0)
            return FALSE;
        }
      else
        {
          const char *c = memchr (s + pos, ':', end - pos);
          if (c == NULL)
            return FALSE;
          colon = (gsize) (c - s);
          if (!is_header_name (s + pos, colon - pos))
            return FALSE;
          if (is_mime_header (s + pos, colon - pos))
            mime = TRUE;
        }
      pos = (gsize) (nl - s) + 1;
    }
  return FALSE;
}

static char *
unquote (char *v)
{
  gsize n;

  g_strstrip (v);
  n = strlen (v);
  if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
    {
      memmove (v, v + 1, n - 2);
      v[n - 2] = '\0';
    }
  return v;
}

static gboolean
parse_content_type (const char *value, Entity *e, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (value, ";", 16);

  if (parts[0] == NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the signed body has an empty Content-Type");
      return FALSE;
    }
  e->content_type = g_ascii_strdown (g_strstrip (parts[0]), -1);
  for (guint i = 1; parts[i] != NULL; i++)
    {
      char *eq = strchr (parts[i], '=');
      g_autofree char *pname = NULL;
      if (eq == NULL)
        continue;
      *eq = '\0';
      pname = g_ascii_strdown (g_strstrip (parts[i]), -1);
      unquote (eq + 1);
      if (strcmp (pname, "charset") == 0 && e->charset == NULL)
        e->charset = g_ascii_strdown (eq + 1, -1);
      else if (strcmp (pname, "format") == 0)
        e->flowed = g_ascii_strcasecmp (eq + 1, "flowed") == 0;
      else if (strcmp (pname, "delsp") == 0)
        e->delsp = g_ascii_strcasecmp (eq + 1, "yes") == 0;
    }
  return TRUE;
}

/* Reads the headers of the block [0, @body_off) into @e. */
static gboolean
parse_headers (const char *s, gsize body_off, Entity *e, GError **error)
{
  g_autoptr (GString) name = g_string_new (NULL);
  g_autoptr (GString) value = g_string_new (NULL);
  gsize pos = 0;
  gboolean have = FALSE;

  while (TRUE)
    {
      const char *nl = memchr (s + pos, '\n', body_off - pos);
      gsize end = nl != NULL ? (gsize) (nl - s) : body_off;
      gboolean cont;

      if (end > pos && s[end - 1] == '\r')
        end--;
      cont = end > pos && (s[pos] == ' ' || s[pos] == '\t');
      if (cont)
        {
          g_string_append_c (value, ' ');
          g_string_append_len (value, s + pos, (gssize) (end - pos));
        }
      else
        {
          if (have)
            {
              g_strstrip (value->str);
              if (g_ascii_strcasecmp (name->str, "content-type") == 0)
                {
                  if (e->content_type != NULL)
                    {
                      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID,
                                           "the signed body has two Content-Type headers");
                      return FALSE;
                    }
                  if (!parse_content_type (value->str, e, error))
                    return FALSE;
                }
              else if (g_ascii_strcasecmp (name->str, "content-transfer-encoding") == 0)
                {
                  if (e->encoding != NULL)
                    {
                      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID,
                                           "the signed body has two Content-Transfer-Encoding headers");
                      return FALSE;
                    }
                  e->encoding = g_ascii_strdown (value->str, -1);
                }
              have = FALSE;
            }
          if (end == pos)
            break; /* the empty line */
          {
            const char *c = memchr (s + pos, ':', end - pos);
            g_assert (c != NULL); /* find_mime_headers checked every line */
            g_string_assign (name, "");
            g_string_append_len (name, s + pos, c - (s + pos));
            g_string_assign (value, "");
            g_string_append_len (value, c + 1, (gssize) (end - (gsize) (c + 1 - s)));
            have = TRUE;
          }
        }
      if (nl == NULL)
        break;
      pos = (gsize) (nl - s) + 1;
    }
  return TRUE;
}

static int
hexval (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* RFC 2045 §6.7: =XX, soft line breaks "=" CRLF (or LF, with transport
 * padding before it), trailing white space on a line dropped. Strict: any
 * other "=" is refused. */
static GString *
decode_qp (const char *in, gsize len, GError **error)
{
  g_autoptr (GString) out = g_string_sized_new (len);
  gsize i = 0;

  while (i < len)
    {
      char c = in[i];
      if (c == '=')
        {
          gsize j = i + 1;
          while (j < len && (in[j] == ' ' || in[j] == '\t'))
            j++;
          if (j == len)
            i = j;
          else if (in[j] == '\n')
            i = j + 1;
          else if (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')
            i = j + 2;
          else if (j == i + 1 && i + 2 < len && hexval (in[i + 1]) >= 0 && hexval (in[i + 2]) >= 0)
            {
              g_string_append_c (out, (char) (hexval (in[i + 1]) * 16 + hexval (in[i + 2])));
              i += 3;
            }
          else
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "malformed quoted-printable in the signed body at byte %" G_GSIZE_FORMAT, i);
              return NULL;
            }
        }
      else if (c == ' ' || c == '\t')
        {
          gsize j = i;
          while (j < len && (in[j] == ' ' || in[j] == '\t'))
            j++;
          if (!(j == len || in[j] == '\n' || (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')))
            g_string_append_len (out, in + i, (gssize) (j - i));
          i = j;
        }
      else
        {
          g_string_append_c (out, c);
          i++;
        }
    }
  return g_steal_pointer (&out);
}

/* Strict base64: only the alphabet, white space and final padding. */
static GString *
decode_base64 (const char *in, gsize len, GError **error)
{
  g_autoptr (GString) clean = g_string_sized_new (len);
  gsize pad = 0;
  guchar *raw;
  gsize rawlen = 0;
  GString *out;

  for (gsize i = 0; i < len; i++)
    {
      char c = in[i];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
        continue;
      if (c == '=')
        pad++;
      else if (pad > 0 || !(g_ascii_isalnum (c) || c == '+' || c == '/'))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                       "malformed base64 in the signed body at byte %" G_GSIZE_FORMAT, i);
          return NULL;
        }
      g_string_append_c (clean, c);
    }
  if (pad > 2 || clean->len % 4 != 0)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID,
                           "malformed base64 in the signed body (length or padding)");
      return NULL;
    }
  if (clean->len == 0)
    return g_string_new (NULL);
  raw = g_base64_decode (clean->str, &rawlen);
  out = g_string_new_len ((const char *) raw, (gssize) rawlen);
  g_free (raw);
  return out;
}

static gboolean
charset_is_utf8 (const char *cs)
{
  return cs == NULL || strcmp (cs, "utf-8") == 0 || strcmp (cs, "utf8") == 0
         || strcmp (cs, "us-ascii") == 0 || strcmp (cs, "ascii") == 0;
}

static gboolean
charset_is_latin (const char *cs)
{
  return strcmp (cs, "iso-8859-1") == 0 || strcmp (cs, "latin1") == 0
         || strcmp (cs, "iso-8859-15") == 0 || strcmp (cs, "windows-1252") == 0
         || strcmp (cs, "cp1252") == 0;
}

/* Lines to LF; format=flowed (RFC 3676) soft breaks joined. */
static char *
unflow (const char *text, gboolean flowed, gboolean delsp)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *l = lines[i];
      gsize n = strlen (l);
      if (n > 0 && l[n - 1] == '\r')
        l[--n] = '\0';
      if (lines[i + 1] == NULL && n == 0)
        break; /* after the last newline */
      if (flowed)
        {
          if (l[0] == ' ')
            {
              l++; /* space-stuffing */
              n--;
            }
          if (n > 0 && l[n - 1] == ' ' && strcmp (l, "-- ") != 0)
            {
              g_string_append_len (out, l, (gssize) (delsp ? n - 1 : n));
              continue; /* soft line break */
            }
        }
      g_string_append_len (out, l, (gssize) n);
      g_string_append_c (out, '\n');
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

gboolean
ca_intake_body_text (const char *content, gsize len, char **text, GError **error)
{
  Entity e = { 0 };
  gsize off = 0;
  g_autoptr (GString) body = NULL;
  g_autofree char *utf8 = NULL;
  gboolean ok = FALSE;

  if (find_mime_headers (content, len, &off))
    {
      if (memchr (content, '\0', off) != NULL)
        {
          g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the signed body's headers contain a NUL byte");
          goto out;
        }
      if (!parse_headers (content, off, &e, error))
        goto out;
    }
  if (len - off > CA_INTAKE_MAX_BODY * 3)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the signed body is over %" G_GSIZE_FORMAT " KiB",
                   CA_INTAKE_MAX_BODY / 1024);
      goto out;
    }
  if (e.content_type != NULL && strcmp (e.content_type, "text/plain") != 0)
    {
      if (g_str_has_prefix (e.content_type, "multipart/"))
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                     "the signed body is %s (several parts, e.g. text and HTML): send the request as plain text",
                     e.content_type);
      else
        g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                     "the signed body is %s, not text/plain", e.content_type);
      goto out;
    }
  if (e.encoding == NULL || strcmp (e.encoding, "7bit") == 0 || strcmp (e.encoding, "8bit") == 0
      || strcmp (e.encoding, "binary") == 0)
    body = g_string_new_len (content + off, (gssize) (len - off));
  else if (strcmp (e.encoding, "quoted-printable") == 0)
    body = decode_qp (content + off, len - off, error);
  else if (strcmp (e.encoding, "base64") == 0)
    body = decode_base64 (content + off, len - off, error);
  else
    g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                 "the signed body has an unknown transfer encoding \"%s\"", e.encoding);
  if (body == NULL)
    goto out;
  if (body->len > CA_INTAKE_MAX_BODY)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_TOO_BIG, "the signed body is over %" G_GSIZE_FORMAT " KiB",
                   CA_INTAKE_MAX_BODY / 1024);
      goto out;
    }
  if (memchr (body->str, '\0', body->len) != NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID, "the signed body contains a NUL byte");
      goto out;
    }
  if (charset_is_utf8 (e.charset))
    {
      if (!g_utf8_validate (body->str, (gssize) body->len, NULL))
        {
          g_set_error_literal (error, TG_ERROR, TG_ERROR_INVALID,
                               "the signed body is not valid UTF-8 (say charset=iso-8859-1 if it is Latin-1)");
          goto out;
        }
      utf8 = g_strndup (body->str, body->len);
    }
  else if (charset_is_latin (e.charset))
    {
      const char *from = strcmp (e.charset, "latin1") == 0 ? "ISO-8859-1" : e.charset;
      utf8 = g_convert (body->str, (gssize) body->len, "UTF-8", from, NULL, NULL, NULL);
      if (utf8 == NULL)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the signed body is not valid %s", e.charset);
          goto out;
        }
    }
  else
    {
      g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                   "the signed body's charset \"%s\" is not supported (UTF-8 or ISO-8859-1)", e.charset);
      goto out;
    }
  *text = unflow (utf8, e.flowed, e.delsp);
  ok = TRUE;
out:
  entity_clear (&e);
  return ok;
}

/* ---- the template ---- */

typedef enum { F_NAME, F_ID, F_EMAIL, F_ACTION, F_REASON, F_DURATION, F_COUNT } Field;

static const struct {
  const char *key; /* folded: no accents, lower case, letters and digits only */
  Field field;
} field_keys[] = {
  { "nombre", F_NAME }, { "nombres", F_NAME }, { "nombrecompleto", F_NAME },
  { "nombreyapellido", F_NAME }, { "nombresyapellidos", F_NAME }, { "name", F_NAME },
  { "fullname", F_NAME },
  { "cedula", F_ID }, { "ceduladeidentidad", F_ID }, { "ci", F_ID }, { "rif", F_ID },
  { "id", F_ID }, { "nationalid", F_ID },
  { "correo", F_EMAIL }, { "correoelectronico", F_EMAIL }, { "email", F_EMAIL },
  { "mail", F_EMAIL },
  { "solicitud", F_ACTION }, { "request", F_ACTION },
  { "accion", F_ACTION }, { "action", F_ACTION },
  { "motivo", F_REASON }, { "razon", F_REASON }, { "reason", F_REASON },
  { "duracion", F_DURATION }, { "duration", F_DURATION },
};

/* The key as the template writes it, for messages. */
static const char *const field_label[F_COUNT] = {
  "Nombre", "Cédula", "Correo", "Solicitud", "Motivo", "Duración",
};

/* Longest accepted value, in bytes. */
static const gsize field_max[F_COUNT] = { 200, 32, 254, 100, 1000, 32 };

/*
 * Folds @text for comparison: accents removed (NFD, combining marks
 * dropped), lower case; letters and digits kept; with @spaces every other
 * run of characters becomes one space, else it is dropped.
 */
static char *
fold (const char *text, gboolean spaces)
{
  g_autofree char *nfd = g_utf8_normalize (text, -1, G_NORMALIZE_NFD);
  GString *out = g_string_new (NULL);

  if (nfd == NULL)
    return g_string_free (out, FALSE);
  for (const char *p = nfd; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (g_unichar_ismark (c))
        continue;
      c = g_unichar_tolower (c);
      if (c < 128 && g_ascii_isalnum ((char) c))
        g_string_append_c (out, (char) c);
      else if (spaces && out->len > 0 && out->str[out->len - 1] != ' ')
        g_string_append_c (out, ' ');
    }
  if (out->len > 0 && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  return g_string_free (out, FALSE);
}

static gboolean
lookup_field (const char *raw_key, Field *field)
{
  g_autofree char *k = fold (raw_key, FALSE);

  for (gsize i = 0; i < G_N_ELEMENTS (field_keys); i++)
    if (strcmp (k, field_keys[i].key) == 0)
      {
        *field = field_keys[i].field;
        return TRUE;
      }
  return FALSE;
}

/* Control characters and bidirectional overrides (which could make a value
 * display differently from what it is) are refused. */
static gboolean
value_is_clean (const char *v)
{
  for (const char *p = v; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if ((c < 0x20 && c != '\t') || (c >= 0x7f && c <= 0x9f) || c == 0x200e || c == 0x200f
          || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
        return FALSE;
    }
  return TRUE;
}

static const struct {
  const char *word;
  const char *action;
} action_words[] = {
  { "renovacion", "renewal" }, { "renovar", "renewal" }, { "renewal", "renewal" }, { "renew", "renewal" },
  { "suspension", "suspension" }, { "suspender", "suspension" },
  { "suspend", "suspension" },
  { "reactivacion", "reactivation" }, { "reactivar", "reactivation" },
  { "reactivation", "reactivation" }, { "reactivate", "reactivation" },
  { "revocacion", "revocation" }, { "revocar", "revocation" }, { "revocation", "revocation" },
  { "revoke", "revocation" },
};

static const char *const action_suffixes[] = {
  "", " del certificado", " de certificado", " certificado", " de mi certificado",
  " of the certificate", " of certificate", " certificate", " of my certificate",
};

/* The action named by @value (folded whole, optionally "… del certificado"), or NULL. */
static const char *
parse_action (const char *value)
{
  g_autofree char *f = fold (value, TRUE);

  for (gsize i = 0; i < G_N_ELEMENTS (action_words); i++)
    {
      gsize n = strlen (action_words[i].word);
      if (strncmp (f, action_words[i].word, n) != 0)
        continue;
      for (gsize j = 0; j < G_N_ELEMENTS (action_suffixes); j++)
        if (strcmp (f + n, action_suffixes[j]) == 0)
          return action_words[i].action;
    }
  return NULL;
}

/* "10", "10 días", "10 dias", "10 days", "10 d": the number of days, or -1
 * when @value is not a number of days; a number too large to read is
 * G_MAXINT. */
static int
parse_days (const char *value)
{
  g_autofree char *f = fold (value, TRUE);
  static const char *const units[] = { "", "d", "dia", "dias", "dia s", "day", "days", "day s" };
  gsize ndig = strspn (f, "0123456789");
  const char *rest = f + ndig;
  gboolean unit_ok = FALSE;
  guint64 v = 0;

  while (*value == ' ' || *value == '\t')
    value++;
  if (ndig == 0 || !g_ascii_isdigit (*value))
    return -1; /* also "-3": folding drops the sign */
  if (*rest == ' ')
    rest++;
  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    if (strcmp (rest, units[i]) == 0)
      unit_ok = TRUE;
  if (!unit_ok)
    return -1;
  if (ndig > 6)
    return G_MAXINT;
  f[ndig] = '\0';
  if (!g_ascii_string_to_unsigned (f, 10, 0, 999999, &v, NULL))
    return -1;
  return (int) v;
}

char *
ca_intake_id_key (const char *id)
{
  GString *out = g_string_new (NULL);

  for (const char *p = id; *p != '\0'; p++)
    if (g_ascii_isalnum (*p))
      g_string_append_c (out, g_ascii_toupper (*p));
  return g_string_free (out, FALSE);
}

static char *
normalise_id (const char *v)
{
  g_autofree char *up = g_utf8_strup (v, -1);
  GString *out = g_string_new (NULL);

  for (const char *p = up; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (!g_unichar_isspace (c))
        g_string_append_unichar (out, c);
    }
  return g_string_free (out, FALSE);
}

/* "ana@x.ve", "<ana@x.ve>", "mailto:ana@x.ve": the address, or NULL. */
static char *
parse_email (const char *v)
{
  g_autofree char *s = g_strdup (v);
  char *p = s;
  gsize n = strlen (p);
  const char *at;

  if (n >= 2 && p[0] == '<' && p[n - 1] == '>')
    {
      p[n - 1] = '\0';
      p++;
    }
  if (g_ascii_strncasecmp (p, "mailto:", 7) == 0)
    p += 7;
  at = strchr (p, '@');
  if (at == NULL || at == p || at[1] == '\0' || strchr (at + 1, '@') != NULL)
    return NULL;
  for (const char *q = p; *q != '\0'; q++)
    if (g_ascii_isspace (*q) || *q == '<' || *q == '>' || *q == ',' || *q == ';')
      return NULL;
  return g_strdup (p);
}

gboolean
ca_intake_read_template (const char *text, CaIntakeRequest *request, GError **error)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  char *values[F_COUNT] = { NULL };
  const char *action;
  gboolean ok = FALSE;
  int days = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = lines[i];
      char *colon;
      char *value;
      Field f;
      gsize n = strlen (line);

      if (n > 0 && line[n - 1] == '\r')
        line[--n] = '\0';
      if (strcmp (line, "-- ") == 0)
        break; /* the sender's signature block follows */
      while (*line == ' ' || *line == '\t')
        line++;
      if (*line == '>')
        continue; /* quoted text of an earlier message */
      colon = strchr (line, ':');
      if (colon == NULL || colon - line > 64)
        continue;
      *colon = '\0';
      if (!lookup_field (line, &f))
        continue;
      value = g_strstrip (colon + 1);
      if (*value == '\0')
        continue; /* an empty template line */
      if (strlen (value) > field_max[f])
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the field %s is over %" G_GSIZE_FORMAT " bytes",
                       field_label[f], field_max[f]);
          goto out;
        }
      if (!value_is_clean (value))
        {
          g_set_error (error, TG_ERROR, TG_ERROR_INVALID, "the field %s contains control characters",
                       field_label[f]);
          goto out;
        }
      if (values[f] != NULL)
        {
          if (strcmp (values[f], value) != 0)
            {
              g_set_error (error, TG_ERROR, TG_ERROR_INVALID,
                           "the field %s is given twice with different values (\"%s\", \"%s\")",
                           field_label[f], values[f], value);
              goto out;
            }
          continue;
        }
      values[f] = value;
    }

  if (values[F_NAME] == NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_REFUSED, "the message gives no name (Nombre:)");
      goto out;
    }
  if (values[F_ID] == NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_REFUSED, "the message gives no national ID (Cédula:)");
      goto out;
    }
  if (values[F_EMAIL] == NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_REFUSED, "the message gives no e-mail address (Correo:)");
      goto out;
    }
  if (values[F_ACTION] == NULL)
    {
      g_set_error_literal (error, TG_ERROR, TG_ERROR_REFUSED,
                           "the message names no request (Solicitud: renovación, suspensión, reactivación "
                           "or revocación)");
      goto out;
    }
  if (strpbrk (values[F_ACTION], "|/,") != NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                   "the request \"%s\" names more than one action: choose one", values[F_ACTION]);
      goto out;
    }
  action = parse_action (values[F_ACTION]);
  if (action == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                   "unknown request \"%s\" (renovación, suspensión, reactivación or revocación; "
                   "renewal, suspension, reactivation or revocation)", values[F_ACTION]);
      goto out;
    }
  if (strcmp (action, "suspension") == 0)
    {
      if (values[F_DURATION] == NULL)
        {
          g_set_error_literal (error, TG_ERROR, TG_ERROR_REFUSED,
                               "a suspension needs a duration (Duración: 1 to 15 days)");
          goto out;
        }
      days = parse_days (values[F_DURATION]);
      if (days < 0)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "the duration \"%s\" is not a number of days",
                       values[F_DURATION]);
          goto out;
        }
      if (days > 15)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                       "a suspension is at most 15 days (the message asks for \"%s\")", values[F_DURATION]);
          goto out;
        }
      if (days < 1)
        {
          g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                       "a suspension is at least 1 day (the message asks for \"%s\")", values[F_DURATION]);
          goto out;
        }
    }
  else if (values[F_DURATION] != NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED,
                   "a duration is only for a suspension (this request is a %s)", action);
      goto out;
    }
  if (strcmp (action, "renewal") != 0 && values[F_REASON] == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "a %s needs a reason (Motivo:)", action);
      goto out;
    }

  request->email = parse_email (values[F_EMAIL]);
  if (request->email == NULL)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "\"%s\" is not an e-mail address", values[F_EMAIL]);
      goto out;
    }
  request->national_id = normalise_id (values[F_ID]);
  {
    g_autofree char *key = ca_intake_id_key (request->national_id);
    if (key[0] == '\0')
      {
        g_set_error (error, TG_ERROR, TG_ERROR_REFUSED, "\"%s\" is not a national ID", values[F_ID]);
        goto out;
      }
  }
  request->name = g_strdup (values[F_NAME]);
  request->action = g_strdup (action);
  request->reason = g_strdup (values[F_REASON] != NULL ? values[F_REASON] : "");
  request->suspension_days = days;
  ok = TRUE;
out:
  return ok;
}

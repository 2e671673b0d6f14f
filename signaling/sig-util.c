/* sig-util.c — random tokens, time, password hashing, small validators. */
#include "sig-private.h"

#include <argon2.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>

/* argon2id, RFC 9106 second recommended option scaled to a small server:
 * t = 3 passes over 64 MiB, one lane. */
#define SIG_ARGON2_T 3
#define SIG_ARGON2_M (64 * 1024)
#define SIG_ARGON2_P 1
#define SIG_ARGON2_SALT 16
#define SIG_ARGON2_HASH 32

char *
sig_random_token (gsize bytes)
{
  g_autofree guint8 *buf = g_malloc (bytes);
  char *b64, *p;

  if (RAND_bytes (buf, (int) bytes) != 1)
    g_error ("RAND_bytes failed: no randomness, refusing to continue");
  b64 = g_base64_encode (buf, bytes);
  for (p = b64; *p; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
      else if (*p == '=')
        {
          *p = '\0';
          break;
        }
    }
  return b64;
}

gint64
sig_now_ms (void)
{
  return g_get_real_time () / 1000;
}

char *
sig_iso_from_ms (gint64 unix_ms)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (unix_ms / 1000);
  g_autofree char *base = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");

  return g_strdup_printf ("%s.%03dZ", base, (int) (unix_ms % 1000));
}

char *
sig_now_iso_ms (void)
{
  return sig_iso_from_ms (sig_now_ms ());
}

gboolean
sig_const_eq (const char *a, const char *b)
{
  gsize la, lb;

  if (a == NULL || b == NULL)
    return FALSE;
  la = strlen (a);
  lb = strlen (b);
  if (la != lb)
    return FALSE;
  return CRYPTO_memcmp (a, b, la) == 0;
}

char *
sig_hash_password (const char *password, GError **error)
{
  guint8 salt[SIG_ARGON2_SALT];
  gsize enclen = argon2_encodedlen (SIG_ARGON2_T, SIG_ARGON2_M, SIG_ARGON2_P, SIG_ARGON2_SALT,
                                    SIG_ARGON2_HASH, Argon2_id);
  g_autofree char *encoded = g_malloc0 (enclen + 1);
  int rc;

  if (RAND_bytes (salt, sizeof salt) != 1)
    {
      tg_set_error_openssl (error, "no randomness for the salt");
      return NULL;
    }
  rc = argon2id_hash_encoded (SIG_ARGON2_T, SIG_ARGON2_M, SIG_ARGON2_P, password, strlen (password),
                              salt, sizeof salt, SIG_ARGON2_HASH, encoded, enclen);
  if (rc != ARGON2_OK)
    {
      g_set_error (error, TG_ERROR, TG_ERROR_FAILED, "argon2id: %s", argon2_error_message (rc));
      return NULL;
    }
  return g_steal_pointer (&encoded);
}

gboolean
sig_verify_password (const char *hash, const char *password)
{
  if (hash == NULL || password == NULL || !g_str_has_prefix (hash, "$argon2id$"))
    return FALSE;
  return argon2id_verify (hash, password, strlen (password)) == ARGON2_OK;
}

char *
sig_json_to_string (JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

char *
sig_object_to_string (JsonObject *obj)
{
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  json_node_set_object (node, obj);
  return sig_json_to_string (node);
}

gboolean
sig_identifier_ok (const char *s)
{
  gsize n = 0;

  if (s == NULL)
    return FALSE;
  for (; s[n]; n++)
    if (!g_ascii_isalnum (s[n]) && s[n] != '.' && s[n] != '_' && s[n] != '-')
      return FALSE;
  return n >= 1 && n <= 64;
}

/* UTF-8 text of @min..@max characters without control characters other than
 * newline and tab. */
gboolean
sig_text_ok (const char *s, glong min_chars, glong max_chars)
{
  glong n;

  if (s == NULL || !g_utf8_validate (s, -1, NULL))
    return FALSE;
  n = g_utf8_strlen (s, -1);
  if (n < min_chars || n > max_chars)
    return FALSE;
  for (const char *p = s; *p; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
        return FALSE;
    }
  return TRUE;
}

static char *
ua_version_after (const char *ua, const char *marker)
{
  const char *p = strstr (ua, marker);
  gsize n = 0;

  if (p == NULL)
    return NULL;
  p += strlen (marker);
  while (p[n] && (g_ascii_isalnum (p[n]) || p[n] == '.') && n < 64)
    n++;
  return n > 0 ? g_strndup (p, n) : NULL;
}

/* Best-effort browser name and version from a User-Agent, for the record. */
void
sig_browser_from_ua (const char *ua, char **name, char **version)
{
  static const struct { const char *marker, *name; } known[] = {
    { "Edg/", "Edge" }, { "OPR/", "Opera" }, { "Firefox/", "Firefox" },
    { "Chromium/", "Chromium" }, { "Chrome/", "Chrome" }, { "Version/", "Safari" },
  };

  for (guint i = 0; ua != NULL && i < G_N_ELEMENTS (known); i++)
    {
      char *v = ua_version_after (ua, known[i].marker);
      if (v != NULL)
        {
          *name = g_strdup (known[i].name);
          *version = v;
          return;
        }
    }
  *name = g_strdup ("unknown");
  *version = g_strdup ("unknown");
}

gboolean
sig_mkdir_private (const char *path, GError **error)
{
  if (g_mkdir_with_parents (path, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot create %s", path);
      return FALSE;
    }
  if (chmod (path, 0700) != 0)
    {
      tg_set_error_errno (error, errno, "cannot set mode 0700 on %s", path);
      return FALSE;
    }
  return TRUE;
}

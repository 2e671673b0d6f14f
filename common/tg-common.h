/* tg-common.h — Testigo's internal common library: errors, atomic evidence
 * writes, capped reads, hashing helpers, RFC 3339 time, terminal progress.
 *
 * Every symbol carries the tg_ prefix. Functions that can fail take
 * GError ** last and return FALSE or NULL on failure.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

G_BEGIN_DECLS

#define TG_ERROR (tg_error_quark ())
GQuark tg_error_quark (void);

typedef enum {
  TG_ERROR_FAILED,   /* anything else */
  TG_ERROR_IO,       /* read/write/open failed */
  TG_ERROR_NOSPACE,  /* ENOSPC / EDQUOT: disk full */
  TG_ERROR_EXISTS,   /* refusing to overwrite */
  TG_ERROR_INVALID,  /* bad input: syntax, schema, arguments */
  TG_ERROR_TOO_BIG,  /* input over its size cap */
  TG_ERROR_CRYPTO,   /* OpenSSL reported an error */
  TG_ERROR_REFUSED,  /* a rule refused the request (gate, lifecycle, replay); the message says which */
  TG_ERROR_NOT_FOUND,/* no such certificate, case or account */
} TgError;

/**
 * tg_set_error_openssl:
 * Sets @error to TG_ERROR_CRYPTO with the formatted message followed by the
 * first reason in OpenSSL's error queue; the queue is cleared.
 */
void tg_set_error_openssl (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

/** tg_set_error_errno: sets @error from @errsv (ENOSPC maps to TG_ERROR_NOSPACE). */
void tg_set_error_errno (GError **error, int errsv, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* ---- atomic file writes: NAME.partial, fsync, rename, fsync directory ---- */

typedef struct _TgAtomicFile TgAtomicFile;

/**
 * tg_atomic_file_new:
 * @path: the final path; must not exist unless @overwrite.
 * @mode: the final permission bits (the partial file is 0600 until commit).
 * Returns: (transfer full): a writer on PATH.partial, created O_EXCL.
 */
TgAtomicFile *tg_atomic_file_new (const char *path, mode_t mode, gboolean overwrite, GError **error);
int tg_atomic_file_get_fd (TgAtomicFile *file);
gboolean tg_atomic_file_write (TgAtomicFile *file, const void *buf, gsize len, GError **error);
/** tg_atomic_file_commit: fsync, chmod to the final mode, rename, fsync the directory. */
gboolean tg_atomic_file_commit (TgAtomicFile *file, GError **error);
/** tg_atomic_file_free: removes the partial file unless committed. */
void tg_atomic_file_free (TgAtomicFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TgAtomicFile, tg_atomic_file_free)

/** tg_write_all: write(2) until done, retrying EINTR. */
gboolean tg_write_all (int fd, const void *buf, gsize len, const char *what, GError **error);

/**
 * tg_file_get_contents_capped:
 * Reads a whole regular file, refusing one larger than @max_size bytes.
 * The result is NUL-terminated (not counted in @len).
 */
gboolean tg_file_get_contents_capped (const char *path, gsize max_size, char **contents,
                                      gsize *len, GError **error);

/** tg_write_file_excl: creates @path with @mode (O_EXCL), writes, fsyncs. */
gboolean tg_write_file_excl (const char *path, const void *buf, gsize len, mode_t mode,
                             GError **error);

/* ---- hashing ---- */

/** tg_hex: (transfer full) lowercase hex of @len bytes. */
char *tg_hex (const guint8 *buf, gsize len);
/** tg_sha256_hex: (transfer full) SHA-256 of @buf as lowercase hex. */
char *tg_sha256_hex (const void *buf, gsize len);
/** tg_sha256_file: SHA-256 of a file's bytes into @out (32 bytes). */
gboolean tg_sha256_file (const char *path, guint8 out[32], guint64 *size, GError **error);

/* ---- time ---- */

/** tg_time_format: (transfer full) RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ". */
char *tg_time_format (gint64 unix_seconds);
/** tg_time_parse: parses RFC 3339 with a time zone; FALSE if malformed. */
gboolean tg_time_parse (const char *text, gint64 *unix_seconds);

/* ---- progress on a terminal ---- */

typedef struct _TgProgress TgProgress;
/**
 * tg_progress_new:
 * Returns: (transfer full) (nullable): a progress line on stderr, or NULL when
 * stderr is not a terminal or @total is below the threshold (64 MiB).
 */
TgProgress *tg_progress_new (const char *label, guint64 total);
void tg_progress_update (TgProgress *progress, guint64 done);
void tg_progress_free (TgProgress *progress);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TgProgress, tg_progress_free)

G_END_DECLS

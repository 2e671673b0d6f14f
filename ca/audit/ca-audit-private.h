/* ca-audit-private.h — ca/audit internals for its tests. */
#pragma once

#include "ca-audit.h"

G_BEGIN_DECLS

/* ca_audit_timestamp_head_full() with the built-in TSA answering at
 * @gen_time (unix seconds; <= 0 means now): tests of genTime order. */
gboolean ca_audit_timestamp_head_at (CaAudit *audit, const char *keys_dir, const char *tsa_url,
                                     const char *tsa_ca_file, gint64 gen_time, guint64 *seq,
                                     GError **error);

G_END_DECLS

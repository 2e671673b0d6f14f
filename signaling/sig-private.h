/* sig-private.h — testigod internals, shared between the signaling/ files. */
#pragma once

#include "sig.h"
#include "tg-common.h"
#include "ca.h"
#include "ca-audit.h"
#include "ca-intake.h"
#include "tg-schema.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* ---- caps and defaults (docs/protocol.md lists them) ---- */
#define SIG_MAX_BODY          ((gsize) 64 * 1024)  /* HTTP JSON bodies */
#define SIG_MAX_CLOSE_BODY    ((gsize) 256 * 1024) /* close: the checklist */
#define SIG_MAX_VISIT_BODY    ((gsize) 24 * 1024 * 1024) /* in-person visit: attestation + scans (base64) */
#define SIG_MAX_WS_MESSAGE    ((gsize) 64 * 1024)  /* one WebSocket message, answered with an error */
#define SIG_MAX_WS_FRAME      ((guint64) 256 * 1024) /* beyond this libsoup closes the socket (1009) */
#define SIG_MAX_RECORDER_LINE ((gsize) 64 * 1024)  /* one JSON line to/from the recorder */
#define SIG_MAX_SDP           ((gsize) 32 * 1024)
#define SIG_MAX_CANDIDATE     ((gsize) 1024)
#define SIG_LOGIN_WINDOW      (15 * 60)            /* seconds */
#define SIG_LOGIN_MAX_FAILS   5
#define SIG_COOKIE            "testigo_session"
#define SIG_MAX_PEERS         512                  /* open WebSockets; more are refused (4503) */

struct _SigConfig {
  char *config_file;
  char *state_dir;
  char *web_root;
  char *listen_host;
  int port;
  char *tls_cert, *tls_key;
  char *recorder;
  gboolean recorder_loopback;
  int recorder_jitter_ms;    /* 0: packets relayed and recorded as they arrive */
  char **stun;               /* stun:host:port */
  char **turn;               /* turn:host:port?transport=udp */
  char *turn_username, *turn_credential;
  int join_ttl;              /* seconds */
  int login_ttl;
  int heartbeat_interval, heartbeat_timeout;
  int stop_timeout;
  char *issuer;              /* issuer DN of the holders' certificates */
  int retention_years;
  /* [ca] */
  int sweep_interval;        /* seconds between ca_sweep runs */
  char *api_token;           /* bearer token of /api/gate/check and /api/intake; NULL: disabled */
  char *api_token_file;
  char *step_ca_secret;      /* step-ca webhook signing secret (base64); NULL: endpoint disabled */
  char *crl_url, *delta_crl_url, *ocsp_url;
  int max_suspension_days;
  int ocsp_cache;            /* max-age of GET /ocsp answers, seconds */
};

#define SIG_HOLDER_COOKIE     "testigo_holder"
#define SIG_ROLE_ADMIN_TEXT   "CA administrator"      /* officers.role of an admin */
#define SIG_ROLE_OFFICER_TEXT "registration officer"  /* officers.role of an officer */

typedef struct _SigPeer SigPeer;
typedef struct _SigLive SigLive;
typedef struct _SigRecorder SigRecorder;

typedef enum { SIG_ROLE_NONE, SIG_ROLE_OFFICER, SIG_ROLE_SIGNATORY } SigRole;

struct _SigServer {
  SigConfig *cfg;
  char *db_path, *keys_dir, *evidence_dir, *sessions_dir;
  sqlite3 *db;
  SoupServer *soup;
  gboolean tls;
  GHashTable *live;          /* session id → SigLive */
  GPtrArray *peers;          /* SigPeer *, every open WebSocket */
  guint heartbeat_id;
  char *dummy_hash;          /* argon2 hash verified for unknown accounts */
  CaStore *ca;               /* the CA store of the same state directory */
  CaAudit *audit;            /* its audit log (audit.jsonl), for logins */
  guint sweep_id;
  gint64 last_publish;       /* monotonic seconds of the last periodic CRL publication */
};

struct _SigPeer {
  SigServer *srv;
  SoupWebsocketConnection *ws;
  SigRole role;
  char *session_id;
  char *officer_id;          /* officer: from the cookie */
  char *user_agent;
  char *remote;
  char *origin;
  gint64 last_seen;          /* monotonic µs */
  gint64 connected_at;       /* monotonic µs */
  gboolean gone;
};

struct _SigLive {
  SigServer *srv;
  char *id, *case_id, *officer_id;
  char *dir;
  SigPeer *officer, *signatory;
  SigRecorder *rec;
  gboolean offered[3];       /* by role: an offer was relayed on the current connection */
  int part;                  /* the current recording part, -1 before the first */
  gint64 part_wall_ms;       /* wall-clock time the current part started */
  guint still_count;
  gboolean closing;
};

/* ---- util (sig-util.c) ---- */
char *sig_random_token (gsize bytes);                 /* base64url, no padding */
char *sig_now_iso_ms (void);                          /* RFC 3339 UTC with milliseconds */
char *sig_iso_from_ms (gint64 unix_ms);
gint64 sig_now_ms (void);
gboolean sig_const_eq (const char *a, const char *b);
char *sig_hash_password (const char *password, GError **error);
gboolean sig_verify_password (const char *hash, const char *password);
char *sig_json_to_string (JsonNode *node);
char *sig_object_to_string (JsonObject *obj);
gboolean sig_identifier_ok (const char *s);
gboolean sig_text_ok (const char *s, glong min_chars, glong max_chars);
void sig_browser_from_ua (const char *ua, char **name, char **version);
gboolean sig_mkdir_private (const char *path, GError **error);

/* ---- database (sig-db.c) ---- */
sqlite3 *sig_db_open (const char *path, GError **error);
gboolean sig_db_exec (sqlite3 *db, const char *sql, GError **error);
sqlite3_stmt *sig_db_prepare (sqlite3 *db, const char *sql, GError **error);
void sig_db_set_error (sqlite3 *db, GError **error, const char *what);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)
gboolean sig_db_session_event (SigServer *srv, const char *session_id, JsonObject *event, GError **error);
JsonObject *sig_db_case_json (SigServer *srv, const char *case_id);
JsonObject *sig_db_session_json (SigServer *srv, const char *session_id);
const char *sig_col (sqlite3_stmt *st, int i);
void sig_session_set_state (SigServer *srv, const char *session_id, const char *state);
/* Inserts an account (officers, holders) into <@state_dir>/testigo.db with
 * @insert_sql, whose five ? are @key, @v2, @v3, the argon2id hash of
 * @password (10 to 1024 characters) and now; @what ("officer") names the
 * account in the errors (TG_ERROR_EXISTS when @key is taken). */
/* Inserts an open case, inside the caller's BEGIN IMMEDIATE: names it
 * RA-<year>-<seq> and commits; NULL after a rollback. @suspension_days: 0
 * for none. */
char *sig_db_insert_case (SigServer *srv, const char *name, const char *nid, const char *email, const char *serial,
                          const char *action, const char *reason, gint64 suspension_days, const char *channel,
                          const char *by, gint64 created_at, GError **error);
gboolean sig_db_add_account (const char *state_dir, const char *insert_sql, const char *what, const char *key,
                             const char *v2, const char *v3, const char *password, GError **error);

/* ---- HTTP (sig-http.c) ---- */
void sig_http_setup (SigServer *srv);
void sig_reply_json (SoupServerMessage *msg, guint status, JsonObject *obj);
void sig_reply_error (SoupServerMessage *msg, guint status, const char *field, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);
/* Replies 200 with the sealed bundle at @path as an attachment named
 * @case_id.tar, or 500 when it cannot be read. */
void sig_reply_bundle_file (SoupServerMessage *msg, const char *path, const char *case_id);
char *sig_officer_from_cookie (SigServer *srv, SoupMessageHeaders *headers, char **csrf_out);

/* What differs between the officer and the holder logins; sig-http.c runs both
 * (rate limit, argon2 in a thread, cookie session with a CSRF token, audit). */
typedef struct {
  const char *who;           /* "officer", "holder": log lines and the login reply's member */
  const char *fail_log;      /* prefix of the "login failed" log line: "", "holder " */
  const char *account_key;   /* prefix of the account's rate-limit key: "account:", "holder:" */
  const char *actor;         /* prefix of the audit actor: "officer:", "holder:" */
  const char *cookie;        /* the session cookie's name */
  const char *logins;        /* the sessions' table (id_hash, account, csrf, created, expires_at) */
  const char *hash_sql;      /* pw_hash of the enabled account ?1 */
  const char *session_sql;   /* account and csrf of the live session: ?1 id_hash, ?2 now */
  const char *wrong;         /* 401 text of a failed login */
  const char *no_session;    /* 401 text without a valid session */
  /* the account's part of the login reply, NULL on a database error */
  JsonObject *(*account_json) (SigServer *srv, const char *id);
} SigLoginKind;

/* The account behind the session cookie of @kind in @headers, or NULL; its CSRF token in @csrf_out. */
char *sig_login_from_cookie (SigServer *srv, const SigLoginKind *kind, SoupMessageHeaders *headers,
                             char **csrf_out);
/* The account behind the request's cookie, or NULL after replying 401 (no
 * valid session) or 403 (@state_changing without the right X-CSRF-Token). */
char *sig_login_require (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg,
                         gboolean state_changing);
/* Logs @user in with @password (already checked for size): replies 429 when
 * rate-limited, else pauses @msg, verifies in a thread, sets the cookie and
 * replies {who: account_json, csrf_token} or 401. */
void sig_login_start (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg, const char *user,
                      const char *password);
/* Logs @user out: drops the cookie's session, audits, clears the cookie, replies {logged_out}. */
void sig_login_end (SigServer *srv, const SigLoginKind *kind, SoupServerMessage *msg, const char *user);

/* the helpers of sig-http.c, for the other API files: each replies itself on failure */
JsonObject *sig_read_json_body (SoupServerMessage *msg, gsize cap);
gboolean sig_only_members (SoupServerMessage *msg, JsonObject *obj, const char *const *allowed);
const char *sig_string_member (SoupServerMessage *msg, JsonObject *obj, const char *name);
char *sig_require_officer (SigServer *srv, SoupServerMessage *msg, gboolean state_changing);
int sig_login_failures (SigServer *srv, const char *key, gint64 now, gint64 *oldest);
void sig_login_failure_add (SigServer *srv, const char *key, gint64 now);
void sig_add_security_headers (SoupServerMessage *msg, SigServer *srv);
/* display text of a role ("officer", "admin"), NULL for an unknown role */
const char *sig_role_display (const char *role);
gboolean sig_role_is_admin (const char *stored_role);

/* ---- holder portal (sig-holder.c) ---- */
/* Handles /api/holder/...; FALSE when @seg is not one of its paths. */
gboolean sig_holder_route (SigServer *srv, SoupServerMessage *msg, const char *method, char **seg, guint n);
char *sig_holder_from_cookie (SigServer *srv, SoupMessageHeaders *headers, char **csrf_out);

/* ---- CA wiring (sig-ca.c) ---- */
/* Opens the CA store, the audit log and the publication signer; starts the sweep timer. */
gboolean sig_ca_init (SigServer *srv, GError **error);
void sig_ca_fini (SigServer *srv);
/* Handles /api/ca/..., /api/cases/{id}/apply|visit, /api/gate/..., /api/intake;
 * FALSE when @seg is not one of its paths. */
gboolean sig_ca_route (SigServer *srv, SoupServerMessage *msg, const char *method, char **seg, guint n,
                       GHashTable *query);
/* The body cap of @path (bigger for uploads, SIG_MAX_BODY otherwise). */
gsize sig_body_cap (const char *path);
/* Appends to the audit log; @details (transfer none, nullable) must hold no secret. */
void sig_audit (SigServer *srv, const char *kind, const char *actor, JsonObject *details);
void sig_reply_ca_error (SoupServerMessage *msg, const GError *error);
JsonNode *sig_json_node_from_text (const char *text);
void sig_officer_actor (SigServer *srv, const char *officer, CaActor *actor);
char *sig_case_bundle (SigServer *srv, const char *case_id);
void sig_case_mark_applied (SigServer *srv, const char *case_id, const char *by, const CaActionResult *result);

/* ---- sealing for the in-person and portal channels (sig-seal.c) ---- */
void sig_visit_record (SigServer *srv, SoupServerMessage *msg, const char *case_id, const char *officer);
void sig_visit_list (SigServer *srv, SoupServerMessage *msg, const char *case_id);
JsonArray *sig_visits_of_case (SigServer *srv, const char *case_id);
void sig_visit_bundle (SigServer *srv, SoupServerMessage *msg, const char *visit_id);
/* The holder revokes their own certificate: a portal case, its sealed request, ca_apply. */
void sig_ca_portal_revoke (SigServer *srv, SoupServerMessage *msg, const char *nid, const CaCertInfo *cert,
                           const char *reason, const char *details, gint64 compromised_at);
/* The holder completes an approved renewal case (@c) with a CSR. */
void sig_ca_renew (SigServer *srv, SoupServerMessage *msg, const char *nid, JsonObject *c, const char *csr);

/* ---- WebSocket (sig-ws.c) ---- */
void sig_ws_setup (SigServer *srv);
void sig_peer_send (SigPeer *peer, JsonObject *obj);
void sig_peer_send_error (SigPeer *peer, const char *code, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
void sig_live_notify (SigLive *live, SigRole to, JsonObject *obj);
SigLive *sig_live_get (SigServer *srv, const char *session_id, gboolean create);
void sig_live_free (SigLive *live);
JsonArray *sig_ice_servers_json (SigConfig *cfg);
void sig_server_event (SigLive *live, JsonObject *event);

/* ---- recorder (sig-recorder.c) ---- */
gboolean sig_recorder_available (SigServer *srv, char **why);
SigRecorder *sig_recorder_start (SigLive *live, GError **error);
void sig_recorder_send (SigRecorder *rec, JsonObject *obj);
gboolean sig_recorder_running (SigRecorder *rec);
/* Sends stop and calls @done once the process has exited (or was killed
 * after the stop timeout). */
void sig_recorder_stop (SigRecorder *rec, GCallback done, gpointer data);
void sig_recorder_detach (SigRecorder *rec);

/* ---- close and seal (sig-close.c) ---- */
void sig_close_session (SigServer *srv, SoupServerMessage *msg, const char *session_id,
                        const char *officer_id, JsonObject *body);
/* Sets a record's "outcome" (@result, @notes or "", completed at @ended, RFC
 * 3339) and "retention" (the configured years from @end_ms). */
void sig_record_add_outcome (SigServer *srv, JsonObject *r, const char *result, const char *notes, const char *ended,
                             gint64 end_ms);
/* The evidence folder name of a national ID: [A-Za-z0-9-], anything else as '_'. */
char *sig_holder_dir_name (const char *national_id);
gboolean sig_append_event_direct (const char *dir, JsonObject *event, GError **error);
void sig_recover_sessions (SigServer *srv);

G_END_DECLS

// api.js — the officer HTTP API of testigod (docs/protocol.md, "HTTP API").
// Every state change carries the X-CSRF-Token from the login or /api/me reply;
// the session itself is an HttpOnly cookie the page never sees.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.body = body;
  }
}

let csrfToken = null;

export function setCsrf(token) { csrfToken = token || null; }

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    if (csrfToken) headers['X-CSRF-Token'] = csrfToken;
  }
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.startsWith('application/json')) {
    try { data = await res.json(); } catch { data = null; }
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** { officer: {id, name, role}, csrf_token } */
export async function login(username, password) {
  const r = await request('POST', '/api/login', { username, password });
  setCsrf(r.csrf_token);
  return r;
}

/** The current officer ({officer, csrf_token}) or null when not logged in. */
export async function me() {
  try {
    const r = await request('GET', '/api/me');
    setCsrf(r.csrf_token);
    return r;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export async function logout() {
  try { await request('POST', '/api/logout', {}); } finally { setCsrf(null); }
}

export const listCases = () => request('GET', '/api/cases').then((r) => r.cases || []);
export const getCase = (id) => request('GET', `/api/cases/${encodeURIComponent(id)}`);
/** fields: holder_name, national_id, email, serial, action, reason[, suspension_days] */
export const createCase = (fields) => request('POST', '/api/cases', fields);
/** A new video session: {id, join_path, join_url, link_expires_at, ...} */
export const createSession = (caseId) =>
  request('POST', `/api/cases/${encodeURIComponent(caseId)}/sessions`, {});
/** Sessions left created, active, interrupted or stopped (after a crash or restart they can still be closed). */
export const unfinishedSessions = () => request('GET', '/api/sessions?state=unfinished').then((r) => r.sessions || []);
export const getSession = (id) => request('GET', `/api/sessions/${encodeURIComponent(id)}`);
/** body: {outcome, notes, checklist} → {sealed, indication, verdict, download, ...} */
export const closeSession = (id, body) =>
  request('POST', `/api/sessions/${encodeURIComponent(id)}/close`, body);
export const bundleUrl = (id) => `/api/sessions/${encodeURIComponent(id)}/bundle`;
export const health = () => request('GET', '/api/health');

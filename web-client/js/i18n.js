// i18n.js — every visible string comes from i18n/<lang>.json.
//
// Markup: data-i18n="key" sets textContent; data-i18n-attr="attr:key;attr:key"
// sets attributes (placeholder, aria-label, title, alt). Code: t("key", {n: 3}).
// The language comes from localStorage, else navigator.languages, else Spanish.

export const LANGUAGES = ['es', 'en'];
const STORAGE_KEY = 'testigo.lang';
const DEFAULT = 'es';

let current = DEFAULT;
let catalogue = {};
const listeners = new Set();

/** The language to use: remembered choice, then the browser's preferences. */
export function pickLanguage(stored, preferred) {
  if (LANGUAGES.includes(stored)) return stored;
  for (const tag of preferred || []) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return DEFAULT;
}

function storedLanguage() {
  try { return localStorage.getItem(STORAGE_KEY); } catch { return null; }
}

export function lang() { return current; }

/** Translates @key, replacing {name} with params.name. A missing key shows itself. */
export function t(key, params) {
  let s = Object.prototype.hasOwnProperty.call(catalogue, key) ? catalogue[key] : key;
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

/** Applies the catalogue to @root and everything under it. */
export function apply(root = document) {
  const scope = root.querySelectorAll ? root : document;
  const nodes = [];
  if (root.nodeType === 1) nodes.push(root);
  nodes.push(...scope.querySelectorAll('[data-i18n], [data-i18n-attr]'));
  for (const el of nodes) {
    const key = el.getAttribute('data-i18n');
    if (key) el.textContent = t(key, el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : undefined);
    const attrs = el.getAttribute('data-i18n-attr');
    if (attrs) {
      for (const pair of attrs.split(';')) {
        const [attr, k] = pair.split(':').map((x) => x.trim());
        if (attr && k) el.setAttribute(attr, t(k));
      }
    }
  }
}

/** Sets a translated text on @el and remembers the key so a language switch re-renders it. */
export function setText(el, key, params) {
  el.setAttribute('data-i18n', key);
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  else delete el.dataset.i18nParams;
  el.textContent = t(key, params);
}

export async function load(code) {
  const res = await fetch(`/i18n/${code}.json`, { cache: 'no-cache' });
  if (!res.ok) throw new Error(`i18n/${code}.json: HTTP ${res.status}`);
  return res.json();
}

/** Switches to @code, remembers it, re-renders the page and tells listeners. */
export async function setLanguage(code, { remember = true } = {}) {
  if (!LANGUAGES.includes(code)) code = DEFAULT;
  catalogue = await load(code);
  current = code;
  if (remember) {
    try { localStorage.setItem(STORAGE_KEY, code); } catch { /* private mode */ }
  }
  document.documentElement.lang = code;
  const titleKey = document.documentElement.dataset.titleKey;
  if (titleKey) document.title = t(titleKey);
  apply(document);
  for (const sel of document.querySelectorAll('select.lang-switch')) sel.value = code;
  for (const fn of listeners) fn(code);
}

export function onChange(fn) { listeners.add(fn); }

/** Loads the language for this browser and wires every select.lang-switch. */
export async function init() {
  const code = pickLanguage(storedLanguage(), navigator.languages || [navigator.language]);
  for (const sel of document.querySelectorAll('select.lang-switch')) {
    sel.addEventListener('change', () => setLanguage(sel.value));
  }
  await setLanguage(code, { remember: false });
  return code;
}

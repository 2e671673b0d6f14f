// checklist.js — the validation checklist of validation-record.md, as the
// officer fills it, and the rules the record schema will enforce at close
// (evidence-schema/validation-record.schema.json), checked here first so the
// officer sees them field by field. Pure functions: no DOM.
//
// The officer never types what the system knows: case, holder, times, joins,
// recording parts, stills and instructions come from the server.

export const DOC_TYPES = ['id-card', 'passport', 'residence-permit', 'other'];
export const COMPARE_FIELDS = ['name', 'national_id', 'birth_date', 'nationality', 'photo'];
export const FEATURE_RESULTS = ['pass', 'fail', 'not-visible'];
export const FACE_RESULTS = ['match', 'no-match', 'inconclusive'];
export const OUTCOMES = ['approved', 'rejected', 'aborted'];
export const MIN_FEATURES = 3;
export const MIN_OPTICALLY_VARIABLE = 2;
export const MAX_FEATURES = 32;

/** Security features an officer can be asked to check; ov = optically variable. */
export const FEATURE_CATALOGUE = [
  { key: 'hologram', ov: true },
  { key: 'kinegram', ov: true },
  { key: 'ovi', ov: true },
  { key: 'cli', ov: true },
  { key: 'iridescent', ov: true },
  { key: 'guilloche', ov: false },
  { key: 'microprint', ov: false },
  { key: 'uv', ov: false },
  { key: 'ghost', ov: false },
  { key: 'tactile', ov: false },
  { key: 'rainbow', ov: false },
];

/**
 * Picks @n features at random with at least @ov optically variable ones
 * (the officer is told which to check; ETSI TS 119 461 VAL-8.3.3-07).
 */
export function randomFeatures(n = MIN_FEATURES, ov = MIN_OPTICALLY_VARIABLE, random = Math.random) {
  const shuffle = (a) => {
    const b = [...a];
    for (let i = b.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [b[i], b[j]] = [b[j], b[i]];
    }
    return b;
  };
  const variable = shuffle(FEATURE_CATALOGUE.filter((f) => f.ov)).slice(0, ov);
  const rest = shuffle(FEATURE_CATALOGUE.filter((f) => !variable.includes(f))).slice(0, Math.max(0, n - ov));
  return shuffle([...variable, ...rest]);
}

const DOC_NUMBER = /^[A-Za-z0-9<./-]{1,36}$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

/** True exactly when every compared field matched (and at least one was compared). */
export function dataMatchesCase(comparison) {
  return comparison.length > 0 && comparison.every((c) => c.match === true);
}

export function featureCounts(features) {
  const named = features.filter((f) => f.name.trim() !== '');
  return { total: named.length, ov: named.filter((f) => f.optically_variable).length };
}

/**
 * Checks one section at a time. Returns a list of {field, key} problems; an
 * empty list means the section is complete and valid for the schema.
 */
export function documentProblems(doc) {
  const p = [];
  if (!DOC_TYPES.includes(doc.type)) p.push({ field: 'doc-type', key: 'ck.err.required' });
  const issuer = doc.issuer.trim();
  if (issuer.length < 1 || issuer.length > 256) p.push({ field: 'doc-issuer', key: 'ck.err.required' });
  if (!DOC_NUMBER.test(doc.number.trim())) p.push({ field: 'doc-number', key: 'ck.err.doc-number' });
  if (!DATE.test(doc.expiry)) p.push({ field: 'doc-expiry', key: 'ck.err.required' });
  if (doc.comparison.length < 1) p.push({ field: 'doc-compare', key: 'ck.err.compare' });
  return p;
}

export function featureProblems(features) {
  const p = [];
  const named = features.filter((f) => f.name.trim() !== '');
  if (features.some((f) => f.name.trim() === '' && (f.result || f.optically_variable))) {
    p.push({ field: 'features', key: 'ck.err.feature-name' });
  }
  if (named.some((f) => !FEATURE_RESULTS.includes(f.result))) p.push({ field: 'features', key: 'ck.err.feature-result' });
  const { total, ov } = featureCounts(features);
  if (total < MIN_FEATURES) p.push({ field: 'features', key: 'ck.err.features-min' });
  if (ov < MIN_OPTICALLY_VARIABLE) p.push({ field: 'features', key: 'ck.err.features-ov' });
  if (named.length > MAX_FEATURES) p.push({ field: 'features', key: 'ck.err.features-max' });
  return p;
}

export function faceProblems(face) {
  return FACE_RESULTS.includes(face) ? [] : [{ field: 'face', key: 'ck.err.required' }];
}

/**
 * Validates the whole form for closing with @outcome and builds the close
 * request. @facts: {stills: [{kind}], instructions: [..]} as reported by the
 * server. Returns {problems: [{field, key}], body: {outcome, notes, checklist}}.
 */
export function buildClose(form, facts) {
  const problems = [];
  const { outcome } = form;
  const notes = form.notes.trim();
  if (!OUTCOMES.includes(outcome)) problems.push({ field: 'outcome', key: 'ck.err.outcome' });
  if (outcome && outcome !== 'approved' && notes === '') problems.push({ field: 'notes', key: 'ck.err.notes' });

  const doc = form.document;
  const docP = documentProblems(doc);
  const featP = featureProblems(form.features);
  const faceP = faceProblems(form.face);
  const checklist = {};
  const docOk = docP.length === 0;
  const featOk = featP.length === 0;
  const faceOk = faceP.length === 0;
  if (docOk) {
    checklist.document = {
      type: doc.type,
      issuer: doc.issuer.trim(),
      number: doc.number.trim(),
      expiry: doc.expiry,
      data_matches_case: dataMatchesCase(doc.comparison),
      comparison: doc.comparison.map((c) => ({ field: c.field, match: c.match })),
    };
  }
  if (featOk) {
    checklist.security_features = form.features
      .filter((f) => f.name.trim() !== '')
      .map((f) => ({ name: f.name.trim(), optically_variable: !!f.optically_variable, result: f.result }));
  }
  if (faceOk) checklist.face_comparison = { method: 'officer-visual', result: form.face };

  if (outcome === 'approved') {
    problems.push(...docP, ...featP, ...faceP);
    if (docOk && !checklist.document.data_matches_case) problems.push({ field: 'doc-compare', key: 'ck.err.approve-data' });
    if (featOk && checklist.security_features.some((f) => f.result !== 'pass')) {
      problems.push({ field: 'features', key: 'ck.err.approve-features' });
    }
    if (faceOk && form.face !== 'match') problems.push({ field: 'face', key: 'ck.err.approve-face' });
    const kinds = new Set((facts.stills || []).map((s) => s.kind));
    if (!kinds.has('doc-front')) problems.push({ field: 'stills', key: 'ck.err.approve-still-front' });
    if (!kinds.has('face')) problems.push({ field: 'stills', key: 'ck.err.approve-still-face' });
    if (!(facts.instructions || []).length) problems.push({ field: 'instructions', key: 'ck.err.approve-instructions' });
    if (!facts.consent) problems.push({ field: 'consent', key: 'ck.err.approve-consent' });
  }
  const body = { outcome };
  if (Object.keys(checklist).length) body.checklist = checklist;
  if (notes !== '') body.notes = notes;
  return { problems, body };
}

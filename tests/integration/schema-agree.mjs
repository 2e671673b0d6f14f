#!/usr/bin/env node
// schema-agree.mjs — Testigo's own schema checker and ajv must agree.
//
//   node schema-agree.mjs SCHEMA_CHECK_TOOL EVIDENCE_SCHEMA_DIR
//
// For every example under EVIDENCE_SCHEMA_DIR/examples/ the verdict of ajv
// (draft 2020-12, strict mode, ajv-formats) and of the C checker
// (schema-check-tool, built by meson) must be the same, and must be the one
// the example's folder promises (valid/, invalid/, events-valid/,
// events-invalid/). Also checks that both schemas compile in ajv's strict
// mode and that every object schema that defines members is closed.
//
// ajv comes from EVIDENCE_SCHEMA_DIR/node_modules: run
// `npm ci --prefix evidence-schema` first. Output is TAP.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [tool, schemaDir] = process.argv.slice(2);
if (!tool || !schemaDir) {
  console.error('usage: schema-agree.mjs SCHEMA_CHECK_TOOL EVIDENCE_SCHEMA_DIR');
  process.exit(2);
}

const require = createRequire(path.join(path.resolve(schemaDir), 'package.json'));
let Ajv2020, addFormats;
try {
  Ajv2020 = require('ajv/dist/2020').default;
  addFormats = require('ajv-formats').default;
} catch (e) {
  console.log(`Bail out! ajv is not installed under ${schemaDir}/node_modules: ` +
              'run `npm ci --prefix evidence-schema` (' + e.message.split('\n')[0] + ')');
  process.exit(1);
}

const results = [];
function report(ok, name, detail) {
  results.push({ ok, name, detail });
}

// ---- the schemas -----------------------------------------------------------

const kinds = {
  record: { file: 'validation-record.schema.json', valid: 'valid', invalid: 'invalid' },
  event: { file: 'event.schema.json', valid: 'events-valid', invalid: 'events-invalid' },
};

const ajv = new Ajv2020({ strict: true, allErrors: false });
addFormats(ajv);

// Keywords under which a subschema only adds conditions to a schema that is
// closed elsewhere (so it need not repeat additionalProperties: false).
const OVERLAY = new Set(['if', 'then', 'else', 'not', 'contains', 'allOf', 'anyOf', 'oneOf']);

// Object schemas that define members must be closed, unless they only add
// conditions (under if/then/else/not/contains/allOf/anyOf/oneOf) or are
// $defs entries used only as an "if" condition. One exception: the event
// schema's root, closed per type through allOf/if/then into closed $defs.
function closedProblems(schema, file) {
  const refs = new Map(); // def name -> keywords it is referenced under
  function walk(node, where, overlay, parentKey, problems) {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      node.forEach((s, i) => walk(s, `${where}/${i}`, overlay, parentKey, problems));
      return;
    }
    if (typeof node.$ref === 'string' && node.$ref.startsWith('#/$defs/')) {
      const name = node.$ref.slice(8);
      if (!refs.has(name)) refs.set(name, new Set());
      refs.get(name).add(parentKey);
    }
    if (!overlay && node.properties && node.additionalProperties !== false &&
        !(where === '#' && file === kinds.event.file)) {
      problems.push(`${where} defines properties but is not closed`);
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === '$defs' || k === 'const' || k === 'enum' || typeof v !== 'object') continue;
      if (k === 'properties') {
        for (const [name, s] of Object.entries(v)) walk(s, `${where}/properties/${name}`, overlay, k, problems);
      } else {
        walk(v, `${where}/${k}`, overlay || OVERLAY.has(k), k, problems);
      }
    }
  }
  const problems = [];
  walk(schema, '#', false, '', problems);
  const perDef = Object.entries(schema.$defs || {}).map(([name, def]) => {
    const p = [];
    walk(def, `#/$defs/${name}`, false, '$defs', p);
    return [name, p];
  });
  for (const [name, p] of perDef) {
    const usedAs = refs.get(name) || new Set();
    if (!(usedAs.size === 1 && usedAs.has('if'))) problems.push(...p); // else: a condition, not a shape
  }
  return problems;
}

const validators = {};
for (const [kind, k] of Object.entries(kinds)) {
  const schema = JSON.parse(readFileSync(path.join(schemaDir, k.file), 'utf8'));
  try {
    validators[kind] = ajv.compile(schema);
    report(true, `${k.file} compiles in ajv strict mode`);
  } catch (e) {
    report(false, `${k.file} compiles in ajv strict mode`, e.message);
    continue;
  }
  const problems = closedProblems(schema, k.file);
  report(problems.length === 0, `${k.file} is closed everywhere`, problems.join('; '));
}

// ---- the examples ------------------------------------------------------------

function cVerdicts(kind, files) {
  let out;
  try {
    out = execFileSync(tool, [kind, ...files], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (e) {
    if (e.status !== 1) throw e; // 1: some file invalid; anything else is a failure to run
    out = e.stdout;
  }
  const verdicts = new Map();
  for (const line of out.split('\n')) {
    for (const f of files) {
      if (line === `${f}: valid`) verdicts.set(f, { valid: true, reason: '' });
      else if (line.startsWith(`${f}: invalid: `)) {
        verdicts.set(f, { valid: false, reason: line.slice(f.length + 11) });
      }
    }
  }
  return verdicts;
}

function ajvVerdict(kind, file) {
  let data;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    return { valid: false, reason: 'JSON: ' + e.message };
  }
  const validate = validators[kind];
  if (validate(data)) return { valid: true, reason: '' };
  const err = validate.errors[0];
  return { valid: false, reason: `${err.instancePath || '(root)'} ${err.message}` };
}

for (const [kind, k] of Object.entries(kinds)) {
  if (!validators[kind]) continue;
  for (const [folder, expected] of [[k.valid, true], [k.invalid, false]]) {
    const dir = path.join(schemaDir, 'examples', folder);
    const files = readdirSync(dir).filter((n) => n.endsWith('.json')).sort().map((n) => path.join(dir, n));
    if (files.length === 0) report(false, `${folder} has examples`, 'empty folder');
    const c = cVerdicts(kind, files);
    for (const f of files) {
      const a = ajvVerdict(kind, f);
      const t = c.get(f);
      const name = `${folder}/${path.basename(f)}`;
      if (!t) {
        report(false, name, 'no verdict from the C checker');
        continue;
      }
      const detail = `expected ${expected ? 'valid' : 'invalid'}; ajv: ${a.valid ? 'valid' : 'invalid: ' + a.reason}` +
                     `; C: ${t.valid ? 'valid' : 'invalid: ' + t.reason}`;
      report(a.valid === expected && t.valid === expected, name, detail);
    }
  }
}

// ---- TAP -------------------------------------------------------------------

console.log('TAP version 13');
console.log(`1..${results.length}`);
results.forEach((r, i) => {
  console.log(`${r.ok ? 'ok' : 'not ok'} ${i + 1} - ${r.name}`);
  if (!r.ok && r.detail) console.log(`# ${r.detail}`);
});
process.exit(results.every((r) => r.ok) ? 0 : 1);

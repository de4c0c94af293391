// OpenAI's published schemas (tests/fixtures/openai-schemas.json, made by
// tools/extract_openai_schemas.py) as one ajv document whose $defs the end-to-end tests check
// kiln's bodies and events against.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';

export const fixture = JSON.parse(readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'openai-schemas.json'), 'utf8'));

// OpenAPI 3.0's nullable: true becomes a null type; refs point into this document's $defs.
function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref') out.$ref = v.replace('#/components/schemas/', '#/$defs/');
    else if (k === 'nullable' || k === 'discriminator' || k.startsWith('x-') || k === 'example') continue;
    else out[k] = toJsonSchema(v);
  }
  if (node.nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

// The schemas after `adjust(defs)` (where a test records how OpenAI's service departs from its
// spec, or adds schemas of its own): { validator(name), check(name, value) }.
export function openaiSchemas(adjust = () => {}) {
  const defs = toJsonSchema(fixture.schemas);
  adjust(defs);
  // Formats (unixtime, float, uri) are OpenAPI annotations, not checks.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ $id: 'openai', $defs: defs });
  const validator = (name) => ajv.getSchema(`openai#/$defs/${name}`);
  const check = (name, value) => {
    const v = validator(name);
    assert.ok(v, `no schema ${name}`);
    assert.ok(v(value), `${name}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 800)}`);
  };
  return { validator, check };
}

// Validates documents kiln's JSON Schema grammars generated with an independent validator (ajv,
// ajv-formats). Reads JSON lines {"name", "schema", "docs": [text...]} on stdin; writes one JSON line
// per document ajv rejects ({"name", "doc", "errors"}), then a summary line {"checked", "skipped"}.
import Ajv from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { createInterface } from "node:readline";

const options = { strict: false, validateSchema: false, allErrors: false, logger: false };
const modern = addFormats(new Ajv2020(options));
const draft7 = addFormats(new Ajv(options));
let checked = 0, skipped = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { name, schema, docs } = JSON.parse(line);
  const draft = typeof schema === "object" && schema !== null ? String(schema.$schema ?? "") : "";
  const s = typeof schema === "object" && schema !== null ? { ...schema } : schema;
  if (typeof s === "object" && s !== null) { delete s.$schema; delete s.$id; delete s.id; }
  let validate;
  try {
    validate = (/draft-0[467]/.test(draft) ? draft7 : modern).compile(s);
  } catch (e) {
    skipped++;
    continue;
  }
  for (const doc of docs) {
    checked++;
    let value;
    try { value = JSON.parse(doc); } catch (e) {
      console.log(JSON.stringify({ name, doc, errors: "not JSON: " + e.message }));
      continue;
    }
    if (!validate(value)) console.log(JSON.stringify({ name, doc, errors: validate.errors }));
  }
}
console.log(JSON.stringify({ checked, skipped }));

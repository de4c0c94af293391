#!/usr/bin/env node
// Differential test of kiln's chat-template rendering against @huggingface/jinja (the JavaScript
// port of Jinja used by transformers.js), on the same inputs as the Python fixtures:
// every tests/fixtures/templates/*.jinja over every conversation in conversations.json.
//
//   node tests/jinja_differential.mjs --kiln build/release/apps/kiln/kiln [--update-known]
//
// For each case the port's output is compared with kiln's (`kiln chat-template`). The port is not
// Python jinja2, and where it renders differently from the Python fixture the case is listed in
// tests/fixtures/templates/hf_jinja_known_differences.json with the reason; those cases are
// compared with the Python fixture only (kiln follows Python). A listed case that no longer
// differs, or an unlisted one that does, fails the test, so the list stays exact.
// --update-known rewrites the list (reasons of entries kept, new ones marked "unreviewed").
import { Template } from "@huggingface/jinja";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = path.join(ROOT, "tests", "fixtures", "templates");
const KNOWN_FILE = path.join(FIXTURES, "hf_jinja_known_differences.json");
const FIXED_NOW = 1721995200; // tools/make_template_fixtures.py FIXED_NOW

const args = process.argv.slice(2);
const kilnIndex = args.indexOf("--kiln");
const kiln = kilnIndex >= 0 ? args[kilnIndex + 1] : null;
const updateKnown = args.includes("--update-known");
if (!kiln || !fs.existsSync(kiln)) {
  console.error("usage: node tests/jinja_differential.mjs --kiln PATH_TO_KILN [--update-known]");
  process.exit(2);
}

const conversations = Object.fromEntries(
  JSON.parse(fs.readFileSync(path.join(FIXTURES, "conversations.json"), "utf8")).map((c) => [c.name, c]),
);
const known = fs.existsSync(KNOWN_FILE) ? JSON.parse(fs.readFileSync(KNOWN_FILE, "utf8")) : { templates: {}, cases: {} };

// The port has its own raise_exception and strftime_now; its clock is pinned to the fixtures'
// instant by fixing what `new Date()` returns.
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...a) {
    if (a.length === 0) super(FIXED_NOW * 1000);
    else super(...a);
  }
  static now() {
    return FIXED_NOW * 1000;
  }
};

function renderPort(source, context) {
  try {
    return { output: new Template(source).render(context) };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
}

// Every case of one template, rendered by one `kiln chat-template --batch` process (starting the
// binary once per case costs more than all the rendering).
function renderKilnAll(dir, cases) {
  const input = cases
    .map((c) => {
      const conv = conversations[c.conversation];
      return JSON.stringify({
        messages: conv.messages,
        tools: conv.tools ?? null,
        kwargs: conv.kwargs ?? null,
        add_generation_prompt: c.add_generation_prompt,
      });
    })
    .join("\n");
  const argv = ["chat-template", "--model", dir, "--batch", "--now", String(FIXED_NOW)];
  const r = spawnSync(kiln, argv, {
    input,
    encoding: "utf8",
    maxBuffer: 1 << 28,
    env: { ...process.env, TZ: process.env.TZ ?? "UTC" },
  });
  const lines = r.status === 0 ? r.stdout.split("\n").filter((l) => l.length > 0) : [];
  if (lines.length !== cases.length) {
    const why = `kiln chat-template --batch answered ${lines.length} of ${cases.length} cases: ${r.stderr.trim()}`;
    return cases.map(() => ({ error: why, broken: true }));
  }
  return lines.map((l) => JSON.parse(l));
}

// A short reason for a port/Python difference, written into the known-differences list.
function describeDifference(python, port) {
  if (python.error !== undefined && port.output !== undefined) {
    if (/can only concatenate str/.test(python.error))
      return "Python raises TypeError on str + list/dict; the port concatenates the value's JSON text";
    return `Python raises (${python.error.slice(0, 80)}); the port renders`;
  }
  if (python.output !== undefined && port.error !== undefined) {
    if (/filter/i.test(port.error)) return `the port lacks a filter for this value type (${port.error})`;
    return `the port fails where Python renders (${port.error.slice(0, 80)})`;
  }
  if (python.output !== undefined && port.output !== undefined) {
    let i = 0;
    while (i < python.output.length && python.output[i] === port.output[i]) i++;
    const py = python.output.slice(i, i + 40);
    const js = port.output.slice(i, i + 40);
    if (/^None/.test(py) || /None/.test(python.output.slice(Math.max(0, i - 4), i + 4)))
      return "Python prints None as 'None'; the port prints it as ''";
    if (/['\[{(]/.test(py[0] ?? "") && /["\[{]/.test(js[0] ?? ""))
      return "Python prints lists and dicts with repr() (single quotes); the port prints JSON";
    return `output differs at byte ${i}: Python ${JSON.stringify(py)} vs port ${JSON.stringify(js)}`;
  }
  return "both fail, with different errors";
}

const same = (a, b) => (a.output !== undefined ? a.output === b.output : b.output === undefined);

let failures = 0;
let compared = 0;
let viaPython = 0;
const observed = { templates: {}, cases: {} };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-jinja-diff-"));

for (const file of fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".jinja")).sort()) {
  const name = file.slice(0, -".jinja".length);
  const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, name + ".json"), "utf8"));
  if (fixture.load_error) continue; // Python cannot load it; the unit tests check kiln refuses it too
  const source = fs.readFileSync(path.join(FIXTURES, file), "utf8");
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: source, ...fixture.special_tokens }));

  const kilnResults = renderKilnAll(dir, fixture.cases);
  fixture.cases.forEach((c, i) => {
    const conv = conversations[c.conversation];
    const key = `${name} :: ${c.conversation}${c.add_generation_prompt ? " +gen" : ""}`;
    const context = {
      messages: conv.messages,
      tools: conv.tools ?? null,
      documents: null,
      add_generation_prompt: c.add_generation_prompt,
      ...fixture.special_tokens,
      ...(conv.kwargs ?? {}),
    };
    const python = c.output !== undefined ? { output: c.output } : { error: c.error.message };
    const port = renderPort(source, context);
    const portDiffers = !same(python, port);
    if (portDiffers) observed.cases[key] = known.cases[key] ?? known.templates[name] ?? describeDifference(python, port);
    const isKnown = key in known.cases || name in known.templates;
    if (portDiffers && !isKnown && !updateKnown) {
      failures++;
      console.error(`NEW DIFFERENCE between @huggingface/jinja and Python jinja2: ${key}`);
    }
    if (!portDiffers && key in known.cases && !updateKnown) {
      failures++;
      console.error(`STALE known difference (the port now matches Python): ${key}`);
    }
    const k = kilnResults[i];
    const reference = portDiffers ? python : port;
    if (portDiffers) viaPython++;
    compared++;
    if (k.broken || !same(reference, k)) {
      failures++;
      console.error(`MISMATCH kiln vs ${portDiffers ? "Python fixture" : "@huggingface/jinja"}: ${key}`);
      console.error(`  expected: ${JSON.stringify(reference).slice(0, 400)}`);
      console.error(`  kiln:     ${JSON.stringify(k).slice(0, 400)}`);
    }
  });
}
fs.rmSync(tmp, { recursive: true, force: true });

if (updateKnown) {
  const out = {
    comment:
      "Cases where @huggingface/jinja renders differently from Python jinja2 (the reference); " +
      "tests/jinja_differential.mjs compares kiln with the Python fixture for these. Regenerate with --update-known.",
    templates: known.templates ?? {},
    cases: {},
  };
  for (const [k, v] of Object.entries(observed.cases)) {
    const tmpl = k.split(" :: ")[0];
    if (!(tmpl in known.templates)) out.cases[k] = v;
  }
  fs.writeFileSync(KNOWN_FILE, JSON.stringify(out, null, 1) + "\n");
  console.log(`wrote ${KNOWN_FILE}: ${Object.keys(out.cases).length} cases`);
}
console.log(
  `${compared} cases: ${compared - viaPython} compared with @huggingface/jinja, ${viaPython} with the Python fixture ` +
    `(known port differences); ${failures} failures`,
);
process.exit(failures ? 1 : 0);

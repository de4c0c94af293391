// The web UI in a real browser (Debian's chromium, driven headless by playwright-core) against the
// real `kiln serve` and a tiny random-weight checkpoint: the page comes from the binary alone,
// the Models page shows and changes the pool's state (checked through the API), the Playground
// streams an answer, the Jobs page lists the job, a key is asked for when the server has one, and
// --no-ui turns it off. Screenshots of each page go to KILN_UI_SCREENSHOTS.
// Run by CTest (KILN_BINARY, KILN_TEST_MODEL_DIR, KILN_RANDOM_MODEL_DIR, KILN_CHROMIUM,
// KILN_UI_SCREENSHOTS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startHub } from './hub_server.mjs';
import { startServer, stopServer } from './kiln_server.mjs';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_TEST_MODEL_DIR;
const qwenDir = process.env.KILN_RANDOM_MODEL_DIR;  // random weights, real Qwen3 tokenizer and template
const chromiumPath = process.env.KILN_CHROMIUM;
const shots = process.env.KILN_UI_SCREENSHOTS;
const MODEL = 'tiny';

if (!chromiumPath || !fs.existsSync(chromiumPath)) {
  console.error('chromium not found (scripts/setup installs it): skipped');
  process.exit(77);
}
const KEY = 'test-key-ui';

let tmp;
let server;
let origin;
let browser;

// Waits for `f` to return a truthy value (polled every 50 ms), up to `ms`.
async function until(f, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(pathname, init = {}) {
  const res = await fetch(origin + pathname, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

async function modelStatus() {
  const r = await api(`/v1/admin/models/${MODEL}`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body);
}

async function shot(page, name) {
  if (!shots) return;
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

// A server run from a directory holding nothing but a copy of the binary and a link to the
// model, so that the page can only come from the binary.
async function start(extra = [], name = 'kiln') {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const bin = path.join(dir, 'kiln');
  fs.copyFileSync(binary, bin);
  fs.chmodSync(bin, 0o755);
  const models = path.join(dir, 'models');
  fs.mkdirSync(models);
  fs.symlinkSync(path.resolve(modelDir), path.join(models, MODEL));
  fs.symlinkSync(path.resolve(qwenDir), path.join(models, 'qwen'));
  const args = ['--models-dir', models, '--no-hf-cache', '--memory-budget', '2GiB', '--engine-threads', '1',
    '--no-access-log', '--max-model-len', '2048', '--database', path.join(dir, 'jobs.db'), ...extra];
  const s = await startServer(bin, args, { KILN_HOME: dir });
  s.cwd = dir;
  return s;
}

before(async () => {
  assert.ok(binary && modelDir && qwenDir && chromiumPath,
    'set KILN_BINARY, KILN_TEST_MODEL_DIR, KILN_RANDOM_MODEL_DIR and KILN_CHROMIUM');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ui-'));
  server = await start();
  origin = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true,
    // Root in a container: no sandbox; a small /dev/shm there: use /tmp.
    args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await stopServer(server), 0);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// Until the Playground's answer is complete: its numbers are shown and Send is back.
function answered(page) {
  return page.waitForFunction(() => /tokens\/s/.test(document.querySelector('[data-testid=stats]')?.textContent ?? '')
    && document.querySelector('button[type=submit]')?.textContent === 'Send', null, { timeout: 60000 });
}

async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.errors = errors;
  return page;
}

test('the binary serves the page, its assets with ETags, and index.html for client routes', async () => {
  const index = await api('/');
  assert.equal(index.status, 200);
  assert.match(index.type, /^text\/html/);
  const js = index.body.match(/src="(\/assets\/[^"]+\.js)"/);
  assert.ok(js, index.body);
  const asset = await fetch(origin + js[1]);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type'), /^text\/javascript/);
  assert.match(asset.headers.get('cache-control'), /immutable/);
  const etag = asset.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]+"$/);
  const again = await fetch(origin + js[1], { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  assert.equal((await again.text()).length, 0);
  for (const route of ['/models', '/playground', '/live', '/jobs', '/jobs/job_123']) {
    const r = await api(route);
    assert.equal(r.status, 200, route);
    assert.equal(r.body, index.body, route);
  }
  // Anything else stays the API's JSON 404.
  for (const p of ['/assets/nope.js', '/nope', '/index.html.bak']) {
    const r = await api(p);
    assert.equal(r.status, 404, p);
    assert.match(r.type, /^application\/json/, p);
  }
});

test('Models: listed with state; Load from the page loads it', async () => {
  const page = await newPage();
  await page.goto(origin + '/');
  const row = page.locator(`tr[data-model="${MODEL}"]`);
  await row.locator('[data-state="unloaded"]').waitFor();
  assert.equal((await modelStatus()).state, 'unloaded');
  await row.getByRole('button', { name: 'Load' }).click();
  await row.locator('[data-state="ready"]').waitFor();
  assert.equal((await modelStatus()).state, 'ready');
  await shot(page, 'models');
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A Hub-shaped server (hub_server.mjs) holds the tiny checkpoint: the page pulls it through
// POST /v1/admin/models/pull, shows it done, and the pulled model appears in the list; a repository
// the Hub does not have ends in the pull's error.
test('Models: a pull from the Hub ends done and lists the model; a missing one shows its error', async () => {
  const repo = 'kiln-test/pulled';
  const hub = await startHub({ repos: { [repo]: { dir: modelDir, commit: '0123456789abcdef0123456789abcdef01234567' } } });
  const dir = fs.mkdtempSync(path.join(tmp, 'pull-'));
  fs.mkdirSync(path.join(dir, 'models'));
  const s = await startServer(binary, ['--models-dir', path.join(dir, 'models'), '--engine-threads', '1', '--no-access-log',
    '--max-model-len', '2048', '--database', 'off', '--memory-budget', '2GiB'],
  { KILN_HOME: dir, HF_ENDPOINT: hub.url, HF_HUB_CACHE: path.join(dir, 'hub'), HF_TOKEN: '' });
  try {
    const page = await newPage();
    await page.goto(`http://127.0.0.1:${s.port}/models`);
    const input = page.locator('input[name="pull-model"]');
    await input.fill(repo);
    await page.getByRole('button', { name: 'Pull' }).click();
    await page.getByTestId('pull-done').waitFor();
    await page.locator(`tr[data-model="${repo}"]`).waitFor();
    await input.fill('kiln-test/absent');
    await page.getByRole('button', { name: 'Pull' }).click();
    const err = page.getByTestId('pull-error');
    await err.waitFor();
    assert.ok((await err.textContent()).length > 0);
    assert.deepEqual(page.errors, []);
    await page.close();
  } finally {
    await stopServer(s);
    await hub.close();
  }
});

test('Playground: a chat streams into the page, with its numbers', async () => {
  const page = await newPage();
  let streamed = null;
  page.on('response', (res) => {
    if (res.url().endsWith('/v1/chat/completions')) streamed = res.headers()['content-type'];
  });
  await page.goto(origin + '/playground');
  await page.locator('select[name="model"]').selectOption(MODEL);  // waits for the model list
  await page.locator('input[name="temperature"]').fill('0');
  await page.locator('input[name="max_tokens"]').fill('12');
  await page.locator('textarea[name="system"]').fill('Be brief.');
  await page.locator('textarea[name="message"]').fill('Hello there');
  await page.getByRole('button', { name: 'Send' }).click();
  const stats = page.getByTestId('stats');
  await answered(page);
  assert.match(streamed ?? '', /^text\/event-stream/);
  const answer = await page.getByTestId('answer').textContent();
  const statsText = await stats.textContent();
  assert.match(statsText, /TTFT [\d.]+ m?s · [\d.]+ tokens\/s · 12 tokens · length/);
  // The same request unstreamed (greedy) gives the text the page put together from the deltas.
  const r = await api('/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, temperature: 0, max_tokens: 12,
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }] }),
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(answer, JSON.parse(r.body).choices[0].message.content);
  await shot(page, 'playground');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Playground: a tool call is shown as such', async () => {
  // tool_choice "required" makes the grammar engine force a valid call even from random weights.
  const page = await newPage();
  await page.goto(origin + '/playground');
  await page.locator('select[name="model"]').selectOption('qwen');
  await page.locator('details.tools summary').click();
  await page.locator('textarea[name="tools"]').fill(JSON.stringify([{ type: 'function', function: {
    name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 } },
      required: ['city'], additionalProperties: false } } }]));
  await page.locator('select[name="tool_choice"]').selectOption('required');
  // A fixed seed and one call: the page's defaults sample with a random seed, and "required"
  // allows parallel calls.
  await page.locator('textarea[name="extra"]').fill(JSON.stringify({ parallel_tool_calls: false }));
  await page.locator('input[name="seed"]').fill('7');
  await page.locator('input[name="max_tokens"]').fill('64');
  await page.locator('textarea[name="message"]').fill('Weather in Paris?');
  await page.getByRole('button', { name: 'Send' }).click();
  await answered(page);
  const call = page.getByTestId('tool-call');
  assert.equal(await call.count(), 1);
  assert.equal(await call.locator('code').textContent(), 'get_weather');
  const args = JSON.parse(await call.locator('pre').textContent());
  assert.equal(typeof args.city, 'string');
  await shot(page, 'playground-tool-call');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Playground: reasoning is shown apart from the answer', async () => {
  // Biased to "<think>" (id 151667 in Qwen3's vocabulary), the random weights open a reasoning
  // block, which the server answers as reasoning_content; the page sends the bias as an extra
  // parameter.
  const body = { temperature: 0, max_tokens: 8, logit_bias: { 151667: 100 } };
  const page = await newPage();
  await page.goto(origin + '/playground');
  await page.locator('select[name="model"]').selectOption('qwen');
  await page.locator('input[name="temperature"]').fill('0');
  await page.locator('input[name="max_tokens"]').fill('8');
  await page.locator('details.tools summary').click();
  await page.locator('textarea[name="extra"]').fill(JSON.stringify({ logit_bias: body.logit_bias }));
  await page.locator('textarea[name="message"]').fill('Think first');
  await page.getByRole('button', { name: 'Send' }).click();
  await answered(page);
  const r = await api('/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'qwen', ...body, messages: [{ role: 'user', content: 'Think first' }] }),
  });
  assert.equal(r.status, 200, r.body);
  const message = JSON.parse(r.body).choices[0].message;
  assert.ok(message.reasoning_content.length > 0, r.body);
  assert.equal(await page.getByTestId('reasoning').locator('pre').textContent(), message.reasoning_content);
  assert.equal(await page.getByTestId('answer').count(), message.content ? 1 : 0);
  await shot(page, 'playground-reasoning');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Live: requests per model and tokens/s from /metrics', async () => {
  const page = await newPage();
  await page.goto(origin + '/live');
  const row = page.locator(`[data-testid=live-models] tr[data-model="${MODEL}"]`);
  await row.waitFor();
  // Tokens generated while the page watches show up in its rate (read every 2 s).
  const r = await api('/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: MODEL, max_tokens: 32, ignore_eos: true, messages: [{ role: 'user', content: 'Count' }] }),
  });
  assert.equal(r.status, 200, r.body);
  await page.waitForFunction((m) => {
    const cell = document.querySelector(`[data-testid=live-models] tr[data-model="${m}"] td:last-child`);
    return Number(cell?.textContent) > 0;
  }, MODEL);
  await page.locator('svg.plot polyline').waitFor({ state: 'attached' });
  await shot(page, 'live');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Jobs: the chat is listed, and its page shows it', async () => {
  // The job store writes in batches: wait until the API lists the chat, then look for it.
  const job = await until(async () => {
    const r = await api('/v1/jobs?limit=10&endpoint=/v1/chat/completions');
    return JSON.parse(r.body).data.find((j) => j.stream && j.model === MODEL);
  }, 'the chat job');
  const page = await newPage();
  await page.goto(origin + '/jobs');
  const row = page.locator(`tr[data-job="${job.id}"]`);
  await row.waitFor();
  await shot(page, 'jobs');
  await row.getByRole('link').click();
  await page.getByTestId('job-detail').waitFor();
  assert.equal(new URL(page.url()).pathname, `/jobs/${job.id}`);
  assert.match(await page.getByTestId('job-detail').textContent(), /completed/);
  await shot(page, 'job');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('Models: Pin, Unpin and Unload from the page change the pool', async () => {
  const page = await newPage();
  await page.goto(origin + '/models');
  const row = page.locator(`tr[data-model="${MODEL}"]`);
  await row.locator('[data-state="ready"]').waitFor();
  await row.getByRole('button', { name: 'Pin' }).click();
  await row.getByRole('button', { name: 'Unpin' }).waitFor();
  assert.equal((await modelStatus()).pinned, true);
  await row.getByRole('button', { name: 'Unpin' }).click();
  await row.getByRole('button', { name: 'Pin' }).waitFor();
  assert.equal((await modelStatus()).pinned, false);
  await row.getByRole('button', { name: 'Unload' }).click();
  await row.locator('[data-state="unloaded"]').waitFor();
  assert.equal((await modelStatus()).state, 'unloaded');
  assert.deepEqual(page.errors, []);
  await page.close();
});

test('with --api-key the page asks for the key and the API needs it', async () => {
  const keyed = await start(['--api-key', KEY], 'keyed');
  try {
    const o = `http://127.0.0.1:${keyed.port}`;
    assert.equal((await fetch(o + '/')).status, 200);  // the page itself holds no data
    assert.equal((await fetch(o + '/v1/admin/models')).status, 401);
    const page = await newPage();
    await page.goto(o + '/models');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.equal(await page.locator(`tr[data-model="${MODEL}"]`).count(), 0);
    await dialog.locator('input[name="api-key"]').fill(KEY);
    await dialog.getByRole('button', { name: 'Save' }).click();
    await page.locator(`tr[data-model="${MODEL}"] [data-state="unloaded"]`).waitFor();
    await page.close();
  } finally {
    assert.equal(await stopServer(keyed), 0);
  }
});

test('--no-ui: / and the assets are not served', async () => {
  const off = await start(['--no-ui'], 'off');
  try {
    const o = `http://127.0.0.1:${off.port}`;
    for (const p of ['/', '/models', '/assets/index.js']) {
      const r = await fetch(o + p);
      assert.equal(r.status, 404, p);
      assert.match(r.headers.get('content-type'), /^application\/json/);
    }
    assert.equal((await fetch(o + '/v1/models')).status, 200);
  } finally {
    assert.equal(await stopServer(off), 0);
  }
});

// `kiln pull`, `kiln ls`, `kiln rm` and POST /v1/admin/models/pull against a local server that
// speaks the Hub's HTTP layout (hub_server.mjs), serving a checkpoint made by `kiln make-model`
// (sharded, so that several files download at once). The pulled cache is then served by
// `kiln serve`, and its answers compared with the same checkpoint served from its directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from './hub_server.mjs';
import { startServer, stopServer } from './kiln_server.mjs';

const BIN = process.env.KILN_BINARY;
const MODEL_DIR = process.env.KILN_PULL_MODEL;
const REPO = 'kiln-test/tiny';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const TOKEN = 'hf_test_token_123';
const root = mkdtempSync(join(tmpdir(), 'kiln-pull-'));
let hub;

// Runs `kiln ...args` without blocking this process (the Hub server answers from it).
function kiln(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { env: { ...process.env, HF_HOME: join(root, 'hf-home'), ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let cacheCount = 0;
const freshCache = () => join(root, `cache-${cacheCount++}`);
const pullEnv = (cache, token = TOKEN) => ({ HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, ...(token ? { HF_TOKEN: token } : {}) });
const repoDir = (cache) => join(cache, 'models--kiln-test--tiny');
const servedFiles = () => readdirSync(MODEL_DIR).filter((f) => statSync(join(MODEL_DIR, f)).isFile());
const biggestShard = () => servedFiles().filter((f) => f.endsWith('.safetensors'))
  .sort((a, b) => statSync(join(MODEL_DIR, b)).size - statSync(join(MODEL_DIR, a)).size)[0];

before(async () => {
  hub = await startHub({ repos: { [REPO]: { dir: MODEL_DIR, commit: COMMIT } }, token: TOKEN });
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

test('the checkpoint is sharded, so several files download at once', () => {
  assert.ok(servedFiles().filter((f) => f.endsWith('.safetensors')).length >= 2, servedFiles().join(' '));
  assert.ok(servedFiles().includes('model.safetensors.index.json'));
});

test('a full pull writes the Hugging Face cache layout and sends the token', async () => {
  const cache = freshCache();
  const from = hub.requests.length;
  const r = await kiln(['pull', REPO], pullEnv(cache));
  assert.equal(r.code, 0, r.stderr);
  const snapshot = join(repoDir(cache), 'snapshots', COMMIT);
  assert.equal(r.stdout.trim(), snapshot);
  assert.equal(readFileSync(join(repoDir(cache), 'refs', 'main'), 'utf8'), COMMIT);
  for (const f of servedFiles()) {
    const link = join(snapshot, f);
    assert.ok(lstatSync(link).isSymbolicLink(), `${f} is a symlink`);
    const meta = hub.file(REPO, f);
    assert.equal(readlinkSync(link), `../../blobs/${meta.lfs ? meta.sha256 : meta.blobId}`);
    assert.deepEqual(readFileSync(link), readFileSync(join(MODEL_DIR, f)), `${f} has the source's bytes`);
  }
  // What kiln does not serve stays on the Hub.
  assert.ok(!existsSync(join(snapshot, 'README.md')));
  assert.ok(!existsSync(join(snapshot, 'pytorch_model.bin')));
  const mine = hub.requests.slice(from);
  assert.ok(mine.some((q) => q.url.startsWith(`/api/models/${REPO}/revision/main`) && q.url.includes('blobs=true')));
  for (const other of ['pytorch_model.bin', 'README.md', 'consolidated.safetensors']) {
    assert.ok(!existsSync(join(snapshot, other)), other);
    assert.ok(!mine.some((q) => q.url.includes(other) || q.url.includes(hub.file(REPO, other).sha256)), other);
  }
  for (const q of mine.filter((q) => !q.url.startsWith('/cdn/'))) assert.equal(q.authorization, `Bearer ${TOKEN}`, q.url);
  // The redirect leads to another host: the token is not sent there.
  const cdn = mine.filter((q) => q.url.startsWith('/cdn/'));
  assert.ok(cdn.length >= 3);
  for (const q of cdn) assert.equal(q.authorization, null, q.url);
  // Files are fetched at the resolved commit, not at the moving branch.
  assert.ok(mine.filter((q) => q.url.includes('/resolve/')).every((q) => q.url.includes(`/resolve/${COMMIT}/`)));
  assert.ok(!readdirSync(join(repoDir(cache), 'blobs')).some((b) => b.endsWith('.incomplete')));

  // A second pull finds everything in the cache and downloads nothing.
  const n = hub.requests.length;
  const again = await kiln(['pull', `${REPO}@${COMMIT}`], pullEnv(cache));
  assert.equal(again.code, 0, again.stderr);
  assert.equal(hub.requests.slice(n).filter((q) => !q.url.startsWith('/api/')).length, 0);
});

test('without the token the Hub refuses and the error says to set HF_TOKEN', async () => {
  const r = await kiln(['pull', REPO], pullEnv(freshCache(), null));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 401/);
  assert.match(r.stderr, /HF_TOKEN/);
});

test('bad ids, unknown repositories and revisions are clear errors', async () => {
  let r = await kiln(['pull', 'no-slash'], pullEnv(freshCache()));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /not a model id/);
  r = await kiln(['pull', 'kiln-test/missing'], pullEnv(freshCache()));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 404/);
  r = await kiln(['pull', `${REPO}@v9`], pullEnv(freshCache()));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no such repository, revision or file/);
});

test('a dropped connection is resumed with a Range request within the same pull', async () => {
  const cache = freshCache();
  const shard = biggestShard();
  const meta = hub.file(REPO, shard);
  hub.drop(shard, 1000, 1);
  const from = hub.requests.length;
  const r = await kiln(['pull', REPO], pullEnv(cache));
  hub.clear();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /continuing \(attempt 2\)/);
  const ranged = hub.requests.slice(from).filter((q) => q.url === `/cdn/${meta.sha256}` && q.range);
  assert.equal(ranged.length, 1);
  const start = Number(/^bytes=(\d+)-$/.exec(ranged[0].range)[1]);
  assert.ok(start > 0 && start <= 1000, ranged[0].range);
  assert.deepEqual(readFileSync(join(repoDir(cache), 'snapshots', COMMIT, shard)), meta.data);
});

test('an interrupted pull leaves a part that the next pull continues', async () => {
  const cache = freshCache();
  const shard = biggestShard();
  const meta = hub.file(REPO, shard);
  hub.drop(shard, 1500, 100);
  const r = await kiln(['pull', REPO, '--retries', '0'], pullEnv(cache));
  hub.clear();
  assert.equal(r.code, 1);
  assert.ok(!existsSync(join(repoDir(cache), 'snapshots')), 'nothing is published');
  const part = join(repoDir(cache), 'blobs', `${meta.sha256}.incomplete`);
  const have = statSync(part).size;
  assert.ok(have > 0 && have <= 1500, String(have));
  const from = hub.requests.length;
  const again = await kiln(['pull', REPO], pullEnv(cache));
  assert.equal(again.code, 0, again.stderr);
  const ranged = hub.requests.slice(from).filter((q) => q.url === `/cdn/${meta.sha256}`);
  assert.deepEqual(ranged.map((q) => q.range), [`bytes=${have}-`]);
  assert.ok(!existsSync(part));
  assert.deepEqual(readFileSync(join(repoDir(cache), 'snapshots', COMMIT, shard)), meta.data);
});

test('a second pull of a repository being pulled is refused at once', async () => {
  const cache = freshCache();
  const shard = biggestShard();
  const release = hub.hold(shard);
  const from = hub.requests.length;
  const first = kiln(['pull', REPO], pullEnv(cache));
  await hub.waitFor((q) => q.url === `/cdn/${hub.file(REPO, shard).sha256}`, from);
  const second = await kiln(['pull', REPO], pullEnv(cache));
  release();
  assert.equal(second.code, 1);
  assert.match(second.stderr, /a pull of kiln-test\/tiny is already running/);
  const r = await first;
  assert.equal(r.code, 0, r.stderr);
});

test('a corrupted byte fails the checksum and publishes nothing', async () => {
  const cache = freshCache();
  const shard = biggestShard();
  const meta = hub.file(REPO, shard);
  hub.corrupt(shard, Math.floor(meta.data.length / 2));
  const r = await kiln(['pull', REPO], pullEnv(cache));
  hub.clear();
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`checksum mismatch: the Hub gives sha256 ${meta.sha256}`));
  assert.ok(!existsSync(join(repoDir(cache), 'snapshots')));
  assert.ok(!existsSync(join(repoDir(cache), 'refs')));
  const blobs = readdirSync(join(repoDir(cache), 'blobs'));
  assert.ok(!blobs.some((b) => b.startsWith(meta.sha256)), blobs.join(' '));
});

async function complete(port, model) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model, prompt: 'The pull test', max_tokens: 8, temperature: 0 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).choices[0].text;
}

test('kiln serve serves the pulled cache as the checkpoint itself; kiln ls and kiln rm', async () => {
  const cache = freshCache();
  const r = await kiln(['pull', REPO, '--quiet'], pullEnv(cache));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const empty = join(root, 'no-models');
  const pulled = await startServer(BIN, ['--models-dir', empty], { HF_HUB_CACHE: cache });
  let fromCache;
  try {
    const models = await (await fetch(`http://127.0.0.1:${pulled.port}/v1/models`)).json();
    assert.deepEqual(models.data.map((m) => m.id), [REPO]);
    fromCache = await complete(pulled.port, REPO);
  } finally {
    await stopServer(pulled);
  }
  const direct = await startServer(BIN, ['--model', MODEL_DIR, '--served-model-name', REPO]);
  try {
    assert.equal(await complete(direct.port, REPO), fromCache);
  } finally {
    await stopServer(direct);
  }

  const ls = await kiln(['ls', '--hub-dir', cache, '--models-dir', empty]);
  assert.equal(ls.code, 0, ls.stderr);
  const line = ls.stdout.split('\n').find((l) => l.startsWith(REPO));
  assert.ok(line, ls.stdout);
  assert.match(line, /hf_cache/);
  assert.ok(line.includes(join(repoDir(cache), 'snapshots', COMMIT)), line);
  assert.match(line, /KiB|MiB/);

  const rm = await kiln(['rm', REPO, '--hub-dir', cache]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(!existsSync(repoDir(cache)));
  const ls2 = await kiln(['ls', '--hub-dir', cache, '--models-dir', empty]);
  assert.ok(!ls2.stdout.includes(REPO));
  const rm2 = await kiln(['rm', REPO, '--hub-dir', cache]);
  assert.equal(rm2.code, 1);
  assert.match(rm2.stderr, /is not in the Hugging Face cache/);
});

// Reads a response's SSE stream into [{event, data}] until it ends.
async function readEvents(res, onEvent = () => {}) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (!ev || !data) continue;
      const e = { event: ev[1], data: JSON.parse(data[1]) };
      events.push(e);
      onEvent(e);
    }
  }
  return events;
}

test('POST /v1/admin/models/pull streams the pull and the model becomes servable', async () => {
  const cache = freshCache();
  const server = await startServer(BIN, ['--admin-key', 'adm', '--models-dir', join(root, 'no-models-2')],
    { HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN, HF_HOME: join(root, 'hf-home') });
  const base = `http://127.0.0.1:${server.port}`;
  const pull = (body, key = 'adm') => fetch(`${base}/v1/admin/models/pull`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  try {
    assert.equal((await pull({ model: REPO }, 'wrong')).status, 401);
    let bad = await pull({ model: 'not an id' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.param, 'model');
    bad = await pull({ revision: 'main' });
    assert.equal(bad.status, 400);
    bad = await pull({ model: REPO, revision: 'a/../b' });
    assert.equal(bad.status, 400);

    // Hold the biggest shard back: while the pull waits on it, another revision is refused and
    // a second request for the same one joins the running pull.
    const shard = biggestShard();
    const release = hub.hold(shard);
    const from = hub.requests.length;
    const first = await pull({ model: REPO });
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type'), /text\/event-stream/);
    const firstEvents = readEvents(first);
    await hub.waitFor((q) => q.url === `/cdn/${hub.file(REPO, shard).sha256}`, from);
    const listed = await (await fetch(`${base}/v1/admin/pulls`, { headers: { Authorization: 'Bearer adm' } })).json();
    assert.equal(listed.data.length, 1);
    assert.equal(listed.data[0].model, REPO);
    assert.equal(listed.data[0].revision, 'main');
    assert.equal(listed.data[0].commit, COMMIT);
    assert.ok(listed.data[0].total_bytes > 0);
    assert.equal((await fetch(`${base}/v1/admin/pulls`)).status, 401);
    const other = await pull({ model: REPO, revision: COMMIT });
    assert.equal(other.status, 409);
    assert.equal((await other.json()).error.code, 'pull_in_progress');
    const joined = await pull({ model: REPO });
    assert.equal(joined.status, 200);
    let sawResolved = false;
    const joinedEvents = readEvents(joined, (e) => { if (e.event === 'resolved') { sawResolved = true; release(); } });
    const [a, b] = await Promise.all([firstEvents, joinedEvents]);
    assert.ok(sawResolved);
    for (const events of [a, b]) {
      const names = events.map((e) => e.event);
      assert.equal(names[0], 'resolved');
      assert.equal(names.at(-1), 'done');
      assert.ok(!names.includes('error'));
      const resolved = events[0].data;
      assert.equal(resolved.commit, COMMIT);
      assert.deepEqual(resolved.files.map((f) => f.path).sort(), servedFiles().sort());
      const total = servedFiles().reduce((s, f) => s + statSync(join(MODEL_DIR, f)).size, 0);
      assert.equal(resolved.total_bytes, total);
      const progress = events.filter((e) => e.event === 'progress').map((e) => e.data);
      assert.ok(progress.length >= 1);
      assert.equal(progress.at(-1).done_bytes, total);
      assert.equal(progress.at(-1).files_total, servedFiles().length);
      const done = events.at(-1).data;
      assert.equal(done.model, REPO);
      assert.equal(done.snapshot, join(repoDir(cache), 'snapshots', COMMIT));
      assert.equal(done.servable, true);
    }
    assert.equal(a.filter((e) => e.event === 'file').length, servedFiles().length);

    const after = await (await fetch(`${base}/v1/admin/pulls`, { headers: { Authorization: 'Bearer adm' } })).json();
    assert.deepEqual(after.data, []);
    // Served without a restart.
    const models = await (await fetch(`${base}/v1/models`)).json();
    assert.ok(models.data.some((m) => m.id === REPO), JSON.stringify(models));
    await complete(server.port, REPO);

    // A pull that fails ends its stream with an error event.
    hub.corrupt(shard, 10);
    rmSync(repoDir(cache), { recursive: true, force: true });
    const failing = await pull({ model: REPO });
    assert.equal(failing.status, 200);
    const events = await readEvents(failing);
    hub.clear();
    const last = events.at(-1);
    assert.equal(last.event, 'error');
    assert.match(last.data.error.message, /checksum mismatch/);
  } finally {
    await stopServer(server);
  }
});

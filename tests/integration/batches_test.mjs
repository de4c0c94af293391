// The Files and Batch APIs end to end (docs/batches.md): the official `openai` npm client against
// the real `kiln serve` with the tiny checkpoint, on SQLite and on a real PostgreSQL server this
// test starts; signed webhooks checked by a receiver that verifies them with Node's crypto and
// refuses the first attempts; kill -9 at seeded random moments with restarts; two nodes sharing
// PostgreSQL, one of them killed. Run by CTest or by hand:
//   KILN_BINARY=build/cpu/apps/kiln/kiln KILN_TEST_MODEL_DIR=/tmp/m node tests/integration/batches_test.mjs
// KILN_BATCH_CRASH_LINES / KILN_BATCH_CRASH_KILLS / KILN_BATCH_CRASH_SEED size the crash test
// (CI: 300 lines, 3 kills; scripts/batch_crash_run.sh runs 2,000 lines and 10 kills).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { toFile } from 'openai';
import { startServer, stopServer, killServer } from './kiln_server.mjs';
import {
  binary, tinyArgs, sleep, tmpdir, clientFor, waitFor, waitStatus, requirePostgres, eventsOf, jobsSuite, startReceiver,
} from './jobs_fixture.mjs';

const CRASH_LINES = Number(process.env.KILN_BATCH_CRASH_LINES || 300);
const CRASH_KILLS = Number(process.env.KILN_BATCH_CRASH_KILLS || 3);
const CRASH_SEED = Number(process.env.KILN_BATCH_CRASH_SEED || 20261206);

// mulberry32: the crash moments are the same on every run of one seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function line(i, body = {}) {
  return JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions',
    body: { model: 'tiny', messages: [{ role: 'user', content: `line ${i}` }], max_tokens: 4, seed: i, ...body } });
}
function input(n, extra = []) {
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(line(i));
  return lines.concat(extra).join('\n') + '\n';
}

async function upload(client, text, name = 'in.jsonl') {
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });
}

function waitBatch(client, id, statuses, ms = 120000) {
  return waitStatus(() => client.batches.retrieve(id), statuses, `batch ${id}`, ms, 100);
}

async function jsonl(client, fileId) {
  const text = await (await client.files.content(fileId)).text();
  return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

// Exactly one valid output line per custom_id 0..n-1.
function checkOneEach(lines, n) {
  const ids = lines.map((l) => l.custom_id);
  assert.equal(new Set(ids).size, ids.length, 'a custom_id appears twice');
  assert.equal(ids.length, n);
  for (const l of lines) {
    assert.match(l.id, /^batch_req_/);
    assert.equal(l.error, null);
    assert.equal(l.response.status_code, 200);
    assert.equal(l.response.body.object, 'chat.completion');
    assert.match(l.response.request_id, /^req_/);
  }
}

function suite(backend) {
  describe(`batches on ${backend}`, () => {
    // The receiver refuses the first two attempts of each event.
    const node = jobsSuite(backend, { failFirst: 2 });

    test('files: create, retrieve, list, download, delete', async () => {
      const { client } = node;
      const text = input(5);
      const f = await upload(client, text);
      assert.match(f.id, /^file-/);
      assert.equal(f.object, 'file');
      assert.equal(f.purpose, 'batch');
      assert.equal(f.bytes, Buffer.byteLength(text));
      assert.equal(f.filename, 'in.jsonl');
      assert.equal((await client.files.retrieve(f.id)).id, f.id);
      const list = await client.files.list();
      assert.ok(list.data.some((x) => x.id === f.id));
      assert.equal(await (await client.files.content(f.id)).text(), text);
      const u = await client.files.create({ file: await toFile(Buffer.from('any bytes\x00\x01'), 'blob.bin'), purpose: 'user_data' });
      assert.equal(u.purpose, 'user_data');
      assert.deepEqual(await client.files.delete(u.id), { id: u.id, object: 'file', deleted: true });
      await assert.rejects(client.files.retrieve(u.id), (e) => e.status === 404);
      await assert.rejects(client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'fine-tune' }),
        (e) => e.status === 400 && /purpose/.test(e.message));
      await assert.rejects(client.files.create({ file: await toFile(Buffer.from('{}\n'.repeat(50001)), 'big.jsonl'), purpose: 'batch' }),
        (e) => e.status === 400 && /50000/.test(e.message));
    });

    test('a batch runs to completed, with output and error files in OpenAI shapes', async () => {
      const { client, server, receiver } = node;
      const n = 40;
      const f = await upload(client, input(n, [line(n, { max_tokens: -5 })]));
      const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions',
        completion_window: '24h', metadata: { run: 'e2e' } });
      assert.match(created.id, /^batch_/);
      assert.equal(created.status, 'validating');
      assert.deepEqual(created.metadata, { run: 'e2e' });
      const b = await waitBatch(client, created.id, ['completed', 'failed']);
      assert.equal(b.status, 'completed');
      assert.deepEqual(b.request_counts, { total: n + 1, completed: n, failed: 1 });
      for (const k of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'expires_at']) assert.ok(b[k] > 0, k);
      assert.equal(b.expires_at - b.created_at, 86400);
      checkOneEach(await jsonl(client, b.output_file_id), n);
      const errors = await jsonl(client, b.error_file_id);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].custom_id, `req-${n}`);
      assert.equal(errors[0].response.status_code, 400);
      assert.equal(errors[0].response.body.error.param, 'max_tokens');
      await assert.rejects(client.batches.cancel(b.id), (e) => e.status === 409);
      // The same batch seen again, and listed with cursor pagination.
      const first = await client.batches.list({ limit: 1 });
      assert.equal(first.data.length, 1);
      assert.equal(first.data[0].id, b.id);
      // Webhooks: the third attempt of the batch.completed event succeeds, same webhook-id each time.
      let mine = [];
      await waitFor(() => mine.some((g) => g.ok), () => `the delivered batch.completed webhook: ${JSON.stringify(mine)}`, 30000,
        async () => { mine = eventsOf(receiver, b.id); });
      assert.equal(mine.length, 3, JSON.stringify(mine));
      assert.ok(mine.every((g) => g.valid), 'every signature verifies');
      assert.equal(new Set(mine.map((g) => g.id)).size, 1, 'retries keep the webhook-id');
      assert.equal(mine[0].event.type, 'batch.completed');
      assert.deepEqual(mine.map((g) => g.attempt), [1, 2, 3]);
      // The receiver has answered the third attempt; the server records that answer right after,
      // so the delivery reads 'delivered' once that write lands.
      let deliveries = [];
      await waitFor(() => deliveries.length === 1 && deliveries[0].status === 'delivered',
        () => `the delivery recorded as delivered: ${JSON.stringify(deliveries)}`, 30000, async () => {
          deliveries = (await (await fetch(`http://127.0.0.1:${server.port}/v1/webhooks/deliveries?subject_id=${b.id}`)).json()).data;
        });
      assert.equal(deliveries.length, 1);
      assert.equal(deliveries[0].status, 'delivered');
      assert.equal(deliveries[0].attempts, 3);
      assert.equal(deliveries[0].id, mine[0].id);
    });

    test('file expiry: expires_after on uploads, output_expires_after on batches, 400s for bad policies', async () => {
      const { client, server } = node;
      const blob = async () => toFile(Buffer.from(input(2)), 'e.jsonl');
      const f = await client.files.create({ file: await blob(), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 3600 } });
      assert.equal(f.expires_at - f.created_at, 3600);
      assert.equal((await client.files.retrieve(f.id)).expires_at, f.expires_at);
      assert.equal((await upload(client, input(1))).expires_at, null);
      const bad = (param) => (e) => e.status === 400 && e.type === 'invalid_request_error' && e.param === param;
      for (const [policy, param] of [[{ anchor: 'created_at', seconds: 3599 }, 'expires_after.seconds'],
        [{ anchor: 'created_at', seconds: 2592001 }, 'expires_after.seconds'],
        [{ anchor: 'created_at', seconds: 'soon' }, 'expires_after.seconds'],
        [{ anchor: 'last_active_at', seconds: 3600 }, 'expires_after.anchor'],
        [{ seconds: 3600 }, 'expires_after.anchor'],
        [{ anchor: 'created_at' }, 'expires_after.seconds']]) {
        await assert.rejects(client.files.create({ file: await blob(), purpose: 'batch', expires_after: policy }), bad(param),
          JSON.stringify(policy));
      }
      // Form fields the client would not send: another expires_after key, a policy field twice.
      for (const [fields, param] of [[[['expires_after[when]', 'x']], 'expires_after.when'],
        [[['expires_after[anchor]', 'created_at'], ['expires_after[anchor]', 'created_at']], 'expires_after.anchor']]) {
        const form = new FormData();
        form.append('purpose', 'batch');
        for (const [k, v] of fields) form.append(k, v);
        form.append('file', new Blob([input(1)]), 'x.jsonl');
        const res = await fetch(`http://127.0.0.1:${server.port}/v1/files`, { method: 'POST', body: form });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).error.param, param);
      }
      const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h',
        output_expires_after: { anchor: 'created_at', seconds: 7200 } });
      const b = await waitBatch(client, created.id, ['completed', 'failed']);
      assert.equal(b.status, 'completed');
      const out = await client.files.retrieve(b.output_file_id);
      assert.equal(out.purpose, 'batch_output');
      assert.equal(out.expires_at - out.created_at, 7200);
      for (const [policy, param] of [[{ anchor: 'created_at', seconds: 60 }, 'output_expires_after.seconds'],
        [{ anchor: 'input_file', seconds: 3600 }, 'output_expires_after.anchor'],
        [{ anchor: 'created_at', seconds: 3600, extra: 1 }, 'output_expires_after.extra'],
        [5, 'output_expires_after']]) {
        await assert.rejects(client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h',
          output_expires_after: policy }), bad(param), JSON.stringify(policy));
      }
    });

    test('a batch of Responses API requests', async () => {
      const { client } = node;
      const lines = [0, 1, 2].map((i) => JSON.stringify({ custom_id: `r-${i}`, method: 'POST', url: '/v1/responses',
        body: { model: 'tiny', input: `line ${i}`, max_output_tokens: 4 } }));
      const f = await upload(client, lines.join('\n') + '\n');
      const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/responses', completion_window: '24h' });
      const b = await waitBatch(client, created.id, ['completed', 'failed']);
      assert.equal(b.status, 'completed', JSON.stringify(b.errors));
      assert.deepEqual(b.request_counts, { total: 3, completed: 3, failed: 0 });
      const out = await jsonl(client, b.output_file_id);
      assert.deepEqual(out.map((l) => l.custom_id).sort(), ['r-0', 'r-1', 'r-2']);
      for (const l of out) {
        assert.equal(l.response.status_code, 200);
        assert.equal(l.response.body.object, 'response');
      }
    });

    test('validation errors fail the batch with errors.data and line numbers', async () => {
      const { client } = node;
      const bad = [line(0), line(0), JSON.stringify({ custom_id: 'x', method: 'GET', url: '/v1/chat/completions', body: {} }),
        '{not json', JSON.stringify({ custom_id: 'y', method: 'POST', url: '/v1/completions', body: { model: 'tiny' } })];
      const f = await upload(client, bad.join('\n'));
      const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      const b = await waitBatch(client, created.id, ['failed', 'completed']);
      assert.equal(b.status, 'failed');
      assert.ok(b.failed_at > 0);
      assert.equal(b.errors.object, 'list');
      assert.deepEqual(b.errors.data.map((e) => [e.code, e.line]),
        [['duplicate_custom_id', 2], ['invalid_value', 3], ['invalid_json_line', 4], ['invalid_url', 5]]);
      await assert.rejects(client.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }),
        (e) => e.status === 400 && e.param === 'input_file_id');
      await assert.rejects(client.batches.create({ input_file_id: f.id, endpoint: '/v1/moderations', completion_window: '24h' }),
        (e) => e.status === 400 && e.param === 'endpoint');
      await assert.rejects(client.batches.retrieve('batch_nope'), (e) => e.status === 404);
    });

    test('cancel: cancelling, then cancelled, keeping what finished', async () => {
      const { client } = node;
      const n = 300;
      const lines = [];
      for (let i = 0; i < n; i++) lines.push(line(i, { max_tokens: 32 }));
      const f = await upload(client, lines.join('\n'));
      const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitBatch(client, created.id, ['in_progress']);
      const c = await client.batches.cancel(created.id);
      assert.ok(['cancelling', 'cancelled'].includes(c.status), c.status);
      assert.ok(c.cancelling_at > 0);
      const b = await waitBatch(client, created.id, ['cancelled']);
      assert.ok(b.cancelled_at > 0);
      assert.equal(b.request_counts.total, n);
      assert.ok(b.request_counts.completed < n, 'the cancel came before the end');
      if (b.output_file_id) {
        const out = await jsonl(client, b.output_file_id);
        assert.equal(out.length, b.request_counts.completed);
        assert.equal(new Set(out.map((l) => l.custom_id)).size, out.length);
      }
      // Cancelling again is idempotent; a finished batch cannot be cancelled (409).
      assert.equal((await client.batches.cancel(created.id)).status, 'cancelled');
      // Pagination walks every batch once.
      const seen = [];
      for await (const x of client.batches.list({ limit: 2 })) seen.push(x.id);
      assert.equal(new Set(seen).size, seen.length);
      assert.ok(seen.includes(created.id));
    });
  });
}

suite('sqlite');
suite('postgresql');

test(`kill -9 at ${CRASH_KILLS} seeded moments: one output line per custom_id (SQLite)`, async () => {
  const home = tmpdir('crash');
  const args = [...tinyArgs, '--batch-concurrency', '4', '--batch-lease', '3s'];
  const rand = rng(CRASH_SEED);
  let server = await startServer(binary, args, { KILN_HOME: home });
  let client = clientFor(server);
  const f = await upload(client, input(CRASH_LINES));
  const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  for (let k = 0; k < CRASH_KILLS; k++) {
    await sleep(100 + Math.floor(rand() * 1500));
    await killServer(server);
    server = await startServer(binary, args, { KILN_HOME: home });
    client = clientFor(server);
  }
  const b = await waitBatch(client, created.id, ['completed', 'failed'], 600000);
  assert.equal(b.status, 'completed');
  assert.deepEqual(b.request_counts, { total: CRASH_LINES, completed: CRASH_LINES, failed: 0 });
  checkOneEach(await jsonl(client, b.output_file_id), CRASH_LINES);
  assert.equal(b.error_file_id, null);
  assert.equal(await stopServer(server), 0);
  fs.rmSync(home, { recursive: true, force: true });
});

// Expiry without waiting a day: --batch-window 2s on an API-only node (--batch-concurrency 0),
// which validates and ends batches but never runs a line, so no request can finish before the
// window ends and the outcome does not depend on timing. (A partly run batch that expires:
// batch_parts_test.cpp and batch_store_test.cpp.)
test('a batch expires after --batch-window: batch_expired lines and a signed batch.expired', async () => {
  const home = tmpdir('expiry');
  const receiver = await startReceiver();
  const server = await startServer(binary, [...tinyArgs, '--batch-concurrency', '0', '--batch-window', '2s',
    ...receiver.args], { KILN_HOME: home });
  const client = clientFor(server);
  const n = 7;
  const f = await upload(client, input(n));
  const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  assert.equal(created.expires_at - created.created_at, 2);
  const b = await waitBatch(client, created.id, ['expired', 'completed', 'failed'], 30000);
  assert.equal(b.status, 'expired');
  assert.ok(b.in_progress_at > 0, 'it was validated');
  assert.ok(b.expired_at >= b.expires_at, `expired_at ${b.expired_at} expires_at ${b.expires_at}`);
  assert.equal(b.completed_at, null);
  assert.deepEqual(b.request_counts, { total: n, completed: 0, failed: n });
  assert.equal(b.output_file_id, null);
  const errors = await jsonl(client, b.error_file_id);
  assert.deepEqual(errors.map((l) => l.custom_id).sort(), Array.from({ length: n }, (_, i) => `req-${i}`).sort());
  for (const l of errors) {
    assert.match(l.id, /^batch_req_/);
    assert.equal(l.response, null);
    assert.equal(l.error.code, 'batch_expired');
  }
  let mine = [];
  await waitFor(() => mine.some((g) => g.ok), () => `the batch.expired webhook: ${JSON.stringify(mine)}`, 30000,
    async () => { mine = eventsOf(receiver, b.id); });
  assert.equal(mine.length, 1, JSON.stringify(mine));
  assert.ok(mine[0].valid, 'the signature verifies');
  assert.equal(mine[0].event.type, 'batch.expired');
  assert.equal(await stopServer(server), 0);
  receiver.server.close();
  fs.rmSync(home, { recursive: true, force: true });
});

// Retention without waiting a month: --batch-retention 2s. Once the batch has ended and its
// webhook was delivered, both go (GET answers 404 like an unknown id, the list and the deliveries
// API no longer show them), while the output file stays under the files' own rules.
test('--batch-retention deletes an ended batch and its delivered webhook, not its output file', async () => {
  const home = tmpdir('retention');
  const receiver = await startReceiver();
  const server = await startServer(binary, [...tinyArgs, '--batch-retention', '2s', ...receiver.args], { KILN_HOME: home });
  const client = clientFor(server);
  const f = await upload(client, input(2));
  const created = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const b = await waitBatch(client, created.id, ['completed', 'failed'], 30000);
  assert.equal(b.status, 'completed');
  const deliveries = async () => (await (await fetch(
    `http://127.0.0.1:${server.port}/v1/webhooks/deliveries?subject_id=${b.id}`)).json()).data;
  let gone = false, left = null;
  await waitFor(() => gone && left.length === 0, () => `the pruning of ${b.id}: ${JSON.stringify(left)}`, 30000, async () => {
    gone = await client.batches.retrieve(b.id).then(() => false, (e) => e.status === 404);
    left = await deliveries();
  });
  assert.ok(eventsOf(receiver, b.id).some((g) => g.ok), 'the batch.completed webhook was delivered first');
  const listed = [];
  for await (const x of client.batches.list({ limit: 100 })) listed.push(x.id);
  assert.ok(!listed.includes(b.id));
  assert.equal((await jsonl(client, b.output_file_id)).length, 2);
  assert.equal(await stopServer(server), 0);
  receiver.server.close();
  fs.rmSync(home, { recursive: true, force: true });
});

test('two nodes share PostgreSQL; the one that dies loses its lines to the other', async () => {
  const pg = await requirePostgres();
  const files = tmpdir('files');
  const common = [...tinyArgs, '--database', pg.url, '--files-dir', files, '--batch-concurrency', '4', '--batch-lease', '2s'];
  const homes = [tmpdir('a'), tmpdir('b')];
  const a = await startServer(binary, [...common, '--node-name', 'a'], { KILN_HOME: homes[0] });
  const b = await startServer(binary, [...common, '--node-name', 'b'], { KILN_HOME: homes[1] });
  const ca = clientFor(a), cb = clientFor(b);
  const n = 200;
  const f = await upload(ca, input(n));
  const created = await ca.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
  // Both nodes work on it; kill A once some lines are done.
  let progress;
  await waitFor(() => progress?.request_counts.completed >= 20, '20 lines done', 120000,
    async () => { progress = await cb.batches.retrieve(created.id); });
  await killServer(a);
  const done = await waitBatch(cb, created.id, ['completed', 'failed'], 300000);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0 });
  checkOneEach(await jsonl(cb, done.output_file_id), n);
  assert.equal(await stopServer(b), 0);
  pg.stop();
  for (const dir of [files, ...homes]) fs.rmSync(dir, { recursive: true, force: true });
});

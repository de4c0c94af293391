// Which node runs a batch line, end to end (docs/batches.md, "Which node runs a line"): two kiln
// nodes on one real PostgreSQL, both able to serve the models `alpha` and `beta` (the tiny
// checkpoint under two names), node a with alpha loaded and node b with beta. A batch of alpha
// lines and one of beta lines, each created on the node that does not have its model: every alpha
// line is run by a, every beta line by b (kiln_batch_lines_total on each node's /metrics), and
// neither node loads the other's model. --batch-load-grace 1h on both makes it deterministic: a
// node never takes a line of a model it has not loaded within the test, so the outcome does not
// depend on which node polls first. (The grace period's end is tested in batch_store_test.cpp.)
//   KILN_BINARY=build/cpu/apps/kiln/kiln KILN_TEST_MODEL_DIR=/tmp/m node tests/integration/batches_nodes_test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { toFile } from 'openai';
import { startServer, stopServer } from './kiln_server.mjs';
import { binary, modelDir, tmpdir, clientFor, waitFor, waitStatus, requirePostgres } from './jobs_fixture.mjs';

// Prometheus text: the value of `name` with exactly `labels`, or 0 when the series is absent.
async function metric(server, name, labels) {
  const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? (\S+)$/);
    if (m && m[1] === name && (m[2] || '').split(',').sort().join(',') === want) return Number(m[3]);
  }
  return 0;
}

async function loaded(server) {
  const models = (await (await fetch(`http://127.0.0.1:${server.port}/v1/models`)).json()).data;
  return Object.fromEntries(models.map((m) => [m.id, m.loaded]));
}

function lines(model, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(JSON.stringify({ custom_id: `${model}-${i}`, method: 'POST', url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content: `line ${i}` }], max_tokens: 4, seed: i } }));
  }
  return out.join('\n') + '\n';
}

test('two nodes on PostgreSQL: each batch line runs on the node that has its model loaded', async () => {
  const pg = await requirePostgres();
  const models = tmpdir('models');
  const files = tmpdir('files');
  const homes = [tmpdir('a'), tmpdir('b')];
  for (const id of ['alpha', 'beta']) fs.symlinkSync(path.resolve(modelDir), path.join(models, id));
  const common = ['--models-dir', models, '--no-hf-cache', '--max-model-len', '512', '--engine-threads', '1',
    '--no-access-log', '--database', pg.url, '--files-dir', files, '--batch-concurrency', '2', '--batch-load-grace', '1h'];
  const a = await startServer(binary, [...common, '--node-name', 'a', '--preload', 'alpha'], { KILN_HOME: homes[0] });
  const b = await startServer(binary, [...common, '--node-name', 'b', '--preload', 'beta'], { KILN_HOME: homes[1] });
  try {
    let seen;
    await waitFor(() => seen?.a.alpha && seen?.b.beta, () => `the preloads: ${JSON.stringify(seen)}`, 60000,
      async () => { seen = { a: await loaded(a), b: await loaded(b) }; });
    assert.deepEqual(seen, { a: { alpha: true, beta: false }, b: { alpha: false, beta: true } });
    // Eight lines each: more than a node claims at once (--batch-concurrency 2, as many ahead), so
    // a node that took lines of a model it has not loaded would get some.
    const n = 8;
    const submit = async (server, model) => {
      const client = clientFor(server);
      const f = await client.files.create({ file: await toFile(Buffer.from(lines(model, n)), `${model}.jsonl`), purpose: 'batch' });
      return client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    };
    const forAlpha = await submit(b, 'alpha');
    const forBeta = await submit(a, 'beta');
    for (const [created, server] of [[forAlpha, a], [forBeta, b]]) {
      const client = clientFor(server);
      const done = await waitStatus(() => client.batches.retrieve(created.id), ['completed', 'failed', 'expired'],
        `batch ${created.id}`, 60000, 100);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.request_counts, { total: n, completed: n, failed: 0 });
    }
    const ran = async (server, model) => metric(server, 'kiln_batch_lines_total', { model, result: 'completed' });
    assert.deepEqual([await ran(a, 'alpha'), await ran(a, 'beta')], [n, 0], 'node a ran the alpha lines only');
    assert.deepEqual([await ran(b, 'beta'), await ran(b, 'alpha')], [n, 0], 'node b ran the beta lines only');
    assert.deepEqual({ a: await loaded(a), b: await loaded(b) }, seen, 'neither node loaded the other model');
    assert.equal(await metric(a, 'kiln_model_loads_total', { model: 'beta' }), 0);
    assert.equal(await metric(b, 'kiln_model_loads_total', { model: 'alpha' }), 0);
  } finally {
    assert.equal(await stopServer(a), 0);
    assert.equal(await stopServer(b), 0);
    pg.stop();
    for (const dir of [models, files, ...homes]) fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Batch work against interactive work on one server (docs/scheduling.md): the two
// figures, re-made in one run.
//  1. Throughput: a batch of THROUGHPUT_LINES completions lines alone, against `kiln bench serve`
//     at the batch's concurrency with the same request shape (--no-stream), run back to back.
//  2. Priority: TTFT of streamed interactive completions, one after another, on the idle server
//     and while a batch of PRIORITY_LINES lines runs (cancelled once measured).
// Starts `kiln serve` itself (its own KILN_HOME) and prints a Markdown table, then one JSON line.
//
//   node scripts/batch_priority_bench.mjs --model DIR [--kiln build/cpu/apps/kiln/kiln]
//     [--concurrency 8] [--throughput-lines 400] [--priority-lines 10000] [--ttft-requests 20]
//     [--prompt-tokens 16] [--output-tokens 16] [--rounds 1] [--serve-args "..."]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { startServer, stopServer } from '../tests/integration/kiln_server.mjs';

const opts = {
  kiln: 'build/cpu/apps/kiln/kiln', model: '', concurrency: 8, 'throughput-lines': 400,
  'priority-lines': 10000, 'ttft-requests': 20, 'prompt-tokens': 16, 'output-tokens': 16, rounds: 1,
  'serve-args': '',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opts) || i + 1 >= process.argv.length) {
    console.error(`batch_priority_bench: unknown or incomplete option ${process.argv[i]}`);
    process.exit(2);
  }
  opts[k] = typeof opts[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opts.model) {
  console.error('batch_priority_bench: --model DIR is required');
  process.exit(2);
}

// A few words that are one token each in common tokenizers (as `kiln bench serve` uses).
const WORDS = ['the', 'of', 'and', 'to', 'in', 'is', 'was', 'for', 'on', 'that', 'with', 'as', 'by', 'at',
  'from', 'his', 'her', 'it', 'an', 'were', 'are', 'which', 'this', 'be', 'or', 'has', 'had', 'not'];
const prompt = (i, n) => Array.from({ length: n }, (_, k) => WORDS[(i * 7 + k * 13) % WORDS.length]).join(' ');

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln_batch_bench_'));
const served = 'bench';
const server = await startServer(opts.kiln, ['--model', opts.model, '--served-model-name', served, '--no-access-log',
  '--batch-concurrency', String(opts.concurrency), ...opts['serve-args'].split(' ').filter(Boolean)],
{ KILN_HOME: home });
const base = `http://127.0.0.1:${server.port}`;
const client = new OpenAI({ apiKey: 'none', baseURL: `${base}/v1`, maxRetries: 0 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

async function ttfts(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const stream = await client.completions.create({ model: served, stream: true, max_tokens: 4, ignore_eos: true,
      prompt: prompt(1000 + i, opts['prompt-tokens']) });
    let first = 0;
    for await (const c of stream) if (!first && c.choices[0]?.text) first = performance.now() - t0;
    out.push(first);
  }
  return { p50: quantile(out, 0.5), p90: quantile(out, 0.9) };
}

async function createBatch(lines) {
  const body = [];
  for (let i = 0; i < lines; i++) {
    body.push(JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/completions',
      body: { model: served, prompt: prompt(i, opts['prompt-tokens']), max_tokens: opts['output-tokens'],
        ignore_eos: true, seed: i } }));
  }
  const f = await client.files.create({ file: await toFile(Buffer.from(body.join('\n')), 'b.jsonl'), purpose: 'batch' });
  return client.batches.create({ input_file_id: f.id, endpoint: '/v1/completions', completion_window: '24h' });
}

async function batchAlone() {
  const t0 = performance.now();
  const created = await createBatch(opts['throughput-lines']);
  let b;
  for (;;) {
    b = await client.batches.retrieve(created.id);
    if (['completed', 'failed', 'cancelled', 'expired'].includes(b.status)) break;
    await sleep(20);
  }
  const wall = (performance.now() - t0) / 1000;
  const text = await (await client.files.content(b.output_file_id)).text();
  let tokens = 0;
  for (const l of text.split('\n')) if (l) tokens += JSON.parse(l).response.body.usage.completion_tokens;
  // in_progress_at and finalizing_at are whole seconds: the wall clock from create to completed
  // is the figure, the running phase alone is shown beside it.
  const running = Math.max(b.finalizing_at - b.in_progress_at, 1);
  return { status: b.status, completed: b.request_counts.completed, tokens, seconds: wall,
    tok_per_s: tokens / wall, running_tok_per_s: tokens / running };
}

function benchServe() {
  const out = path.join(home, 'bench.json');
  const r = spawnSync(opts.kiln, ['bench', 'serve', '--url', base, '--model', served, '--endpoint', 'completions',
    '--concurrency', String(opts.concurrency), '--num-requests', String(opts['throughput-lines']),
    '--prompt-tokens', String(opts['prompt-tokens']), '--output-tokens', String(opts['output-tokens']),
    '--no-stream', '--quiet', '--json-out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kiln bench serve failed: ${r.stderr}`);
  const j = JSON.parse(fs.readFileSync(out, 'utf8')).results;
  return { tok_per_s: j.output_throughput, seconds: j.duration_s, completed: j.completed };
}

async function priority() {
  const idle = await ttfts(opts['ttft-requests']);
  const created = await createBatch(opts['priority-lines']);
  for (;;) {
    const b = await client.batches.retrieve(created.id);
    if (b.request_counts.completed > 0) break;
    await sleep(50);
  }
  const busy = await ttfts(opts['ttft-requests']);
  const during = await client.batches.retrieve(created.id);
  await client.batches.cancel(created.id);
  for (;;) {
    const b = await client.batches.retrieve(created.id);
    if (b.status === 'cancelled') break;
    await sleep(100);
  }
  return { idle, busy, ratio_p50: busy.p50 / idle.p50, lines_done_while_measuring: during.request_counts.completed };
}

await ttfts(3);  // warm-up
const rounds = [];
for (let r = 0; r < opts.rounds; r++) {
  const serve = benchServe();
  const batch = await batchAlone();
  const prio = await priority();
  rounds.push({ bench_serve: serve, batch, share: batch.tok_per_s / serve.tok_per_s, priority: prio });
}
await stopServer(server);
fs.rmSync(home, { recursive: true, force: true });

const f1 = (x) => x.toFixed(1);
console.log(`Batch against interactive work: ${opts.model}, --batch-concurrency ${opts.concurrency}, ` +
  `${opts['prompt-tokens']}-word prompts, ${opts['output-tokens']} output tokens`);
console.log('');
console.log('| round | bench serve (tok/s) | batch alone (tok/s) | batch / bench serve | TTFT idle p50 / p90 (ms) | ' +
  'TTFT with batch p50 / p90 (ms) | ratio p50 |');
console.log('|---:|---:|---:|---:|---|---|---:|');
rounds.forEach((r, i) => {
  const p = r.priority;
  console.log(`| ${i + 1} | ${f1(r.bench_serve.tok_per_s)} | ${f1(r.batch.tok_per_s)} | ${(100 * r.share).toFixed(0)}% | ` +
    `${f1(p.idle.p50)} / ${f1(p.idle.p90)} | ${f1(p.busy.p50)} / ${f1(p.busy.p90)} | ${p.ratio_p50.toFixed(2)}x |`);
});
console.log('');
console.log(JSON.stringify({ settings: opts, rounds }));

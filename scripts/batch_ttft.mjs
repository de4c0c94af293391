// Interactive time to first token with and without a running batch (docs/batches.md, "Priority").
// Starts `kiln serve` on the tiny test checkpoint, measures N streamed chat requests one after
// another on an idle server, then again while a batch of B lines runs at --batch-concurrency C.
//   node scripts/batch_ttft.mjs [binary] [model dir] [lines] [concurrency]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { startServer, stopServer } from '../tests/integration/kiln_server.mjs';

const binary = process.argv[2] || 'build/cpu/apps/kiln/kiln';
const model = process.argv[3] || 'build/cpu/test-models/http-tiny-llama';
const LINES = Number(process.argv[4] || 2000);
const CONC = Number(process.argv[5] || 8);
const N = 30;

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln_ttft_'));
const server = await startServer(binary, ['--model', model, '--served-model-name', 'tiny', '--max-model-len', '512',
  '--no-access-log', '--batch-concurrency', String(CONC)], { KILN_HOME: home });
const client = new OpenAI({ apiKey: 'none', baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0 });

async function ttfts() {
  const out = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const stream = await client.chat.completions.create({ model: 'tiny', stream: true, max_tokens: 8,
      messages: [{ role: 'user', content: `interactive ${i}` }] });
    let first = 0;
    for await (const c of stream) {
      if (!first && c.choices[0]?.delta?.content) first = performance.now() - t0;
    }
    out.push(first);
  }
  out.sort((a, b) => a - b);
  return { p50: out[Math.floor(N / 2)].toFixed(1), p90: out[Math.floor(N * 0.9)].toFixed(1) };
}

await ttfts();  // warm-up
const idle = await ttfts();
const lines = [];
for (let i = 0; i < LINES; i++) {
  lines.push(JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions',
    body: { model: 'tiny', messages: [{ role: 'user', content: `batch line ${i}` }], max_tokens: 16, seed: i } }));
}
const f = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 'ttft.jsonl'), purpose: 'batch' });
const batch = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
for (;;) {
  const b = await client.batches.retrieve(batch.id);
  if (b.request_counts.completed > 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const busy = await ttfts();
const during = await client.batches.retrieve(batch.id);
let b;
for (;;) {
  b = await client.batches.retrieve(batch.id);
  if (['completed', 'failed', 'cancelled', 'expired'].includes(b.status)) break;
  await new Promise((r) => setTimeout(r, 200));
}
const text = await (await client.files.content(b.output_file_id)).text();
let tokens = 0;
for (const l of text.split('\n')) if (l) tokens += JSON.parse(l).response.body.usage.completion_tokens;
const secs = b.finalizing_at - b.in_progress_at;
console.log(JSON.stringify({ idle_ttft_ms: idle, with_batch_ttft_ms: busy,
  batch_lines_done_while_measuring: during.request_counts.completed, batch: b.status, lines: b.request_counts,
  batch_seconds: secs, batch_completion_tokens: tokens, batch_tokens_per_s: (tokens / Math.max(secs, 1)).toFixed(1) }));
await stopServer(server);
fs.rmSync(home, { recursive: true, force: true });

// Batch throughput alone: 1,000 chat lines of 16 tokens on a running server (docs/batches.md).
//   node scripts/batch_throughput.mjs PORT
import OpenAI, { toFile } from 'openai';
const port = process.argv[2];
const client = new OpenAI({ apiKey: 'none', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
const lines = [];
for (let i = 0; i < 1000; i++) lines.push(JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/chat/completions',
  body: { model: 'tiny', messages: [{ role: 'user', content: `batch line ${i}` }], max_tokens: 16, seed: i } }));
const f = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n')), 't.jsonl'), purpose: 'batch' });
const t0 = performance.now();
const b0 = await client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
let b;
for (;;) { b = await client.batches.retrieve(b0.id); if (b.status === 'completed') break; await new Promise((r) => setTimeout(r, 20)); }
const s = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ seconds: s.toFixed(2), tok_per_s: (16000 / s).toFixed(1) }));

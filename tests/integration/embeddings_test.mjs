// /v1/embeddings with the official `openai` client (float and base64), /v1/rerank and /v1/score,
// against the real `kiln serve` over `kiln make-model` checkpoints (embeddings.cmake). The
// reranker's scores are checked against an independent path: the same weights served as a
// generator, whose sampled-token logprobs (with equal logit_bias on "yes" and "no", which cancels)
// give logit(yes) - logit(no) for the same prompt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, stopServer } from './kiln_server.mjs';
import OpenAI from 'openai';

const binary = process.env.KILN_BINARY;
const models = process.env.KILN_PREFILL_MODELS;
let server;
let baseURL;
let client;

before(async () => {
  assert.ok(binary && models, 'set KILN_BINARY and KILN_PREFILL_MODELS');
  server = await startServer(binary, ['--models-dir', models, '--max-model-len', '2048', '--engine-threads', '1',
    '--no-access-log']);
  baseURL = `http://127.0.0.1:${server.port}/v1`;
  client = new OpenAI({ baseURL, apiKey: 'none' });
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

async function post(path, body) {
  const r = await fetch(`${baseURL}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const close = (a, b, tol = 1e-6) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) <= tol);

test('the models list says what each model serves', async () => {
  const r = await fetch(`${baseURL}/models`);
  const kinds = Object.fromEntries((await r.json()).data.map((m) => [m.id, m.kind]));
  assert.deepEqual(kinds, { emb: 'embed', gen: 'generate', rerank: 'rerank' });
});

test('embeddings.create: float and base64 agree, vectors are unit length, usage counts tokens', async () => {
  const input = ['The cat sat on the mat.', 'Ein Hund bellt.', '猫が好きです'];
  const f = await client.embeddings.create({ model: 'emb', input, encoding_format: 'float' });
  const b = await client.embeddings.create({ model: 'emb', input });  // the client asks for base64 and decodes it
  assert.equal(f.object, 'list');
  assert.equal(f.data.length, 3);
  for (let i = 0; i < 3; ++i) {
    assert.equal(f.data[i].index, i);
    assert.equal(f.data[i].embedding.length, 64);
    assert.ok(Math.abs(norm(f.data[i].embedding) - 1) < 1e-5);
    // base64 carries the float32 bytes: the same numbers once JSON's doubles are rounded to f32.
    assert.ok(close(Array.from(b.data[i].embedding), f.data[i].embedding.map(Math.fround), 0));
  }
  assert.ok(f.usage.prompt_tokens > 0);
  assert.equal(f.usage.total_tokens, f.usage.prompt_tokens);
});

test('an input embeds the same alone, in a batch, and as its token ids', async () => {
  const text = 'Rerankers and embedders share one engine.';
  const alone = (await client.embeddings.create({ model: 'emb', input: text, encoding_format: 'float' })).data[0].embedding;
  const many = Array.from({ length: 40 }, (_, i) => `filler number ${i}`);
  many.splice(17, 0, text);
  const batch = await client.embeddings.create({ model: 'emb', input: many, encoding_format: 'float' });
  assert.ok(close(batch.data[17].embedding, alone, 1e-6));
  const line = JSON.stringify({ text });
  const ids = JSON.parse(execFileSync(binary, ['tokenize', '--model', `${models}/emb`], { input: line + '\n' }).toString()).ids;
  // The tokenizer appends <|endoftext|> (151643), whose hidden state last-token pooling reads.
  assert.equal(ids[ids.length - 1], 151643);
  const byIds = await client.embeddings.create({ model: 'emb', input: [ids], encoding_format: 'float' });
  assert.ok(close(byIds.data[0].embedding, alone, 1e-6));
});

test('dimensions cuts the vector (Matryoshka) and normalises it again', async () => {
  const full = (await client.embeddings.create({ model: 'emb', input: 'truncate me', encoding_format: 'float' })).data[0].embedding;
  const cut = (await client.embeddings.create({ model: 'emb', input: 'truncate me', dimensions: 16, encoding_format: 'float' })).data[0].embedding;
  assert.equal(cut.length, 16);
  const n = norm(full.slice(0, 16));
  assert.ok(close(cut, full.slice(0, 16).map((x) => x / n), 1e-5));
  assert.ok(Math.abs(norm(cut) - 1) < 1e-5);
});

test('bad embedding requests get 400s naming the field', async () => {
  const cases = [
    [{ model: 'emb', input: '' }, 'input'],
    [{ model: 'emb', input: [] }, 'input'],
    [{ model: 'emb', input: ['a', 3] }, 'input'],
    [{ model: 'emb', input: 'x', dimensions: 65 }, 'dimensions'],
    [{ model: 'emb', input: 'x', dimensions: 0 }, 'dimensions'],
    [{ model: 'emb', input: 'x', encoding_format: 'int8' }, 'encoding_format'],
    [{ model: 'emb', input: [[1, 2, 99999999]] }, 'input'],
    [{ model: 'emb', input: Array.from({ length: 2049 }, () => 'a') }, 'input'],
    [{ model: 'emb', input: 'x'.repeat(30000) }, 'input'],
    [{ model: 'gen', input: 'x' }, 'model'],
    [{ model: 'rerank', input: 'x' }, 'model'],
  ];
  for (const [body, param] of cases) {
    const r = await post('/embeddings', body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
  }
  const r = await post('/embeddings', { model: 'nope', input: 'x' });
  assert.equal(r.status, 404);
});

test('generation endpoints refuse embedding and rerank models', async () => {
  for (const model of ['emb', 'rerank']) {
    const c = await post('/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.status, 400);
    assert.equal(c.body.error.param, 'model');
    const p = await post('/completions', { model, prompt: 'hi' });
    assert.equal(p.status, 400);
  }
});

const PREFIX = '<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct ' +
  'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n';
const SUFFIX = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n';
const INSTRUCTION = 'Given a web search query, retrieve relevant passages that answer the query';
const YES = 9693, NO = 2152;  // the Qwen3 tokenizer's "yes" and "no"

// P(yes) from the generator with the reranker's weights: both tokens get the same large bias,
// so they are the two most likely and their logprob difference is their logit difference.
async function independentScore(query, doc) {
  const prompt = `${PREFIX}<Instruct>: ${INSTRUCTION}\n<Query>: ${query}\n<Document>: ${doc}${SUFFIX}`;
  const r = await post('/completions', { model: 'gen', prompt, max_tokens: 1, logprobs: 2, temperature: 0,
    logit_bias: { [YES]: 100, [NO]: 100 } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const top = r.body.choices[0].logprobs.top_logprobs[0];
  const d = top.yes - top.no;
  return { p: 1 / (1 + Math.exp(-d)), tokens: r.body.usage.prompt_tokens };
}

test('rerank: scores are P(yes) of the reranker prompt, sorted, cut to top_n', async () => {
  const query = 'What do cats eat?';
  const documents = ['Cats eat meat.', 'The stock market closed higher.', { text: 'Kittens drink milk.' }, 'Paris is in France.'];
  const r = await post('/rerank', { model: 'rerank', query, documents, top_n: 3 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.results.length, 3);
  for (let i = 1; i < 3; ++i) assert.ok(r.body.results[i - 1].relevance_score >= r.body.results[i].relevance_score);
  let tokens = 0;
  const texts = documents.map((d) => (typeof d === 'string' ? d : d.text));
  for (let i = 0; i < texts.length; ++i) {
    const ind = await independentScore(query, texts[i]);
    tokens += ind.tokens;
    const got = r.body.results.find((x) => x.index === i);
    if (got) {
      assert.ok(Math.abs(got.relevance_score - ind.p) < 1e-5, `document ${i}: ${got.relevance_score} vs ${ind.p}`);
      assert.equal(got.document.text, texts[i]);
    }
  }
  assert.equal(r.body.usage.prompt_tokens, tokens);
  const bare = await post('/rerank', { model: 'rerank', query, documents: texts, return_documents: false });
  assert.equal(bare.body.results.length, 4);
  assert.ok(bare.body.results.every((x) => x.document === undefined));
});

test('score: one text against many, and pairwise, match rerank', async () => {
  const docs = ['Cats eat meat.', 'Paris is in France.'];
  const rr = await post('/rerank', { model: 'rerank', query: 'What do cats eat?', documents: docs });
  const s = await post('/score', { model: 'rerank', text_1: 'What do cats eat?', text_2: docs });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.equal(s.body.object, 'list');
  for (const d of s.body.data) {
    assert.equal(d.object, 'score');
    assert.equal(d.score, rr.body.results.find((x) => x.index === d.index).relevance_score);
  }
  const pairwise = await post('/score', { model: 'rerank', text_1: ['What do cats eat?', 'Where is Paris?'], text_2: docs });
  assert.equal(pairwise.body.data[0].score, s.body.data[0].score);
  const bad = await post('/score', { model: 'rerank', text_1: ['a', 'b'], text_2: ['a', 'b', 'c'] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.param, 'text_1');
});

test('bad rerank requests get 400s naming the field', async () => {
  const cases = [
    [{ model: 'rerank', documents: ['a'] }, 'query'],
    [{ model: 'rerank', query: 'q' }, 'documents'],
    [{ model: 'rerank', query: 'q', documents: [] }, 'documents'],
    [{ model: 'rerank', query: 'q', documents: [3] }, 'documents[0]'],
    [{ model: 'rerank', query: 'q', documents: ['a'], top_n: 0 }, 'top_n'],
    [{ model: 'rerank', query: 'q', documents: ['a'.repeat(20000)] }, 'documents[0]'],
    [{ model: 'emb', query: 'q', documents: ['a'] }, 'model'],
    [{ model: 'gen', query: 'q', documents: ['a'] }, 'model'],
  ];
  for (const [body, param] of cases) {
    const r = await post('/rerank', body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
  }
});

// Fidelity against sentence-transformers and transformers (float32, CPU): fixtures made where those
// run, by tools/make_embedding_fixtures.py, for checkpoints with the seeds embeddings.cmake uses.
const FIXTURES = join(process.env.KILN_SOURCE_DIR ?? '.', 'tests/fixtures/fidelity');
const embFixture = join(FIXTURES, 'tiny-qwen3-embedding.json');
const rerankFixture = join(FIXTURES, 'tiny-qwen3-reranker.json');
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));

test('embeddings match sentence-transformers', { skip: !existsSync(embFixture) && 'no fixture yet: run tools/make_embedding_fixtures.py' }, async () => {
  const f = JSON.parse(readFileSync(embFixture, 'utf8'));
  const got = await client.embeddings.create({ model: 'emb', input: f.texts, encoding_format: 'float' });
  const cut = await client.embeddings.create({ model: 'emb', input: f.texts, dimensions: f.dimensions, encoding_format: 'float' });
  assert.equal(got.usage.prompt_tokens, f.token_ids.reduce((s, ids) => s + ids.length, 0));
  for (let i = 0; i < f.texts.length; ++i) {
    assert.ok(cosine(got.data[i].embedding, f.embeddings[i]) >= 0.99999, `text ${i}`);
    assert.ok(cosine(cut.data[i].embedding, f.embeddings_16[i]) >= 0.99999, `text ${i}, ${f.dimensions} dimensions`);
  }
});

test('rerank scores match transformers', { skip: !existsSync(rerankFixture) && 'no fixture yet: run tools/make_embedding_fixtures.py' }, async () => {
  const f = JSON.parse(readFileSync(rerankFixture, 'utf8'));
  const r = await post('/rerank', { model: 'rerank', query: f.query, documents: f.documents, instruction: f.instruction });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.usage.prompt_tokens, f.prompt_ids.reduce((s, ids) => s + ids.length, 0));
  for (const x of r.body.results) assert.ok(Math.abs(x.relevance_score - f.scores[x.index]) <= 1e-5, `document ${x.index}`);
});

// Every response body and stream chunk of chat completions, completions, embeddings and models,
// and an error body, validated (ajv) against OpenAI's published schemas (tests/fixtures/
// openai-schemas.json, made by tools/extract_openai_schemas.py from the OpenAPI description).
// Where the spec and OpenAI's own service disagree, the test follows the service and says so:
// - streamed chunks carry finish_reason null until the last (the spec's enum has no null);
// - a stream's usage is null on every chunk but the last when include_usage is set (chat and
//   completions);
// - base64 embeddings are a string (the spec only describes float arrays).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openaiSchemas } from './openai_schemas.mjs';
import { startServer, stopServer } from './kiln_server.mjs';

const binary = process.env.KILN_BINARY;
const models = process.env.KILN_PREFILL_MODELS;
let server;
let baseURL;

// The service's stream chunks: finish_reason may be null, and so may usage.
function serviceChunkSchema(defs) {
  const chunk = structuredClone(defs.CreateChatCompletionStreamResponse);
  const choice = chunk.properties.choices.items;
  choice.properties.finish_reason = { anyOf: [choice.properties.finish_reason, { type: 'null' }] };
  chunk.properties.usage = { anyOf: [chunk.properties.usage, { type: 'null' }] };
  return chunk;
}

const { check } = openaiSchemas((defs) => {
  defs.KilnChatChunk = serviceChunkSchema(defs);
  const completionChunk = structuredClone(defs.CreateCompletionResponse);
  completionChunk.properties.choices.items.properties.finish_reason = {
    anyOf: [completionChunk.properties.choices.items.properties.finish_reason, { type: 'null' }] };
  completionChunk.properties.usage = { anyOf: [completionChunk.properties.usage, { type: 'null' }] };
  defs.KilnCompletionChunk = completionChunk;
  const base64Embeddings = structuredClone(defs.CreateEmbeddingResponse);
  base64Embeddings.properties.data.items = structuredClone(defs.Embedding);
  base64Embeddings.properties.data.items.properties.embedding = { type: 'string', contentEncoding: 'base64' };
  defs.KilnBase64Embeddings = base64Embeddings;
});

before(async () => {
  assert.ok(binary && models, 'set KILN_BINARY and KILN_PREFILL_MODELS');
  server = await startServer(binary, ['--models-dir', models, '--max-model-len', '2048', '--engine-threads', '1',
    '--no-access-log']);
  baseURL = `http://127.0.0.1:${server.port}/v1`;
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

async function post(path, body) {
  const r = await fetch(`${baseURL}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

function events(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('data: ') && line !== 'data: [DONE]') out.push(JSON.parse(line.slice(6)));
  }
  return out;
}

const MESSAGES = [{ role: 'user', content: 'Say something in Français 日本語.' }];

test('chat completions: bodies and chunks', async () => {
  for (const extra of [{}, { n: 2, logprobs: true, top_logprobs: 2 }, { max_completion_tokens: 3 }]) {
    const r = await post('/chat/completions', { model: 'gen', messages: MESSAGES, max_tokens: 8, seed: 1, ...extra,
      ...(extra.max_completion_tokens ? { max_tokens: undefined } : {}) });
    assert.equal(r.status, 200, r.text);
    check('CreateChatCompletionResponse', JSON.parse(r.text));
  }
  for (const extra of [{}, { stream_options: { include_usage: true } }, { n: 2, logprobs: true, top_logprobs: 1 }]) {
    const r = await post('/chat/completions', { model: 'gen', messages: MESSAGES, max_tokens: 8, seed: 2, stream: true,
      ...extra });
    assert.equal(r.status, 200, r.text);
    const chunks = events(r.text);
    assert.ok(chunks.length > 1);
    for (const c of chunks) check('KilnChatChunk', c);
  }
});

test('completions: bodies and chunks, with logprobs and echo', async () => {
  for (const extra of [{}, { logprobs: 2 }, { echo: true }, { prompt: ['a', 'b'], n: 2 }]) {
    const r = await post('/completions', { model: 'gen', prompt: 'Naïve café ', max_tokens: 6, seed: 3, ...extra });
    assert.equal(r.status, 200, r.text);
    check('CreateCompletionResponse', JSON.parse(r.text));
  }
  const r = await post('/completions', { model: 'gen', prompt: 'x', max_tokens: 6, stream: true, logprobs: 1,
    stream_options: { include_usage: true } });
  for (const c of events(r.text)) {
    if (c.choices.length === 0) {
      check('CompletionUsage', c.usage);  // the usage-only last chunk
      continue;
    }
    check('KilnCompletionChunk', c);
  }
});

test('completions: text_offset counts characters, not bytes', async () => {
  // Every token forced to "日本" (Qwen3 id 101059: 2 characters, 6 UTF-8 bytes), after an echoed
  // prompt of 9 characters (11 bytes).
  const prompt = 'héllo wö ';
  const forced = { model: 'gen', max_tokens: 3, temperature: 0, logit_bias: { 101059: 100 } };
  const r = await post('/completions', { ...forced, prompt, logprobs: 0 });
  const lp = JSON.parse(r.text).choices[0].logprobs;
  assert.deepEqual(lp.tokens, ['日本', '日本', '日本']);
  assert.deepEqual(lp.text_offset, [0, 2, 4]);
  const stream = await post('/completions', { ...forced, prompt, logprobs: 0, stream: true });
  const offsets = events(stream.text).flatMap((c) => c.choices[0]?.logprobs?.text_offset ?? []);
  assert.deepEqual(offsets, [0, 2, 4]);
  const echoed = await post('/completions', { ...forced, prompt, echo: true });
  assert.equal(JSON.parse(echoed.text).choices[0].text, prompt + '日本日本日本');
});

test('embeddings and models: bodies', async () => {
  const f = await post('/embeddings', { model: 'emb', input: ['a', 'b'], encoding_format: 'float' });
  check('CreateEmbeddingResponse', JSON.parse(f.text));
  const b = await post('/embeddings', { model: 'emb', input: 'a', encoding_format: 'base64' });
  check('KilnBase64Embeddings', JSON.parse(b.text));
  const m = await fetch(`${baseURL}/models`);
  check('ListModelsResponse', await m.json());
  const one = await fetch(`${baseURL}/models/emb`);
  check('Model', await one.json());
});

test('errors: the envelope', async () => {
  for (const [path, body] of [['/chat/completions', { model: 'gen', messages: MESSAGES, functions: [] }],
    ['/embeddings', { model: 'emb', input: '' }], ['/rerank', { model: 'rerank' }],
    ['/chat/completions', { model: 'gen', messages: MESSAGES, max_tokens: 3, max_completion_tokens: 4 }]]) {
    const r = await post(path, body);
    assert.equal(r.status, 400, r.text);
    check('ErrorResponse', JSON.parse(r.text));
  }
});

test('conformance refusals and continue_final_message', async () => {
  const refused = [
    [{ modalities: ['text', 'audio'] }, 'modalities'],
    [{ audio: { voice: 'alloy', format: 'wav' } }, 'audio'],
    [{ prediction: { type: 'content', content: 'x' } }, 'prediction'],
    [{ web_search_options: {} }, 'web_search_options'],
    [{ functions: [{ name: 'f', parameters: {} }] }, 'functions'],
    [{ function_call: 'auto' }, 'function_call'],
    [{ max_tokens: 3, max_completion_tokens: 4 }, 'max_completion_tokens'],
    [{ n: 129 }, 'n'],
  ];
  for (const [extra, param] of refused) {
    const r = await post('/chat/completions', { model: 'gen', messages: MESSAGES, ...extra });
    assert.equal(r.status, 400, `${param}: ${r.text}`);
    assert.equal(JSON.parse(r.text).error.param, param, r.text);
  }
  const same = await post('/chat/completions', { model: 'gen', messages: MESSAGES, max_tokens: 2, max_completion_tokens: 2 });
  assert.equal(same.status, 200, same.text);
  const text = await post('/chat/completions', { model: 'gen', messages: MESSAGES, modalities: ['text'], max_tokens: 2 });
  assert.equal(text.status, 200, text.text);
  // n up to OpenAI's 128.
  const many = await post('/chat/completions', { model: 'gen', messages: MESSAGES, max_tokens: 1, n: 128 });
  assert.equal(many.status, 200, many.text);
  assert.equal(JSON.parse(many.text).choices.length, 128);

  // The prefill is continued: the prompt ends with the assistant's text, not its end of turn.
  const prefill = [...MESSAGES, { role: 'assistant', content: 'Bonjour, je' }];
  const cont = await post('/chat/completions', { model: 'gen', messages: prefill, max_tokens: 1, temperature: 0,
    continue_final_message: true, add_generation_prompt: false });
  assert.equal(cont.status, 200, cont.text);
  const closed = await post('/chat/completions', { model: 'gen', messages: prefill, max_tokens: 1, temperature: 0,
    add_generation_prompt: false });
  // The continued prompt stops after "je"; the closed one also holds <|im_end|> and a newline.
  assert.equal(JSON.parse(closed.text).usage.prompt_tokens - JSON.parse(cont.text).usage.prompt_tokens, 2);
  for (const [extra, param] of [[{ continue_final_message: true }, 'continue_final_message']]) {
    const r = await post('/chat/completions', { model: 'gen', messages: prefill, ...extra });
    assert.equal(r.status, 400, r.text);
    assert.equal(JSON.parse(r.text).error.param, param);
  }
  const notAssistant = await post('/chat/completions', { model: 'gen', messages: MESSAGES, continue_final_message: true,
    add_generation_prompt: false });
  assert.equal(notAssistant.status, 400);
});

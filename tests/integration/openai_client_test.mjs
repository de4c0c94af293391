// The official `openai` npm client against the real `kiln serve` binary with a tiny checkpoint:
// chat and completions, streamed and not, n > 1, stop strings, seeds, logprobs, usage, and the
// client's own typed errors. Run by CTest (KILN_BINARY, KILN_TEST_MODEL_DIR) or by hand:
//   KILN_BINARY=build/release/apps/kiln/kiln KILN_TEST_MODEL_DIR=/tmp/m node tests/integration/openai_client_test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import OpenAI from 'openai';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_TEST_MODEL_DIR;
const KEY = 'test-key-123';
let server;
let client;

before(async () => {
  assert.ok(binary && modelDir, 'set KILN_BINARY and KILN_TEST_MODEL_DIR');
  server = await startServer(binary, ['--model', modelDir, '--served-model-name', 'tiny', '--max-model-len', '512',
    '--api-key', KEY, '--engine-threads', '1', '--no-access-log']);
  client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say something.' }];

async function collectChat(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

test('models are listed, with the one served', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['tiny']);
  const m = await client.models.retrieve('tiny');
  assert.equal(m.id, 'tiny');
  assert.equal(m.object, 'model');
});

test('chat completion carries usage and a finish reason', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 8 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
});

test('a streamed chat matches the same seeded request unstreamed, chunk by chunk as OpenAI sends it', async () => {
  const params = { model: 'tiny', messages, max_tokens: 12, seed: 1234, temperature: 1.0, ignore_eos: true };
  const whole = await client.chat.completions.create(params);
  const chunks = await collectChat(await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chunks[0].object, 'chat.completion.chunk');
  const usageChunk = chunks[chunks.length - 1];
  assert.deepEqual(usageChunk.choices, []);
  assert.equal(usageChunk.usage.completion_tokens, 12);
  const finish = chunks[chunks.length - 2];
  assert.equal(finish.choices[0].finish_reason, 'length');
  assert.deepEqual(finish.choices[0].delta, {});
  for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(whole.usage.completion_tokens, 12);
});

test('the same seed gives the same output twice; another seed another output', async () => {
  const p = { model: 'tiny', messages, max_tokens: 16, temperature: 1.0, ignore_eos: true };
  const a = await client.chat.completions.create({ ...p, seed: 7 });
  const b = await client.chat.completions.create({ ...p, seed: 7 });
  const c = await client.chat.completions.create({ ...p, seed: 8 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test('n > 1 gives n distinct choices with their own indices', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, n: 3, temperature: 1.0, seed: 3, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(r.usage.completion_tokens, 30);
  assert.ok(new Set(r.choices.map((c) => c.message.content)).size > 1);
  const chunks = await collectChat(await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, n: 3, temperature: 1.0, seed: 3, ignore_eos: true, stream: true }));
  for (let i = 0; i < 3; i++) {
    const text = chunks.filter((c) => c.choices[0]?.index === i).map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, r.choices[i].message.content, `choice ${i}`);
  }
});

test('stop strings cut the text before the stop, streamed and not', async () => {
  const base = { model: 'tiny', prompt: 'The story begins', max_tokens: 40, temperature: 0, ignore_eos: true };
  const full = (await client.completions.create(base)).choices[0].text;
  assert.ok(full.length >= 12, `greedy text too short: ${JSON.stringify(full)}`);
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await client.completions.create({ ...base, stop: [stop, '\u0000never'] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  let streamed = '';
  let finish = null;
  for await (const c of await client.completions.create({ ...base, stop, stream: true })) {
    streamed += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, expected);
  assert.equal(finish, 'stop');
});

test('chat logprobs: one entry per token with the top alternatives', async () => {
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 5, ignore_eos: true, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 5);
  for (const e of content) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
    assert.ok(Array.isArray(e.bytes));
  }
  const chunks = await collectChat(await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 5, ignore_eos: true, logprobs: true, top_logprobs: 2, stream: true }));
  const streamed = chunks.flatMap((c) => c.choices[0]?.logprobs?.content ?? []);
  assert.equal(streamed.length, 5);
});

test('completions: string, token ids, several prompts, echo and logprobs', async () => {
  const a = await client.completions.create({ model: 'tiny', prompt: 'Hello there', max_tokens: 4, echo: true });
  assert.equal(a.object, 'text_completion');
  assert.ok(a.choices[0].text.startsWith('Hello there'));
  const b = await client.completions.create({ model: 'tiny', prompt: [128000, 9906, 1070], max_tokens: 3, ignore_eos: true });
  assert.equal(b.usage.prompt_tokens, 3);
  assert.equal(b.usage.completion_tokens, 3);
  const c = await client.completions.create({ model: 'tiny', prompt: ['one', 'two'], max_tokens: 2, n: 2, ignore_eos: true });
  assert.deepEqual(c.choices.map((x) => x.index), [0, 1, 2, 3]);
  assert.equal(c.usage.completion_tokens, 8);
  const d = await client.completions.create({ model: 'tiny', prompt: 'Hi', max_tokens: 4, ignore_eos: true, logprobs: 2 });
  const lp = d.choices[0].logprobs;
  assert.equal(lp.tokens.length, 4);
  assert.equal(lp.token_logprobs.length, 4);
  assert.equal(lp.top_logprobs.length, 4);
  assert.equal(lp.text_offset[0], 0);
  assert.equal(lp.tokens.join(''), d.choices[0].text);
});

test('omitted max_tokens: 16 for completions, the server default capped by the context for chat', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: [128000, 9906], ignore_eos: true, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 16);
  // --default-max-tokens (4096) is more than this 512-token context leaves: the context caps it.
  const c = await client.chat.completions.create({ model: 'tiny', messages, ignore_eos: true, temperature: 0 });
  assert.equal(c.choices[0].finish_reason, 'length');
  assert.equal(c.usage.prompt_tokens + c.usage.completion_tokens, 512);
});

test('typed errors: BadRequestError, NotFoundError, AuthenticationError', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages, temperature: 5 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
  const wrong = new OpenAI({ apiKey: 'wrong', baseURL: client.baseURL, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(client.completions.create({ model: 'tiny', prompt: 'x'.repeat(5000), max_tokens: 10 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.code, 'context_length_exceeded');
    assert.match(e.message, /maximum context length is 512 tokens/);
    return true;
  });
  await assert.rejects(client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x/y.png' } }] }] }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.match(e.message, /does not take images/);
    return true;
  });
});

// Qwen3-MoE, Mixtral and Gemma 3 served by the real `kiln serve` on the CPU, through the official
// `openai` client (new_architectures.cmake makes the tiny checkpoints).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import OpenAI from 'openai';

const binary = process.env.KILN_BINARY;
const models = process.env.KILN_NEW_ARCH_MODELS;
let server;
let client;

before(async () => {
  assert.ok(binary && models, 'set KILN_BINARY and KILN_NEW_ARCH_MODELS');
  server = await startServer(binary, ['--models-dir', models, '--device', 'cpu', '--max-model-len', '1024',
    '--engine-threads', '1', '--no-access-log']);
  client = new OpenAI({ baseURL: `http://127.0.0.1:${server.port}/v1`, apiKey: 'none' });
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

// Mixtral's preset has the Llama 2 tokenizer package, which ships no chat template: completions.
async function complete(model, chat, content, extra) {
  if (chat) {
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra });
    return { text: r.choices[0].message.content, r };
  }
  const r = await client.completions.create({ model, prompt: content, ...extra });
  return { text: r.choices[0].text, r };
}

async function completeStreamed(model, chat, content, extra) {
  let text = '';
  if (chat) {
    const s = await client.chat.completions.create({ model, messages: [{ role: 'user', content }], ...extra, stream: true });
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
  } else {
    const s = await client.completions.create({ model, prompt: content, ...extra, stream: true });
    for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
  }
  return text;
}

for (const [model, chat] of [['tiny-qwen3-moe', true], ['tiny-mixtral', false], ['tiny-gemma3', true]]) {
  test(`${model}: completions, streamed or not, greedy the same alone and in a batch`, async () => {
    const greedy = { max_tokens: 12, temperature: 0 };
    const alone = await complete(model, chat, 'Name three colours.', greedy);
    assert.equal(alone.r.choices[0].finish_reason, 'length');
    assert.equal(alone.r.usage.completion_tokens, 12);
    assert.ok(alone.r.usage.prompt_tokens > 3, JSON.stringify(alone.r.usage));
    assert.ok(alone.text.length > 0);
    assert.equal(await completeStreamed(model, chat, 'Name three colours.', greedy), alone.text);
    const others = ['Tell me a story.', 'What is 2 + 2?', 'Bonjour !'].map((content) =>
      complete(model, chat, content, { max_tokens: 20, temperature: 0.8, seed: 3 }));
    const [again] = await Promise.all([complete(model, chat, 'Name three colours.', greedy), ...others]);
    assert.equal(again.text, alone.text);
  });
}

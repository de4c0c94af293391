// tool_choice "required" and {"type": "function", ...} against the real `kiln serve` with a
// RANDOM-weight Qwen3-shaped checkpoint sampled hot (temperature 1.2, several seeds): whatever the
// model would say, the grammar engine makes every answer tool calls of allowed tools whose
// arguments validate (ajv) against the tool's schema, streamed and not; and the `openai` client's
// runTools runs one forced step. Run by CTest (KILN_BINARY, KILN_RANDOM_MODEL_DIR).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import { SCHEMAS, TOOLS, MESSAGES, validators, postChat, choiceOf, checkCalls } from './tool_calls_common.mjs';
import OpenAI from 'openai';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_RANDOM_MODEL_DIR;
let server;
let baseURL;

before(async () => {
  assert.ok(binary && modelDir, 'set KILN_BINARY and KILN_RANDOM_MODEL_DIR');
  server = await startServer(binary, ['--model', modelDir, '--served-model-name', 'random', '--max-model-len', '4096',
    '--engine-threads', '1', '--no-access-log']);
  baseURL = `http://127.0.0.1:${server.port}/v1`;
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

const post = (body) => postChat(baseURL, 'random', body);

for (const stream of [false, true]) {
  test(`required: hot random sampling still answers with valid calls (stream: ${stream})`, async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const parallel = seed % 2 === 1;
      const r = await post({ messages: MESSAGES, tools: TOOLS, tool_choice: 'required', temperature: 1.2, seed, stream,
        parallel_tool_calls: parallel });
      assert.equal(r.status, 200, r.text);
      checkCalls(choiceOf(r.text, stream), Object.keys(SCHEMAS), parallel ? Infinity : 1);
    }
  });

  test(`a named tool_choice calls exactly that tool (stream: ${stream})`, async () => {
    for (const seed of [6, 7, 8]) {
      const r = await post({ messages: MESSAGES, tools: TOOLS, temperature: 1.5, seed, stream,
        tool_choice: { type: 'function', function: { name: 'pick_colors' } } });
      assert.equal(r.status, 200, r.text);
      checkCalls(choiceOf(r.text, stream), ['pick_colors'], Infinity);
    }
  });
}

test('without enforcement the random model does not call tools (so the tests above can fail)', async () => {
  const r = await post({ messages: MESSAGES, tools: TOOLS, temperature: 1.2, seed: 1, max_tokens: 64 });
  assert.equal(r.status, 200, r.text);
  assert.notEqual(JSON.parse(r.text).choices[0].finish_reason, 'tool_calls');
});

test('a forced call and response_format together are a 400; a schema kiln cannot enforce is a 400 on tools', async () => {
  let r = await post({ messages: MESSAGES, tools: TOOLS, tool_choice: 'required',
    response_format: { type: 'json_object' } });
  assert.equal(r.status, 400, r.text);
  assert.equal(JSON.parse(r.text).error.param, 'response_format');
  r = await post({ messages: MESSAGES, tool_choice: 'required',
    tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'nonsense' } } } } }] });
  assert.equal(r.status, 400, r.text);
  assert.match(JSON.parse(r.text).error.param, /^tools/);
  // auto with a response_format stays allowed: nothing forces a call.
  r = await post({ messages: MESSAGES, tools: TOOLS, response_format: { type: 'json_object' }, max_tokens: 8 });
  assert.equal(r.status, 200, r.text);
});

test('openai runTools: one forced step calls a tool with valid parsed arguments', async () => {
  const client = new OpenAI({ apiKey: 'unused', baseURL, maxRetries: 0, timeout: 120000 });
  const calls = [];
  const tools = Object.entries(SCHEMAS).map(([name, parameters]) => ({
    type: 'function',
    function: { name, parameters, parse: JSON.parse, function: (args) => { calls.push({ name, args }); return 'ok'; } },
  }));
  const runner = client.chat.completions.runTools({
    model: 'random', messages: MESSAGES, tools, tool_choice: 'required', temperature: 1.2, seed: 9, max_tokens: 1500,
  }, { maxChatCompletions: 1 });
  await runner.done();
  assert.ok(calls.length >= 1, JSON.stringify(runner.messages));
  for (const c of calls) assert.ok(validators[c.name](c.args), JSON.stringify(c));
  const assistant = runner.messages.find((m) => m.role === 'assistant');
  assert.ok(assistant.tool_calls.length >= 1);
});

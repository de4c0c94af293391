// tool_choice "required" and {"type": "function", ...} against the real `kiln serve` with a
// RANDOM-weight Qwen3-shaped checkpoint sampled hot (temperature 1.2, several seeds): whatever the
// model would say, the grammar engine makes every answer tool calls of allowed tools whose
// arguments validate (ajv) against the tool's schema, streamed and not; and the `openai` client's
// runTools runs one forced step. Run by CTest (KILN_BINARY, KILN_RANDOM_MODEL_DIR).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import Ajv from 'ajv';
import OpenAI from 'openai';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_RANDOM_MODEL_DIR;
let server;
let baseURL;

// Schemas whose random instances end: bounded strings, enums, bounded arrays.
const SCHEMAS = {
  get_weather: {
    type: 'object',
    properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } },
    required: ['city'], additionalProperties: false,
  },
  pick_colors: {
    type: 'object',
    properties: { colors: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 },
      count: { type: 'integer', minimum: 0, maximum: 9 } },
    required: ['colors', 'count'], additionalProperties: false,
  },
  get_time: { type: 'object', properties: {}, additionalProperties: false },
};
const TOOLS = Object.entries(SCHEMAS).map(([name, parameters]) => ({ type: 'function', function: { name, parameters } }));
const ajv = new Ajv({ strict: false });
const validators = Object.fromEntries(Object.entries(SCHEMAS).map(([n, s]) => [n, ajv.compile(s)]));
const MESSAGES = [{ role: 'user', content: 'What is the weather in Paris?' }];

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

async function post(body) {
  const r = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'random', max_tokens: 1500, ...body }),
  });
  return { status: r.status, text: await r.text() };
}

// The calls and finish reason of one choice, from a whole response or its event stream.
function choiceOf(text, stream) {
  if (!stream) {
    const c = JSON.parse(text).choices[0];
    return { finish: c.finish_reason, calls: (c.message.tool_calls ?? []).map((t) => t.function), content: c.message.content };
  }
  const calls = [];
  let finish = null;
  let content = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const c = JSON.parse(line.slice(6)).choices?.[0];
    if (!c) continue;
    if (c.finish_reason) finish = c.finish_reason;
    if (c.delta?.content) content += c.delta.content;
    for (const t of c.delta?.tool_calls ?? []) {
      if (t.function?.name !== undefined) calls[t.index] = { name: t.function.name, arguments: '' };
      calls[t.index].arguments += t.function?.arguments ?? '';
    }
  }
  return { finish, calls, content: content || null };
}

function checkCalls(choice, allowed, maxCalls) {
  assert.equal(choice.finish, 'tool_calls', JSON.stringify(choice));
  assert.equal(choice.content, null, JSON.stringify(choice));
  assert.ok(choice.calls.length >= 1 && choice.calls.length <= maxCalls, JSON.stringify(choice));
  for (const call of choice.calls) {
    assert.ok(allowed.includes(call.name), `${call.name} is not one of ${allowed}`);
    const args = JSON.parse(call.arguments);
    assert.ok(validators[call.name](args), `${call.name}(${call.arguments}): ${ajv.errorsText(validators[call.name].errors)}`);
  }
}

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

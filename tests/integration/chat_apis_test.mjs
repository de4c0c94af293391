// OpenAI's Responses API and Anthropic's Messages API against the real `kiln serve`, through the
// clients people use: the AI SDK's default OpenAI provider (createOpenAI()(model) calls
// /v1/responses), the `openai` client's responses.create, and `@anthropic-ai/sdk`. The checkpoint
// has RANDOM weights (real Qwen3 tokenizer and template): text is noise, but every shape, event
// order and count must hold, and forced tool calls (tool_choice required / any) are made valid by
// the grammar engine, so their arguments validate (ajv) against the tool's schema. The server
// requires an API key: the OpenAI clients send it as a bearer token, Anthropic's as x-api-key.
// No job database: a shared data directory's store could be of another kiln's schema.
// Run by CTest (KILN_BINARY, KILN_RANDOM_MODEL_DIR).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Ajv from 'ajv';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, jsonSchema } from 'ai';
import { startServer, stopServer } from './kiln_server.mjs';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_RANDOM_MODEL_DIR;
const KEY = 'test-key-chat-apis';
let server;
let origin;

const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, unit: { enum: ['c', 'f'] } },
  required: ['city'], additionalProperties: false,
};
const validWeather = new Ajv({ strict: false }).compile(WEATHER);

before(async () => {
  assert.ok(binary && modelDir, 'set KILN_BINARY and KILN_RANDOM_MODEL_DIR');
  server = await startServer(binary, ['--model', modelDir, '--served-model-name', 'random', '--max-model-len', '4096',
    '--engine-threads', '1', '--no-access-log', '--api-key', KEY, '--database', 'off']);
  origin = `http://127.0.0.1:${server.port}`;
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

const openai = () => new OpenAI({ baseURL: `${origin}/v1`, apiKey: KEY, maxRetries: 0 });
const anthropic = (apiKey = KEY) => new Anthropic({ baseURL: origin, apiKey, maxRetries: 0 });

// --- Responses API -------------------------------------------------------------------------

test('AI SDK default provider: generateText and streamText over /v1/responses', async () => {
  const model = createOpenAI({ baseURL: `${origin}/v1`, apiKey: KEY })('random');
  const plain = await generateText({ model, prompt: 'Say hi', maxOutputTokens: 12, temperature: 0.8 });
  assert.equal(typeof plain.text, 'string');
  assert.ok(plain.text.length > 0);
  assert.equal(plain.usage.outputTokens, 12);
  assert.ok(plain.usage.inputTokens > 0);
  assert.equal(plain.response.id.startsWith('resp_'), true);

  const calls = [];
  const tools = {
    get_weather: tool({
      description: 'Weather of a city',
      inputSchema: jsonSchema(WEATHER),
      execute: async (input) => { calls.push(input); return { sky: 'sunny' }; },
    }),
  };
  // One call per answer: a hot random model would otherwise go on calling until the token limit.
  const providerOptions = { openai: { parallelToolCalls: false } };
  const withTool = await generateText({ model, prompt: 'Weather in Paris?', tools, toolChoice: 'required', maxOutputTokens: 400,
    temperature: 1.2, providerOptions });
  assert.equal(withTool.toolCalls.length >= 1, true, JSON.stringify(withTool.response.body));
  assert.equal(withTool.toolCalls[0].toolName, 'get_weather');
  assert.ok(validWeather(withTool.toolCalls[0].input), JSON.stringify(withTool.toolCalls[0].input));
  assert.equal(withTool.finishReason, 'tool-calls');
  assert.equal(calls.length, withTool.toolCalls.length);

  const streamed = streamText({ model, prompt: 'Weather in Paris?', tools, toolChoice: 'required', maxOutputTokens: 400, temperature: 1.2,
    providerOptions });
  const parts = [];
  for await (const p of streamed.fullStream) {
    if (p.type === 'error') throw p.error;
    parts.push(p.type);
  }
  const streamedCalls = await streamed.toolCalls;
  assert.ok(streamedCalls.length >= 1, parts.join(','));
  assert.ok(validWeather(streamedCalls[0].input), JSON.stringify(streamedCalls[0].input));
  assert.ok(parts.includes('tool-input-start') && parts.includes('tool-input-delta') && parts.includes('tool-call'), parts.join(','));
  assert.equal(await streamed.finishReason, 'tool-calls');

  const text = streamText({ model, prompt: 'Tell a story', maxOutputTokens: 16 });
  let reassembled = '';
  for await (const t of text.textStream) reassembled += t;
  assert.equal(reassembled, await text.text);
  assert.equal((await text.usage).outputTokens, 16);
});

test('openai client: responses.create, whole and streamed', async () => {
  const client = openai();
  const r = await client.responses.create({ model: 'random', input: 'hi', instructions: 'be brief', max_output_tokens: 10 });
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'incomplete');
  assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  assert.equal(typeof r.output_text, 'string');
  assert.ok(r.output_text.length > 0);
  assert.equal(r.usage.output_tokens, 10);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 10);

  const stream = await client.responses.create({ model: 'random', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
    max_output_tokens: 10, stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  events.forEach((e, i) => assert.equal(e.sequence_number, i));
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
  const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  const last = events.at(-1).response;
  assert.equal(deltas, last.output[0].content[0].text);
  assert.equal(events.find((e) => e.type === 'response.output_text.done').text, deltas);
  assert.equal(last.usage.output_tokens, 10);

  // A forced function call, its arguments streamed and valid for the schema.
  const tools = [{ type: 'function', name: 'get_weather', parameters: WEATHER, strict: true }];
  const fc = await client.responses.create({ model: 'random', input: 'Weather?', tools, tool_choice: 'required', max_output_tokens: 400,
    temperature: 1.2, parallel_tool_calls: false, stream: true });
  const args = {};  // per item: required allows several calls
  let done;
  for await (const e of fc) {
    if (e.type === 'response.function_call_arguments.delta') args[e.item_id] = (args[e.item_id] ?? '') + e.delta;
    if (e.type === 'response.completed') done = e.response;
  }
  const fcalls = done.output.filter((o) => o.type === 'function_call');
  assert.equal(fcalls.length, 1);
  for (const c of fcalls) {
    assert.equal(c.name, 'get_weather');
    assert.equal(c.arguments, args[c.id]);
    assert.ok(validWeather(JSON.parse(c.arguments)), c.arguments);
  }
  const call = fcalls[0];

  // text.format json_schema: the grammar engine holds the output to the schema.
  const js = await client.responses.create({ model: 'random', input: 'Weather?', max_output_tokens: 400, temperature: 1.2,
    text: { format: { type: 'json_schema', name: 'weather', schema: WEATHER, strict: true } } });
  assert.ok(validWeather(JSON.parse(js.output_text)), js.output_text);

  // A function call's output goes back as an input item.
  const follow = await client.responses.create({ model: 'random', max_output_tokens: 5, tools, input: [
    { role: 'user', content: 'Weather?' },
    { type: 'function_call', call_id: call.call_id, name: 'get_weather', arguments: call.arguments },
    { type: 'function_call_output', call_id: call.call_id, output: '{"sky":"sunny"}' }] });
  assert.equal(follow.usage.output_tokens, 5);

  await assert.rejects(client.responses.create({ model: 'random', input: 'x', previous_response_id: 'resp_x' }),
    (e) => e.status === 400 && e.param === 'previous_response_id');
});

// --- Messages API --------------------------------------------------------------------------

test('anthropic client: messages.create, countTokens and errors', async () => {
  const client = anthropic();
  const params = { model: 'random', system: 'be brief', messages: [{ role: 'user', content: 'hi' }] };
  const m = await client.messages.create({ ...params, max_tokens: 8 });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.ok(m.id.startsWith('msg_'));
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.usage.output_tokens, 8);
  assert.equal(m.stop_reason, 'max_tokens');

  const count = await client.messages.countTokens(params);
  assert.equal(count.input_tokens, m.usage.input_tokens);

  await assert.rejects(client.messages.create(params), (e) => e.status === 400 && e.error.type === 'error' &&
    e.error.error.type === 'invalid_request_error' && /max_tokens/.test(e.error.error.message));
  await assert.rejects(anthropic('wrong-key').messages.create({ ...params, max_tokens: 2 }),
    (e) => e.status === 401 && e.error.error.type === 'authentication_error');
  await assert.rejects(client.messages.create({ ...params, model: 'nope', max_tokens: 2 }),
    (e) => e.status === 404 && e.error.error.type === 'not_found_error');
});

test('anthropic client: messages.stream sends events in order and the text reassembles', async () => {
  const client = anthropic();
  const stream = client.messages.stream({ model: 'random', max_tokens: 12, messages: [{ role: 'user', content: 'hi' }] });
  const types = [];
  let text = '';
  stream.on('streamEvent', (e) => types.push(e.type));
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.deepEqual(types.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  // Blocks open, take deltas and close in turn.
  let open = false;
  for (const t of types.slice(1, -2)) {
    if (t === 'content_block_start') { assert.equal(open, false); open = true; }
    if (t === 'content_block_delta') assert.equal(open, true);
    if (t === 'content_block_stop') { assert.equal(open, true); open = false; }
  }
  assert.equal(final.content.map((b) => b.text ?? '').join(''), text);
  assert.ok(text.length > 0);
  assert.equal(final.stop_reason, 'max_tokens');
  assert.equal(final.usage.output_tokens, 12);
});

test('anthropic client: tool_choice any forces a valid tool_use', async () => {
  const client = anthropic();
  const tools = [{ name: 'get_weather', description: 'Weather of a city', input_schema: WEATHER }];
  for (let i = 0; i < 3; ++i) {
    const m = await client.messages.create({ model: 'random', max_tokens: 400, temperature: 1, tools, tool_choice: { type: 'any', disable_parallel_tool_use: true },
      messages: [{ role: 'user', content: 'Weather in Paris?' }] });
    const use = m.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(m));
    assert.equal(m.content.filter((b) => b.type === 'tool_use').length, 1);
    assert.equal(use.name, 'get_weather');
    assert.ok(validWeather(use.input), JSON.stringify(use.input));
    assert.equal(m.stop_reason, 'tool_use');
  }
  const stream = client.messages.stream({ model: 'random', max_tokens: 400, tools, tool_choice: { type: 'tool', name: 'get_weather', disable_parallel_tool_use: true },
    messages: [{ role: 'user', content: 'Weather in Paris?' }] });
  const partial = {};  // per block: a named tool may still be called more than once
  stream.on('streamEvent', (e) => {
    if (e.type === 'content_block_delta' && e.delta.type === 'input_json_delta') {
      partial[e.index] = (partial[e.index] ?? '') + e.delta.partial_json;
    }
  });
  const final = await stream.finalMessage();
  const uses = final.content.map((b, i) => [b, i]).filter(([b]) => b.type === 'tool_use');
  assert.ok(uses.length >= 1);
  for (const [b, i] of uses) {
    assert.equal(b.name, 'get_weather');
    assert.deepEqual(JSON.parse(partial[i]), b.input);
    assert.ok(validWeather(b.input), JSON.stringify(b.input));
  }
  const use = uses[0][0];

  // The call and its result go back as blocks.
  const next = await client.messages.create({ model: 'random', max_tokens: 4, tools, messages: [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: [{ type: 'tool_use', id: use.id, name: use.name, input: use.input }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }] });
  assert.equal(next.usage.output_tokens, 4);
});

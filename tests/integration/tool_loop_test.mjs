// Agent loops against the real `kiln serve` with a scripted Qwen3 checkpoint (kiln make-model
// --script tests/fixtures/scripts/qwen3_tool_loop.json): the model really emits Qwen3's
// <think> blocks and <tool_call> JSON, and which call comes next depends on the last tool result,
// so each client runs a real loop of three tool calls (get_weather, get_time with empty arguments,
// get_date) and ends with the answer. Clients: the official `openai` client's runTools, the Vercel
// AI SDK (generateText / streamText with stopWhen) and LangChain JS (ChatOpenAI.bindTools), each
// streamed and not. Run by CTest (KILN_BINARY, KILN_SCRIPTED_MODEL_DIR).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import OpenAI from 'openai';
import { generateText, streamText, tool as aiTool, stepCountIs } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { tool as lcTool } from '@langchain/core/tools';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import { z } from 'zod';

const binary = process.env.KILN_BINARY;
const modelDir = process.env.KILN_SCRIPTED_MODEL_DIR;
const KEY = 'tool-loop-key';
const FINAL = 'It is sunny in Paris at noon on 2026-12-06.';
let server;
let baseURL;

before(async () => {
  assert.ok(binary && modelDir, 'set KILN_BINARY and KILN_SCRIPTED_MODEL_DIR');
  server = await startServer(binary, ['--model', modelDir, '--served-model-name', 'scripted', '--max-model-len', '4096',
    '--api-key', KEY, '--engine-threads', '1', '--no-access-log']);
  baseURL = `http://127.0.0.1:${server.port}/v1`;
});

after(async () => {
  if (!server) return;
  assert.equal(await stopServer(server), 0);
});

// The tools of the loop; each records its call, so a test can check the loop's order.
function recorder() {
  const calls = [];
  return {
    calls,
    get_weather: ({ city }) => { calls.push(['get_weather', { city }]); return 'sunny'; },
    get_time: (args) => { calls.push(['get_time', args ?? {}]); return 'noon'; },
    get_date: ({ format }) => { calls.push(['get_date', { format }]); return '2026-12-06'; },
  };
}
const EXPECTED_CALLS = [['get_weather', { city: 'Paris' }], ['get_time', {}], ['get_date', { format: 'iso' }]];
const QUESTION = 'What is the weather in Paris, the time and the date?';
const schemas = {
  get_weather: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  get_time: { type: 'object', properties: {} },
  get_date: { type: 'object', properties: { format: { type: 'string' } }, required: ['format'] },
};

for (const stream of [false, true]) {
  test(`openai runTools runs the three-call loop to its answer (stream: ${stream})`, async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0, timeout: 120000 });
    const r = recorder();
    const tools = Object.keys(schemas).map((name) => ({
      type: 'function',
      function: { name, description: `the ${name.slice(4)}`, parameters: schemas[name], function: r[name], parse: JSON.parse },
    }));
    const runner = client.chat.completions.runTools({
      model: 'scripted', temperature: 0, stream, tools, messages: [{ role: 'user', content: QUESTION }],
    });
    const content = await runner.finalContent();
    assert.equal(content, FINAL);
    assert.deepEqual(r.calls, EXPECTED_CALLS);
    const assistants = runner.messages.filter((m) => m.role === 'assistant');
    assert.equal(assistants.length, 4);
    for (const m of assistants.slice(0, 3)) {
      assert.equal(m.tool_calls.length, 1);
      assert.match(m.tool_calls[0].id, /^call_/);
      assert.equal(m.tool_calls[0].type, 'function');
    }
    // Arguments are the JSON text the model wrote.
    assert.deepEqual(JSON.parse(assistants[0].tool_calls[0].function.arguments), { city: 'Paris' });
    assert.deepEqual(JSON.parse(assistants[1].tool_calls[0].function.arguments), {});
  });

  test(`Vercel AI SDK ${stream ? 'streamText' : 'generateText'} with stopWhen runs the loop to its answer`, async () => {
    const provider = createOpenAICompatible({ name: 'kiln', baseURL, apiKey: KEY });
    const r = recorder();
    const tools = {
      get_weather: aiTool({ description: 'the weather', inputSchema: z.object({ city: z.string() }), execute: async (a) => r.get_weather(a) }),
      get_time: aiTool({ description: 'the time', inputSchema: z.object({}), execute: async (a) => r.get_time(a) }),
      get_date: aiTool({ description: 'the date', inputSchema: z.object({ format: z.string() }), execute: async (a) => r.get_date(a) }),
    };
    const args = { model: provider('scripted'), temperature: 0, tools, stopWhen: stepCountIs(8), prompt: QUESTION };
    let text, steps;
    if (stream) {
      const result = streamText(args);
      text = await result.text;
      steps = await result.steps;
    } else {
      ({ text, steps } = await generateText(args));
    }
    assert.equal(text, FINAL);
    assert.deepEqual(r.calls, EXPECTED_CALLS);
    assert.equal(steps.length, 4);
    assert.deepEqual(steps.map((s) => s.finishReason), ['tool-calls', 'tool-calls', 'tool-calls', 'stop']);
    assert.equal(steps[0].reasoningText.trim(), 'The user wants the weather.');
  });

  test(`LangChain ChatOpenAI.bindTools runs the loop to its answer (streaming: ${stream})`, async () => {
    const r = recorder();
    const tools = [
      lcTool(async (a) => r.get_weather(a), { name: 'get_weather', description: 'the weather', schema: z.object({ city: z.string() }) }),
      lcTool(async (a) => r.get_time(a), { name: 'get_time', description: 'the time', schema: z.object({}) }),
      lcTool(async (a) => r.get_date(a), { name: 'get_date', description: 'the date', schema: z.object({ format: z.string() }) }),
    ];
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    const model = new ChatOpenAI({ model: 'scripted', apiKey: KEY, temperature: 0, streaming: stream, maxRetries: 0,
      configuration: { baseURL } }).bindTools(tools);
    const messages = [new HumanMessage(QUESTION)];
    let answer;
    for (let step = 0; step < 8; ++step) {
      let ai;
      if (stream) {
        for await (const chunk of await model.stream(messages)) ai = ai ? ai.concat(chunk) : chunk;
      } else {
        ai = await model.invoke(messages);
      }
      messages.push(ai);
      if (!ai.tool_calls?.length) {
        answer = ai.content;
        break;
      }
      for (const tc of ai.tool_calls) {
        const out = await byName[tc.name].invoke(tc.args);
        messages.push(new ToolMessage({ content: String(out), tool_call_id: tc.id }));
      }
    }
    assert.equal(answer, FINAL);
    assert.deepEqual(r.calls, EXPECTED_CALLS);
  });
}

// The wire format itself, read with fetch: what OpenAI sends, field by field.
const TOOLS = Object.keys(schemas).map((name) => ({ type: 'function', function: { name, parameters: schemas[name] } }));
const FIRST_TURN = [{ role: 'user', content: QUESTION }];

async function post(body) {
  const res = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ model: 'scripted', temperature: 0, ...body }),
  });
  return { status: res.status, text: await res.text() };
}

function sseEvents(text) {
  return text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6)).filter((d) => d !== '[DONE]')
    .map((d) => JSON.parse(d));
}

test('a non-streamed tool call: tool_calls, content null, reasoning_content, finish_reason tool_calls, reasoning tokens', async () => {
  const r = await post({ messages: FIRST_TURN, tools: TOOLS });
  assert.equal(r.status, 200, r.text);
  const j = JSON.parse(r.text);
  const c = j.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.content, null);
  assert.equal(c.message.reasoning_content.trim(), 'The user wants the weather.');
  assert.equal(c.message.tool_calls.length, 1);
  const call = c.message.tool_calls[0];
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  // <think> and "\nThe user wants the weather.\n" up to </think>: the tokens inside the block.
  assert.ok(j.usage.completion_tokens_details.reasoning_tokens >= 5, JSON.stringify(j.usage));
  assert.ok(j.usage.completion_tokens_details.reasoning_tokens < j.usage.completion_tokens);
});

test('a streamed tool call: reasoning deltas first, then the call opened with arguments "", fragments, the finish', async () => {
  const r = await post({ messages: FIRST_TURN, tools: TOOLS, stream: true, stream_options: { include_usage: true } });
  assert.equal(r.status, 200, r.text);
  const events = sseEvents(r.text);
  const deltas = events.filter((e) => e.choices.length).map((e) => e.choices[0]);
  assert.deepEqual(deltas[0].delta, { role: 'assistant', content: '' });
  const kinds = deltas.slice(1).map((d) => (d.delta.reasoning_content !== undefined ? 'r' : d.delta.tool_calls ? 't'
    : d.delta.content !== undefined ? 'c' : 'end'));
  assert.match(kinds.join(''), /^r+t+end$/);
  assert.equal(deltas.filter((d) => d.delta.reasoning_content).map((d) => d.delta.reasoning_content).join('').trim(),
    'The user wants the weather.');
  const calls = deltas.filter((d) => d.delta.tool_calls).map((d) => d.delta.tool_calls[0]);
  assert.equal(calls[0].index, 0);
  assert.match(calls[0].id, /^call_/);
  assert.equal(calls[0].type, 'function');
  assert.deepEqual(calls[0].function, { name: 'get_weather', arguments: '' });
  for (const f of calls.slice(1)) {
    assert.deepEqual(Object.keys(f).sort(), ['function', 'index']);
    assert.equal(f.index, 0);
  }
  assert.deepEqual(JSON.parse(calls.slice(1).map((f) => f.function.arguments).join('')), { city: 'Paris' });
  assert.equal(deltas.at(-1).finish_reason, 'tool_calls');
  assert.deepEqual(deltas.at(-1).delta, {});
  const usage = events.at(-1).usage;
  assert.ok(usage.completion_tokens_details.reasoning_tokens >= 5);
});

test('without tools the call stays text; tool_choice none neither shows nor parses the tools', async () => {
  for (const extra of [{}, { tools: TOOLS, tool_choice: 'none' }]) {
    const r = await post({ messages: FIRST_TURN, ...extra });
    const c = JSON.parse(r.text).choices[0];
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.message.tool_calls, undefined);
    assert.match(c.message.content, /^<tool_call>\n\{"name": "get_weather"/);
    assert.equal(c.message.reasoning_content.trim(), 'The user wants the weather.');  // reasoning is split all the same
  }
});

test('an unknown named tool_choice and a bad tool name are 400s naming the parameter', async () => {
  let r = await post({ messages: FIRST_TURN, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.text).error.param, 'tool_choice');
  r = await post({ messages: FIRST_TURN, tools: [{ type: 'function', function: { name: 'bad name' } }] });
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.text).error.param, 'tools[0].function.name');
  // required is accepted (and enforced: tool_choice_test.mjs).
  r = await post({ messages: FIRST_TURN, tools: TOOLS, tool_choice: 'required' });
  assert.equal(r.status, 200, r.text);
});

test('history: an assistant turn with tool_calls and content null, then the tool result, renders and continues', async () => {
  const messages = [...FIRST_TURN,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'sunny' }] }];
  const r = await post({ messages, tools: TOOLS });
  assert.equal(r.status, 200, r.text);
  const c = JSON.parse(r.text).choices[0];
  assert.equal(c.message.tool_calls[0].function.name, 'get_time');
  assert.deepEqual(JSON.parse(c.message.tool_calls[0].function.arguments), {});
});

test('a model whose template cannot show tools, with no parser for them, refuses tools instead of dropping them', async (t) => {
  // The http tests' tiny Llama: its template (the llama3 tokenizer package's) has no tools.
  const plainDir = process.env.KILN_TEST_MODEL_DIR;
  if (!plainDir) return t.skip('set KILN_TEST_MODEL_DIR');
  const plain = await startServer(binary, ['--model', plainDir, '--served-model-name', 'plain', '--max-model-len', '512',
    '--engine-threads', '1', '--no-access-log']);
  try {
    const url = `http://127.0.0.1:${plain.port}/v1/chat/completions`;
    const ask = async (extra) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'plain', messages: FIRST_TURN, max_tokens: 2, ...extra }) });
      return { status: res.status, body: await res.json() };
    };
    const refused = await ask({ tools: TOOLS });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.param, 'tools');
    assert.equal(refused.body.error.code, 'tools_unsupported');
    assert.match(refused.body.error.message, /cannot use tools/);
    // tool_choice none offers nothing, so nothing is dropped: the request runs.
    assert.equal((await ask({ tools: TOOLS, tool_choice: 'none' })).status, 200);
  } finally {
    await stopServer(plain);
  }
});

test('two calls in one answer stream with indexes 0 and 1; parallel_tool_calls false ends the answer after the first', async () => {
  const messages = [{ role: 'user', content: 'Call both.' }];
  const both = JSON.parse((await post({ messages, tools: TOOLS })).text);
  assert.deepEqual(both.choices[0].message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
    [['get_time', {}], ['get_weather', { city: 'Paris' }]]);
  assert.notEqual(both.choices[0].message.tool_calls[0].id, both.choices[0].message.tool_calls[1].id);

  const streamed = sseEvents((await post({ messages, tools: TOOLS, stream: true })).text).map((e) => e.choices[0]);
  const opens = streamed.filter((d) => d.delta.tool_calls?.[0].id).map((d) => [d.delta.tool_calls[0].index, d.delta.tool_calls[0].function.name]);
  assert.deepEqual(opens, [[0, 'get_time'], [1, 'get_weather']]);
  assert.equal(streamed.at(-1).finish_reason, 'tool_calls');

  const one = JSON.parse((await post({ messages, tools: TOOLS, parallel_tool_calls: false })).text);
  assert.equal(one.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(one.choices[0].message.tool_calls.map((c) => c.function.name), ['get_time']);
  assert.ok(one.usage.completion_tokens < both.usage.completion_tokens, 'generation stopped after the first call');
});

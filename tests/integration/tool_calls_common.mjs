// What the tool_choice end-to-end tests share: tools whose random instances end (bounded strings,
// enums, bounded arrays), their ajv validators, a chat request, and the calls of one choice read
// from a whole response or from its event stream.
import assert from 'node:assert/strict';
import Ajv from 'ajv';

export const SCHEMAS = {
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
// Descriptions too: gpt-oss's template requires them.
export const TOOLS = Object.entries(SCHEMAS).map(([name, parameters]) => ({ type: 'function',
  function: { name, description: `The ${name.replace('_', ' ')} tool.`, parameters } }));
export const ajv = new Ajv({ strict: false });
export const validators = Object.fromEntries(Object.entries(SCHEMAS).map(([n, s]) => [n, ajv.compile(s)]));
export const MESSAGES = [{ role: 'user', content: 'What is the weather in Paris?' }];

export async function postChat(baseURL, model, body) {
  const r = await fetch(`${baseURL}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, max_tokens: 1500, ...body }),
  });
  return { status: r.status, text: await r.text() };
}

// The calls, finish reason and content of one choice, from a whole response or its event stream.
export function choiceOf(text, stream) {
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

// The choice is 1..maxCalls calls of `allowed` tools, each with arguments valid for its schema.
export function checkCalls(choice, allowed, maxCalls, what = '') {
  const msg = `${what}: ${JSON.stringify(choice)}`;
  assert.equal(choice.finish, 'tool_calls', msg);
  assert.equal(choice.content, null, msg);
  assert.ok(choice.calls.length >= 1 && choice.calls.length <= maxCalls, msg);
  for (const call of choice.calls) {
    assert.ok(allowed.includes(call.name), `${what}: ${call.name} is not one of ${allowed}`);
    const args = JSON.parse(call.arguments);
    assert.ok(validators[call.name](args), `${what}: ${call.name}(${call.arguments}): ${ajv.errorsText(validators[call.name].errors)}`);
  }
}

// Structured outputs end to end: the real `kiln serve` with random-weight checkpoints (tiny Llama
// with the llama3 tokenizer, tiny Qwen3 with the real Qwen3 tokenizer) samples at temperature 1.5
// under response_format json_schema / json_object and structured_outputs regex / choice / grammar,
// and every choice is checked by an independent validator (ajv + ajv-formats for schemas, the
// JavaScript RegExp engine for regexes and grammars). Random weights make the output anything the
// constraint allows, so this is the constraint alone deciding that it is valid. Bounds in the
// schemas (maxLength, maxItems, maximum) keep every output well within max_tokens: a choice that
// ran out of tokens would finish with "length", which the test refuses. Run by CTest (KILN_BINARY,
// KILN_TEST_MODEL_DIR, KILN_QWEN3_MODEL_DIR) or by hand with those set.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer } from './kiln_server.mjs';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const binary = process.env.KILN_BINARY;
const models = { llama: process.env.KILN_TEST_MODEL_DIR, qwen3: process.env.KILN_QWEN3_MODEL_DIR };
const KEY = 'structured-key';
const MAX_TOKENS = 400;
const servers = {};

before(async () => {
  assert.ok(binary && models.llama && models.qwen3, 'set KILN_BINARY, KILN_TEST_MODEL_DIR and KILN_QWEN3_MODEL_DIR');
  for (const [name, dir] of Object.entries(models)) {
    const s = await startServer(binary, ['--model', dir, '--served-model-name', name, '--max-model-len', '1024',
      '--api-key', KEY, '--engine-threads', '1', '--no-access-log']);
    s.url = `http://127.0.0.1:${s.port}/v1`;
    servers[name] = s;
  }
});

after(async () => {
  for (const s of Object.values(servers)) {
    assert.equal(await stopServer(s), 0);
  }
});

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

// Each schema is bounded so that random output terminates: strings have maxLength (or a pattern,
// format or enum that bounds them), arrays maxItems, integers a range.
const SCHEMAS = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      role: { enum: ['admin', 'user', 'guest', null, 42] },
      nickname: { type: 'string', maxLength: 8 },
      active: { type: 'boolean' },
    },
    required: ['name', 'age', 'role'],
    additionalProperties: false,
  },
  nested_arrays: {
    type: 'object',
    properties: {
      matrix: { type: 'array', items: { type: 'array', items: { type: 'integer', minimum: -50, maximum: 50 }, maxItems: 3 }, maxItems: 3 },
      tags: { type: 'array', items: { type: 'string', maxLength: 6 }, minItems: 1, maxItems: 4 },
      pair: { type: 'array', prefixItems: [{ type: 'boolean' }, { const: 'x' }], items: false },
    },
    required: ['matrix', 'tags', 'pair'],
    additionalProperties: false,
  },
  strings: {
    type: 'object',
    properties: {
      code: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3,5}$' },
      short: { type: 'string', minLength: 2, maxLength: 5 },
      id: { type: 'string', format: 'uuid' },
      day: { type: 'string', format: 'date' },
      at: { type: 'string', format: 'date-time' },
      ip: { type: 'string', format: 'ipv4' },
    },
    required: ['code', 'short', 'id', 'day', 'at', 'ip'],
    additionalProperties: false,
  },
  any_of_ref: {
    $defs: {
      point: {
        type: 'object',
        properties: { x: { type: 'integer', minimum: -9, maximum: 9 }, y: { type: 'integer', minimum: 0, maximum: 99 } },
        required: ['x', 'y'],
        additionalProperties: false,
      },
      label: { type: 'string', maxLength: 10 },
    },
    type: 'object',
    properties: {
      shape: {
        anyOf: [
          { type: 'object', properties: { kind: { const: 'circle' }, center: { $ref: '#/$defs/point' }, r: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['kind', 'center', 'r'], additionalProperties: false },
          { type: 'object', properties: { kind: { const: 'path' }, points: { type: 'array', items: { $ref: '#/$defs/point' }, maxItems: 3 } }, required: ['kind', 'points'], additionalProperties: false },
          { type: 'null' },
        ],
      },
      label: { $ref: '#/$defs/label' },
      score: { type: 'integer', exclusiveMinimum: 10, maximum: 20 },
    },
    required: ['shape', 'label'],
    additionalProperties: false,
  },
};

const chatMessages = [{ role: 'user', content: 'Reply in JSON.' }];

async function post(server, path, body) {
  const res = await fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  return res;
}

// Returns [{text, finish_reason}] per choice index, streamed or not, for chat or completions.
async function generate(server, endpoint, body) {
  const path = endpoint === 'chat' ? '/chat/completions' : '/completions';
  const res = await post(server, path, body);
  const raw = await res.text();
  assert.equal(res.status, 200, raw);
  const out = [];
  const slot = (i) => (out[i] ??= { text: '', finish_reason: null });
  if (!body.stream) {
    const j = JSON.parse(raw);
    for (const c of j.choices) {
      slot(c.index).text = endpoint === 'chat' ? c.message.content : c.text;
      slot(c.index).finish_reason = c.finish_reason;
    }
    return out;
  }
  let done = false;
  for (const line of raw.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice(6);
    if (data === '[DONE]') { done = true; continue; }
    const j = JSON.parse(data);
    assert.equal(j.error, undefined, data);
    for (const c of j.choices ?? []) {
      slot(c.index).text += (endpoint === 'chat' ? c.delta?.content : c.text) ?? '';
      if (c.finish_reason) slot(c.index).finish_reason = c.finish_reason;
    }
  }
  assert.ok(done, 'the stream ends with [DONE]');
  return out;
}

function checkChoices(choices, n, check) {
  assert.equal(choices.length, n);
  for (const [i, c] of choices.entries()) {
    assert.equal(c.finish_reason, 'stop', `choice ${i} finished with ${c.finish_reason}: ${JSON.stringify(c.text)}`);
    check(c.text, i);
  }
}

function validator(schema) {
  const validate = ajv.compile(schema);
  return (text, i) => {
    let value;
    assert.doesNotThrow(() => { value = JSON.parse(text); }, `choice ${i} is not JSON: ${JSON.stringify(text)}`);
    assert.ok(validate(value), `choice ${i} ${text} is invalid: ${ajv.errorsText(validate.errors)}`);
  };
}

const modelNames = ['llama', 'qwen3'];
let seed = 1000;
for (const model of modelNames) {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const endpoint of ['chat', 'completions']) {
      for (const stream of [false, true]) {
        const s = seed++;
        test(`${model}: json_schema ${name} on ${endpoint} (stream: ${stream}) validates for every choice`, async () => {
          const body = {
            model, n: 4, temperature: 1.5, seed: s, max_tokens: MAX_TOKENS, stream,
            response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
          };
          if (endpoint === 'chat') body.messages = chatMessages; else body.prompt = 'JSON:';
          checkChoices(await generate(servers[model], endpoint, body), 4, validator(schema));
        });
      }
    }
  }

  test(`${model}: json_object gives a JSON object for every choice`, async () => {
    for (const stream of [false, true]) {
      const choices = await generate(servers[model], 'chat', {
        model, messages: chatMessages, n: 4, temperature: 1.5, seed: seed++, max_tokens: 128, stream,
        // A random model nests and lengthens JSON without end: a low top_k is not enough to
        // bound it, so only the shape is checked on the choices that finished.
        response_format: { type: 'json_object' },
      });
      assert.equal(choices.length, 4);
      for (const c of choices) {
        assert.ok(['stop', 'length'].includes(c.finish_reason));
        if (c.finish_reason !== 'stop') continue;
        const v = JSON.parse(c.text);
        assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), c.text);
      }
    }
  });

  test(`${model}: structured_outputs regex, choice and grammar hold for every choice`, async () => {
    const pattern = '(?:[a-z]{1,6}@[a-z]{2,5}\\.(?:com|org))|(?:#[0-9a-f]{6})|\\d{1,3}(?:\\.\\d{1,2})?';
    const re = new RegExp('^(?:' + pattern + ')$', 'u');
    const choiceList = ['red', 'green', 'blue', 'dark blue', 'ünïcödé ✓'];
    // A GBNF list of one to four small sums; the same language as `gre`.
    const gbnf = 'root ::= "[" sum ("," sum){0,3} "]"\nsum ::= num ("+" num)?\nnum ::= [1-9] [0-9]?\n';
    const gre = /^\[[1-9][0-9]?(?:\+[1-9][0-9]?)?(?:,[1-9][0-9]?(?:\+[1-9][0-9]?)?){0,3}\]$/u;
    for (const stream of [false, true]) {
      for (const [endpoint, prompt] of [['chat', { messages: chatMessages }], ['completions', { prompt: 'Go:' }]]) {
        const base = { model, n: 4, temperature: 1.5, max_tokens: 64, stream, ...prompt };
        checkChoices(await generate(servers[model], endpoint, { ...base, seed: seed++, structured_outputs: { regex: pattern } }), 4,
          (t) => assert.match(t, re));
        checkChoices(await generate(servers[model], endpoint, { ...base, seed: seed++, structured_outputs: { choice: choiceList } }), 4,
          (t) => assert.ok(choiceList.includes(t), t));
        checkChoices(await generate(servers[model], endpoint, { ...base, seed: seed++, structured_outputs: { grammar: gbnf } }), 4,
          (t) => assert.match(t, gre));
        checkChoices(await generate(servers[model], endpoint, { ...base, seed: seed++, grammar: gbnf }), 4,
          (t) => assert.match(t, gre));
      }
    }
  });
}

test('the openai client gets schema-valid JSON from response_format json_schema, streamed and not', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: servers.qwen3.url, maxRetries: 0, timeout: 120000 });
  const schema = SCHEMAS.any_of_ref;
  const check = validator(schema);
  const response_format = { type: 'json_schema', json_schema: { name: 'shape', schema, strict: true } };
  const r = await client.chat.completions.create({
    model: 'qwen3', messages: chatMessages, n: 4, temperature: 1.5, seed: 7, max_tokens: MAX_TOKENS, response_format,
  });
  assert.equal(r.choices.length, 4);
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop');
    check(c.message.content, c.index);
  }
  const stream = await client.chat.completions.create({
    model: 'qwen3', messages: chatMessages, n: 4, temperature: 1.5, seed: 8, max_tokens: MAX_TOKENS, response_format,
    stream: true,
  });
  const texts = ['', '', '', ''];
  const finish = [];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.delta.content ?? '';
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(finish, ['stop', 'stop', 'stop', 'stop']);
  texts.forEach(check);
});

test('a keyword kiln cannot enforce is a 400 naming it and its param', async () => {
  const client = new OpenAI({ apiKey: KEY, baseURL: servers.llama.url, maxRetries: 0, timeout: 120000 });
  const schema = { type: 'object', properties: { a: { type: 'object', dependentSchemas: { x: { required: ['y'] } } } } };
  await assert.rejects(
    client.chat.completions.create({
      model: 'llama', messages: chatMessages, max_tokens: 8,
      response_format: { type: 'json_schema', json_schema: { name: 'bad', schema } },
    }),
    (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, 'response_format.json_schema.schema');
      assert.match(e.message, /dependentSchemas/);
      assert.match(e.message, /\/properties\/a/);
      return true;
    });
  // multipleOf beside bounds is one of the documented refusals (docs/json-schema.md).
  const bounded = { type: 'object', properties: { n: { type: 'integer', minimum: 10, maximum: 20, multipleOf: 5 } } };
  const r2 = await post(servers.llama, '/completions', {
    model: 'llama', prompt: 'x', max_tokens: 8, response_format: { type: 'json_schema', json_schema: { name: 'm', schema: bounded } },
  });
  assert.equal(r2.status, 400);
  const j2 = await r2.json();
  assert.equal(j2.error.param, 'response_format.json_schema.schema');
  assert.match(j2.error.message, /'multipleOf'.*\/properties\/n/);
  const res = await post(servers.llama, '/completions', {
    model: 'llama', prompt: 'x', max_tokens: 8, structured_outputs: { regex: '(a)\\1' },
  });
  assert.equal(res.status, 400);
  const j = await res.json();
  assert.equal(j.error.param, 'structured_outputs.regex');
});

test('an over-limit schema is a 400, and the server goes on serving', async () => {
  let deep = { type: 'integer', minimum: 0, maximum: 1 };
  for (let i = 0; i < 200; i++) deep = { type: 'array', items: deep, maxItems: 1 };
  for (const schema of [{ type: 'string', minLength: 1000000 }, { type: 'array', minItems: 20000 }, deep]) {
    const res = await post(servers.llama, '/chat/completions', {
      model: 'llama', messages: chatMessages, max_tokens: 8,
      response_format: { type: 'json_schema', json_schema: { name: 'big', schema } },
    });
    const text = await res.text();
    assert.equal(res.status, 400, text);
    const j = JSON.parse(text);
    assert.equal(j.error.type, 'invalid_request_error');
    // Too deep a document is refused while the body is parsed, where it is found.
    assert.ok(j.error.param.startsWith('response_format.json_schema.schema'), j.error.param);
  }
  const ok = await generate(servers.llama, 'chat', {
    model: 'llama', messages: chatMessages, max_tokens: 16, seed: 1, structured_outputs: { choice: ['yes', 'no'] },
  });
  checkChoices(ok, 1, (t) => assert.ok(['yes', 'no'].includes(t)));
});

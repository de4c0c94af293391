// The Models page's reader of the pull stream (ui/src/pull.ts, bundled here by Vite as the page's
// build does) on the events of POST /v1/admin/models/pull as docs/pull.md gives them: progress
// from `resolved` and `progress`, the end from `done` or `error`, everything else skipped.
// Run by CTest (node, with the npm packages of scripts/setup).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'vite';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let tmp;
let parsePullEvent;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ui-pull-'));
  await build({
    configFile: false, logLevel: 'silent', root,
    build: { outDir: tmp, emptyOutDir: true, minify: false,
      lib: { entry: path.join(root, 'ui/src/pull.ts'), formats: ['es'], fileName: () => 'pull.mjs' } },
  });
  ({ parsePullEvent } = await import(pathToFileURL(path.join(tmp, 'pull.mjs')).href));
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('resolved and progress events move the bar', () => {
  assert.deepEqual(parsePullEvent('resolved', JSON.stringify({ model: 'org/m', revision: 'main', commit: 'abc',
    files: [{ path: 'config.json', size: 10 }], total_bytes: 1000, present_bytes: 200 })),
  { kind: 'progress', done: 200, total: 1000, files: undefined, bytesPerSecond: undefined });
  assert.deepEqual(parsePullEvent('progress', JSON.stringify({ model: 'org/m', done_bytes: 600, total_bytes: 1000,
    files_done: 1, files_total: 3, bytes_per_second: 2048 })),
  { kind: 'progress', done: 600, total: 1000, files: '1 of 3 files', bytesPerSecond: 2048 });
});

test('done and error end the pull', () => {
  assert.deepEqual(parsePullEvent('done', JSON.stringify({ model: 'org/m', commit: 'abc', snapshot: '/s',
    downloaded_bytes: 800, servable: true })), { kind: 'done', message: undefined });
  assert.match(parsePullEvent('done', JSON.stringify({ model: 'org/m', servable: false })).message, /does not serve/);
  assert.deepEqual(parsePullEvent('error', JSON.stringify({ error: { message: 'sha256 mismatch', type: 'server_error' } })),
    { kind: 'error', message: 'sha256 mismatch' });
  assert.deepEqual(parsePullEvent('error', 'not json'), { kind: 'error', message: 'not json' });
  assert.deepEqual(parsePullEvent('message', '[DONE]'), { kind: 'done' });
});

test('other events are skipped', () => {
  assert.equal(parsePullEvent('file', JSON.stringify({ model: 'org/m', path: 'a.safetensors', size: 5, cached: false })), undefined);
  assert.equal(parsePullEvent('retry', JSON.stringify({ model: 'org/m', path: 'a', attempt: 2, message: 'reset' })), undefined);
  assert.equal(parsePullEvent('message', 'garbage'), undefined);
});

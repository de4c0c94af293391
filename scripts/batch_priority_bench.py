#!/usr/bin/env python3
"""Batch work against interactive work on one server (docs/scheduling.md): the issue's two figures.

The same measurement as scripts/batch_priority_bench.mjs, in Python 3 with the standard library
only, for machines without Node.js (the GPU machine):
 1. Throughput: a batch of THROUGHPUT_LINES completions lines alone, against `kiln bench serve`
    at the batch's concurrency with the same request shape (--no-stream), run back to back.
 2. Priority: TTFT of streamed interactive completions, one after another, on the idle server
    and while a batch of PRIORITY_LINES lines runs (cancelled once measured).
Starts `kiln serve` itself (its own KILN_HOME) and prints a Markdown table, then one JSON line.

  python3 scripts/batch_priority_bench.py --model DIR [--kiln build/cpu/apps/kiln/kiln]
    [--concurrency 8] [--throughput-lines 400] [--priority-lines 10000] [--ttft-requests 20]
    [--prompt-tokens 16] [--output-tokens 16] [--rounds 1] [--serve-args "..."] [--json-out FILE]
"""
import decimal
import http.client
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

PROG = 'batch_priority_bench'
DEFAULTS = {
    'kiln': 'build/cpu/apps/kiln/kiln', 'model': '', 'concurrency': 8, 'throughput-lines': 400,
    'priority-lines': 10000, 'ttft-requests': 20, 'prompt-tokens': 16, 'output-tokens': 16, 'rounds': 1,
    'serve-args': '',
}
START_TIMEOUT_S = 60      # as tests/integration/kiln_server.mjs
REQUEST_TIMEOUT_S = 600   # one HTTP exchange; the first one may load the model
STALL_LIMIT_S = 600       # a batch whose status and counts do not move for this long has stalled
SERVED = 'bench'
TERMINAL = ('completed', 'failed', 'cancelled', 'expired')

# A few words that are one token each in common tokenizers (as `kiln bench serve` uses). Same list
# and formula as the .mjs, so that the two scripts' figures are comparable.
WORDS = ['the', 'of', 'and', 'to', 'in', 'is', 'was', 'for', 'on', 'that', 'with', 'as', 'by', 'at',
         'from', 'his', 'her', 'it', 'an', 'were', 'are', 'which', 'this', 'be', 'or', 'has', 'had', 'not']


class BenchError(Exception):
    pass


def prompt(i, n):
    return ' '.join(WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(n))


def quantile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, math.floor(len(s) * q))]


def parse_args(argv):
    """Pairs of `--name value` (or `--name=value`), as the .mjs takes them: a value may start with
    '--' (--serve-args "--device cuda")."""
    opts = dict(DEFAULTS)
    json_out = ''
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ('-h', '--help'):
            print(__doc__.strip())
            sys.exit(0)
        if a.startswith('--') and '=' in a:
            k, v = a[2:].split('=', 1)
            i += 1
        else:
            k = a[2:] if a.startswith('--') else ''
            if i + 1 >= len(argv):
                k = ''
            else:
                v = argv[i + 1]
            i += 2
        if k == 'json-out':
            json_out = v
            continue
        if k not in opts:
            raise BenchError(f'unknown or incomplete option {a}')
        if isinstance(DEFAULTS[k], int):
            try:
                opts[k] = int(v)
            except ValueError:
                raise BenchError(f'--{k} takes a whole number, not {v!r}') from None
            if opts[k] < 1:
                raise BenchError(f'--{k} must be at least 1')
        else:
            opts[k] = v
    if not opts['model']:
        raise BenchError('--model DIR is required')
    return opts, json_out


class Server:
    """`kiln serve --host 127.0.0.1 --port 0 ...` started as tests/integration/kiln_server.mjs does:
    ready once its log says where it listens."""

    def __init__(self, binary, args, env):
        self._log = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.port = 0
        try:
            self.proc = subprocess.Popen([binary, 'serve', '--host', '127.0.0.1', '--port', '0', *args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, env={**os.environ, **env})
        except OSError as e:
            raise BenchError(f'cannot start {binary}: {e}') from None
        # Drains stderr for the whole run: a full pipe would block the server.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        pending = ''
        for raw in iter(lambda: self.proc.stderr.read1(65536), b''):
            text = raw.decode('utf-8', 'replace')
            with self._lock:
                self._log.append(text)
                if sum(map(len, self._log)) > 1 << 20:  # keep the last MiB for error messages
                    self._log = [''.join(self._log)[-(1 << 19):]]
            if not self._ready.is_set():
                pending += text
                m = re.search(r'on http://127\.0\.0\.1:(\d+)', pending)
                if m:
                    self.port = int(m.group(1))
                    self._ready.set()
        self._ready.set()  # exited: wait_ready() sees port 0

    def log(self):
        with self._lock:
            return ''.join(self._log)

    def wait_ready(self):
        if not self._ready.wait(START_TIMEOUT_S):
            raise BenchError(f'kiln serve did not start within {START_TIMEOUT_S} s:\n{self.log()}')
        if not self.port:
            self._reader.join(5)
            raise BenchError(f'kiln serve exited with {self.proc.wait()}:\n{self.log()}')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


class Client:
    def __init__(self, port):
        self.port = port

    def connection(self):
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=REQUEST_TIMEOUT_S)

    def call(self, method, path, body=None, headers=None, raw=False):
        conn = self.connection()
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {'Content-Type': 'application/json', **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise BenchError(f'{method} {path}: {e}') from None
        finally:
            conn.close()
        if r.status != 200:
            raise BenchError(f'{method} {path}: HTTP {r.status}: {data.decode("utf-8", "replace")[:2000]}')
        return data if raw else json.loads(data)

    def upload_batch_file(self, content):
        boundary = 'kiln-bench-' + uuid.uuid4().hex
        body = b''.join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b.jsonl"\r\n'
            'Content-Type: application/octet-stream\r\n\r\n'.encode(),
            content, f'\r\n--{boundary}--\r\n'.encode()])
        return self.call('POST', '/v1/files', body,
                         {'Content-Type': f'multipart/form-data; boundary={boundary}'})


class Bench:
    def __init__(self, opts, client, home, base):
        self.o = opts
        self.c = client
        self.home = home
        self.base = base
        self.empty_streams = 0

    def ttfts(self, n):
        """Time to the first streamed text chunk of n requests, one after another, on one kept-alive
        connection (as the openai client does)."""
        out = []
        conn = self.c.connection()
        try:
            for i in range(n):
                body = json.dumps({'model': SERVED, 'stream': True, 'max_tokens': 4, 'ignore_eos': True,
                                   'prompt': prompt(1000 + i, self.o['prompt-tokens'])}).encode()
                t0 = time.perf_counter()
                try:
                    conn.request('POST', '/v1/completions', body, {'Content-Type': 'application/json'})
                    r = conn.getresponse()
                    if r.status != 200:
                        raise BenchError(f'POST /v1/completions (stream): HTTP {r.status}: '
                                         f'{r.read().decode("utf-8", "replace")[:2000]}')
                    first = self._first_text_ms(r, t0)
                except (OSError, http.client.HTTPException) as e:
                    raise BenchError(f'POST /v1/completions (stream): {e}') from None
                if first == 0:
                    self.empty_streams += 1
                out.append(first)
        finally:
            conn.close()
        return {'p50': quantile(out, 0.5), 'p90': quantile(out, 0.9)}

    @staticmethod
    def _first_text_ms(r, t0):
        """Reads the whole SSE stream; the time of its first chunk with text, 0 if none had any (as
        the .mjs counts it)."""
        first = 0
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b'data:'):
                continue  # blank separators and ': keep-alive' comments
            data = line[5:].strip()
            if data == b'[DONE]':
                continue
            chunk = json.loads(data)
            if 'error' in chunk:
                raise BenchError(f'streamed error: {json.dumps(chunk["error"])}')
            choices = chunk.get('choices') or []
            if not first and choices and choices[0].get('text'):
                first = (time.perf_counter() - t0) * 1000
        return first

    def create_batch(self, lines):
        body = '\n'.join(json.dumps({
            'custom_id': f'r{i}', 'method': 'POST', 'url': '/v1/completions',
            'body': {'model': SERVED, 'prompt': prompt(i, self.o['prompt-tokens']),
                     'max_tokens': self.o['output-tokens'], 'ignore_eos': True, 'seed': i}})
            for i in range(lines))
        f = self.c.upload_batch_file(body.encode())
        return self.c.call('POST', '/v1/batches', {'input_file_id': f['id'], 'endpoint': '/v1/completions',
                                                   'completion_window': '24h'})

    def retrieve(self, batch_id):
        return self.c.call('GET', f'/v1/batches/{batch_id}')

    def poll(self, batch_id, interval_s, done):
        """Retrieves the batch every interval_s until done(batch); fails on a failed or expired
        batch, or on one whose status and counts have not moved for STALL_LIMIT_S."""
        last, moved = None, time.monotonic()
        while True:
            b = self.retrieve(batch_id)
            if b['status'] in ('failed', 'expired'):
                raise BenchError(f'batch {batch_id} {b["status"]}: request_counts '
                                 f'{json.dumps(b.get("request_counts"))}, errors {json.dumps(b.get("errors"))}')
            if done(b):
                return b
            state = (b['status'], json.dumps(b.get('request_counts'), sort_keys=True))
            if state != last:
                last, moved = state, time.monotonic()
            elif time.monotonic() - moved > STALL_LIMIT_S:
                raise BenchError(f'batch {batch_id} made no progress for {STALL_LIMIT_S} s: {json.dumps(b)}')
            time.sleep(interval_s)

    def batch_alone(self):
        t0 = time.perf_counter()
        created = self.create_batch(self.o['throughput-lines'])
        b = self.poll(created['id'], 0.02, lambda b: b['status'] in TERMINAL)
        wall = time.perf_counter() - t0
        if b['status'] != 'completed':
            raise BenchError(f'batch {b["id"]} ended {b["status"]}')
        counts = b['request_counts']
        if counts.get('failed'):
            first = ''
            if b.get('error_file_id'):
                first = self.c.call('GET', f'/v1/files/{b["error_file_id"]}/content', raw=True) \
                    .decode('utf-8', 'replace').split('\n', 1)[0]
            raise BenchError(f'batch {b["id"]}: {counts["failed"]} of {counts["total"]} lines failed; '
                             f'the first: {first}')
        text = self.c.call('GET', f'/v1/files/{b["output_file_id"]}/content', raw=True).decode()
        tokens = 0
        for line in text.split('\n'):
            if line:
                tokens += json.loads(line)['response']['body']['usage']['completion_tokens']
        # in_progress_at and finalizing_at are whole seconds: the wall clock from create to
        # completed is the figure, the running phase alone is shown beside it.
        running = max(b['finalizing_at'] - b['in_progress_at'], 1)
        return {'status': b['status'], 'completed': counts['completed'], 'tokens': tokens, 'seconds': wall,
                'tok_per_s': tokens / wall, 'running_tok_per_s': tokens / running}

    def bench_serve(self):
        out = os.path.join(self.home, 'bench.json')
        o = self.o
        r = subprocess.run([o['kiln'], 'bench', 'serve', '--url', self.base, '--model', SERVED,
                            '--endpoint', 'completions', '--concurrency', str(o['concurrency']),
                            '--num-requests', str(o['throughput-lines']),
                            '--prompt-tokens', str(o['prompt-tokens']), '--output-tokens', str(o['output-tokens']),
                            '--no-stream', '--quiet', '--json-out', out],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f'kiln bench serve failed ({r.returncode}): {r.stderr}')
        with open(out, encoding='utf-8') as f:
            j = json.load(f)['results']
        return {'tok_per_s': j['output_throughput'], 'seconds': j['duration_s'], 'completed': j['completed']}

    def priority(self):
        idle = self.ttfts(self.o['ttft-requests'])
        created = self.create_batch(self.o['priority-lines'])
        self.poll(created['id'], 0.05, lambda b: b['request_counts']['completed'] > 0 or b['status'] in TERMINAL)
        busy = self.ttfts(self.o['ttft-requests'])
        during = self.retrieve(created['id'])
        if during['status'] in TERMINAL:
            print(f'{PROG}: warning: the {self.o["priority-lines"]}-line batch ended ({during["status"]}) before '
                  'the TTFT measurement did; raise --priority-lines', file=sys.stderr)
        else:
            try:
                self.c.call('POST', f'/v1/batches/{created["id"]}/cancel')
            except BenchError:
                if self.retrieve(created['id'])['status'] not in TERMINAL:
                    raise
            self.poll(created['id'], 0.1, lambda b: b['status'] in ('cancelled', 'completed'))
        return {'idle': idle, 'busy': busy, 'ratio_p50': div(busy['p50'], idle['p50']),
                'lines_done_while_measuring': during['request_counts']['completed']}


def div(a, b):
    return a / b if b else math.nan


def fixed(x, digits):
    """Number.prototype.toFixed: the exact value, halves rounded up, NaN as 'NaN'."""
    if not math.isfinite(x):
        return 'NaN' if math.isnan(x) else ('Infinity' if x > 0 else '-Infinity')
    q = decimal.Decimal(1).scaleb(-digits)
    return str(decimal.Decimal(x).quantize(q, rounding=decimal.ROUND_HALF_UP))


def finite(v):
    """As JSON.stringify writes numbers: NaN and infinities as null, whole numbers without '.0'."""
    if isinstance(v, float):
        return None if not math.isfinite(v) else int(v) if v.is_integer() else v
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def report(opts, rounds):
    lines = [f'Batch against interactive work: {opts["model"]}, --batch-concurrency {opts["concurrency"]}, '
             f'{opts["prompt-tokens"]}-word prompts, {opts["output-tokens"]} output tokens', '',
             '| round | bench serve (tok/s) | batch alone (tok/s) | batch / bench serve | TTFT idle p50 / p90 (ms) | '
             'TTFT with batch p50 / p90 (ms) | ratio p50 |',
             '|---:|---:|---:|---:|---|---|---:|']
    for i, r in enumerate(rounds):
        p = r['priority']
        lines.append(f'| {i + 1} | {fixed(r["bench_serve"]["tok_per_s"], 1)} | {fixed(r["batch"]["tok_per_s"], 1)} | '
                     f'{fixed(100 * r["share"], 0)}% | {fixed(p["idle"]["p50"], 1)} / {fixed(p["idle"]["p90"], 1)} | '
                     f'{fixed(p["busy"]["p50"], 1)} / {fixed(p["busy"]["p90"], 1)} | {fixed(p["ratio_p50"], 2)}x |')
    return '\n'.join(lines)


def run(opts, home):
    server = Server(opts['kiln'], ['--model', opts['model'], '--served-model-name', SERVED, '--no-access-log',
                                   '--batch-concurrency', str(opts['concurrency']),
                                   *shlex.split(opts['serve-args'])], {'KILN_HOME': home})
    try:
        server.wait_ready()
        base = f'http://127.0.0.1:{server.port}'
        bench = Bench(opts, Client(server.port), home, base)
        try:
            bench.ttfts(3)  # warm-up
            rounds = []
            for _ in range(opts['rounds']):
                serve = bench.bench_serve()
                batch = bench.batch_alone()
                prio = bench.priority()
                rounds.append({'bench_serve': serve, 'batch': batch,
                               'share': div(batch['tok_per_s'], serve['tok_per_s']), 'priority': prio})
        except BenchError as e:
            if server.proc.poll() is not None:
                raise BenchError(f'{e}\nkiln serve exited with {server.proc.returncode}:\n{server.log()[-8000:]}') \
                    from None
            raise
        if bench.empty_streams:
            print(f'{PROG}: warning: {bench.empty_streams} streamed completions had no text; their TTFT counts '
                  'as 0 ms', file=sys.stderr)
        return rounds
    finally:
        server.stop()


def main(argv):
    try:
        opts, json_out = parse_args(argv)
    except BenchError as e:
        print(f'{PROG}: {e}', file=sys.stderr)
        return 2
    # SIGTERM and SIGHUP unwind like Ctrl-C does, so that the finally blocks stop the server and
    # remove the temporary home.
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda n, _: sys.exit(128 + n))
    home = tempfile.mkdtemp(prefix='kiln_batch_bench_')
    try:
        rounds = run(opts, home)
    except BenchError as e:
        print(f'{PROG}: {e}', file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(report(opts, rounds))
    print('')
    line = json.dumps(finite({'settings': opts, 'rounds': rounds}), separators=(',', ':'), allow_nan=False)
    print(line)
    if json_out:
        with open(json_out, 'w', encoding='utf-8') as f:
            f.write(line + '\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        sys.exit(130)

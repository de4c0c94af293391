// `POST /v1/admin/models/pull` {"model": "ORG/NAME", "revision"?: "REV"}: a server-sent stream of
// named events that ends with `done` or `error` (docs/pull.md): `resolved` {total_bytes,
// present_bytes}, `progress` {done_bytes, total_bytes, files_done, files_total,
// bytes_per_second}, `file`, `retry`, then `done` {commit, snapshot, downloaded_bytes, servable}
// or `error` {error: {message}}. Everything that knows the events' shape is in this file, so that
// a change of the stream is a change here only. The reader is lenient: the end may also come as a
// "status"/"type" field or the OpenAI-style `[DONE]`, and unknown events are skipped.
import { errorOf, request } from './api';
import { readSse } from './sse';

export type PullUpdate =
  | { kind: 'progress'; done: number; total: number; files?: string; bytesPerSecond?: number }
  | { kind: 'done'; message?: string }
  | { kind: 'error'; message: string };

function num(o: Record<string, unknown>, names: string[]): number | undefined {
  for (const n of names) {
    const v = o[n];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

// One event of the stream as an update; undefined for events the page has nothing to show for.
export function parsePullEvent(event: string, data: string): PullUpdate | undefined {
  if (data.trim() === '[DONE]') return { kind: 'done' };
  let o: Record<string, unknown> = {};
  try {
    const v = JSON.parse(data);
    if (v && typeof v === 'object') o = v as Record<string, unknown>;
  } catch {
    if (event === 'error') return { kind: 'error', message: data };
    return undefined;
  }
  const kind = event !== 'message' ? event : String(o.status ?? o.type ?? 'message');
  const err = o.error as { message?: string } | string | undefined;
  if (kind === 'error' || kind === 'failed' || err) {
    const message = typeof err === 'string' ? err : err?.message ?? String(o.message ?? 'the pull failed');
    return { kind: 'error', message };
  }
  if (kind === 'done' || kind === 'completed' || kind === 'success') {
    // A pull into a cache the server does not scan (--no-hf-cache, --model) is not servable.
    const message = o.servable === false ? 'downloaded, but this server does not serve the Hugging Face cache' : undefined;
    return { kind: 'done', message };
  }
  const done = num(o, ['done_bytes', 'present_bytes', 'bytes_done', 'downloaded_bytes']);
  const total = num(o, ['total_bytes', 'bytes_total']);
  if (done === undefined) return undefined;
  const filesDone = num(o, ['files_done']);
  const filesTotal = num(o, ['files_total']);
  return {
    kind: 'progress',
    done,
    total: total ?? 0,
    files: filesDone !== undefined && filesTotal !== undefined ? `${filesDone} of ${filesTotal} files` : undefined,
    bytesPerSecond: num(o, ['bytes_per_second']),
  };
}

// Starts a pull and calls `on` with each update; the last is done or error. A server without the
// pull endpoint (404) gets an error that says so.
export async function pullModel(model: string, // ORG/NAME or ORG/NAME@REVISION
                                 on: (u: PullUpdate) => void, signal?: AbortSignal): Promise<void> {
  const at = model.lastIndexOf('@');
  const body = at > 0 ? { model: model.slice(0, at), revision: model.slice(at + 1) } : { model };
  const res = await request('/v1/admin/models/pull', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { Accept: 'text/event-stream' },
    signal,
  });
  if (res.status === 404) {
    const e = await errorOf(res);
    const noRoute = e.code === 'unknown_url' || e.code === undefined;
    on({ kind: 'error', message: noRoute ? 'This server cannot pull models (it has no /v1/admin/models/pull): update kiln, or run `kiln pull` on its host.' : e.message });
    return;
  }
  if (!res.ok) {
    on({ kind: 'error', message: (await errorOf(res)).message });
    return;
  }
  for await (const ev of readSse(res, signal)) {
    const u = parsePullEvent(ev.event, ev.data);
    if (!u) continue;
    on(u);
    if (u.kind !== 'progress') return;
  }
  on({ kind: 'error', message: 'the server ended the stream before the pull finished' });
}

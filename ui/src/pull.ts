// `POST /v1/admin/models/pull` {"model": "ORG/NAME[@REV]"}: a server-sent stream of progress that
// ends with done or error. Everything that knows the events' shape is in this file, so that a
// change of the stream's fields is a change here only. The reader is lenient: it takes the byte
// counts under the names below, and the end either as an `event:` name, a "status"/"type" field,
// or the OpenAI-style `[DONE]`.
import { errorOf, request } from './api';
import { readSse } from './sse';

export type PullUpdate =
  | { kind: 'progress'; done: number; total: number; file?: string }
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
  const kind = String(o.status ?? o.type ?? o.event ?? event);
  const err = o.error as { message?: string } | string | undefined;
  if (kind === 'error' || kind === 'failed' || err) {
    const message = typeof err === 'string' ? err : err?.message ?? String(o.message ?? 'the pull failed');
    return { kind: 'error', message };
  }
  if (kind === 'done' || kind === 'completed' || kind === 'success') {
    return { kind: 'done', message: typeof o.message === 'string' ? o.message : undefined };
  }
  const done = num(o, ['bytes_done', 'downloaded_bytes', 'completed', 'downloaded', 'bytes']);
  const total = num(o, ['bytes_total', 'total_bytes', 'total', 'size']);
  if (done === undefined) return undefined;
  return { kind: 'progress', done, total: total ?? 0, file: typeof o.file === 'string' ? o.file : undefined };
}

// Starts a pull and calls `on` with each update; the last is done or error. A server without the
// pull endpoint (404) gets an error that says so.
export async function pullModel(model: string, on: (u: PullUpdate) => void, signal?: AbortSignal): Promise<void> {
  const res = await request('/v1/admin/models/pull', {
    method: 'POST',
    body: JSON.stringify({ model }),
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

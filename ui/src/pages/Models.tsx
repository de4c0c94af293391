// Models: every servable model with its state and memory against the pool's budget; load,
// unload, pin; pull a model from the Hub. Calls GET /v1/admin/models, POST
// /v1/admin/models/{id}/load|unload and POST /v1/admin/models/pull.
import { useRef, useState } from 'preact/hooks';
import { ApiError, getJson, modelPath, postJson } from '../api';
import { bytes } from '../format';
import { usePoll } from '../poll';
import { pullModel, PullUpdate } from '../pull';

interface ModelStatus {
  id: string;
  state: 'unloaded' | 'loading' | 'ready' | 'unloading' | 'failed';
  source: string;
  dir: string;
  pinned: boolean;
  memory_bytes: number;
  memory: { weights_bytes: number; kv_cache_bytes: number; workspace_bytes: number; estimated_bytes: number };
  in_flight: number;
  progress?: { phase: string; fraction: number };
  error?: string;
  retry_in_seconds?: number;
}

interface PoolList {
  device: string;
  budget_bytes: number;
  used_bytes: number;
  max_loaded_models: number;
  loaded: number;
  data: ModelStatus[];
}

function pct(n: number, of: number): string {
  return `${of > 0 ? Math.min(100, (100 * n) / of) : 0}%`;
}

function MemoryBar({ m, budget }: { m: ModelStatus; budget: number }) {
  const loaded = m.memory_bytes > 0;
  const shown = loaded ? m.memory_bytes : m.memory.estimated_bytes;
  const title = loaded
    ? `weights ${bytes(m.memory.weights_bytes)}, KV cache ${bytes(m.memory.kv_cache_bytes)}, workspace ${bytes(m.memory.workspace_bytes)}`
    : `about ${bytes(m.memory.estimated_bytes)} once loaded`;
  return (
    <div class="memory" title={title}>
      <div class="bar">
        <div class={loaded ? 'fill' : 'fill estimate'} style={{ width: pct(shown, budget) }} />
      </div>
      <span class="muted">{loaded ? bytes(m.memory_bytes) : `~${bytes(m.memory.estimated_bytes)}`}</span>
    </div>
  );
}

function StateCell({ m }: { m: ModelStatus }) {
  return (
    <div>
      <span class={`state ${m.state}`} data-state={m.state}>{m.state}</span>
      {m.pinned && <span class="tag">pinned</span>}
      {m.state === 'loading' && m.progress && (
        <div class="bar small" title={m.progress.phase}>
          <div class="fill" style={{ width: pct(m.progress.fraction, 1) }} />
        </div>
      )}
      {m.state === 'loading' && m.progress && <div class="muted">{m.progress.phase} {Math.round(m.progress.fraction * 100)}%</div>}
      {m.error && <div class="error-text">{m.error}{m.retry_in_seconds ? ` (retry in ${m.retry_in_seconds}s)` : ''}</div>}
    </div>
  );
}

function PullForm({ onDone }: { onDone: () => void }) {
  const [model, setModel] = useState('');
  const [update, setUpdate] = useState<PullUpdate | null>(null);
  const [running, setRunning] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const start = async (e: Event) => {
    e.preventDefault();
    if (!model.trim()) return;
    abort.current = new AbortController();
    setRunning(true);
    setUpdate({ kind: 'progress', done: 0, total: 0 });
    try {
      await pullModel(model.trim(), (u) => setUpdate(u), abort.current.signal);
    } catch (err) {
      if ((err as Error).name !== 'AbortError') setUpdate({ kind: 'error', message: (err as Error).message });
      else setUpdate({ kind: 'error', message: 'stopped' });
    }
    setRunning(false);
    onDone();
  };
  return (
    <form class="pull" onSubmit={start}>
      <h2>Pull a model</h2>
      <div class="row">
        <input name="pull-model" placeholder="ORG/NAME or ORG/NAME@REVISION" value={model} onInput={(e) => setModel(e.currentTarget.value)} />
        {running ? (
          <button type="button" class="secondary" onClick={() => abort.current?.abort()}>Stop</button>
        ) : (
          <button type="submit">Pull</button>
        )}
      </div>
      {update?.kind === 'progress' && (
        <div class="pull-progress" data-testid="pull-progress">
          <div class="bar"><div class="fill" style={{ width: pct(update.done, update.total) }} /></div>
          <span class="muted">
            {bytes(update.done)}{update.total ? ` of ${bytes(update.total)}` : ''}
            {update.bytesPerSecond ? ` · ${bytes(update.bytesPerSecond)}/s` : ''}{update.files ? ` · ${update.files}` : ''}
          </span>
        </div>
      )}
      {update?.kind === 'done' && <p class="ok-text" data-testid="pull-done">Pulled {model}{update.message ? `: ${update.message}` : ''}.</p>}
      {update?.kind === 'error' && <p class="error-text" data-testid="pull-error">{update.message}</p>}
    </form>
  );
}

export function ModelsPage() {
  const [pool, setPool] = useState<PoolList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<Record<string, string>>({});
  const refresh = async () => {
    try {
      setPool(await getJson<PoolList>('/v1/admin/models'));
      setError(null);
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  // Faster while a model loads, so that its progress moves.
  usePoll(refresh, () => (pool?.data.some((m) => m.state === 'loading' || m.state === 'unloading') || Object.keys(busy).length ? 500 : 3000));

  const act = async (m: ModelStatus, action: 'load' | 'unload' | 'pin' | 'unpin') => {
    setBusy((b) => ({ ...b, [m.id]: action }));
    setError(null);
    try {
      const path = `/v1/admin/models/${modelPath(m.id)}/${action === 'unload' ? 'unload' : 'load'}`;
      const body = action === 'pin' ? { pinned: true } : action === 'unpin' ? { pinned: false } : {};
      const done = postJson(path, body);
      setTimeout(refresh, 100);  // the load answers once it is done; show it loading meanwhile
      await done;
    } catch (e) {
      setError(`${action} ${m.id}: ${(e as ApiError).message}`);
    }
    setBusy(({ [m.id]: _, ...rest }) => rest);
    refresh();
  };

  const budget = pool?.budget_bytes ?? 0;
  return (
    <section>
      <h1>Models</h1>
      {error && <p class="error-text" data-testid="models-error">{error}</p>}
      {pool && (
        <div class="budget">
          <div class="bar big" title="memory used by loaded models, against the pool's budget">
            {pool.data.filter((m) => m.memory_bytes > 0).map((m) => (
              <div class="fill seg" style={{ width: pct(m.memory_bytes, budget) }} title={`${m.id}: ${bytes(m.memory_bytes)}`} />
            ))}
          </div>
          <span>
            {bytes(pool.used_bytes)} of {bytes(budget)} on {pool.device} · {pool.loaded} loaded
            {pool.max_loaded_models > 0 ? ` (at most ${pool.max_loaded_models})` : ''}
          </span>
        </div>
      )}
      {pool && (
        <table class="models">
          <thead>
            <tr><th>Model</th><th>State</th><th>Memory</th><th>In flight</th><th /></tr>
          </thead>
          <tbody>
            {pool.data.map((m) => (
              <tr data-model={m.id}>
                <td>
                  <div class="model-id">{m.id}</div>
                  <div class="muted small-text" title={m.dir}>{m.source}</div>
                </td>
                <td><StateCell m={m} /></td>
                <td><MemoryBar m={m} budget={budget} /></td>
                <td>{m.in_flight}</td>
                <td class="actions">
                  {(m.state === 'unloaded' || m.state === 'failed') && (
                    <button disabled={!!busy[m.id]} onClick={() => act(m, 'load')}>Load</button>
                  )}
                  {(m.state === 'ready' || m.state === 'loading') && (
                    <button class="secondary" disabled={!!busy[m.id] && busy[m.id] !== 'load'} onClick={() => act(m, 'unload')}>Unload</button>
                  )}
                  <button class="secondary" disabled={!!busy[m.id]} onClick={() => act(m, m.pinned ? 'unpin' : 'pin')}>
                    {m.pinned ? 'Unpin' : 'Pin'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pool && pool.data.length === 0 && <p class="muted">No servable models.</p>}
      <PullForm onDone={refresh} />
    </section>
  );
}

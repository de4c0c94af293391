// Live: requests running and queued per model, tokens generated per second over the last five
// minutes, and errors, from GET /metrics (read every two seconds; the history lives in the page).
import { useRef, useState } from 'preact/hooks';
import { request } from '../api';
import { parseMetrics, Sample, sumBy } from '../prom';
import { usePoll } from '../poll';

const EVERY_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;

interface Point {
  t: number;
  perModel: Map<string, number>; // tokens/s since the previous read
}

interface Snapshot {
  t: number;
  tokens: Map<string, number>;
}

interface PerModel {
  running: number;
  waiting: number;
  queued: number;
}

function Plot({ points }: { points: Point[] }) {
  const w = 720;
  const h = 160;
  const now = points.length ? points[points.length - 1].t : Date.now();
  const totals = points.map((p) => [...p.perModel.values()].reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const xy = points.map((p, i) => `${(w * (1 - (now - p.t) / WINDOW_MS)).toFixed(1)},${(h - (h * totals[i]) / max).toFixed(1)}`);
  return (
    <div class="plot-wrap">
      <svg class="plot" viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img" aria-label="tokens per second">
        <line x1="0" y1={h - 0.5} x2={w} y2={h - 0.5} class="axis" />
        {xy.length > 1 && <polyline points={xy.join(' ')} class="line" />}
      </svg>
      <span class="label top">{max.toFixed(1)} tokens/s</span>
      <span class="label left">−5 min</span>
      <span class="label right">now</span>
    </div>
  );
}

export function LivePage() {
  const [models, setModels] = useState<Map<string, PerModel>>(new Map());
  const [points, setPoints] = useState<Point[]>([]);
  const [errors, setErrors] = useState<{ key: string; count: number; since: number }[]>([]);
  const [failed, setFailed] = useState<string | null>(null);
  const last = useRef<Snapshot | null>(null);
  const firstErrors = useRef<Map<string, number> | null>(null);

  usePoll(async () => {
    const res = await request('/metrics');
    if (!res.ok) {
      setFailed(`/metrics answered ${res.status}`);
      return;
    }
    setFailed(null);
    const s: Sample[] = parseMetrics(await res.text());
    const t = Date.now();
    const running = sumBy(s, 'kiln_running_sequences', 'model');
    const waiting = sumBy(s, 'kiln_waiting_sequences', 'model');
    const queued = sumBy(s, 'kiln_queue_depth', 'model');
    const m = new Map<string, PerModel>();
    for (const id of new Set([...running.keys(), ...waiting.keys(), ...queued.keys()])) {
      m.set(id, { running: running.get(id) ?? 0, waiting: waiting.get(id) ?? 0, queued: queued.get(id) ?? 0 });
    }
    setModels(m);

    const tokens = sumBy(s, 'kiln_generation_tokens_total', 'model');
    const prev = last.current;
    if (prev) {
      const dt = (t - prev.t) / 1000;
      const perModel = new Map<string, number>();
      for (const [id, v] of tokens) perModel.set(id, Math.max(0, v - (prev.tokens.get(id) ?? 0)) / dt);
      setPoints((ps) => [...ps.filter((p) => t - p.t <= WINDOW_MS), { t, perModel }]);
    }
    last.current = { t, tokens };

    // Errors: answers of 4xx and 5xx by route and status, counted from when the page opened.
    const errs = new Map<string, number>();
    for (const x of s) {
      if (x.name !== 'kiln_http_requests_total') continue;
      const code = Number(x.labels.status);
      if (!(code >= 400) || x.labels.route === 'ui') continue;
      const key = `${x.labels.status} ${x.labels.method} ${x.labels.route}`;
      errs.set(key, (errs.get(key) ?? 0) + x.value);
    }
    if (!firstErrors.current) firstErrors.current = errs;
    const base = firstErrors.current;
    setErrors([...errs].map(([key, count]) => ({ key, count, since: count - (base.get(key) ?? 0) }))
      .sort((a, b) => b.since - a.since || b.count - a.count));
  }, EVERY_MS);

  const latest = points.length ? points[points.length - 1] : null;
  return (
    <section>
      <h1>Live</h1>
      {failed && <p class="error-text">{failed}</p>}
      <h2>Requests per model</h2>
      <table data-testid="live-models">
        <thead><tr><th>Model</th><th>Running</th><th>Waiting</th><th>Queued</th><th>Tokens/s</th></tr></thead>
        <tbody>
          {[...models].map(([id, v]) => (
            <tr data-model={id}>
              <td>{id}</td><td>{v.running}</td><td>{v.waiting}</td><td>{v.queued}</td>
              <td>{latest?.perModel.get(id)?.toFixed(1) ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {models.size === 0 && <p class="muted">No model is loaded.</p>}
      <h2>Tokens generated per second</h2>
      <Plot points={points} />
      <h2>Errors</h2>
      {errors.length === 0 ? <p class="muted">No error answered since the server started.</p> : (
        <table>
          <thead><tr><th>Status, method, route</th><th>Since this page opened</th><th>Since the server started</th></tr></thead>
          <tbody>{errors.map((e) => <tr><td>{e.key}</td><td>{e.since}</td><td>{e.count}</td></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}

// Jobs: the job list with filters (GET /v1/jobs?status=&model=&endpoint=&after=&limit=) and a
// job's details (GET /v1/jobs/{id}, DELETE to cancel one that has not finished).
import { useEffect, useState } from 'preact/hooks';
import { ApiError, errorOf, getJson, request } from '../api';
import { ms, time } from '../format';
import { Link, navigate } from '../router';

interface Job {
  id: string;
  status: string;
  model: string;
  endpoint: string;
  client: string;
  node: string;
  stream: boolean;
  received_ms: number;
  started_ms: number | null;
  finished_ms: number | null;
  queue_wait_ms: number | null;
  ttft_ms: number | null;
  duration_ms: number | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  finish_reason: string | null;
  http_status: number | null;
  error: { code: string; message: string } | null;
  request_body?: string;
  response_body?: string;
}

const PAGE = 50;

function JobList() {
  const [status, setStatus] = useState('');
  const [model, setModel] = useState('');
  const [endpoint, setEndpoint] = useState('');
  const [jobs, setJobs] = useState<Job[]>([]);
  const [hasMore, setHasMore] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = async (after?: string) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (status) q.set('status', status);
    if (model.trim()) q.set('model', model.trim());
    if (endpoint.trim()) q.set('endpoint', endpoint.trim());
    if (after) q.set('after', after);
    try {
      const r = await getJson<{ data: Job[]; has_more: boolean }>(`/v1/jobs?${q}`);
      setJobs((j) => (after ? [...j, ...r.data] : r.data));
      setHasMore(r.has_more);
      setError(null);
    } catch (e) {
      setError((e as ApiError).message);
    }
  };
  useEffect(() => {
    load();
  }, [status]);

  return (
    <section>
      <h1>Jobs</h1>
      <form class="filters row" onSubmit={(e) => { e.preventDefault(); load(); }}>
        <select name="status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">any status</option>
          {['queued', 'running', 'completed', 'failed', 'cancelled'].map((s) => <option value={s}>{s}</option>)}
        </select>
        <input name="model" placeholder="model" value={model} onInput={(e) => setModel(e.currentTarget.value)} />
        <input name="endpoint" placeholder="endpoint, e.g. /v1/chat/completions" value={endpoint} onInput={(e) => setEndpoint(e.currentTarget.value)} />
        <button type="submit">Filter</button>
        <button type="button" class="secondary" onClick={() => load()}>Refresh</button>
      </form>
      {error && <p class="error-text">{error}</p>}
      <table class="jobs" data-testid="jobs">
        <thead>
          <tr><th>Job</th><th>Received</th><th>Status</th><th>Model</th><th>Endpoint</th><th>Tokens</th><th>TTFT</th><th>Duration</th></tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr data-job={j.id}>
              <td><Link href={`/jobs/${encodeURIComponent(j.id)}`}>{j.id}</Link></td>
              <td>{time(j.received_ms)}</td>
              <td><span class={`state ${j.status}`}>{j.status}</span></td>
              <td>{j.model}</td>
              <td>{j.endpoint}</td>
              <td>{j.usage.prompt_tokens} → {j.usage.completion_tokens}</td>
              <td>{ms(j.ttft_ms)}</td>
              <td>{ms(j.duration_ms)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {jobs.length === 0 && !error && <p class="muted">No job matches.</p>}
      {hasMore && <button class="secondary" onClick={() => load(jobs[jobs.length - 1]?.id)}>More</button>}
    </section>
  );
}

function JobDetail({ id }: { id: string }) {
  const [job, setJob] = useState<Job | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    getJson<Job>(`/v1/jobs/${encodeURIComponent(id)}`).then(setJob, (e: ApiError) => setError(e.message));
  useEffect(() => {
    load();
  }, [id]);
  const cancel = async () => {
    const res = await request(`/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (!res.ok) setError((await errorOf(res)).message);
    load();
  };
  const rows: [string, unknown][] = job
    ? [
        ['Status', job.status], ['Model', job.model], ['Endpoint', job.endpoint], ['Client', job.client], ['Node', job.node],
        ['Streamed', job.stream ? 'yes' : 'no'], ['Received', time(job.received_ms)], ['Queue wait', ms(job.queue_wait_ms)],
        ['Time to first token', ms(job.ttft_ms)], ['Duration', ms(job.duration_ms)],
        ['Tokens', `${job.usage.prompt_tokens} prompt, ${job.usage.completion_tokens} completion`],
        ['Finish reason', job.finish_reason ?? '—'], ['HTTP status', job.http_status ?? '—'],
        ['Error', job.error ? `${job.error.code}: ${job.error.message}` : '—'],
      ]
    : [];
  return (
    <section>
      <p><a href="/jobs" onClick={(e) => { e.preventDefault(); navigate('/jobs'); }}>← Jobs</a></p>
      <h1>Job <code>{id}</code></h1>
      {error && <p class="error-text">{error}</p>}
      {job && (
        <>
          <table class="detail" data-testid="job-detail">
            <tbody>{rows.map(([k, v]) => <tr><th>{k}</th><td>{String(v)}</td></tr>)}</tbody>
          </table>
          {(job.status === 'queued' || job.status === 'running') && <button onClick={cancel}>Cancel</button>}
          {job.request_body && (<><h2>Request</h2><pre class="body">{job.request_body}</pre></>)}
          {job.response_body && (<><h2>Response</h2><pre class="body">{job.response_body}</pre></>)}
          {!job.request_body && <p class="muted">Bodies are kept only with --store-bodies.</p>}
        </>
      )}
    </section>
  );
}

export function JobsPage({ path, enabled }: { path: string; enabled: boolean }) {
  if (!enabled) return <p class="muted">This server keeps no jobs (--database off).</p>;
  const id = path.startsWith('/jobs/') ? decodeURIComponent(path.slice(6)) : '';
  return id ? <JobDetail id={id} /> : <JobList />;
}

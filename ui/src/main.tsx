// The kiln web UI: a page per view, picked from the URL (the server answers index.html for each).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getKeys, onUnauthorized, request, setKeys } from './api';
import { navigate, Link, usePath } from './router';
import { ModelsPage } from './pages/Models';
import { PlaygroundPage } from './pages/Playground';
import { LivePage } from './pages/Live';
import { JobsPage } from './pages/Jobs';
import './style.css';

function KeyDialog({ onClose }: { onClose: () => void }) {
  const k = getKeys();
  const [api, setApi] = useState(k.api);
  const [admin, setAdmin] = useState(k.admin);
  return (
    <div class="dialog" role="dialog" aria-label="API key">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setKeys(api.trim(), admin.trim());
          onClose();
        }}
      >
        <h2>This server needs a key</h2>
        <p class="muted">Kept in this browser only and sent as <code>Authorization: Bearer</code> with each API call.</p>
        <label>
          API key
          <input name="api-key" type="password" autocomplete="off" value={api} onInput={(e) => setApi(e.currentTarget.value)} />
        </label>
        <label>
          Admin key <span class="muted">(if the server has --admin-key: models admin and jobs)</span>
          <input name="admin-key" type="password" autocomplete="off" value={admin} onInput={(e) => setAdmin(e.currentTarget.value)} />
        </label>
        <div class="row">
          <button type="submit">Save</button>
          <button type="button" class="secondary" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </div>
  );
}

function App() {
  const path = usePath();
  const [askKey, setAskKey] = useState(false);
  const [keysVersion, setKeysVersion] = useState(0);
  const [jobsOn, setJobsOn] = useState(true);

  useEffect(() => onUnauthorized(() => setAskKey(true)), []);
  useEffect(() => {
    const f = () => setKeysVersion((v) => v + 1);
    window.addEventListener('kiln-keys', f);
    return () => window.removeEventListener('kiln-keys', f);
  }, []);
  // The Jobs page shows only where the server keeps jobs (--database not off).
  useEffect(() => {
    request('/v1/jobs?limit=1').then(async (r) => {
      if (r.status !== 404) return setJobsOn(true);
      const body = await r.json().catch(() => ({}));
      setJobsOn(body?.error?.code !== 'jobs_disabled' && body?.error?.code !== 'unknown_url');
    }, () => undefined);
  }, [keysVersion]);

  let page;
  if (path === '/' || path === '/models') page = <ModelsPage />;
  else if (path === '/playground') page = <PlaygroundPage />;
  else if (path === '/live') page = <LivePage />;
  else if (path.startsWith('/jobs')) page = <JobsPage path={path} enabled={jobsOn} />;
  else page = <p>Nothing here. <a href="/" onClick={(e) => { e.preventDefault(); navigate('/'); }}>Models</a></p>;

  const tabs: [string, string][] = [['/models', 'Models'], ['/playground', 'Playground'], ['/live', 'Live']];
  if (jobsOn) tabs.push(['/jobs', 'Jobs']);
  const current = path === '/' ? '/models' : '/' + path.split('/')[1];
  return (
    <>
      <header>
        <span class="brand">kiln</span>
        <nav>
          {tabs.map(([href, label]) => (
            <Link href={href} class={current === href ? 'active' : ''}>{label}</Link>
          ))}
        </nav>
        <button class="secondary small" onClick={() => setAskKey(true)}>Keys</button>
      </header>
      <main key={keysVersion}>{page}</main>
      {askKey && <KeyDialog onClose={() => setAskKey(false)} />}
    </>
  );
}

render(<App />, document.getElementById('app')!);

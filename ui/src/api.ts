// Calls to kiln's public API from the page. Keys live in the browser's localStorage and go out as
// Bearer tokens: the admin key (when one is set) on the routes that take it, the API key on the
// rest (docs/ui.md, "Authentication").

const API_KEY = 'kiln.apiKey';
const ADMIN_KEY = 'kiln.adminKey';

export function getKeys(): { api: string; admin: string } {
  return { api: localStorage.getItem(API_KEY) ?? '', admin: localStorage.getItem(ADMIN_KEY) ?? '' };
}

export function setKeys(api: string, admin: string): void {
  api ? localStorage.setItem(API_KEY, api) : localStorage.removeItem(API_KEY);
  admin ? localStorage.setItem(ADMIN_KEY, admin) : localStorage.removeItem(ADMIN_KEY);
  window.dispatchEvent(new Event('kiln-keys'));
}

// The routes the server checks against --admin-key when it is set (src/kiln/http/app.cpp).
function isAdminPath(path: string, method: string): boolean {
  const p = path.split('?')[0];
  if (p.startsWith('/v1/admin/') || p === '/v1/jobs' || p.startsWith('/v1/jobs/')) return true;
  if (p === '/v1/queue/stats' || p === '/v1/health/metrics' || p === '/v1/models/load') return true;
  if (!p.startsWith('/v1/models/')) return false;
  return method === 'DELETE' || p.endsWith('/info') || p.endsWith('/stats');
}

export class ApiError extends Error {
  constructor(public status: number, message: string, public code?: string) {
    super(message);
  }
}

// Listeners told when the server answers 401, so that the page can ask for a key.
const unauthorized = new Set<() => void>();
export function onUnauthorized(f: () => void): () => void {
  unauthorized.add(f);
  return () => unauthorized.delete(f);
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const keys = getKeys();
  const key = isAdminPath(path, method) && keys.admin ? keys.admin : keys.api;
  const headers = new Headers(init.headers);
  if (key) headers.set('Authorization', `Bearer ${key}`);
  if (init.body && !headers.has('Content-Type')) headers.set('Content-Type', 'application/json');
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) unauthorized.forEach((f) => f());
  return res;
}

// The error of a non-2xx answer: the OpenAI-style {"error": {"message", "code"}} when there is one.
export async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | undefined;
  try {
    const body = await res.json();
    if (body?.error?.message) message = body.error.message;
    code = body?.error?.code ?? undefined;
  } catch {
    // not JSON: the status line says it
  }
  return new ApiError(res.status, message, code);
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await request(path);
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const res = await request(path, { method: 'POST', body: JSON.stringify(body) });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

// Model ids may hold '/', which the admin routes take as is.
export function modelPath(id: string): string {
  return id.split('/').map(encodeURIComponent).join('/');
}

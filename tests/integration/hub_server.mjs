// A local server that speaks the Hugging Face Hub's HTTP layout, for the `kiln pull` tests:
//   GET /api/models/{org}/{name}/revision/{rev}[?blobs=true]  the model info (sha, siblings with
//                                                             size, blobId and lfs.sha256)
//   GET /{org}/{name}/resolve/{rev}/{path}    a git file's bytes, or a 302 to /cdn/{sha256} for an
//                                             LFS file (as the Hub redirects to its CDN)
//   GET /cdn/{sha256}                          the bytes, with Range support
// It serves a model directory's files (and a few files kiln must not fetch), checks a bearer
// token when given one, logs every request, and can drop a connection part-way through a file,
// flip a byte of one, or hold a file back until the test lets it go.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function walk(dir, root = dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, root, out);
    else out.push(relative(root, p));
  }
  return out;
}

const gitSha1 = (buf) => createHash('sha1').update(`blob ${buf.length}\0`).update(buf).digest('hex');
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

// repos: { 'org/name': { dir, commit } }; token: the one bearer token accepted (none: any request).
export function startHub({ repos, token = null }) {
  const files = new Map();   // `${repo}/${path}` -> { path, data, lfs, sha256, blobId }
  const byHash = new Map();  // sha256 -> file
  const infos = new Map();   // repo -> { commit, paths }
  for (const [repo, { dir, commit }] of Object.entries(repos)) {
    const paths = walk(dir);
    // Files kiln must not fetch: docs, other weight formats, weights its loader does not open.
    const extra = { 'README.md': Buffer.from('# a test model\n'), 'pytorch_model.bin': Buffer.alloc(4096, 7),
                    'consolidated.safetensors': Buffer.alloc(8192, 3) };
    for (const p of [...paths, ...Object.keys(extra)]) {
      const data = extra[p] ?? readFileSync(join(dir, p));
      const lfs = p.endsWith('.safetensors') || p.endsWith('.bin');
      const f = { path: p, data, lfs, sha256: sha256(data), blobId: gitSha1(data) };
      files.set(`${repo}/${p}`, f);
      if (lfs) byHash.set(f.sha256, f);
    }
    infos.set(repo, { commit, paths: [...paths, ...Object.keys(extra)] });
  }

  const requests = [];
  const drops = new Map();     // path -> { after, times }
  const corrupt = new Map();   // path -> byte offset
  const holds = new Map();     // path -> { promise, release }
  const waiters = [];          // { pred, resolve }

  function record(req) {
    const r = { method: req.method, url: req.url, authorization: req.headers.authorization ?? null,
                range: req.headers.range ?? null };
    requests.push(r);
    for (const w of [...waiters]) {
      if (w.pred(r)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(r); }
    }
  }

  function sendBytes(req, res, f, extraHeaders = {}) {
    let data = f.data;
    if (corrupt.has(f.path)) {
      data = Buffer.from(data);
      const at = corrupt.get(f.path);
      data[at] ^= 0xff;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const headers = { 'Accept-Ranges': 'bytes', ETag: `"${f.lfs ? f.sha256 : f.blobId}"`, ...extraHeaders };
    if (m) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.length}` });
        return res.end();
      }
      res.writeHead(206, { ...headers, 'Content-Length': data.length - start,
                           'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': data.length });
    }
    const body = data.subarray(start);
    const drop = drops.get(f.path);
    if (drop && drop.times > 0 && body.length > drop.after) {
      drop.times -= 1;
      // Part of the body, then the connection goes: the client sees a short transfer.
      res.write(body.subarray(0, drop.after), () => res.socket.destroy());
      return;
    }
    const hold = holds.get(f.path);
    if (hold) return hold.promise.then(() => res.end(body));
    res.end(body);
  }

  const server = createServer((req, res) => {
    record(req);
    const url = new URL(req.url, 'http://hub');
    const authorized = !token || req.headers.authorization === `Bearer ${token}`;
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const [repo, rev] = [m[1], decodeURIComponent(m[2])];
      const info = infos.get(repo);
      if (!authorized) { res.writeHead(401, { 'Content-Type': 'application/json' }); return res.end('{"error":"Invalid credentials in Authorization header"}'); }
      if (!info) { res.writeHead(404); return res.end('{"error":"Repository not found"}'); }
      if (rev !== 'main' && rev !== info.commit) { res.writeHead(404); return res.end('{"error":"Invalid rev id"}'); }
      const blobs = url.searchParams.get('blobs') === 'true';
      const siblings = info.paths.map((p) => {
        const f = files.get(`${repo}/${p}`);
        if (!blobs) return { rfilename: p };
        const s = { rfilename: p, size: f.data.length, blobId: f.blobId };
        if (f.lfs) s.lfs = { size: f.data.length, sha256: f.sha256, pointerSize: 134 };
        return s;
      });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify({ _id: 'x', id: repo, modelId: repo, sha: info.commit, private: false, siblings }));
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const [repo, rev, path] = [m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3])];
      const info = infos.get(repo);
      const f = files.get(`${repo}/${path}`);
      if (!authorized) { res.writeHead(401); return res.end('{"error":"Invalid credentials"}'); }
      if (!info || !f || (rev !== 'main' && rev !== info.commit)) { res.writeHead(404); return res.end('{"error":"Entry not found"}'); }
      const headers = { 'X-Repo-Commit': info.commit };
      if (!f.lfs) return sendBytes(req, res, f, headers);
      // The CDN is another host name (the API is asked at 127.0.0.1), as on the Hub, so that the
      // test sees that the token stays with the Hub.
      res.writeHead(302, { ...headers, Location: `http://localhost:${server.address().port}/cdn/${f.sha256}`,
                           'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': String(f.data.length) });
      return res.end();
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (m && byHash.has(m[1])) return sendBytes(req, res, byHash.get(m[1]));
    res.writeHead(404);
    res.end('not found');
  });

  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const port = server.address().port;
    resolve({
      url: `http://127.0.0.1:${port}`,
      requests,
      file: (repo, path) => files.get(`${repo}/${path}`),
      // The connection drops after `after` bytes of `path`'s body, the next `times` times it is sent.
      drop: (path, after, times = 1) => drops.set(path, { after, times }),
      corrupt: (path, offset) => corrupt.set(path, offset),
      clear: () => { drops.clear(); corrupt.clear(); },
      // `path`'s bytes wait until the returned function is called.
      hold: (path) => {
        let release;
        const promise = new Promise((r) => { release = r; });
        holds.set(path, { promise, release });
        return () => { holds.delete(path); release(); };
      },
      // Resolves with the first request from the `from`-th one logged on (already or later) that
      // `pred` accepts.
      waitFor: (pred, from = 0) => {
        const seen = requests.slice(from).find(pred);
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve) => waiters.push({ pred, resolve }));
      },
      close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
    });
  }));
}

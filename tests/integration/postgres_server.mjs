// A real PostgreSQL server for the Node end-to-end tests, as postgres_server.h does it for the
// C++ ones: initdb + pg_ctl from Debian's postgresql package, on a free port in a temporary
// directory, as `nobody` when run as root (initdb refuses root).
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

function binDir() {
  for (let v = 20; v >= 12; v--) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (fs.existsSync(`${dir}/initdb`)) return dir;
  }
  return null;
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Resolves with { url, stop() }, or null when no PostgreSQL server binaries are installed.
export async function startPostgres() {
  const bin = binDir();
  if (!bin) return null;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln_pg_'));
  fs.chmodSync(root, 0o777);
  const as = process.getuid && process.getuid() === 0 ? 'runuser -u nobody -- ' : '';
  const port = await freePort();
  const run = (cmd) => execSync(as + cmd, { stdio: 'ignore' });
  run(`${bin}/initdb -D ${root}/data -A trust -U kiln -E UTF8 --no-sync`);
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`;
  run(`${bin}/pg_ctl -D ${root}/data -o '${opts}' -l ${root}/server.log -w -t 60 start`);
  run(`${bin}/psql -h 127.0.0.1 -p ${port} -U kiln -d postgres -q -c 'CREATE DATABASE kiln'`);
  return {
    url: `postgresql://kiln@127.0.0.1:${port}/kiln`,
    stop() {
      try { run(`${bin}/pg_ctl -D ${root}/data -m fast -w -t 60 stop`); } catch { /* already stopped */ }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

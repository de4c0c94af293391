// Starting and stopping the real `kiln serve` from the Node end-to-end tests.
import { spawn } from 'node:child_process';

// Runs `binary serve --host 127.0.0.1 --port 0 ...args` and resolves once it says where it
// listens: { proc, port, log() }. Rejects if it exits first or takes more than a minute. `env`
// is added to this process's environment.
export function startServer(binary, args, env = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['serve', '--host', '127.0.0.1', '--port', '0', ...args],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let log = '';
    const timer = setTimeout(() => reject(new Error('kiln serve did not start:\n' + log)), 60000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, port: Number(m[1]), log: () => log });
      }
    });
    proc.on('exit', (code) => reject(new Error(`kiln serve exited with ${code}:\n${log}`)));
  });
}

// Sends SIGTERM and resolves with the exit code.
export function stopServer(server) {
  const exited = new Promise((resolve) => server.proc.on('exit', (code) => resolve(code)));
  server.proc.kill('SIGTERM');
  return exited;
}

// kill -9, and resolves once the process is gone.
export function killServer(server) {
  const exited = new Promise((resolve) => server.proc.on('exit', () => resolve()));
  server.proc.kill('SIGKILL');
  return exited;
}

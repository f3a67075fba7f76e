// Child processes of the end-to-end run: started with their stderr in a log file (and
// scanned for the line that says they are ready), stopped at the end. Readiness is a
// line the program prints, never a sleep.

import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

const running = new Set();

/**
 * Starts `cmd args`, logging stdout/stderr to `log`. `ready`: a RegExp a line of
 * output must match before the promise resolves (null: resolve at once).
 */
export function start(name, cmd, args, { log, env, ready = null, timeoutMs = 30000 } = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(log, { flags: 'a' });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let matched = ready === null;
  let lines = '';
  const p = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not print ${ready} within ${timeoutMs} ms (log: ${log})`)), timeoutMs);
    const scan = (chunk) => {
      out.write(chunk);
      if (matched) return;
      lines += chunk.toString();
      const m = lines.match(ready);
      if (m) {
        matched = true;
        clearTimeout(timer);
        resolve({ child, match: m });
      }
      if (lines.length > 1e6) lines = lines.slice(-1e5);
    };
    child.stdout.on('data', scan);
    child.stderr.on('data', scan);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`${name}: ${e.message}`)); });
    child.on('exit', (code, sig) => {
      out.end();
      if (!matched) { clearTimeout(timer); reject(new Error(`${name} exited (${code ?? sig}) before it was ready (log: ${log})`)); }
    });
    if (matched) { clearTimeout(timer); resolve({ child, match: null }); }
  });
  return p;
}

/** Runs a command to its end; resolves {code, stdout, stderr}. */
export function run(cmd, args, { env, input } = {}) {
  return new Promise((resolve, reject) => {
    // No stdin pipe unless there is input: a child that exits without reading it would
    // otherwise make our write fail (EPIPE).
    const stdin = input === undefined ? 'ignore' : 'pipe';
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('error', reject);
    // 'close', not 'exit': only then is all of stdout and stderr read.
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (child.stdin) {
      // The child may exit before it reads its input; what it did is in its exit code.
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

/** Stops one child (SIGTERM) and waits for its exit. */
export function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** Stops every child started here, in reverse order. */
export async function stopAll() {
  for (const c of [...running].reverse()) await stop(c);
}

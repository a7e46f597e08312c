// Runs a built service (services/<name>/dist/main.js) as a child process, the
// way `npm start` and production do, and reads its JSON log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './index';

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** The port it logged for `ops_listening` / `http_listening`. */
  port(): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startService(name: string, env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [path.resolve(__dirname, '../../../services', name, 'dist/main.js')], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ msg: 'non_json_stdout', line });
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // NOTE: 'close', not 'exit': 'exit' can fire while the last stdout lines are
  // still in the pipe, and tests read the shutdown log lines.
  // https://nodejs.org/api/child_process.html#event-close
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    name,
    child,
    logs,
    exited,
    port: async () => {
      // NOTE: generous: in a loaded CI run six services start at once on two cores.
      const line = await waitFor(() => logs.find((l) => l.msg === 'ops_listening' || l.msg === 'http_listening'), {
        timeoutMs: 120000,
        description: `${name} to listen (exit code ${child.exitCode}, last logs: ${JSON.stringify(logs.slice(-3))}, stderr: ${stderr.slice(-500)})`,
      });
      return Number(line.port);
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

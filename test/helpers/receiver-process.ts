// A receiver in its own process, for timing assertions: arrivals are stamped
// by a process that does nothing else, so a busy test process (jest, Kafka
// clients, polling) cannot bunch them up. Answers 200 to everything; GET
// /__requests returns what it recorded.
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Received } from './receiver';

const SERVER = `
const http = require('node:http');
const requests = [];
const server = http.createServer((req, res) => {
  const at = Date.now();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/__requests') { res.writeHead(200, { 'content-type': 'application/json' }); return res.end(JSON.stringify(requests)); }
    requests.push({ path: req.url, at, status: 200, headers: req.headers, body: chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : null });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

export class ReceiverProcess {
  private child: ChildProcess | null = null;
  url = '';

  async start(): Promise<this> {
    this.child = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    // A real destination runs on its own machine, its clock untouched by our load.
    // This one shares 2 cores with Kafka, the registry, Redis, jest and the
    // services: ahead of them in the scheduler, its arrival times stay close to
    // the wire's. Best effort: raising a priority needs the privilege to.
    try {
      os.setPriority(this.child.pid!, -10);
    } catch {
      // not permitted: the default priority
    }
    const port = await new Promise<number>((resolve, reject) => {
      this.child!.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()).port));
      this.child!.once('exit', (code) => reject(new Error(`receiver process exited with ${code}`)));
    });
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  async requests(path?: string): Promise<Received[]> {
    const all = (await (await fetch(`${this.url}/__requests`)).json()) as Received[];
    return path === undefined ? all : all.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child!.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

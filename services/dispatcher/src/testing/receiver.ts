// A local HTTP receiver standing in for destination APIs: records every
// request with its arrival time and answers per a script (status codes,
// Retry-After), over real HTTP.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request body as tests read it: whatever JSON the dispatcher sent (test code, like test/**, may use any). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;

export interface Received {
  method?: string;
  path: string;
  at: number;
  body: Body;
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** How the receiver answers a request: status, headers and (default `{ok}`) a JSON body, as a vendor's API would. */
export type Responder = (
  path: string,
  body: Body,
  nth: number,
  headers: http.IncomingHttpHeaders,
  method: string,
) => { status: number; headers?: Record<string, string>; body?: unknown };

export class Receiver {
  readonly requests: Received[] = [];
  private server: http.Server | null = null;
  private counts = new Map<string, number>();
  url = '';

  constructor(private readonly respond: Responder = () => ({ status: 200 })) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        const text = Buffer.concat(chunks).toString();
        let body: Body = null;
        try {
          body = text ? JSON.parse(text) : null;
        } catch {
          body = text; // not JSON: a vendor emulator refuses it with its own 400
        }
        const nth = (this.counts.get(path) ?? 0) + 1;
        this.counts.set(path, nth);
        const answer = this.respond(path, body, nth, req.headers, req.method ?? 'GET');
        this.requests.push({ method: req.method, path, at: Date.now(), body, status: answer.status, headers: req.headers });
        res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(JSON.stringify(answer.body ?? { ok: answer.status < 300 }));
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  /**
   * Resolves once nothing has arrived for `ms`: how a test checks that no
   * further call comes after the last one it expected (polled, no fixed sleep).
   */
  async quietFor(ms: number, timeoutMs = 60000): Promise<void> {
    const since = Date.now();
    const deadline = since + timeoutMs;
    for (;;) {
      const last = this.requests.length ? this.requests[this.requests.length - 1]!.at : since;
      if (Date.now() - Math.max(last, since) >= ms) return;
      if (Date.now() > deadline) throw new Error(`requests kept arriving for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  ok(path?: string): Received[] {
    return this.requests.filter((r) => r.status < 300 && (path === undefined || r.path === path));
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server?.closeAllConnections();
  }
}

/** The most requests that arrived within any window of `windowMs`. */
export function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

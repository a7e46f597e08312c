// /metrics, /healthz and /readyz for every service. Liveness and readiness are
// different questions: /healthz fails only when the process is stuck (the
// event loop does not answer, or a component reports itself wedged);
// /readyz checks dependencies (Kafka, Redis, registry) and may flap without
// the process being restarted.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '@engage/logging';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail?: string;
}

export type Check = () => Promise<CheckResult> | CheckResult;

export interface OpsHandlers {
  registry: Registry;
  /** Liveness: is anything wedged? Keep cheap and dependency-free. */
  liveness?: Check[];
  /** Readiness: can this process do its work right now? */
  readiness?: Check[];
}

const CHECK_TIMEOUT_MS = 2000;

async function runChecks(checks: Check[]): Promise<{ ok: boolean; checks: CheckResult[] }> {
  const results = await Promise.all(
    checks.map(async (check, i) => {
      try {
        const timeout = new Promise<CheckResult>((resolve) =>
          setTimeout(() => resolve({ name: `check_${i}`, ok: false, detail: 'timed out' }), CHECK_TIMEOUT_MS).unref(),
        );
        return await Promise.race([Promise.resolve(check()), timeout]);
      } catch (err) {
        return { name: `check_${i}`, ok: false, detail: (err as Error).message };
      }
    }),
  );
  return { ok: results.every((r) => r.ok), checks: results };
}

/**
 * Answers an ops request, or returns false when the path is not an ops path
 * (so services with their own HTTP API can mount these on the same server).
 */
export async function handleOpsRequest(req: http.IncomingMessage, res: http.ServerResponse, ops: OpsHandlers): Promise<boolean> {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET') return false;
  if (path === '/metrics') {
    res.writeHead(200, { 'content-type': ops.registry.contentType });
    res.end(await ops.registry.metrics());
    return true;
  }
  if (path === '/healthz' || path === '/readyz') {
    const result = await runChecks((path === '/healthz' ? ops.liveness : ops.readiness) ?? []);
    res.writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: result.ok ? 'ok' : 'unavailable', checks: result.checks }));
    return true;
  }
  return false;
}

/** A standalone HTTP server with only the ops endpoints (services without an API). */
export class OpsServer {
  private server: http.Server | null = null;

  constructor(
    private readonly config: { port: number; host?: string },
    private readonly deps: { ops: OpsHandlers; log: Logger },
  ) {}

  async start(): Promise<number> {
    const server = http.createServer((req, res) => {
      handleOpsRequest(req, res, this.deps.ops)
        .then((handled) => {
          if (!handled) {
            res.writeHead(404, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: 'not found' }));
          }
        })
        .catch((err) => {
          this.deps.log.error({ err }, 'ops_request_failed');
          if (!res.headersSent) res.writeHead(500);
          res.end();
        });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host ?? '127.0.0.1', () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }
}

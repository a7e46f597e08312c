// The HTTP shell of Segment's tracking API: read (and gunzip) the body within
// the route's limit, parse JSON, authenticate the write key, rate-limit the
// source, validate (segment-spec.ts), publish, answer. Ops endpoints share the
// server. Plain node:http rather than express: this is the hot path of the
// whole system, the API is a fixed set of POST routes, and the benchmark holds
// it to a bare express handler's throughput.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { Logger } from '@engage/logging';
import { handleOpsRequest, type OpsHandlers } from '@engage/observability';
import type { Counter, Histogram } from 'prom-client';
import { PublishError, QueueFullError, type PublishOutcome } from './events.publisher';
import { retryAfterSeconds, type RateDecision, type RateLimitSettings } from './rate-limiter';
import { authenticateSource, type SourceLookup } from './source-auth';
import {
  bodyLimitFor,
  normaliseRequest,
  parseJsonBody,
  ROUTES,
  tooLargeMessage,
  writeKeyFrom,
  type AcceptedEvent,
  type Envelope,
  type Route,
} from './segment-spec';

export type { SourceLookup } from './source-auth';

export interface TrackingServerConfig {
  port: number;
  host: string;
  /** Default per-source limit; a source's own `rateLimit` wins. */
  rateLimit: RateLimitSettings;
  /** On stop, how long requests in progress may take before their connections are cut, ms. */
  shutdownGraceMs: number;
}

export interface TrackingMetrics {
  requests: Counter<'route' | 'status'>;
  requestSeconds: Histogram<'route'>;
}

export interface TrackingDeps {
  sources: SourceLookup;
  limiter: { take(sourceId: string, limit: RateLimitSettings, now: number): Promise<RateDecision> };
  /** `bytes`: the request body's size, what the publisher's queue bound counts. */
  publisher: { publish(events: AcceptedEvent[], bytes?: number): Promise<PublishOutcome> };
  ops: OpsHandlers;
  log: Logger;
  newMessageId: () => string;
  now?: () => number;
  metrics?: TrackingMetrics;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const SUCCESS = JSON.stringify({ success: true });
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, content-type, content-encoding',
  'access-control-allow-methods': 'POST, OPTIONS',
};

export class TrackingServer {
  private server: http.Server | null = null;
  private stopping = false;

  constructor(
    private readonly config: TrackingServerConfig,
    private readonly deps: TrackingDeps,
  ) {}

  async start(): Promise<number> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 65_000; // longer than common load-balancer idle timeouts
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  /** Stops accepting; requests in progress finish (their events are published) before it resolves. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    // NOTE: close() waits for every connection to end, and keep-alive clients
    // would hold it open: busy connections are answered with Connection: close
    // (see handle()), idle ones are closed as they turn idle, and whatever is
    // left after the grace period is cut (its clients retry; dedupe absorbs it).
    this.stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    const grace = setTimeout(() => server.closeAllConnections(), this.config.shutdownGraceMs);
    try {
      await closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(grace);
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.stopping) res.setHeader('connection', 'close');
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = ROUTES[path];
    if (route === undefined) {
      handleOpsRequest(req, res, this.deps.ops).then(
        (handled) => handled || send(res, 404, { success: false, message: `no route ${req.method} ${path}` }),
        (err) => {
          this.deps.log.error({ err, path }, 'ops_request_failed');
          send(res, 500, { success: false, message: 'internal error' });
        },
      );
      return;
    }
    if (req.method === 'OPTIONS') return void res.writeHead(204, CORS).end();
    if (req.method !== 'POST')
      return void send(res, 405, { success: false, message: `${req.method} not allowed on ${path}: use POST` }, { allow: 'POST' });
    const started = this.deps.metrics ? process.hrtime.bigint() : 0n;
    this.track(route, req)
      .then((outcome) => {
        // The publisher waited for the other copies' writes to succeed (then these
        // are duplicates) or fail (then it wrote them); these were still going at
        // its deadline, and only the client's retry can settle them.
        if (outcome.inFlight > 0) {
          throw new HttpError(503, `${outcome.inFlight} event(s) with a messageId still being written by another request; retry`, {
            'retry-after': '1',
          });
        }
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': SUCCESS.length, ...CORS }).end(SUCCESS);
        return 200;
      })
      .catch((err) => {
        if (err instanceof HttpError) {
          // A body we stopped reading cannot be followed by another request on this connection.
          if (!req.complete) res.setHeader('connection', 'close');
          send(res, err.status, { success: false, message: err.message }, err.headers);
          return err.status;
        }
        if (err instanceof QueueFullError) {
          send(res, 503, { success: false, message: err.message }, { 'retry-after': String(err.retryAfterSeconds) });
          return 503;
        }
        if (err instanceof PublishError) {
          send(res, 503, { success: false, message: 'events could not be stored, retry' }, { 'retry-after': '1' });
          return 503;
        }
        this.deps.log.error({ err, route }, 'request_failed');
        send(res, 500, { success: false, message: 'internal error' });
        return 500;
      })
      .then((status) => {
        const m = this.deps.metrics;
        if (!m) return;
        m.requests.inc({ route, status: String(status) });
        m.requestSeconds.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
      });
  }

  private async track(route: Route, req: http.IncomingMessage): Promise<PublishOutcome> {
    const receivedAt = this.deps.now?.() ?? Date.now();
    const limit = bodyLimitFor(route);
    const raw = await readBody(req, route, limit);
    const parsed = parseJsonBody(raw);
    if (!parsed.ok) throw new HttpError(400, parsed.message);
    const { body } = parsed;
    const auth = authenticateSource(
      writeKeyFrom(req.headers.authorization, body),
      this.deps.sources,
      'missing write key: send Authorization: Basic base64(<writeKey>:) or "writeKey" in the body',
    );
    if (!auth.ok) throw new HttpError(401, auth.message);
    const { source } = auth;

    const rate: RateLimitSettings = source.rateLimit
      ? { requestsPerSecond: source.rateLimit.requestsPerSecond, burst: source.rateLimit.burst ?? source.rateLimit.requestsPerSecond }
      : this.config.rateLimit;
    const decision = await this.deps.limiter.take(source.id, rate, receivedAt);
    if (!decision.ok) {
      throw new HttpError(429, `rate limit of ${rate.requestsPerSecond} requests per second for source ${source.id} exceeded`, {
        'retry-after': String(retryAfterSeconds(decision.retryAfterMs)),
      });
    }

    const env: Envelope = { sourceId: source.id, spaceId: source.spaceId, receivedAt, newMessageId: this.deps.newMessageId };
    const result = normaliseRequest(route, body, raw.length, env);
    if (!result.ok) throw new HttpError(400, result.message);
    return this.deps.publisher.publish(result.events, raw.length);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...CORS, ...headers }).end(text);
}

/** The body, gunzipped when Content-Encoding says so, never more than `limit` bytes (decompressed). */
async function readBody(req: http.IncomingMessage, route: Route, limit: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  if (encoding !== 'identity' && encoding !== 'gzip')
    throw new HttpError(415, `unsupported Content-Encoding ${JSON.stringify(encoding)}: send gzip or none`);
  // Compressed bodies are held to the limit too: they expand, they do not shrink.
  const raw = await readAll(req, limit, (bytes) => new HttpError(400, tooLargeMessage(route, bytes)));
  if (encoding === 'identity') return raw;
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      zlib.gunzip(raw, { maxOutputLength: limit + 1 }, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(400, tooLargeMessage(route, undefined));
    throw new HttpError(400, `invalid gzip body: ${(err as Error).message}`);
  }
}

/** Past this multiple of the limit a body is not worth reading to the end just to keep the connection. */
const DRAIN_FACTOR = 8;

/**
 * Reads the body. One over `limit` is still read to the end (and dropped) so
 * the client gets its 400 with the size, on a connection it can reuse; one
 * absurdly over it is cut off (and the connection closed by the caller).
 */
function readAll(req: http.IncomingMessage, limit: number, tooLarge: (bytes: number | undefined) => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * DRAIN_FACTOR) {
        done = true;
        req.pause();
        reject(tooLarge(undefined));
      }
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      if (size > limit) reject(tooLarge(size));
      else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
}

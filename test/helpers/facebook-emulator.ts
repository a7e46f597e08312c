// A local emulator of the Facebook Marketing API's Custom Audiences edges,
// enforcing its contract over real HTTP the way the real API answers:
// - auth: `Authorization: Bearer <token>` or `?access_token=`; else 400 OAuthException #190;
// - POST /act_<account>/customaudiences {name, subtype: CUSTOM, customer_file_source} -> {id};
// - GET /<audience_id> -> {id, name}, unknown id -> 400 #100;
// - POST / DELETE /<audience_id>/users {payload: {schema, data}}: known single-key schema,
//   1..10,000 entries (more -> 400 #100), *_SHA256 entries must be 64 lowercase hex
//   (others are counted invalid and sampled, the rest accepted: per-item outcomes);
// - rate limit: more than `requestsPerSecond` in a rolling second -> 400 #80003 (is_transient).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const SCHEMAS = new Set(['EMAIL_SHA256', 'PHONE_SHA256', 'MOBILE_ADVERTISER_ID']);
const HEX64 = /^[a-f0-9]{64}$/;

export interface EmulatorRequest {
  method: string;
  path: string;
  at: number;
  status: number;
  code?: number;
  entries?: number;
}

export class FacebookEmulator {
  readonly requests: EmulatorRequest[] = [];
  readonly audiences = new Map<string, { name: string; account: string; members: Set<string> }>();
  url = '';
  private server: http.Server | null = null;
  private seq = 0;

  constructor(private readonly opts: { token: string; requestsPerSecond?: number; batchLimit?: number }) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const record: EmulatorRequest = { method: req.method ?? 'GET', path: url.pathname, at: Date.now(), status: 200 };
        this.requests.push(record);
        const reply = (status: number, body: unknown) => {
          record.status = status;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const fail = (code: number, message: string, type = 'OAuthException', extra: Record<string, unknown> = {}) => {
          record.code = code;
          reply(code === 190 ? 401 : 400, { error: { message, type, code, fbtrace_id: `trace${this.seq}`, ...extra } });
        };
        const token = req.headers.authorization?.replace(/^Bearer /, '') ?? url.searchParams.get('access_token');
        if (token !== this.opts.token) return fail(190, 'Invalid OAuth access token - Cannot parse access token');
        const limit = this.opts.requestsPerSecond;
        if (limit !== undefined && this.requests.filter((r) => r.at > record.at - 1000 && r.code !== 190).length > limit) {
          return fail(80003, 'There have been too many calls to this ad-account. Wait a bit and try again.', 'OAuthException', {
            is_transient: true,
          });
        }
        let body: any = {};
        try {
          body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {};
        } catch {
          return fail(100, 'Invalid parameter: body is not JSON', 'GraphMethodException');
        }
        const parts = url.pathname.split('/').filter(Boolean).slice(1); // drop the version segment
        if (req.method === 'POST' && parts.length === 2 && parts[0]!.startsWith('act_') && parts[1] === 'customaudiences') {
          if (typeof body.name !== 'string' || !body.name)
            return fail(100, '(#100) The parameter name is required', 'GraphMethodException');
          if (body.subtype !== 'CUSTOM') return fail(100, '(#100) subtype must be one of CUSTOM, ...', 'GraphMethodException');
          if (!['USER_PROVIDED_ONLY', 'PARTNER_PROVIDED_ONLY', 'BOTH_USER_AND_PARTNER_PROVIDED'].includes(body.customer_file_source))
            return fail(100, '(#100) customer_file_source is required', 'GraphMethodException');
          const id = `238${String(++this.seq).padStart(12, '0')}`;
          this.audiences.set(id, { name: body.name, account: parts[0]!, members: new Set() });
          return reply(200, { id });
        }
        const audience = parts[0] ? this.audiences.get(parts[0]) : undefined;
        if (!audience)
          return fail(
            100,
            `Unsupported ${req.method?.toLowerCase()} request. Object with ID '${parts[0]}' does not exist`,
            'GraphMethodException',
          );
        if (req.method === 'GET' && parts.length === 1) return reply(200, { id: parts[0], name: audience.name });
        if ((req.method === 'POST' || req.method === 'DELETE') && parts.length === 2 && parts[1] === 'users') {
          const payload = typeof body.payload === 'string' ? JSON.parse(body.payload) : body.payload;
          if (!payload || !SCHEMAS.has(payload.schema))
            return fail(100, `(#100) Invalid schema ${JSON.stringify(payload?.schema)}`, 'GraphMethodException');
          if (!Array.isArray(payload.data) || payload.data.length === 0)
            return fail(100, '(#100) payload.data must be a non-empty array', 'GraphMethodException');
          record.entries = payload.data.length;
          const max = this.opts.batchLimit ?? 10_000;
          if (payload.data.length > max)
            return fail(
              100,
              `(#100) The number of entries in payload.data (${payload.data.length}) exceeds the limit of ${max}`,
              'GraphMethodException',
            );
          const invalid: Record<string, string> = {};
          for (const entry of payload.data as string[]) {
            if (payload.schema.endsWith('_SHA256') && !HEX64.test(entry)) {
              invalid[entry] = 'not a SHA-256 hash';
              continue;
            }
            if (req.method === 'POST') audience.members.add(entry);
            else audience.members.delete(entry);
          }
          return reply(200, {
            audience_id: parts[0],
            session_id: String(++this.seq),
            num_received: payload.data.length,
            num_invalid_entries: Object.keys(invalid).length,
            invalid_entry_samples: invalid,
          });
        }
        return fail(100, `Unsupported ${req.method} ${url.pathname}`, 'GraphMethodException');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v19.0`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

// The event tester (CONTRACT.md section 9): one identify or track, built as
// this destination would receive it (libs/delivery's payload planning), sent
// once through the dispatcher's own sending modules (the shared rate limiter,
// the throttled attempt, the Actions runtime; no retries), and answered with
// what went out and what came back, secrets masked.
import { randomUUID } from 'node:crypto';
import type { DecoratedResponse } from '@segment/actions-core';
import { MASK, maskUrl, SECRET_SETTING, type DestinationConfig } from '@engage/config-store';
import { buildEventCalls, planActionInvocations, type SegmentCall } from '@engage/delivery';
import { ActionsRuntime, DeliveryService, RateLimiter, type OutboundRequest } from '@engage/dispatcher/dist/sending';
import type { HttpOverrides } from '@engage/actions';
import type { RedisClient } from '@engage/redis';

export interface TestEvent {
  type: 'identify' | 'track';
  userId?: string;
  traits?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  computationKey?: string;
}

export interface ShownRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

export interface TestResult {
  request: ShownRequest | null;
  response?: { status: number; headers: Record<string, string>; body: unknown; truncated?: boolean };
  error?: string;
  durationMs: number;
}

/** Response bodies shown up to this many bytes. */
export const MAX_SHOWN_BODY = 64 * 1024;

/** Why the tester cannot send to a destination (the route answers 422), or null. */
export function untestable(destination: DestinationConfig): string | null {
  if (destination.type === 'actions') return null;
  if (typeof destination.settings.url !== 'string')
    return `destination ${destination.id} (${destination.type}) has no settings.url to post to`;
  if (['list-webhook', 'facebook-custom-audiences'].includes(destination.type))
    return `the event tester sends identify and track calls; ${destination.type} is a list destination`;
  return null;
}

/** The call this destination would receive for `event`, as the dispatcher builds it from a change (payloads.ts). */
export function testCall(destination: DestinationConfig, event: TestEvent, now: number, userId: string): SegmentCall {
  const key = event.computationKey ?? 'event_tester';
  const [call] = buildEventCalls(
    {
      change_id: `test_${randomUUID()}`,
      space_id: destination.spaceId,
      computation_id: 'event_tester',
      computation_key: key,
      computation_class: 'audience',
      level: 'user',
      profile_id: `test_${userId}`,
      value: true,
      previous: null,
      value_is_json: false,
      reason: 'realtime',
      occurred_at: now,
      emitted_at: now,
      external_ids: [],
      user_id: userId,
      anonymous_id: null,
      traits_json: '{}',
    },
    destination,
    { identify: event.type === 'identify', track: event.type === 'track', identifierTypes: ['user_id'] },
  );
  return event.type === 'identify'
    ? { ...call!, traits: { ...call!.traits, ...event.traits } }
    : {
        ...call!,
        properties: { ...call!.properties, ...event.properties },
        ...(event.traits ? { context: { ...call!.context, traits: event.traits } } : {}),
      };
}

/** Header values hidden: those named like a secret, and any the destination's settings hold as one. */
export function maskHeaders(headers: Record<string, string>, secretValues: Set<string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [
      k,
      SECRET_SETTING.test(k) || [...secretValues].some((s) => s.length > 0 && v.includes(s)) ? MASK : v,
    ]),
  );
}

/** Every string leaf of the settings whose name is a secret (webhook headers, API keys, tokens). */
export function secretValues(settings: Record<string, unknown>, secretFields: readonly string[] = []): Set<string> {
  const out = new Set<string>();
  const walk = (v: unknown, secret: boolean) => {
    if (typeof v === 'string' && secret) out.add(v);
    else if (Array.isArray(v)) v.forEach((x) => walk(x, secret));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, secret || SECRET_SETTING.test(k));
  };
  for (const [k, v] of Object.entries(settings)) walk(v, SECRET_SETTING.test(k) || secretFields.includes(k));
  return out;
}

function headersOf(headers: { forEach(each: (value: string, name: string) => void): void }): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => (out[name] = value));
  return out;
}

/** A body as shown: JSON when it parses, else text; cut at MAX_SHOWN_BODY bytes. */
export function shownBody(text: string): { body: unknown; truncated?: boolean } {
  const bytes = Buffer.from(text);
  if (bytes.length > MAX_SHOWN_BODY) return { body: bytes.subarray(0, MAX_SHOWN_BODY).toString(), truncated: true };
  try {
    return { body: text ? JSON.parse(text) : null };
  } catch {
    return { body: text };
  }
}

function mask(body: unknown, secrets: Set<string>): unknown {
  if (secrets.size === 0) return body;
  let text = JSON.stringify(body ?? null);
  for (const s of secrets) if (s.length >= 4) text = text.split(JSON.stringify(s).slice(1, -1)).join(MASK);
  return JSON.parse(text);
}

export class EventTester {
  private readonly limiter: RateLimiter;
  constructor(
    private readonly config: { keyPrefix: string; rateMarginMs: number; timeoutMs: number; overrides: HttpOverrides },
    deps: { redis: RedisClient },
  ) {
    // The dispatchers' bucket (same key prefix and destination id): a test call takes a token as any call does.
    this.limiter = new RateLimiter({ keyPrefix: config.keyPrefix, marginMs: config.rateMarginMs }, deps);
  }

  async test(destination: DestinationConfig, event: TestEvent): Promise<TestResult> {
    const now = Date.now();
    const call = testCall(destination, event, now, event.userId ?? `test_user_${randomUUID().slice(0, 8)}`);
    const secrets = secretValues(destination.settings, destination.secretFields);
    let shown: ShownRequest | null = null;
    let response: TestResult['response'];
    const started = performance.now();
    const done = (rest: Omit<TestResult, 'request' | 'durationMs'>): TestResult => ({
      request: shown && {
        ...shown,
        url: maskUrl(shown.url),
        headers: maskHeaders(shown.headers, secrets),
        body: mask(shown.body, secrets),
      },
      ...(response ? { response } : {}),
      ...rest,
      durationMs: Math.round(performance.now() - started),
    });

    let request: OutboundRequest;
    let runtime: ActionsRuntime | undefined;
    if (destination.type === 'actions') {
      const mappings = destination.mappings ?? [];
      const [invocation] = planActionInvocations([call], mappings);
      if (!invocation) return done({ error: `no enabled mapping of ${destination.name} subscribes to this ${event.type} call` });
      request = { kind: 'action', mapping: mappings.find((m) => m.id === invocation.mappingId)!, event: invocation.event };
      runtime = new ActionsRuntime(
        { overrides: this.config.overrides },
        {
          observe: (responses: readonly DecoratedResponse[]) => {
            const last = responses[responses.length - 1];
            if (!last) return;
            const options = last.options as { body?: unknown; json?: unknown };
            const raw = options.json ?? options.body;
            shown = {
              url: last.request.url,
              method: last.request.method,
              headers: headersOf(last.request.headers),
              body: typeof raw === 'string' ? shownBody(raw).body : (raw ?? null),
            };
            response = { status: last.status, headers: headersOf(last.headers), ...shownBody(String(last.content ?? '')) };
          },
        },
      );
    } else {
      const headers = (destination.settings.headers as Record<string, string> | undefined) ?? {};
      request = { url: String(destination.settings.url), method: 'POST', headers, body: call };
    }
    // The HTTP client the attempt uses, seen from outside: what it sent and what came back.
    const recording: typeof fetch = async (input, init) => {
      shown = {
        url: String(input),
        method: init?.method ?? 'GET',
        headers: { ...(init?.headers as Record<string, string>) },
        body: typeof init?.body === 'string' ? shownBody(init.body).body : null,
      };
      const res = await fetch(input, init);
      const text = await res.clone().text();
      response = { status: res.status, headers: headersOf(res.headers), ...shownBody(text) };
      return res;
    };
    const noCounts = { count: () => undefined, fail: () => undefined, credentialsRefused: () => undefined };
    const delivery = new DeliveryService(
      { retryWindowMs: 0, initialBackoffMs: 0, maxBackoffMs: 0, timeoutMs: this.config.timeoutMs },
      { limiter: this.limiter, status: noCounts, actions: runtime, fetch: recording },
    );
    try {
      const result = await delivery.attempt(destination, request);
      return done(result.kind === 'delivered' || response ? {} : { error: result.reason });
    } catch (err) {
      return done({ error: (err as Error).message });
    } finally {
      runtime?.close();
    }
  }
}

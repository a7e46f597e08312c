// The event tester (CONTRACT.md section 9): one identify or track, built as
// this destination would receive it (libs/delivery's payload planning), sent
// once through the dispatcher's own sending modules (the shared rate limiter,
// the throttled attempt, the Actions runtime; no retries), and answered with
// what went out and what came back, secrets masked. A list destination gets
// what its list sync sends for one member added to a test audience, through
// the dispatcher's own list adapter.
import { randomUUID } from 'node:crypto';
import type { DecoratedResponse } from '@segment/actions-core';
import { MASK, maskUrl, SECRET_SETTING, type DestinationConfig } from '@engage/config-store';
import {
  buildEventCalls,
  planActionInvocations,
  splitMembers,
  type ExternalAudience,
  type ListDestinationAdapter,
  type ListMember,
  type NormalisedId,
  type SegmentCall,
} from '@engage/delivery';
import {
  ActionsRuntime,
  DeliveryService,
  listAdapters,
  RateLimiter,
  type DeliveryResult,
  type HttpRequest,
  type OutboundRequest,
} from '@engage/dispatcher/dist/sending';
import type { HttpOverrides } from '@engage/actions';
import type { RedisClient } from '@engage/redis';
import { LIST_DESTINATION_TYPES } from './domain/requests';

export interface TestEvent {
  /** Required for event destinations; list destinations ignore it (a list sync sends adds, not calls). */
  type?: 'identify' | 'track';
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

export interface ShownResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  truncated?: boolean;
}

/** What a list test added: the audience and the identifiers, as the destination received them. */
export interface ListTest {
  /** The test audience as the adapter knows it (null when none was reached). */
  audience: ExternalAudience | null;
  /** Identifiers sent, normalised (and hashed where the destination wants hashes) by the adapter. */
  sent: Array<{ type: string; value: string }>;
  /** Identifiers of the test user the adapter could not send, or the destination refused, and why. */
  failed: Array<{ type: string; reason: string }>;
}

export interface TestResult {
  /** The last request made (for a list destination: its add, or the step that failed), secrets masked. */
  request: ShownRequest | null;
  response?: ShownResponse;
  error?: string;
  /** List destinations: every request made, in order (the audience lookup or creation first). */
  exchanges?: Array<{ request: ShownRequest; response?: ShownResponse }>;
  list?: ListTest;
  durationMs: number;
}

/** The computation key when the request names none (the test audience's key, the calls' computation_key). */
export const DEFAULT_TEST_KEY = 'event_tester';
/** The computation id the tests carry (calls' computation_id, a list-webhook test audience's audience_id). */
export const TEST_COMPUTATION_ID = 'event_tester';

/** Response bodies shown up to this many bytes. */
export const MAX_SHOWN_BODY = 64 * 1024;

/** Why the tester cannot send to a destination (the route answers 422), or null. */
export function untestable(destination: DestinationConfig): string | null {
  // Facebook's settings (accessToken, adAccountId) are checked by its adapter, whose refusal the answer shows.
  if (destination.type === 'actions' || destination.type === 'facebook-custom-audiences') return null;
  if (typeof destination.settings.url !== 'string')
    return `destination ${destination.id} (${destination.type}) has no settings.url to post to`;
  return null;
}

/** Whether the tester sends this destination a list add rather than an identify or track. */
export const isListDestination = (destination: Pick<DestinationConfig, 'type'>) => LIST_DESTINATION_TYPES.has(destination.type);

/**
 * The test user as one list member being added: user_id, then every string
 * trait under its identifier type's name (traits.email, traits.phone,
 * traits['ios.idfa'], ...); the list sync keeps those the adapter matches on.
 */
export function testMember(userId: string, traits: Record<string, unknown> = {}): ListMember {
  const fromTraits = Object.entries(traits).flatMap(([type, id]) => (typeof id === 'string' ? [{ type, id }] : []));
  return { profileId: `test_${userId}`, member: true, ids: [{ type: 'user_id', id: userId }, ...fromTraits] };
}

/** The identifiers one list add carries, normalised by the adapter as the list sync does (list-buffer.ts). */
export function listAddItems(
  adapter: Pick<ListDestinationAdapter, 'identifierTypes' | 'normalise'>,
  member: ListMember,
): { items: Array<NormalisedId & { ok: true }>; failed: ListTest['failed'] } {
  const items: Array<NormalisedId & { ok: true }> = [];
  const failed: ListTest['failed'] = [];
  for (const { id } of splitMembers([member], adapter.identifierTypes).add) {
    const n = adapter.normalise(id);
    if (n.ok) items.push(n);
    else failed.push({ type: n.type, reason: n.reason });
  }
  return { items, failed };
}

/**
 * One attempt, no retries, for the list adapters (which call deliver): the
 * answer shows what the destination said the first time. NOTE: the retry
 * window alone cannot say this: with a window of 0 a retry due in the same
 * millisecond still fits it.
 */
class SingleAttemptDelivery extends DeliveryService {
  override async deliver(destination: DestinationConfig, request: HttpRequest): Promise<DeliveryResult> {
    const result = await this.attempt(destination, request);
    if (result.kind === 'delivered') return { ok: true, attempts: 1, body: result.body };
    return { ok: false, attempts: 1, status: result.status, retriable: result.kind === 'retry', reason: result.reason };
  }
}

/** The call this destination would receive for `event`, as the dispatcher builds it from a change (payloads.ts). */
export function testCall(
  destination: DestinationConfig,
  event: TestEvent & { type: 'identify' | 'track' },
  now: number,
  userId: string,
): SegmentCall {
  const key = event.computationKey ?? DEFAULT_TEST_KEY;
  const [call] = buildEventCalls(
    {
      change_id: `test_${randomUUID()}`,
      space_id: destination.spaceId,
      computation_id: TEST_COMPUTATION_ID,
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

const noCounts = { count: () => undefined, fail: () => undefined, credentialsRefused: () => undefined };

export class EventTester {
  private readonly limiter: RateLimiter;
  private readonly redis: RedisClient;
  constructor(
    private readonly config: { keyPrefix: string; rateMarginMs: number; timeoutMs: number; overrides: HttpOverrides },
    deps: { redis: RedisClient },
  ) {
    // The dispatchers' bucket (same key prefix and destination id): a test call takes a token as any call does.
    this.limiter = new RateLimiter({ keyPrefix: config.keyPrefix, marginMs: config.rateMarginMs }, deps);
    this.redis = deps.redis;
  }

  /** Where the test audience the tester made at `destinationId` for `key` is remembered (JSON id and name). */
  private audienceKey = (destinationId: string, key: string) => `${this.config.keyPrefix}evt:list:audience:${destinationId}:${key}`;

  async test(destination: DestinationConfig, event: TestEvent): Promise<TestResult> {
    const now = Date.now();
    const userId = event.userId ?? `test_user_${randomUUID().slice(0, 8)}`;
    const secrets = secretValues(destination.settings, destination.secretFields);
    const exchanges: Array<{ request: ShownRequest; response?: ShownResponse }> = [];
    let shown: ShownRequest | null = null;
    let response: ShownResponse | undefined;
    const started = performance.now();
    const masked = (request: ShownRequest): ShownRequest => ({
      ...request,
      url: maskUrl(request.url),
      headers: maskHeaders(request.headers, secrets),
      body: mask(request.body, secrets),
    });
    const done = (rest: Omit<TestResult, 'request' | 'durationMs'>): TestResult => ({
      request: shown && masked(shown),
      ...(response ? { response } : {}),
      ...rest,
      durationMs: Math.round(performance.now() - started),
    });

    // The HTTP client the attempt uses, seen from outside: what it sent and what came back.
    const recording: typeof fetch = async (input, init) => {
      const exchange: (typeof exchanges)[number] = {
        request: {
          url: String(input),
          method: init?.method ?? 'GET',
          headers: { ...(init?.headers as Record<string, string>) },
          body: typeof init?.body === 'string' ? shownBody(init.body).body : null,
        },
      };
      exchanges.push(exchange);
      shown = exchange.request;
      response = undefined;
      const res = await fetch(input, init);
      const text = await res.clone().text();
      response = exchange.response = { status: res.status, headers: headersOf(res.headers), ...shownBody(text) };
      return res;
    };
    const deliveryConfig = { retryWindowMs: 0, initialBackoffMs: 0, maxBackoffMs: 0, timeoutMs: this.config.timeoutMs };

    if (isListDestination(destination)) {
      const delivery = new SingleAttemptDelivery(deliveryConfig, { limiter: this.limiter, status: noCounts, fetch: recording });
      const adapter = listAdapters({ delivery }).get(destination.type);
      if (!adapter) return done({ error: `no list adapter for ${destination.type}` });
      const { items, failed } = listAddItems(adapter, testMember(userId, event.traits));
      const list: ListTest = { audience: null, sent: [], failed };
      const listed = () => ({ exchanges: exchanges.map((x) => ({ ...x, request: masked(x.request) })), list });
      if (items.length === 0)
        return done({
          ...listed(),
          error:
            `${destination.type} matches on ${adapter.identifierTypes.join(', ')}: the test user has none it can send ` +
            `(give userId, or traits such as traits.email)`,
        });
      try {
        list.audience = await this.testAudience(adapter, destination, event.computationKey ?? DEFAULT_TEST_KEY);
        const outcome = await adapter.add(destination, list.audience, items);
        const refused = new Set(outcome.failed.map((f) => f.index));
        list.sent = items.flatMap((item, i) => (refused.has(i) ? [] : [{ type: item.type, value: item.value }]));
        list.failed.push(...outcome.failed.map((f) => ({ type: items[f.index]!.type, reason: f.reason })));
        return done(listed());
      } catch (err) {
        // As for calls: an answer that came back speaks for itself; the reason is shown when none did.
        return done({ ...listed(), ...(response ? {} : { error: (err as Error).message }) });
      }
    }

    if (!event.type) return done({ error: `${destination.type} takes identify and track calls: the test needs a type` });
    const call = testCall(destination, { ...event, type: event.type }, now, userId);
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
    const delivery = new DeliveryService(deliveryConfig, { limiter: this.limiter, status: noCounts, actions: runtime, fetch: recording });
    try {
      const result = await delivery.attempt(destination, request);
      return done(result.kind === 'delivered' || response ? {} : { error: result.reason });
    } catch (err) {
      return done({ error: (err as Error).message });
    } finally {
      runtime?.close();
    }
  }

  /**
   * The tester's own audience at the destination for `key`, found or created
   * the way the list sync does (list-buffer.ts audienceFor): the one made
   * before if the destination still has it, else a new one, remembered per
   * destination and key. Never the dispatcher's real audience: test members
   * stay out of lists marketers use. NOTE: two first tests at once may each
   * create one; the later is remembered.
   */
  private async testAudience(adapter: ListDestinationAdapter, destination: DestinationConfig, key: string): Promise<ExternalAudience> {
    const stored = this.audienceKey(destination.id, key);
    const known = await this.redis.get(stored);
    if (known) {
      const found = await adapter.getAudience(destination, (JSON.parse(known) as ExternalAudience).id);
      if (found) return found;
    }
    const created = await adapter.createAudience(destination, {
      computationId: TEST_COMPUTATION_ID,
      key,
      name: `Engage event tester: ${key}`,
    });
    await this.redis.set(stored, JSON.stringify(created));
    return created;
  }
}

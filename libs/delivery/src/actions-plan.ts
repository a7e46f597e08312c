// Actions destinations (Segment's open definitions, CONTRACT.md section 8):
// the pure half. Which of a destination's mappings a Segment call triggers
// (each mapping's `subscribe` is Segment's FQL, evaluated with Segment's own
// @segment/destination-subscriptions, the library actions-core uses), the
// event a definition receives, how a connection's calls read in the
// destinations table ("Matching mappings"), and how an action's answer reads
// for the retry policy. Running the action is the dispatcher's (IO).
import { parseFql, validate } from '@segment/destination-subscriptions';
import type { ActionMapping, ConnectionSettings } from '@engage/config-store';
import { classifyResponse, parseRetryAfter, type DeliveryVerdict } from './retry-policy';
import type { SegmentCall } from './payloads';

/** An FQL subscription's syntax error, or null when it parses. */
export function fqlIssue(subscribe: string): string | null {
  if (typeof subscribe !== 'string' || subscribe.trim() === '') return 'must be a non-empty FQL expression';
  const parsed = parseFql(subscribe) as { error?: { message?: string } };
  return parsed.error ? `is not valid FQL: ${parsed.error.message ?? 'unreadable'}` : null;
}

/** Parsed subscriptions, by text: a destination's few mappings are parsed once, not per call. */
const parsedFql = new Map<string, ReturnType<typeof parseFql>>();

/** Whether `event` matches the FQL subscription (an unreadable subscription matches nothing, as in actions-core). */
export function subscriptionMatches(subscribe: string, event: unknown): boolean {
  let parsed = parsedFql.get(subscribe);
  if (!parsed) {
    parsed = parseFql(subscribe);
    if (parsedFql.size > 1000) parsedFql.clear();
    parsedFql.set(subscribe, parsed);
  }
  if ((parsed as { error?: unknown }).error) return false;
  return validate(parsed, event);
}

/** A Segment call as a definition reads it: Segment's pipeline stamps receivedAt (Braze's track `time` maps from it). */
export type ActionEvent = SegmentCall & { receivedAt: string };

export function actionEvent(call: SegmentCall): ActionEvent {
  return { ...call, receivedAt: call.timestamp };
}

/**
 * The calls with the vendor's audience id and the connection's audience
 * settings in context.personas (audience destinations: the definition reads
 * them there, actions-core hands audience_settings to the action as audienceSettings).
 */
export function withExternalAudience(
  calls: SegmentCall[],
  externalAudienceId: string | undefined,
  audienceSettings?: Record<string, unknown>,
): SegmentCall[] {
  if (!externalAudienceId && !audienceSettings) return calls;
  const personas = {
    ...(externalAudienceId ? { external_audience_id: externalAudienceId } : {}),
    ...(audienceSettings ? { audience_settings: audienceSettings } : {}),
  };
  return calls.map((c) => ({ ...c, context: { ...c.context, personas: { ...c.context.personas, ...personas } } }));
}

/** One action to run for one call: the mapping that picked it and the event it gets. */
export interface ActionInvocation {
  mappingId: string;
  actionId: string;
  event: ActionEvent;
  /** Per (call, mapping): a call that triggers two mappings is two deliveries, each deduped and retried alone. */
  messageId: string;
}

/** The enabled mappings each call triggers, in the mappings' order. */
export function planActionInvocations(calls: SegmentCall[], mappings: readonly ActionMapping[]): ActionInvocation[] {
  const out: ActionInvocation[] = [];
  for (const call of calls) {
    const event = actionEvent(call);
    for (const m of mappings) {
      if (!m.enabled || !subscriptionMatches(m.subscribe, event)) continue;
      out.push({ mappingId: m.id, actionId: m.actionId, event, messageId: `${call.messageId}.${m.id}` });
    }
  }
  return out;
}

/**
 * "Matching mappings" of a connection, as Segment's destinations table shows
 * them: the mappings whose subscription matches a call the connection sends
 * (identify and/or track, entered and exited), split by enabled. Null for a
 * destination without mappings (webhooks: "Not applicable").
 */
export function matchingMappings(
  mappings: readonly ActionMapping[] | undefined,
  settings: ConnectionSettings,
  computation: { key: string; class: 'audience' | 'trait' | 'journey_step' },
): { matching: number; enabled: number; disabled: number } | null {
  if (!mappings) return null;
  // Journey steps are sent as audience entries (payloads.ts personasOf), and never exit.
  const personas = {
    computation_class: computation.class === 'journey_step' ? 'audience' : computation.class,
    computation_key: computation.key,
  };
  const samples: unknown[] = [];
  if (settings.identify) samples.push({ type: 'identify', traits: { [computation.key]: true }, context: { personas } });
  if (settings.track) {
    const events =
      computation.class === 'trait'
        ? ['Trait Computed']
        : computation.class === 'journey_step'
          ? [settings.enteredEvent ?? 'Audience Entered']
          : [settings.enteredEvent ?? 'Audience Entered', settings.exitedEvent ?? 'Audience Exited'];
    for (const event of events) samples.push({ type: 'track', event, properties: { [computation.key]: true }, context: { personas } });
  }
  const matched = mappings.filter((m) => samples.some((s) => subscriptionMatches(m.subscribe, s)));
  const enabled = matched.filter((m) => m.enabled).length;
  return { matching: matched.length, enabled, disabled: matched.length - enabled };
}

/** What running an action gave, as the runtime reports it (one per event). */
export type ActionOutcome =
  | { ok: true; status?: number }
  | {
      ok: false;
      /** The vendor's HTTP status, or the error's (actions-core errors carry one); absent for network errors. */
      status?: number;
      message: string;
      /** actions-core's error code (RETRYABLE_ERROR, PAYLOAD_VALIDATION_FAILED, ...). */
      code?: string;
      /** A connection-level failure (refused, reset, DNS): no answer came. */
      network?: boolean;
      /** The vendor said it is over a request limit, whatever the status (Salesforce's 403 REQUEST_LIMIT_EXCEEDED). */
      rateLimited?: boolean;
      retryAfter?: string | null;
    };

/** An action's verdict; `credentials` when the vendor refused our credentials (401/403: the destination is flagged). */
export type ActionVerdict = DeliveryVerdict & { credentials?: boolean };

/**
 * As for webhooks (DESIGN.md delivery model): network errors, 408, 423,
 * 429, 5xx but 501, actions-core's RetryableError and answers the vendor
 * meant as a rate limit (whatever their status) are retried; 401/403 and
 * other 4xx or validation errors fail at once, with the vendor's message.
 */
export function classifyActionOutcome(outcome: ActionOutcome, now: number): ActionVerdict {
  if (outcome.ok) return { kind: 'delivered' };
  const detail = outcome.message ? `: ${outcome.message.slice(0, 500)}` : '';
  // A rate limit first: a definition may call it a RetryableError (Marketo Static Lists' 606), its Retry-After still counts.
  if (outcome.rateLimited) {
    const status = outcome.status === undefined ? '' : `HTTP ${outcome.status} `;
    return { kind: 'retry', reason: `${status}(rate limited)${detail}`, retryAfterMs: parseRetryAfter(outcome.retryAfter, now) };
  }
  if (outcome.code === 'RETRYABLE_ERROR') return { kind: 'retry', reason: `retryable error${detail}` };
  if (outcome.network || outcome.status === undefined) {
    return outcome.network ? { kind: 'retry', reason: `network error${detail}` } : { kind: 'fail', reason: `action failed${detail}` };
  }
  if (outcome.status === 401 || outcome.status === 403)
    return { kind: 'fail', reason: `HTTP ${outcome.status} (credentials refused)${detail}`, credentials: true };
  const verdict = classifyResponse(outcome.status, outcome.retryAfter, now);
  return verdict.kind === 'delivered' ? verdict : { ...verdict, reason: `${verdict.reason}${detail}` };
}

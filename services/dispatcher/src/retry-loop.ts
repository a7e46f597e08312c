// The loop that tries a destination's scheduled retries when they are due
// (outside any consumer's batch): one attempt per due call, the same stored
// body every time, through the same throttle. Then the call is done
// (delivered, or dead-lettered with its original record when refused or when
// its retry window is spent; the profile's next call becomes due) or due
// again after its backoff. Replicas share the schedule: a claimed call is
// leased, and due again if its taker dies mid-attempt.
import type { ConfigStore, DestinationConfig } from '@engage/config-store';
import type { ActionEvent } from '@engage/delivery';
import type { DeadLetterWriter } from '@engage/kafka';
import type { Logger } from '@engage/logging';
import type { DeliveryStatus } from './delivery-status';
import type { AttemptResult, DeliveryService, OutboundRequest } from './delivery.service';
import type { RetrySchedule, ScheduledCall } from './retry-schedule';
import type { SentCalls } from './sent-calls';

export interface RetryLoopConfig {
  destinationId: string;
  /** Due calls taken per round, tried in parallel (one per profile). */
  batchSize: number;
  /** How long a taken call is leased before another replica may take it (ms); above an attempt's throttle wait plus timeout. */
  leaseMs: number;
  /** Rounds per run at most, so a stop is never held up for long behind a backlog. */
  maxRounds: number;
}

export class RetryLoop {
  constructor(
    private readonly config: RetryLoopConfig,
    private readonly deps: {
      store: Pick<ConfigStore, 'get'>;
      schedule: RetrySchedule;
      delivery: Pick<DeliveryService, 'attempt' | 'nextRetry'>;
      sent: SentCalls;
      status: Pick<DeliveryStatus, 'count'>;
      deadLetters: Pick<DeadLetterWriter, 'write'>;
      log: Logger;
      now?: () => number;
    },
  ) {}

  private now() {
    return this.deps.now?.() ?? Date.now();
  }

  /** Tries every call due now, and those it makes due (rounds of batchSize, at most maxRounds); returns how many were tried. */
  async run(): Promise<number> {
    let tried = 0;
    for (let round = 0; round < this.config.maxRounds; round++) {
      const now = this.now();
      const due = await this.deps.schedule.claimDue(now, this.config.batchSize, now + this.config.leaseMs);
      if (due.length === 0) break;
      await Promise.all(due.map((call) => this.retry(call)));
      tried += due.length;
      // NOTE: a round that was not full does not end the run: a call delivered (or dead-lettered)
      // makes its profile's next call due at once, and stopping here left each profile's queue to
      // drain one call per poll (DISPATCH_RETRY_POLL_MS): after an outage, minutes for a busy profile.
      // A call that failed again is due only after its backoff, so this does not spin on it.
    }
    return tried;
  }

  /**
   * The destination is gone: every call still scheduled (due or not, queued
   * behind another or not) goes to the DLQ with `reason`, none is left behind
   * in Redis nor silently dropped. Returns how many.
   */
  async abandonAll(reason: string): Promise<number> {
    let abandoned = 0;
    for (;;) {
      // Completing a profile's call makes its next one due now: rounds until none is left.
      const calls = await this.deps.schedule.claimDue(Number.MAX_SAFE_INTEGER, this.config.batchSize, this.now() + this.config.leaseMs);
      if (calls.length === 0) return abandoned;
      for (const call of calls) await this.giveUp(call, reason);
      abandoned += calls.length;
    }
  }

  private async retry(call: ScheduledCall): Promise<void> {
    const destination = this.deps.store.get('destination', this.config.destinationId);
    const connection = this.deps.store.get('connection', call.connectionId);
    const request = destination && this.requestOf(destination, call);
    if (!destination?.enabled || !connection?.enabled || !request) {
      return this.giveUp(
        call,
        `destination ${this.config.destinationId}, connection ${call.connectionId}${call.mappingId ? ` or mapping ${call.mappingId}` : ''} was removed or disabled while the call waited for its retry`,
      );
    }
    const result: AttemptResult = await this.deps.delivery.attempt(destination, request);
    if (result.kind === 'delivered') {
      await this.deps.sent.mark(destination.id, call.messageId);
      await this.deps.schedule.complete(call, this.now());
      return;
    }
    if (result.kind === 'fail') return this.giveUp(call, result.reason);
    const next = this.deps.delivery.nextRetry(destination, result, call.attempts, call.since);
    if (next.kind === 'give-up') return this.giveUp(call, next.reason);
    await this.deps.schedule.reschedule({ ...call, attempts: call.attempts + 1, lastReason: result.reason }, next.dueAt);
  }

  /**
   * The call as it is sent now: the stored body with the destination's
   * current URL and headers (a rotated token applies), or for Actions the
   * stored event with its mapping's current version and settings. Null when
   * that is gone (URL removed, mapping deleted or disabled).
   */
  private requestOf(destination: DestinationConfig, call: ScheduledCall): OutboundRequest | null {
    if (destination.type === 'actions') {
      const mapping = destination.mappings?.find((m) => m.id === call.mappingId);
      return mapping?.enabled ? { kind: 'action', mapping, event: call.body as ActionEvent } : null;
    }
    const url = destination.settings.url;
    if (typeof url !== 'string') return null;
    const headers = (destination.settings.headers as Record<string, string> | undefined) ?? {};
    return { url, method: 'POST', headers, body: call.body };
  }

  /** The original record to the DLQ with the reason, then out of the schedule (the profile's next call is due). */
  private async giveUp(call: ScheduledCall, reason: string): Promise<void> {
    const { letter } = call;
    await this.deps.deadLetters.write([
      {
        key: letter.key,
        value: Buffer.from(letter.value, 'base64'),
        headers: letter.headers,
        reason,
        step: letter.step,
        source: letter.source,
      },
    ]);
    this.deps.status.count(this.config.destinationId, 'dead_lettered', reason);
    this.deps.log.warn({ messageId: call.messageId, connectionId: call.connectionId, reason }, 'scheduled_call_dead_lettered');
    await this.deps.schedule.complete(call, this.now());
  }
}

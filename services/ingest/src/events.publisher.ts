// Accepted events -> engage.events.raw, coalescing concurrent requests.
//
// Every request hands its validated events to `publish()` and waits. Requests
// arriving together (same event-loop turn, or while a flush is running) form
// one flush: one Redis pipeline to claim their messageIds, one producer send
// (acks from all in-sync replicas; see libs/kafka producer.ts), then every request of
// the flush is answered. That is what makes a 200 mean "durably in Kafka" and
// still lets the ingest run at batch throughput for single calls (group commit).
//
// A messageId another request (or replica) is still writing cannot be answered
// yet: a 200 now could drop the only copy, if that write then fails; a second
// write could duplicate it. Such events leave their flush and wait (other
// requests' flushes go on); every poll interval all waiting events go through
// a flush again, whose claim is the poll: one script call per source for all
// of them. "d" answers them as duplicates, a won claim writes them; after the
// request's deadline an event still in flight is reported, for a 503.
//
// Memory is bounded: while Kafka is down sends stall and requests pile up, so
// past maxQueuedEvents or maxQueuedBytes not yet answered a request is refused
// at once (QueueFullError: 503 with Retry-After) instead of being held.
import type { Producer } from 'kafkajs';
import type { Logger } from '@engage/logging';
import type { SchemaCodec } from '@engage/schemas';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Claim, ClaimResult, DedupeKey, DedupeRepository } from './dedupe.repository';
import { rawEventEncoder, type RecordEncoder } from './raw-event.encoder';
import { storedEventBytes, type AcceptedEvent } from './segment-spec';

export interface PublishOutcome {
  /** Events written to Kafka by this request. */
  accepted: number;
  /** Events dropped as duplicates of an earlier messageId from the same source. */
  duplicates: number;
  /** Events whose messageId another request was still writing at the deadline: the client should retry. */
  inFlight: number;
}

export interface PublisherConfig {
  topic: string;
  /** Wait this long for more requests before a flush starts (0: the same event-loop turn only). */
  lingerMs: number;
  /** Most events in one flush; a request's events always travel together. */
  maxFlushEvents: number;
  /**
   * Flushes running at once (the Redis claim of one overlaps the Kafka send of another).
   * NOTE: two flushes may reach Kafka in either order. That only reorders
   * requests that were in flight together, which have no order anyway; a
   * client that waits for its 200 before the next call keeps its order.
   */
  maxConcurrentFlushes: number;
  /**
   * How long a request waits for another copy's claim of its messageIds to
   * settle, ms. At most the claim's pending TTL: by then the claim is gone.
   * NOTE: the answer may come up to one poll interval (and one flush) later.
   */
  inFlightWaitMs: number;
  /** How often the waiting events are claimed again, ms. */
  inFlightPollMs: number;
  /** Most events held (queued, being sent or waiting) at once; a request past it is refused. */
  maxQueuedEvents: number;
  /** Most request-body bytes held at once; a request past it is refused. */
  maxQueuedBytes: number;
}

export interface PublisherMetrics {
  events: Counter<'outcome'>;
  flushSize: Histogram;
  flushSeconds: Histogram;
  /** Events waiting for another copy's claim to settle. */
  waiting: Gauge;
}

/** One publish() call, answered once each of its events has a final outcome. */
interface Request {
  outcome: PublishOutcome;
  /** Epoch ms; an event found in flight elsewhere after it is given up. */
  deadline: number;
  done: boolean;
  resolve: (outcome: PublishOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Events of a request on their way through a flush: first all of them, then
 * (in later rounds) those still waiting. A request has one at a time.
 */
interface Pending {
  request: Request;
  events: AcceptedEvent[];
}

export class PublishError extends Error {
  readonly retriable = true;
}

/** The publisher holds as much as it may: the client should come back later (Kafka is slow or down). */
export class QueueFullError extends PublishError {
  /** Long enough not to hammer a replica that is waiting for its broker. */
  readonly retryAfterSeconds = 5;
}

export class EventPublisher {
  private queue: Pending[] = [];
  private queuedEvents = 0;
  private running = 0;
  private scheduled = false;
  private idle: Array<() => void> = [];
  /** Events whose messageId was in flight elsewhere, until the next poll round. */
  private waiting: Pending[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private encoder: RecordEncoder | null = null;
  /** What publish() accepted and has not answered yet: what the queue bound counts. */
  private heldEvents = 0;
  private heldBytes = 0;

  constructor(
    private readonly config: PublisherConfig,
    private readonly deps: {
      producer: Producer;
      codec: SchemaCodec;
      dedupe: DedupeRepository;
      log: Logger;
      metrics?: PublisherMetrics;
    },
  ) {}

  /** Resolves the schema id records are encoded with (the topic's subject). */
  async start(): Promise<void> {
    this.encoder = await rawEventEncoder(this.config.topic, this.deps.codec);
  }

  /** `bytes`: the request's size (its body); measured from the records when not given. */
  publish(events: AcceptedEvent[], bytes = events.reduce((n, e) => n + storedEventBytes(e.record), 0)): Promise<PublishOutcome> {
    if (events.length === 0) return Promise.resolve({ accepted: 0, duplicates: 0, inFlight: 0 });
    const { maxQueuedEvents, maxQueuedBytes } = this.config;
    // NOTE: a request is admitted when nothing is held, whatever its size, so
    // a bound below one batch cannot refuse that batch for ever.
    if (this.heldEvents > 0 && (this.heldEvents + events.length > maxQueuedEvents || this.heldBytes + bytes > maxQueuedBytes)) {
      this.deps.metrics?.events.inc({ outcome: 'queue_full' }, events.length);
      return Promise.reject(
        new QueueFullError(
          `ingest queue full (${this.heldEvents} events, ${this.heldBytes} bytes waiting for Kafka; limits ` +
            `${maxQueuedEvents} events, ${maxQueuedBytes} bytes): retry later`,
        ),
      );
    }
    this.heldEvents += events.length;
    this.heldBytes += bytes;
    const release = () => {
      this.heldEvents -= events.length;
      this.heldBytes -= bytes;
    };
    return new Promise((resolve, reject) => {
      const request: Request = {
        outcome: { accepted: 0, duplicates: 0, inFlight: 0 },
        deadline: Date.now() + this.config.inFlightWaitMs,
        done: false,
        // Every answer goes through these once (request.done guards them).
        resolve: (outcome) => (release(), resolve(outcome)),
        reject: (err) => (release(), reject(err)),
      };
      this.queue.push({ request, events });
      this.queuedEvents += events.length;
      this.schedule();
    });
  }

  /** Resolves when every queued request has been answered, waiting ones included. */
  async drain(): Promise<void> {
    if (!this.isIdle()) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.running === 0 && this.waiting.length === 0;
  }

  private notifyIfIdle(): void {
    if (this.isIdle()) for (const resolve of this.idle.splice(0)) resolve();
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.config.maxConcurrentFlushes || this.queue.length === 0) return;
    this.scheduled = true;
    const start = () => {
      this.scheduled = false;
      this.startFlush();
    };
    // A full flush need not wait for company.
    if (this.queuedEvents >= this.config.maxFlushEvents) queueMicrotask(start);
    else if (this.config.lingerMs > 0) setTimeout(start, this.config.lingerMs);
    else setImmediate(start);
  }

  private startFlush(): void {
    if (this.running >= this.config.maxConcurrentFlushes || this.queue.length === 0) return;
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length > 0 && (batch.length === 0 || count + this.queue[0]!.events.length <= this.config.maxFlushEvents)) {
      const p = this.queue.shift()!;
      batch.push(p);
      count += p.events.length;
    }
    this.queuedEvents -= count;
    this.running++;
    void this.flush(batch, count)
      .catch((err) => {
        // A bug, not an outage: never leave a request hanging.
        this.deps.log.error({ err }, 'flush_failed');
        for (const p of batch) fail(p.request, err);
      })
      .finally(() => {
        this.running--;
        if (this.queue.length > 0) this.schedule();
        else this.notifyIfIdle();
      });
  }

  private armPoll(): void {
    if (this.pollTimer || this.waiting.length === 0) return;
    this.pollTimer = setTimeout(() => this.pollRound(), this.config.inFlightPollMs);
  }

  /** Sends every waiting event through a flush again, ahead of newer requests: they have waited longest. */
  private pollRound(): void {
    this.pollTimer = null;
    // Requests failed meanwhile (their other events' send failed) were answered: drop the rest.
    const round = this.waiting.filter((p) => !p.request.done);
    this.waiting = [];
    this.updateWaiting();
    this.queue.unshift(...round);
    this.queuedEvents += round.reduce((n, p) => n + p.events.length, 0);
    if (this.queue.length > 0) this.schedule();
    else this.notifyIfIdle();
  }

  private updateWaiting(): void {
    this.deps.metrics?.waiting.set(this.waiting.reduce((n, p) => n + p.events.length, 0));
  }

  private async flush(batch: Pending[], count: number): Promise<void> {
    const started = process.hrtime.bigint();
    const all = batch.flatMap((p) => p.events);
    // One claim per distinct (source, messageId) in the flush; repeats within it
    // are duplicates of the first, or wait with it while it is in flight elsewhere.
    const firstIndex = new Map<string, number>();
    const claimKeys: DedupeKey[] = [];
    const claimOf: number[] = new Array(all.length);
    all.forEach((e, i) => {
      const id = `${e.record.source_id}\u0000${e.record.message_id}`;
      const seen = firstIndex.get(id);
      if (seen === undefined) {
        firstIndex.set(id, claimKeys.length);
        claimOf[i] = claimKeys.length;
        claimKeys.push({ sourceId: e.record.source_id, messageId: e.record.message_id, receivedAt: e.record.received_at });
      } else claimOf[i] = -1;
    });

    let claim: Claim | null;
    let claims: ClaimResult[];
    try {
      claim = await this.deps.dedupe.claim(claimKeys);
      claims = claim.results;
    } catch (err) {
      // Redis down: keep accepting (at-least-once beats an outage); duplicates may pass.
      this.deps.log.warn({ err, events: claimKeys.length }, 'dedupe_unavailable');
      claim = null;
      claims = claimKeys.map(() => 'new');
    }

    const status = all.map((e, i): ClaimResult => {
      if (claimOf[i]! !== -1) return claims[claimOf[i]!]!;
      const first = claims[firstIndex.get(`${e.record.source_id}\u0000${e.record.message_id}`)!]!;
      return first === 'in_flight' ? 'in_flight' : 'duplicate';
    });
    // Taken over from a flush whose write may have landed: the same event, so the same receive time (the same event id downstream).
    if (claim)
      all.forEach((e, i) => {
        const earlier = claimOf[i]! === -1 ? undefined : claim.receivedAt[claimOf[i]!];
        if (earlier !== undefined) e.record.received_at = earlier;
      });
    try {
      const encoder = this.encoder;
      if (!encoder) throw new Error('EventPublisher.start() was not called');
      const messages = [];
      for (let i = 0; i < all.length; i++) {
        if (status[i] !== 'new') continue;
        const e = all[i]!;
        // No explicit Kafka timestamp: kafkajs then stamps the send time without
        // sorting thousands of timestamp strings per send; received_at is in the record.
        messages.push({ key: e.key, value: encoder.encode(e.record) });
      }
      if (messages.length > 0) await this.deps.producer.send({ topic: this.config.topic, acks: -1, messages });
    } catch (err) {
      // NOTE: a send that failed part-way may have written some partitions; the
      // client's retry then duplicates those records (at-least-once), never loses them.
      this.deps.log.error({ err, events: countOf(status, 'new') }, 'publish_failed');
      if (claim) this.deps.dedupe.release(claim).catch((e) => this.deps.log.warn({ err: e }, 'dedupe_release_failed'));
      this.deps.metrics?.events.inc({ outcome: 'failed' }, count);
      const failure = new PublishError(`writing to Kafka failed: ${(err as Error).message}`);
      for (const p of batch) fail(p.request, failure);
      return;
    }
    // Confirm before answering: a client that resends right after its 200 must
    // find "duplicate", not "in flight" (a wait, then 503 and, once the claim
    // expires, a second copy). A failed confirmation costs only that.
    if (claim && claim.sources.length > 0) {
      await this.deps.dedupe
        .confirm(claim)
        .catch((err) => this.deps.log.warn({ err, events: countOf(status, 'new') }, 'dedupe_confirm_failed'));
    }
    const now = Date.now();
    let offset = 0;
    let givenUp = 0;
    for (const p of batch) {
      const { request } = p;
      const wait: AcceptedEvent[] = [];
      for (let i = 0; i < p.events.length; i++) {
        const s = status[offset + i];
        if (s === 'new') request.outcome.accepted++;
        else if (s === 'duplicate') request.outcome.duplicates++;
        else if (now < request.deadline) wait.push(p.events[i]!);
        else {
          request.outcome.inFlight++;
          givenUp++;
        }
      }
      offset += p.events.length;
      if (wait.length > 0) this.waiting.push({ request, events: wait });
      else if (!request.done) {
        request.done = true;
        request.resolve(request.outcome);
      }
    }
    this.updateWaiting();
    this.armPoll();
    const m = this.deps.metrics;
    if (m) {
      m.events.inc({ outcome: 'accepted' }, countOf(status, 'new'));
      m.events.inc({ outcome: 'duplicate' }, countOf(status, 'duplicate'));
      m.events.inc({ outcome: 'in_flight' }, givenUp);
      m.flushSize.observe(count);
      m.flushSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}

function fail(request: Request, err: unknown): void {
  if (request.done) return;
  request.done = true;
  request.reject(err);
}

const countOf = (status: ClaimResult[], s: ClaimResult) => status.reduce((n, x) => (x === s ? n + 1 : n), 0);

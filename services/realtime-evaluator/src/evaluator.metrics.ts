// Prometheus metrics of the realtime evaluator's chunks (bounded labels: outcome).
// What a chunk holds decides what an event costs: every profile in it is
// loaded and saved once however many of its events the chunk has, and every
// chunk pays its fetch, locks, produce and save once (bench/RESULTS-fleet.md).
// So the sizes are here for operators, next to the time a chunk takes.
import type { ConsumedMessage, MessageOutcome } from '@engage/kafka';
import type { ResolvedEvent } from '@engage/schemas';
import { Counter, Histogram, type Registry } from 'prom-client';

const SIZE_BUCKETS = [1, 10, 50, 100, 250, 500, 1000, 2000, 5000];

export class EvaluatorMetrics {
  private readonly events: Counter<'outcome'>;
  private readonly chunkEvents: Histogram;
  private readonly chunkProfiles: Histogram;
  private readonly chunkSeconds: Histogram;

  constructor(deps: { registry: Registry }) {
    const registers = [deps.registry];
    this.events = new Counter({
      name: 'engage_evaluator_events_total',
      help: 'Resolved events handled, by outcome (evaluated, dlq, dropped)',
      labelNames: ['outcome'],
      registers,
    });
    this.chunkEvents = new Histogram({
      name: 'engage_evaluator_chunk_events',
      help: 'Events per evaluated chunk (the partitions of one fetch together, up to EVALUATOR_CHUNK_SIZE)',
      buckets: SIZE_BUCKETS,
      registers,
    });
    this.chunkProfiles = new Histogram({
      name: 'engage_evaluator_chunk_profiles',
      help: 'Profiles per evaluated chunk: each is loaded and saved once per chunk',
      buckets: SIZE_BUCKETS,
      registers,
    });
    this.chunkSeconds = new Histogram({
      name: 'engage_evaluator_chunk_seconds',
      help: 'Time to evaluate one chunk: load, evaluate, produce the changes, save the states',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
  }

  /** Wraps a chunk handler: its sizes, its time and its outcomes are counted once it returns (a throw counts nothing). */
  timed(
    handle: (messages: Array<ConsumedMessage<ResolvedEvent>>) => Promise<MessageOutcome[]>,
  ): (messages: Array<ConsumedMessage<ResolvedEvent>>) => Promise<MessageOutcome[]> {
    return async (messages) => {
      const started = process.hrtime.bigint();
      const outcomes = await handle(messages);
      this.chunkSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.chunkEvents.observe(messages.length);
      const profiles = new Set<string>();
      for (const m of messages) profiles.add(`${m.value.space_id}|${m.value.profile_id}`);
      this.chunkProfiles.observe(profiles.size);
      let dlq = 0;
      let dropped = 0;
      for (const o of outcomes) {
        if (o.kind === 'dlq') dlq++;
        else if (o.kind === 'drop') dropped++;
      }
      this.events.inc({ outcome: 'evaluated' }, outcomes.length - dlq - dropped);
      if (dlq > 0) this.events.inc({ outcome: 'dlq' }, dlq);
      if (dropped > 0) this.events.inc({ outcome: 'dropped' }, dropped);
      return outcomes;
    };
  }
}

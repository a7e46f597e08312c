// Prometheus metrics of the resolver (bounded labels: outcome, change kind, identifier type).
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ResolveResult } from './identity.repository';

export class ResolverMetrics {
  private readonly events: Counter<'outcome'>;
  private readonly changes: Counter<'kind'>;
  private readonly created: Counter;
  private readonly dropped: Counter<'type'>;
  private readonly graphSeconds: Histogram;

  constructor(deps: { registry: Registry }) {
    const registers = [deps.registry];
    this.events = new Counter({
      name: 'engage_identity_events_total',
      help: 'Raw events by outcome (resolved, dlq)',
      labelNames: ['outcome'],
      registers,
    });
    this.changes = new Counter({
      name: 'engage_identity_changes_total',
      help: 'Identity changes announced, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.created = new Counter({ name: 'engage_identity_profiles_created_total', help: 'Profiles created', registers });
    this.dropped = new Counter({
      name: 'engage_identity_ids_dropped_total',
      help: 'Ids left out of a merge by limits or the merge cap, by identifier type',
      labelNames: ['type'],
      registers,
    });
    this.graphSeconds = new Histogram({
      name: 'engage_identity_graph_seconds',
      help: 'Time of the identity graph update of one chunk (all its script calls)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
  }

  graphUpdate(seconds: number, results: ResolveResult[]): void {
    this.graphSeconds.observe(seconds);
    this.events.inc({ outcome: 'resolved' }, results.length);
    for (const r of results) {
      if (r.created) this.created.inc();
      for (const d of r.dropped) this.dropped.inc({ type: d.type });
    }
  }

  deadLettered(n: number): void {
    if (n > 0) this.events.inc({ outcome: 'dlq' }, n);
  }

  announced(kind: string): void {
    this.changes.inc({ kind });
  }
}

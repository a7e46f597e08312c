// Sizes over time, for the console's charts: every enabled audience's member
// count and every enabled computed trait's count of profiles with a value
// (SCARD of their member sets), recorded by @engage/config-store's
// HistoryStore at the start of the current interval.
//
// Every replica runs it: a point is keyed by its interval's start, so two
// replicas sampling the same interval write the same field (the later sample
// wins). A run writes an audience only when its interval or its size moved
// since this replica last wrote it, so the job can run several times an
// interval (no interval is missed when runs drift) for one write per interval
// of a computation whose size holds still.
import { bucketStart, type ConfigStore, type HistoryStore } from '@engage/config-store';

export interface SizeSource {
  memberCount(computationId: string): Promise<number>;
}

export class SizeHistoryJob {
  /** computation id -> the interval and size this replica last wrote. */
  private readonly written = new Map<string, { bucket: number; size: number }>();

  constructor(
    private readonly config: { intervalMs: number },
    private readonly deps: {
      store: Pick<ConfigStore, 'list'>;
      sizes: SizeSource;
      history: Pick<HistoryStore, 'recordSizes'>;
      now?: () => number;
    },
  ) {}

  /** The runs' period (ms): four a interval, so a late run still lands in its interval. */
  get everyMs(): number {
    return Math.max(250, Math.floor(this.config.intervalMs / 4));
  }

  async tick(): Promise<number> {
    const now = this.deps.now?.() ?? Date.now();
    const bucket = bucketStart(now, this.config.intervalMs);
    const audiences = [...this.deps.store.list('audience'), ...this.deps.store.list('computed_trait')].filter((a) => a.enabled);
    const sizes = await Promise.all(audiences.map((a) => this.deps.sizes.memberCount(a.id)));
    const due = audiences
      .map((a, i) => ({ computationId: a.id, size: sizes[i]! }))
      .filter(({ computationId, size }) => {
        const last = this.written.get(computationId);
        return !last || last.bucket !== bucket || last.size !== size;
      });
    await this.deps.history.recordSizes(due, now);
    for (const { computationId, size } of due) this.written.set(computationId, { bucket, size });
    // Forget audiences gone from the configuration.
    if (this.written.size > audiences.length) {
      const live = new Set(audiences.map((a) => a.id));
      for (const id of this.written.keys()) if (!live.has(id)) this.written.delete(id);
    }
    return due.length;
  }
}

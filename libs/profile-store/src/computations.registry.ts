// The live, compiled computations of every space, following engage.config:
// parsed once per definition version, kept in dependency order.
import type { ComputationConfig, ConfigStore } from '@engage/config-store';
import { compileComputation, dependencyOrder, parseQuery, type CompiledComputation } from '@engage/engine';

export interface SpaceComputations {
  /** User-level computations (audiences of type users, computed traits) in dependency order. */
  ordered: CompiledComputation[];
  /** Account-level audiences (type accounts): evaluated over an account's users (account-evaluation.ts). */
  accounts: CompiledComputation[];
  byId: Map<string, { config: ComputationConfig; compiled: CompiledComputation }>;
}

export class ComputationsRegistry {
  private spaces = new Map<string, SpaceComputations>();
  private dirty = new Set<string>();

  constructor(
    private readonly config: { computeMode: 'realtime' | 'batch' | 'all' },
    private readonly deps: { store: ConfigStore; onError?: (err: unknown, computationId: string) => void },
  ) {
    deps.store.onChange((o) => {
      if (o.kind === 'audience' || o.kind === 'computed_trait') this.dirty.add(o.spaceId);
    });
  }

  /** Compiled computations of a space, rebuilt lazily after a config change. */
  forSpace(spaceId: string): SpaceComputations {
    if (this.dirty.has(spaceId) || !this.spaces.has(spaceId)) {
      this.dirty.delete(spaceId);
      this.spaces.set(spaceId, this.build(spaceId));
    }
    return this.spaces.get(spaceId)!;
  }

  private build(spaceId: string): SpaceComputations {
    const list: Array<{ config: ComputationConfig; cls: 'audience' | 'trait' }> = [
      ...this.deps.store.list('audience', spaceId).map((config) => ({ config, cls: 'audience' as const })),
      ...this.deps.store.list('computed_trait', spaceId).map((config) => ({ config, cls: 'trait' as const })),
    ].filter(
      ({ config }) => config.enabled && (this.config.computeMode === 'all' || config.options.computeMode === this.config.computeMode),
    );
    const keys = new Set(list.map((c) => c.config.key));
    const byId = new Map<string, { config: ComputationConfig; compiled: CompiledComputation }>();
    for (const { config, cls } of list) {
      try {
        const ast = parseQuery(config.definition.query, { type: cls === 'trait' ? 'trait' : config.definition.type });
        const compiled = compileComputation(
          {
            id: config.id,
            key: config.key,
            class: cls,
            ast,
            definitionVersion: config.definitionVersion,
            // Real time counts the events that arrive after the (last) definition
            // change. With historical data, the batch scheduler's backfill adds
            // those that arrived before it, replayed from engage.events.resolved
            // (history-handover.ts): the instant splits the events between the two, so
            // none counts twice and none is missed. NOTE: account-level
            // audiences are not replayed; with historical data they read their
            // users' bounded histories whole (account-evaluation.ts).
            countsEventsFrom: config.options.includeHistoricalData && ast.type === 'accounts' ? 0 : Date.parse(config.definitionUpdatedAt),
          },
          keys,
        );
        byId.set(config.id, { config, compiled });
      } catch (err) {
        this.deps.onError?.(err, config.id);
      }
    }
    const all = [...byId.values()].map((v) => v.compiled);
    return {
      ordered: dependencyOrder(all.filter((c) => c.ast.type !== 'accounts')),
      accounts: all.filter((c) => c.ast.type === 'accounts'),
      byId,
    };
  }
}

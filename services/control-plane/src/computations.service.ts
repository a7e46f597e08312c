// Audiences and computed traits: the rules of CONTRACT.md section 2 over the
// config store. Keys are snake_cased from names and never reused in a space
// (even after deletion, across audiences and traits, since trait() reads both);
// queries are checked (422 with line and column); references may not form a
// cycle and must read each computation at its level (users / accounts);
// realtime <-> batch and the level cannot change after creation; a PATCH that
// changes nothing writes nothing.
import { unchanged } from './domain/unchanged';
import type { ComputationConfig, ConfigStore, ConfigWriter } from '@engage/config-store';
import { ApiError } from './http/api-error';
import { newId, snakeCase } from './domain/ids';
import { findCycleInGraph } from '@engage/engine';
import { QueryCheckError, type CheckedQuery, type QueryChecker, type QueryKind } from './domain/query-checker';
import type { createComputationBody, patchComputationBody } from './domain/requests';
import type { z } from 'zod';

export type ComputationKind = 'audience' | 'computed_trait';

const LABEL: Record<ComputationKind, string> = { audience: 'audience', computed_trait: 'computed trait' };

export class ComputationsService {
  constructor(private readonly deps: { store: ConfigStore; writer: ConfigWriter; checker: QueryChecker; now?: () => Date }) {}

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  get(kind: ComputationKind, spaceId: string, id: string): ComputationConfig {
    const c = this.deps.store.get(kind, id);
    if (!c || c.spaceId !== spaceId) throw ApiError.notFound(LABEL[kind], id);
    return c;
  }

  list(kind: ComputationKind, spaceId: string): ComputationConfig[] {
    return this.deps.store.list(kind, spaceId);
  }

  /** `owner`: a journey's publish creating the audience of one of its queries (journeys.service.ts). */
  async create(
    kind: ComputationKind,
    spaceId: string,
    body: z.infer<typeof createComputationBody>,
    owner?: { journeyId: string },
  ): Promise<ComputationConfig> {
    const key = body.key ?? snakeCase(body.name);
    if (!key) throw ApiError.validation('name: must contain a letter or digit to derive a key from', 'name');
    if (this.keyTaken(spaceId, key))
      throw ApiError.conflict(`key '${key}' is already used in this space (keys are never reused, even after deletion)`, 'key');
    const checked = this.check(kind, body.definition.query, body.definition.type);
    this.rejectCrossLevelReads(spaceId, checked.reads);
    this.rejectCycle(spaceId, key, checked.references);
    const now = this.now();
    const computation: ComputationConfig = {
      id: newId(kind === 'audience' ? 'aud' : 'tra'),
      spaceId,
      name: body.name,
      key,
      description: body.description,
      enabled: body.enabled,
      definition: { query: body.definition.query, type: body.definition.type },
      options: body.options,
      ...(owner ? { journeyId: owner.journeyId } : {}),
      definitionVersion: 1,
      definitionUpdatedAt: now,
      createdAt: now,
      updatedAt: now,
    };
    await this.deps.writer.write(kind, computation.id, spaceId, computation);
    return computation;
  }

  async update(
    kind: ComputationKind,
    spaceId: string,
    id: string,
    patch: z.infer<typeof patchComputationBody>,
  ): Promise<ComputationConfig> {
    const current = this.get(kind, spaceId, id);
    this.rejectJourneyOwned(current);
    if (patch.options?.computeMode && patch.options.computeMode !== current.options.computeMode) {
      throw ApiError.validation(
        `options.computeMode: cannot change from ${current.options.computeMode} to ${patch.options.computeMode} after creation`,
        'options.computeMode',
      );
    }
    // State is kept per level (user or account): a new level is a new computation.
    if (patch.definition && patch.definition.type !== current.definition.type) {
      throw ApiError.validation(
        `definition.type: cannot change from ${current.definition.type} to ${patch.definition.type} after creation`,
        'definition.type',
      );
    }
    const next: ComputationConfig = {
      ...current,
      name: patch.name ?? current.name,
      description: patch.description ?? current.description,
      enabled: patch.enabled ?? current.enabled,
      options: { ...current.options, includeHistoricalData: patch.options?.includeHistoricalData ?? current.options.includeHistoricalData },
      updatedAt: this.now(),
    };
    if (patch.definition && (patch.definition.query !== current.definition.query || patch.definition.type !== current.definition.type)) {
      const checked = this.check(kind, patch.definition.query, patch.definition.type);
      this.rejectCrossLevelReads(spaceId, checked.reads);
      this.rejectCycle(spaceId, current.key, checked.references);
      next.definition = { query: patch.definition.query, type: patch.definition.type };
      // The evaluator and scheduler drop state of older versions and re-backfill.
      next.definitionVersion = current.definitionVersion + 1;
      next.definitionUpdatedAt = next.updatedAt;
    }
    if (unchanged(current, next)) return current;
    await this.deps.writer.write(kind, id, spaceId, next);
    return next;
  }

  /** `owner`: the journey that owns the audience removing it (archive); anyone else gets a 409. */
  async remove(kind: ComputationKind, spaceId: string, id: string, owner?: { journeyId: string }): Promise<ComputationConfig> {
    const current = this.get(kind, spaceId, id);
    if (current.journeyId !== owner?.journeyId) this.rejectJourneyOwned(current);
    const dependents = this.allComputations(spaceId).filter((c) => c.id !== id && this.referencesOf(c).includes(current.key));
    if (dependents.length > 0) {
      throw ApiError.conflict(
        `${LABEL[kind]} '${current.key}' is referenced by ${dependents.map((d) => `'${d.key}'`).join(', ')}; change those first`,
      );
    }
    // Its connections go with it: a dispatcher must not keep a connection to nothing.
    for (const connection of this.deps.store.list('connection', spaceId).filter((c) => c.computationId === id)) {
      await this.deps.writer.write(
        'connection',
        connection.id,
        spaceId,
        { ...connection, enabled: false, updatedAt: this.now() },
        { deleted: true },
      );
    }
    await this.deps.writer.write(kind, id, spaceId, { ...current, enabled: false, updatedAt: this.now() }, { deleted: true });
    return current;
  }

  /** Checks a query for the given kind; a 422 names the position and what was expected. */
  check(kind: ComputationKind, query: string, type: 'users' | 'accounts') {
    const queryKind: QueryKind = kind === 'computed_trait' ? 'trait' : type;
    try {
      return this.deps.checker.check(query, queryKind, type === 'accounts' ? 'account' : 'user');
    } catch (err) {
      if (err instanceof QueryCheckError) {
        throw new ApiError(422, [
          {
            type: 'invalid-query',
            message: `definition.query: ${err.position.line}:${err.position.column}: ${err.message}`,
            field: 'definition.query',
          },
        ]);
      }
      throw err;
    }
  }

  /** A users-level read of an account-level computation (or the reverse) has no value to read: 422. */
  private rejectCrossLevelReads(spaceId: string, reads: CheckedQuery['reads']): void {
    const byKey = new Map(this.allComputations(spaceId).map((c) => [c.key, c]));
    for (const read of reads ?? []) {
      const target = byKey.get(read.name);
      if (!target) continue;
      const level = target.definition.type === 'accounts' ? 'account' : 'user';
      if (level === read.level) continue;
      const what = `${level}-level ${this.isTrait(target) ? 'computed trait' : 'audience'} '${read.name}'`;
      const where = read.level === 'user' ? 'where a user is evaluated' : 'where an account is evaluated (read it inside ANY or ALL)';
      throw ApiError.validation(`definition.query: trait('${read.name}') reads the ${what} ${where}`, 'definition.query');
    }
  }

  private isTrait(c: ComputationConfig): boolean {
    return this.deps.store.get('computed_trait', c.id) !== undefined;
  }

  /** A journey's audiences change with the journey only (a new version makes new ones). */
  private rejectJourneyOwned(c: ComputationConfig): void {
    if (!c.journeyId) return;
    const journey = this.deps.store.get('journey', c.journeyId);
    throw ApiError.conflict(
      `audience '${c.key}' belongs to journey ${c.journeyId}${journey ? ` ('${journey.key}')` : ''}: change or archive the journey instead`,
    );
  }

  /** Audiences and computed traits share one key space; deleted ones keep their keys. */
  keyTaken(spaceId: string, key: string): boolean {
    const all = [
      ...this.deps.store.listStored('audience', spaceId, { includeDeleted: true }),
      ...this.deps.store.listStored('computed_trait', spaceId, { includeDeleted: true }),
    ];
    return all.some((o) => o.body.key === key);
  }

  private allComputations(spaceId: string): ComputationConfig[] {
    return [...this.deps.store.list('audience', spaceId), ...this.deps.store.list('computed_trait', spaceId)];
  }

  private referencesOf(c: ComputationConfig): string[] {
    try {
      return this.deps.checker.check(c.definition.query, this.deps.store.get('computed_trait', c.id) ? 'trait' : c.definition.type)
        .references;
    } catch {
      return [];
    }
  }

  private rejectCycle(spaceId: string, key: string, references: string[]): void {
    const nodes = this.allComputations(spaceId)
      .filter((c) => c.key !== key)
      .map((c) => ({ key: c.key, references: this.referencesOf(c) }));
    nodes.unshift({ key, references });
    const cycle = findCycleInGraph(nodes);
    if (cycle) throw ApiError.validation(`definition.query: references form a cycle: ${cycle.join(' -> ')}`, 'definition.query');
  }
}

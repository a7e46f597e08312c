// Journeys (CONTRACT.md section 9) over the config store. A journey is edited
// as a draft; publish freezes the draft as a new version, makes an audience of
// each query it holds (entry, split and branch conditions: computed by the
// realtime evaluator like any audience, history included) and connects each
// send step's key to its destinations. Users keep walking the version they
// entered under, so nothing of an older version is changed by a publish.
import type { ConfigStore, ConfigWriter, ConnectionConfig, JourneyConfig, JourneyStep, JourneyVersion } from '@engage/config-store';
import { assignStepKeys, journeyGraphProblems, randomStepSuffix, type JourneyInput, type journeyPatchSchema } from '@engage/journeys';
import type { z } from 'zod';
import type { ComputationsService } from './computations.service';
import { newId } from './domain/ids';
import { unchanged } from './domain/unchanged';
import { ApiError, type ApiErrorItem } from './http/api-error';

export type JourneyPatch = z.infer<typeof journeyPatchSchema>;
type Definition = Pick<JourneyConfig, 'entry' | 'start' | 'steps'>;

/** A query the publish makes a journey-owned audience of, and where its id goes. */
interface OwnedQuery {
  key: string;
  part: string;
  query: string;
  /** 'entry', or the split/branch step id whose conditions it fills (in order). */
  role: { entry: true } | { stepId: string };
}

/** `j_<journey key>_v<version>_<part>`, lowercase with _ (audience keys are snake_case). */
export function journeyAudienceKey(journeyKey: string, version: number, part: string): string {
  return `j_${journeyKey}_v${version}_${part.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

/** The queries of a definition, in step order: the entry's, each split's, each branch's (`<step>_<n>`, n from 1). */
export function ownedQueries(journeyKey: string, version: number, def: Definition): OwnedQuery[] {
  const out: OwnedQuery[] = [];
  const add = (part: string, query: string, role: OwnedQuery['role']) =>
    out.push({ key: journeyAudienceKey(journeyKey, version, part), part, query, role });
  if ('query' in def.entry) add('entry', def.entry.query, { entry: true });
  for (const step of def.steps) {
    if (step.type === 'split') add(step.id, step.query, { stepId: step.id });
    if (step.type === 'branch') step.branches.forEach((b, n) => add(`${step.id}_${n + 1}`, b.query, { stepId: step.id }));
  }
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export class JourneysService {
  constructor(
    private readonly deps: {
      store: ConfigStore;
      writer: ConfigWriter;
      /** The audiences API's own path: journey-owned audiences are created and removed through it. */
      computations: ComputationsService;
      now?: () => Date;
      /** The 6 characters ending a send step's key (tests pin them). */
      stepSuffix?: () => string;
    },
  ) {}

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  get(spaceId: string, id: string): JourneyConfig {
    const j = this.deps.store.get('journey', id);
    if (!j || j.spaceId !== spaceId) throw ApiError.notFound('journey', id);
    return j;
  }

  list(spaceId: string): JourneyConfig[] {
    return this.deps.store.list('journey', spaceId);
  }

  async create(spaceId: string, input: JourneyInput): Promise<JourneyConfig> {
    // Keys name every send step's key (what destinations see): never reused, archived journeys included.
    if (this.deps.store.listStored('journey', spaceId, { includeDeleted: true }).some((o) => o.body.key === input.key))
      throw ApiError.conflict(`key '${input.key}' is already used by a journey in this space (journey keys are never reused)`, 'key');
    this.checkDefinition(spaceId, input);
    const at = this.now();
    const journey: JourneyConfig = {
      id: newId('jou'),
      spaceId,
      name: input.name,
      key: input.key,
      status: 'Draft',
      entry: input.entry,
      reentry: input.reentry,
      includeExistingMembers: input.includeExistingMembers,
      start: input.start,
      steps: input.steps as JourneyStep[],
      stepKeys: assignStepKeys(input.key, input.steps as JourneyStep[], {}, this.deps.stepSuffix ?? randomStepSuffix),
      versions: [],
      createdAt: at,
      updatedAt: at,
    };
    await this.deps.writer.write('journey', journey.id, spaceId, journey);
    return journey;
  }

  /** Edits the draft (what the next publish freezes); published versions never change. */
  async update(spaceId: string, id: string, patch: JourneyPatch): Promise<JourneyConfig> {
    const current = this.get(spaceId, id);
    if (current.status === 'Archived') throw ApiError.conflict(`journey '${current.key}' is archived: it cannot be edited`);
    const next: JourneyConfig = {
      ...current,
      name: patch.name ?? current.name,
      entry: patch.entry ?? current.entry,
      reentry: patch.reentry ?? current.reentry,
      includeExistingMembers: patch.includeExistingMembers ?? current.includeExistingMembers,
      start: patch.start ?? current.start,
      steps: (patch.steps as JourneyStep[] | undefined) ?? current.steps,
      updatedAt: this.now(),
    };
    if (!same([current.entry, current.start, current.steps], [next.entry, next.start, next.steps])) this.checkDefinition(spaceId, next);
    // A step keeps its key across edits (destinations key their data by it); new send steps get one.
    next.stepKeys = assignStepKeys(current.key, next.steps, current.stepKeys, this.deps.stepSuffix ?? randomStepSuffix);
    if (unchanged(current, next)) return current;
    await this.deps.writer.write('journey', id, spaceId, next);
    return next;
  }

  /**
   * Freezes the draft as version n+1 and makes it Live: its queries' audiences
   * first, then its send steps' connections, then the journey (so nothing
   * reading the journey meets a version whose audiences do not exist yet).
   */
  async publish(spaceId: string, id: string): Promise<JourneyConfig> {
    const current = this.get(spaceId, id);
    if (current.status === 'Archived') throw ApiError.conflict(`journey '${current.key}' is archived: it cannot be published`);
    // Checked again: a destination or the entry audience may have been deleted since the last edit.
    this.checkDefinition(spaceId, current);
    const version = (current.versions.at(-1)?.version ?? 0) + 1;
    const queries = ownedQueries(current.key, version, current);
    // Every key checked before anything is written, so a refused publish leaves nothing behind.
    const seen = new Set<string>();
    for (const q of queries) {
      if (seen.has(q.key) || this.deps.computations.keyTaken(spaceId, q.key))
        throw ApiError.conflict(`publishing would create audience '${q.key}', but that key is already used in this space`);
      seen.add(q.key);
    }
    const conditions: Record<string, string[]> = {};
    let entryComputationId = 'audienceId' in current.entry ? current.entry.audienceId : '';
    for (const q of queries) {
      const audience = await this.deps.computations.create(
        'audience',
        spaceId,
        {
          name: `${current.name} v${version} ${q.part}`.slice(0, 200),
          key: q.key,
          description: `Journey '${current.key}' version ${version}: ${'entry' in q.role ? 'entry' : `step ${q.role.stepId}`}`,
          enabled: true,
          definition: { query: q.query, type: 'users' },
          options: { includeHistoricalData: true, computeMode: 'realtime' },
        },
        { journeyId: current.id },
      );
      if ('entry' in q.role) entryComputationId = audience.id;
      else (conditions[q.role.stepId] ??= []).push(audience.id);
    }
    const stepKeys = Object.fromEntries(current.steps.filter((s) => s.type === 'send').map((s) => [s.id, current.stepKeys[s.id]!]));
    const at = this.now();
    await this.connectSendSteps(current, stepKeys, at);
    const published: JourneyVersion = {
      version,
      publishedAt: at,
      entryComputationId,
      start: current.start,
      steps: current.steps,
      conditions,
      stepKeys,
    };
    const next: JourneyConfig = { ...current, status: 'Live', versions: [...current.versions, published], updatedAt: at };
    await this.deps.writer.write('journey', id, spaceId, next);
    return next;
  }

  /**
   * One connection per (send step key, destination). One that exists is kept:
   * users still on an older version reach the same step (same key). Its
   * settings follow the newest version.
   * NOTE: no initial sync: a journey step has no "current members" to send.
   * The dispatcher's initial sync (services/dispatcher resync.job.ts) only
   * runs for connections of an audience or computed trait it can find by
   * computationId; a journey_step connection's computationId is the journey.
   */
  private async connectSendSteps(journey: JourneyConfig, stepKeys: Record<string, string>, at: string): Promise<void> {
    const existing = this.deps.store
      .list('connection', journey.spaceId)
      .filter((c) => c.computationClass === 'journey_step' && c.computationId === journey.id);
    for (const step of journey.steps) {
      if (step.type !== 'send') continue;
      const computationKey = stepKeys[step.id]!;
      const done = new Set<string>();
      for (const d of step.destinations) {
        if (done.has(d.destinationId)) continue;
        done.add(d.destinationId);
        // The step's whole settings (trait activation included), as an audience connection's.
        const settings = { ...d.settings };
        const have = existing.find((c) => c.computationKey === computationKey && c.destinationId === d.destinationId);
        if (have) {
          if (have.enabled && same(have.settings, settings)) continue;
          await this.deps.writer.write('connection', have.id, journey.spaceId, { ...have, settings, enabled: true, updatedAt: at });
          continue;
        }
        const connection: ConnectionConfig = {
          id: newId('con'),
          spaceId: journey.spaceId,
          computationId: journey.id,
          computationClass: 'journey_step',
          computationKey,
          destinationId: d.destinationId,
          settings,
          enabled: true,
          createdAt: at,
          updatedAt: at,
        };
        await this.deps.writer.write('connection', connection.id, journey.spaceId, connection);
      }
    }
  }

  async pause(spaceId: string, id: string): Promise<JourneyConfig> {
    const current = this.get(spaceId, id);
    if (current.status !== 'Live')
      throw ApiError.conflict(`journey '${current.key}' is ${current.status}: only a Live journey can be paused`);
    return this.setStatus(current, 'Paused');
  }

  async resume(spaceId: string, id: string): Promise<JourneyConfig> {
    const current = this.get(spaceId, id);
    if (current.status !== 'Paused')
      throw ApiError.conflict(`journey '${current.key}' is ${current.status}: only a Paused journey can be resumed`);
    return this.setStatus(current, 'Live');
  }

  /**
   * Archived is final: users stop walking it, its audiences (which nobody else
   * reads) and its connections are deleted. The record stays, with its key.
   */
  async archive(spaceId: string, id: string, opts: { idempotent?: boolean } = {}): Promise<JourneyConfig> {
    const current = this.get(spaceId, id);
    if (current.status === 'Archived') {
      if (opts.idempotent) return current;
      throw ApiError.conflict(`journey '${current.key}' is already archived`);
    }
    const archived = await this.setStatus(current, 'Archived');
    const at = this.now();
    for (const c of this.deps.store
      .list('connection', spaceId)
      .filter((c) => c.computationClass === 'journey_step' && c.computationId === id))
      await this.deps.writer.write('connection', c.id, spaceId, { ...c, enabled: false, updatedAt: at }, { deleted: true });
    for (const a of this.deps.store.list('audience', spaceId).filter((a) => a.journeyId === id))
      await this.deps.computations.remove('audience', spaceId, a.id, { journeyId: id });
    return archived;
  }

  private async setStatus(current: JourneyConfig, status: JourneyConfig['status']): Promise<JourneyConfig> {
    const next = { ...current, status, updatedAt: this.now() };
    await this.deps.writer.write('journey', current.id, current.spaceId, next);
    return next;
  }

  /** True when the draft differs from the latest version (or nothing was published): what a publish would change. */
  draftChanged(journey: JourneyConfig): boolean {
    const last = journey.versions.at(-1);
    if (!last) return true;
    if (!same([journey.start, journey.steps], [last.start, last.steps])) return true;
    if ('audienceId' in journey.entry) return journey.entry.audienceId !== last.entryComputationId;
    const entryAudience = this.deps.store.get('audience', last.entryComputationId);
    return entryAudience?.journeyId !== journey.id || entryAudience.definition.query !== journey.entry.query;
  }

  /**
   * 422 listing everything wrong with a definition: the graph (messages of
   * journeyGraphProblems, naming the step), an entry audience or a destination
   * not in the space, a query the language refuses (naming the step's field).
   */
  private checkDefinition(spaceId: string, def: Definition): void {
    const items: ApiErrorItem[] = journeyGraphProblems(def).map((message) => ({
      type: 'validation',
      message,
      field: message.slice(0, message.indexOf(':')),
    }));
    if ('audienceId' in def.entry) {
      const a = this.deps.store.get('audience', def.entry.audienceId);
      if (!a || a.spaceId !== spaceId)
        items.push({
          type: 'validation',
          message: `entry.audienceId: audience ${def.entry.audienceId} not found in this space`,
          field: 'entry.audienceId',
        });
    }
    const query = (field: string, text: string) => {
      try {
        this.deps.computations.check('audience', text, 'users');
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        for (const i of err.items) items.push({ type: i.type, message: i.message.replace(/^definition\.query/, field), field });
      }
    };
    if ('query' in def.entry) query('entry.query', def.entry.query);
    for (const step of def.steps) {
      if (step.type === 'split') query(`steps.${step.id}.query`, step.query);
      if (step.type === 'branch') step.branches.forEach((b, n) => query(`steps.${step.id}.branches.${n}.query`, b.query));
      if (step.type === 'send') {
        step.destinations.forEach((d, n) => {
          const dst = this.deps.store.get('destination', d.destinationId);
          if (!dst || dst.spaceId !== spaceId) {
            const field = `steps.${step.id}.destinations.${n}.destinationId`;
            items.push({ type: 'validation', message: `${field}: destination ${d.destinationId} not found in this space`, field });
          }
        });
      }
    }
    if (items.length > 0) throw new ApiError(422, items);
  }
}

// `engage apply`, the pure half: compare a space file with what the space
// holds and list the API calls that make them equal (none when they already
// are). Problems the API would only find halfway through (a changed destination
// type or compute mode, a connection to an unknown destination) are found here,
// before any write.
import { dependenciesOf, parseQuery, QueryError } from '@engage/engine';
import { journeyGraphProblems } from '@engage/journeys';
import type { JourneySpec, ParsedSpaceFile } from './space-file';
import { KIND_PATH, type ComputationKind, type ComputationObject, type SpaceState } from './space-state';

export type StepKind = 'space' | 'source' | 'destination' | ComputationKind | 'connection' | 'journey';

export interface Step {
  op: 'create' | 'update' | 'delete';
  kind: StepKind;
  /** What a person reads in the output: "audience buyers", "destination 'Hook'". */
  label: string;
  /** The object's id (update, delete). */
  id?: string;
  /** Create body or PATCH body. */
  body?: Record<string, unknown>;
  /** Changed fields of an update. */
  fields?: string[];
  /** For connections: the computation and destination it joins (ids resolved when the step runs). */
  connection?: { computationKind: ComputationKind; computationKey: string; destinationName: string };
  /**
   * Journeys: a lifecycle call (POST .../journeys/{id}/<action>) instead of a
   * create or PATCH; counted as an update. `key` names the journey (its id may
   * only be known once an earlier step created it).
   */
  journey?: { key: string; action?: 'publish' | 'pause' | 'resume' };
}

export interface ApplyPlan {
  steps: Step[];
  /** Objects of the file that already match. */
  unchanged: number;
  problems: string[];
}

type Desired = ParsedSpaceFile;

/** Stable JSON for comparisons: sorted keys, undefined dropped. */
export function canonical(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, norm((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(norm(value));
}
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** What the API shows for a secret setting (CONTRACT.md section 7: secrets are write-only). */
const SECRET_MASK = '********';

/**
 * Destination settings as the API shows them (`have`) against the file's:
 * a masked value matches any value the file gives, since the API never shows
 * the stored one. NOTE: so a changed secret alone is not seen; when anything
 * else differs, the file's settings are sent whole, secrets included.
 */
function sameSettings(have: unknown, want: unknown): boolean {
  if (have === SECRET_MASK) return want !== undefined && want !== null && want !== '';
  if (have && want && typeof have === 'object' && typeof want === 'object' && Array.isArray(have) === Array.isArray(want)) {
    const h = have as Record<string, unknown>;
    const w = want as Record<string, unknown>;
    const keys = new Set([...Object.keys(h), ...Object.keys(w)].filter((k) => h[k] !== undefined || w[k] !== undefined));
    return [...keys].every((k) => sameSettings(h[k], w[k]));
  }
  return same(have, want);
}

/** Keys of other computations a query reads; [] when it does not parse (the API reports that). */
function referencesOf(
  c: { definition: { query: string; type: 'users' | 'accounts' } },
  kind: ComputationKind,
  keys: Set<string>,
): string[] {
  try {
    return dependenciesOf(parseQuery(c.definition.query, { type: kind === 'computed_trait' ? 'trait' : c.definition.type }), keys)
      .computations;
  } catch {
    return [];
  }
}

/** Referenced computations before the ones that read them (a cycle is left in file order: the API rejects it). */
function dependencyOrder<T extends { key: string }>(items: T[], refs: (item: T) => string[]): T[] {
  const byKey = new Map(items.map((i) => [i.key, i]));
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (item: T) => {
    if (state.has(item.key)) return;
    state.set(item.key, 'visiting');
    for (const ref of refs(item)) {
      const dep = byKey.get(ref);
      if (dep) visit(dep);
    }
    state.set(item.key, 'done');
    out.push(item);
  };
  items.forEach(visit);
  return out;
}

/** Matches by name; more than one object with the name in the space cannot be matched. */
function uniqueByName<T extends { name: string; id: string }>(list: T[], what: string, problems: string[]): Map<string, T> {
  const out = new Map<string, T>();
  for (const item of list) {
    if (out.has(item.name))
      problems.push(
        `${what} '${item.name}' exists more than once in the space (${out.get(item.name)!.id}, ${item.id}): rename one through the API first`,
      );
    out.set(item.name, item);
  }
  return out;
}

export function planApply(file: Desired, current: SpaceState | null, opts: { prune?: boolean } = {}): ApplyPlan {
  const steps: Step[] = [];
  const problems: string[] = [];
  let unchanged = 0;
  const state: SpaceState = current ?? {
    space: { id: '', name: file.space.name },
    sources: [],
    destinations: [],
    audiences: [],
    computedTraits: [],
    connections: [],
    journeys: [],
  };

  if (!current) steps.push({ op: 'create', kind: 'space', label: `space '${file.space.name}'`, body: { name: file.space.name } });
  else if (current.space.name !== file.space.name) {
    steps.push({
      op: 'update',
      kind: 'space',
      label: `space '${current.space.name}'`,
      id: current.space.id,
      body: { name: file.space.name },
      fields: ['name'],
    });
  } else unchanged++;

  // Sources: matched by name; the write key is never changed by apply.
  const sources = uniqueByName(state.sources, 'source', problems);
  for (const s of file.sources) {
    const label = `source '${s.name}'`;
    const have = sources.get(s.name);
    if (!have) {
      steps.push({
        op: 'create',
        kind: 'source',
        label,
        body: { name: s.name, enabled: s.enabled, ...(s.rateLimit ? { rateLimit: s.rateLimit } : {}) },
      });
      continue;
    }
    const body: Record<string, unknown> = {};
    if (have.enabled !== s.enabled) body.enabled = s.enabled;
    if (!same(have.rateLimit, s.rateLimit)) body.rateLimit = s.rateLimit ?? null;
    if (!pushUpdate(steps, 'source', label, have.id, body)) unchanged++;
  }

  // Destinations: matched by name; a type is fixed at creation.
  const destinations = uniqueByName(state.destinations, 'destination', problems);
  file.destinations.forEach((d, i) => {
    const label = `destination '${d.name}'`;
    const have = destinations.get(d.name);
    if (!have) {
      steps.push({
        op: 'create',
        kind: 'destination',
        label,
        body: { name: d.name, type: d.type, settings: d.settings, enabled: d.enabled, ...(d.rateLimit ? { rateLimit: d.rateLimit } : {}) },
      });
      return;
    }
    if (have.type !== d.type) {
      problems.push(
        `destinations[${i}] '${d.name}': type cannot change from ${have.type} to ${d.type}; give the new destination another name`,
      );
      return;
    }
    const body: Record<string, unknown> = {};
    if (!sameSettings(have.settings, d.settings)) body.settings = d.settings;
    if (!same(have.rateLimit, d.rateLimit)) body.rateLimit = d.rateLimit ?? null;
    if (have.enabled !== d.enabled) body.enabled = d.enabled;
    if (!pushUpdate(steps, 'destination', label, have.id, body)) unchanged++;
  });

  // Computations: matched by key across audiences and traits (one key space).
  const existing = new Map<string, { kind: ComputationKind; object: ComputationObject }>();
  for (const a of state.audiences) existing.set(a.key, { kind: 'audience', object: a });
  for (const t of state.computedTraits) existing.set(t.key, { kind: 'computed_trait', object: t });
  const desired = [
    ...file.audiences.map((spec, i) => ({ key: spec.key, kind: 'audience' as const, spec, where: `audiences[${i}]` })),
    ...file.computedTraits.map((spec, i) => ({ key: spec.key, kind: 'computed_trait' as const, spec, where: `computedTraits[${i}]` })),
  ];
  // The language library checks queries here as the API would: a bad one stops the apply before any write.
  for (const { kind, spec, where } of desired) {
    try {
      parseQuery(spec.definition.query, { type: kind === 'computed_trait' ? 'trait' : spec.definition.type });
    } catch (err) {
      if (!(err instanceof QueryError)) throw err;
      problems.push(`${where} '${spec.key}': definition.query: ${err.line}:${err.column}: ${err.message}`);
    }
  }
  const allKeys = new Set([...desired.map((d) => d.key), ...existing.keys()]);
  for (const { key, kind, spec, where } of dependencyOrder(desired, (d) => referencesOf(d.spec, d.kind, allKeys))) {
    const label = `${KIND_PATH[kind].label} ${key}`;
    const match = existing.get(key);
    if (!match) {
      const { destinations: _connections, ...body } = spec;
      void _connections;
      steps.push({ op: 'create', kind, label, body: { ...body, key } });
      continue;
    }
    if (match.kind !== kind) {
      problems.push(
        `${where} '${key}': is a ${KIND_PATH[match.kind].label} in the space, not a ${KIND_PATH[kind].label}; keys are never reused`,
      );
      continue;
    }
    const have = match.object;
    if (have.options.computeMode !== spec.options.computeMode) {
      problems.push(
        `${where} '${key}': options.computeMode cannot change from ${have.options.computeMode} to ${spec.options.computeMode} after creation`,
      );
      continue;
    }
    if (have.definition.type !== spec.definition.type) {
      problems.push(
        `${where} '${key}': definition.type cannot change from ${have.definition.type} to ${spec.definition.type} after creation`,
      );
      continue;
    }
    const body: Record<string, unknown> = {};
    if (have.name !== spec.name) body.name = spec.name;
    if (have.description !== spec.description) body.description = spec.description;
    if (have.enabled !== spec.enabled) body.enabled = spec.enabled;
    if (have.definition.query !== spec.definition.query) body.definition = spec.definition;
    if (have.options.includeHistoricalData !== spec.options.includeHistoricalData)
      body.options = { includeHistoricalData: spec.options.includeHistoricalData };
    if (!pushUpdate(steps, kind, label, have.id, body)) unchanged++;
  }

  // Connections: one per (computation, destination name).
  const knownDestinations = new Set([...destinations.keys(), ...file.destinations.map((d) => d.name)]);
  const destinationIdByName = new Map([...destinations].map(([n, d]) => [n, d.id]));
  const wanted = new Set<string>();
  for (const { key, kind, spec, where } of desired) {
    const have = existing.get(key)?.kind === kind ? existing.get(key)!.object : undefined;
    spec.destinations.forEach((c, j) => {
      const label = `connection ${key} -> '${c.destination}'`;
      if (!knownDestinations.has(c.destination)) {
        problems.push(`${where}.destinations[${j}].destination: no destination named '${c.destination}' in the file or the space`);
        return;
      }
      const destinationId = destinationIdByName.get(c.destination);
      const con =
        have && destinationId ? state.connections.find((x) => x.computationId === have.id && x.destinationId === destinationId) : undefined;
      if (con) wanted.add(con.id);
      if (!con) {
        steps.push({
          op: 'create',
          kind: 'connection',
          label,
          body: { enabled: c.enabled, settings: c.settings },
          connection: { computationKind: kind, computationKey: key, destinationName: c.destination },
        });
        return;
      }
      const body: Record<string, unknown> = {};
      if (con.enabled !== c.enabled) body.enabled = c.enabled;
      if (!same(con.settings, c.settings)) body.settings = c.settings;
      if (Object.keys(body).length === 0) return void unchanged++;
      steps.push({
        op: 'update',
        kind: 'connection',
        label,
        id: con.id,
        body,
        fields: Object.keys(body),
        connection: { computationKind: kind, computationKey: key, destinationName: c.destination },
      });
    });
  }

  // Journeys last: they name destinations and audiences the steps above may create.
  unchanged += planJourneys(file, state, steps, problems);

  if (opts.prune && current) steps.push(...pruneSteps(file, state, desired, wanted));
  return { steps, unchanged, problems };
}

/** The definition fields of a journey: a change of one of them makes the draft differ from the published version. */
const JOURNEY_DEFINITION = ['entry', 'start', 'steps'] as const;
const JOURNEY_FIELDS = ['name', ...JOURNEY_DEFINITION, 'reentry', 'includeExistingMembers'] as const;

/**
 * A journey's references as the API takes them: a destination named in the
 * file or the space stands for its id, an audience key for the audience's id;
 * anything else is taken as an id. `ids` are what is known now (the space
 * before the apply, or everything created so far when a step runs).
 */
export function resolveJourneyRefs<T extends Partial<Pick<JourneySpec, 'entry' | 'steps'>>>(
  spec: T,
  ids: { destinations: Map<string, string>; computations: Map<string, string> },
): T {
  const out = { ...spec };
  if (spec.entry && 'audienceId' in spec.entry)
    out.entry = { audienceId: ids.computations.get(spec.entry.audienceId) ?? spec.entry.audienceId };
  if (spec.steps)
    out.steps = spec.steps.map((step) =>
      step.type === 'send'
        ? {
            ...step,
            destinations: step.destinations.map((d) => ({ ...d, destinationId: ids.destinations.get(d.destinationId) ?? d.destinationId })),
          }
        : step,
    );
  return out;
}

/**
 * Journeys, matched by key: created or their draft patched, then published
 * when the file asks for Live or Paused and the draft differs from the last
 * version, then paused or resumed to the file's status. Returns how many
 * journeys already matched.
 */
function planJourneys(file: Desired, state: SpaceState, steps: Step[], problems: string[]): number {
  let unchanged = 0;
  const byKey = new Map(state.journeys.map((j) => [j.key, j]));
  const destinationIds = new Map(state.destinations.map((d) => [d.name, d.id]));
  const knownDestinations = new Set([...state.destinations.flatMap((d) => [d.name, d.id]), ...file.destinations.map((d) => d.name)]);
  const audienceIds = new Map(state.audiences.map((a) => [a.key, a.id]));
  const knownAudiences = new Set([...state.audiences.flatMap((a) => [a.key, a.id]), ...file.audiences.map((a) => a.key)]);
  (file.journeys ?? []).forEach((spec, i) => {
    const where = `journeys[${i}] '${spec.key}'`;
    const label = `journey ${spec.key}`;
    const before = problems.length;
    for (const p of journeyGraphProblems(spec)) problems.push(`${where}: ${p}`);
    if ('audienceId' in spec.entry && !knownAudiences.has(spec.entry.audienceId))
      problems.push(`${where}: entry.audienceId: no audience '${spec.entry.audienceId}' (key or id) in the file or the space`);
    for (const step of spec.steps) {
      if (step.type !== 'send') continue;
      step.destinations.forEach((d, n) => {
        if (!knownDestinations.has(d.destinationId))
          problems.push(
            `${where}: steps.${step.id}.destinations.${n}.destinationId: no destination '${d.destinationId}' (name or id) in the file or the space`,
          );
      });
    }
    if (problems.length > before) return;
    const { status, ...input } = spec;
    const want = resolveJourneyRefs(input, { destinations: destinationIds, computations: audienceIds });
    const have = byKey.get(spec.key);
    const publish = status === 'Live' || status === 'Paused';
    const action = (a: 'publish' | 'pause' | 'resume', fields: string[] = []) =>
      steps.push({ op: 'update', kind: 'journey', label, journey: { key: spec.key, action: a }, fields: [a, ...fields] });
    if (!have) {
      steps.push({ op: 'create', kind: 'journey', label, body: input, journey: { key: spec.key } });
      if (publish) action('publish');
      if (status === 'Paused') action('pause');
      return;
    }
    if (have.status === 'Archived') {
      problems.push(`${where}: the journey is archived in the space (${have.id}); journey keys are never reused: give it another key`);
      return;
    }
    if (status === 'Draft' && have.versions.length > 0) {
      problems.push(`${where}: status Draft, but the journey was published (${have.status}); use Live or Paused`);
      return;
    }
    const body: Record<string, unknown> = {};
    for (const field of JOURNEY_FIELDS) if (!same(have[field], want[field])) body[field] = input[field];
    const definitionChanged = JOURNEY_DEFINITION.some((f) => f in body);
    const needsPublish = publish && (have.draftChanged || definitionChanged);
    if (Object.keys(body).length > 0) {
      steps.push({ op: 'update', kind: 'journey', label, id: have.id, body, fields: Object.keys(body), journey: { key: spec.key } });
    }
    if (needsPublish) action('publish');
    const statusAfter = needsPublish ? 'Live' : have.status;
    if (status === 'Paused' && statusAfter === 'Live') action('pause');
    if (status === 'Live' && statusAfter === 'Paused') action('resume');
    if (Object.keys(body).length === 0 && !needsPublish && !(status && status !== statusAfter)) unchanged++;
  });
  return unchanged;
}

function pushUpdate(steps: Step[], kind: StepKind, label: string, id: string, body: Record<string, unknown>): boolean {
  if (Object.keys(body).length === 0) return false;
  steps.push({ op: 'update', kind, label, id, body, fields: Object.keys(body) });
  return true;
}

/** Deletions for --prune: connections, then computations (readers before what they read), then destinations and sources. */
function pruneSteps(file: Desired, state: SpaceState, desired: Array<{ key: string }>, wantedConnections: Set<string>): Step[] {
  const steps: Step[] = [];
  // Journeys first: they read the audiences and destinations deleted below.
  const journeyKeys = new Set((file.journeys ?? []).map((j) => j.key));
  for (const j of state.journeys)
    if (j.status !== 'Archived' && !journeyKeys.has(j.key))
      steps.push({ op: 'delete', kind: 'journey', label: `journey ${j.key}`, id: j.id, journey: { key: j.key } });
  const keep = new Set(desired.map((d) => d.key));
  const computations = [
    ...state.audiences.map((object) => ({ key: object.key, kind: 'audience' as const, object })),
    ...state.computedTraits.map((object) => ({ key: object.key, kind: 'computed_trait' as const, object })),
  ];
  const byId = new Map(computations.map((c) => [c.object.id, c]));
  const destinationName = new Map(state.destinations.map((d) => [d.id, d.name]));
  for (const con of state.connections) {
    const c = byId.get(con.computationId);
    if (!c || wantedConnections.has(con.id)) continue;
    const name = destinationName.get(con.destinationId);
    const label = `connection ${c.key} -> ${name ? `'${name}'` : `deleted destination ${con.destinationId}`}`;
    steps.push({
      op: 'delete',
      kind: 'connection',
      label,
      id: con.id,
      connection: { computationKind: c.kind, computationKey: c.key, destinationName: name ?? '' },
    });
  }
  const keys = new Set(computations.map((c) => c.key));
  const gone = dependencyOrder(computations, (c) => referencesOf(c.object, c.kind, keys)).filter((c) => !keep.has(c.key));
  for (const c of gone.reverse()) steps.push({ op: 'delete', kind: c.kind, label: `${KIND_PATH[c.kind].label} ${c.key}`, id: c.object.id });
  const destinationNames = new Set(file.destinations.map((d) => d.name));
  for (const d of state.destinations)
    if (!destinationNames.has(d.name)) steps.push({ op: 'delete', kind: 'destination', label: `destination '${d.name}'`, id: d.id });
  const sourceNames = new Set(file.sources.map((s) => s.name));
  for (const s of state.sources)
    if (!sourceNames.has(s.name)) steps.push({ op: 'delete', kind: 'source', label: `source '${s.name}'`, id: s.id });
  return steps;
}

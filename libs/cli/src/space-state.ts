// What a space holds now, read through the API, and its space-file form
// (what `engage export` prints).
import type { ControlPlaneClient } from './api-client';
import type { ComputationSpec, JourneySpec, SpaceFile } from './space-file';

export interface RateLimit {
  requestsPerSecond: number;
  burst?: number;
}
export interface SpaceObject {
  id: string;
  name: string;
}
export interface SourceObject {
  id: string;
  name: string;
  writeKey: string;
  enabled: boolean;
  rateLimit?: RateLimit;
}
export interface DestinationObject {
  id: string;
  name: string;
  type: string;
  settings: Record<string, unknown>;
  rateLimit?: RateLimit;
  enabled: boolean;
}
export interface ComputationObject {
  id: string;
  name: string;
  key: string;
  description: string;
  enabled: boolean;
  definition: { query: string; type: 'users' | 'accounts' };
  options: { includeHistoricalData: boolean; computeMode: 'realtime' | 'batch' };
}
export interface ConnectionObject {
  id: string;
  computationId: string;
  destinationId: string;
  enabled: boolean;
  settings: ComputationSpec['destinations'][number]['settings'];
}

/** A journey as GET /spaces/{s}/journeys shows it (the fields apply reads). */
export interface JourneyObject {
  id: string;
  name: string;
  key: string;
  status: 'Draft' | 'Live' | 'Paused' | 'Archived';
  entry: JourneySpec['entry'];
  reentry: JourneySpec['reentry'];
  includeExistingMembers: boolean;
  start: string;
  steps: JourneySpec['steps'];
  versions: Array<{ version: number }>;
  /** The draft differs from the latest version (true when never published). */
  draftChanged: boolean;
}

export type ComputationKind = 'audience' | 'computed_trait';
export const KIND_PATH: Record<ComputationKind, { path: string; one: string; many: string; label: string }> = {
  audience: { path: 'audiences', one: 'audience', many: 'audiences', label: 'audience' },
  computed_trait: { path: 'computed-traits', one: 'computedTrait', many: 'computedTraits', label: 'computed trait' },
};

export interface SpaceState {
  space: SpaceObject;
  sources: SourceObject[];
  destinations: DestinationObject[];
  audiences: ComputationObject[];
  computedTraits: ComputationObject[];
  /** Connections of every audience and computed trait. */
  connections: ConnectionObject[];
  /** Archived ones included (their keys stay taken). */
  journeys: JourneyObject[];
}

export async function readSpaceState(client: ControlPlaneClient, spaceId: string): Promise<SpaceState> {
  const base = `/spaces/${encodeURIComponent(spaceId)}`;
  const { space } = await client.request<{ space: SpaceObject }>('GET', base);
  const [sources, destinations, audiences, computedTraits, journeys] = await Promise.all([
    client.listAll<SourceObject>(`${base}/sources`, 'sources'),
    client.listAll<DestinationObject>(`${base}/destinations`, 'destinations'),
    client.listAll<ComputationObject>(`${base}/audiences`, 'audiences'),
    client.listAll<ComputationObject>(`${base}/computed-traits`, 'computedTraits'),
    client.listAll<JourneyObject>(`${base}/journeys`, 'journeys'),
  ]);
  const connections = (
    await Promise.all([
      ...audiences.map((a) => client.listAll<ConnectionObject>(`${base}/audiences/${a.id}/destinations`, 'connections')),
      ...computedTraits.map((t) => client.listAll<ConnectionObject>(`${base}/computed-traits/${t.id}/destinations`, 'connections')),
    ])
  ).flat();
  return { space, sources, destinations, audiences, computedTraits, connections, journeys };
}

/**
 * The space as a space file: no ids but the space's, no timestamps or status;
 * connections nested under their computation by destination name. `skipped`
 * lists what cannot be expressed (a connection whose destination is gone).
 */
export function toSpaceFile(state: SpaceState): { file: SpaceFile; skipped: string[] } {
  const skipped: string[] = [];
  const destinationName = new Map(state.destinations.map((d) => [d.id, d.name]));
  const computation = (c: ComputationObject) => {
    const destinations = state.connections
      .filter((con) => con.computationId === c.id)
      .flatMap((con) => {
        const destination = destinationName.get(con.destinationId);
        if (!destination) {
          skipped.push(`${c.key}: connection ${con.id} to deleted destination ${con.destinationId}`);
          return [];
        }
        return [{ destination, enabled: con.enabled, settings: con.settings }];
      });
    return {
      name: c.name,
      key: c.key,
      description: c.description,
      enabled: c.enabled,
      definition: { query: c.definition.query, type: c.definition.type },
      options: { includeHistoricalData: c.options.includeHistoricalData, computeMode: c.options.computeMode },
      destinations,
    };
  };
  const file: SpaceFile = {
    space: { id: state.space.id, name: state.space.name },
    sources: state.sources.map((s) => ({
      name: s.name,
      enabled: s.enabled,
      ...(s.rateLimit ? { rateLimit: s.rateLimit } : {}),
      writeKey: s.writeKey,
    })),
    destinations: state.destinations.map((d) => ({
      name: d.name,
      type: d.type,
      settings: d.settings,
      ...(d.rateLimit ? { rateLimit: d.rateLimit } : {}),
      enabled: d.enabled,
    })),
    audiences: state.audiences.map(computation),
    computedTraits: state.computedTraits.map(computation),
  };
  const journeys = state.journeys.filter((j) => j.status !== 'Archived').map((j) => journeySpecOf(j, state));
  if (journeys.length > 0) file.journeys = journeys;
  return { file, skipped };
}

/**
 * A journey as a space file shows it: destinations by name and the entry
 * audience by key where the space has them (ids otherwise), its status.
 */
function journeySpecOf(j: JourneyObject, state: SpaceState): JourneySpec {
  const destinationName = new Map(state.destinations.map((d) => [d.id, d.name]));
  const audienceKey = new Map(state.audiences.map((a) => [a.id, a.key]));
  return {
    name: j.name,
    key: j.key,
    entry: 'audienceId' in j.entry ? { audienceId: audienceKey.get(j.entry.audienceId) ?? j.entry.audienceId } : j.entry,
    reentry: j.reentry,
    includeExistingMembers: j.includeExistingMembers,
    steps: j.steps.map((s) =>
      s.type === 'send'
        ? {
            ...s,
            destinations: s.destinations.map((d) => ({ ...d, destinationId: destinationName.get(d.destinationId) ?? d.destinationId })),
          }
        : s,
    ),
    start: j.start,
    status: j.status as Exclude<JourneyObject['status'], 'Archived'>,
  };
}

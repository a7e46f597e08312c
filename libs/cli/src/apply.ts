// `engage apply` and `engage export`, the IO half: read the space through the
// API, plan (apply-plan.ts), run the steps in order, report each.
import { ControlPlaneError, type ControlPlaneClient } from './api-client';
import { planApply, resolveJourneyRefs, type ApplyPlan, type Step } from './apply-plan';
import { formatSpaceFile, parseSpaceFile, type SpaceFile } from './space-file';
import { KIND_PATH, readSpaceState, toSpaceFile, type SpaceObject, type SpaceState } from './space-state';

export interface ApplyResult {
  spaceId: string;
  plan: ApplyPlan;
  /** One line per step run (or planned, for a dry run). */
  lines: string[];
  changed: boolean;
}

export class ApplyError extends Error {
  constructor(
    message: string,
    /** Steps that ran before the failure. */
    readonly done: string[],
  ) {
    super(message);
    this.name = 'ApplyError';
  }
}

/** The space the file means: `spaceId` (flag or file) if given, else the one space with the file's name, else none yet. */
async function findSpace(client: ControlPlaneClient, file: SpaceFile, spaceId?: string): Promise<SpaceObject | null> {
  const id = spaceId ?? file.space.id;
  if (id) {
    try {
      return (await client.request<{ space: SpaceObject }>('GET', `/spaces/${encodeURIComponent(id)}`)).space;
    } catch (err) {
      if (err instanceof ControlPlaneError && err.status === 404)
        throw new ApplyError(
          `space ${id} does not exist (ids are made by the control plane: drop space.id to create the space by name)`,
          [],
        );
      throw err;
    }
  }
  const named = (await client.listAll<SpaceObject>('/spaces', 'spaces')).filter((s) => s.name === file.space.name);
  if (named.length > 1)
    throw new ApplyError(
      `${named.length} spaces are named '${file.space.name}' (${named.map((s) => s.id).join(', ')}): give space.id or --space`,
      [],
    );
  return named[0] ?? null;
}

export async function applySpace(
  client: ControlPlaneClient,
  text: string,
  opts: { source?: string; spaceId?: string; dryRun?: boolean; prune?: boolean } = {},
): Promise<ApplyResult> {
  const file = parseSpaceFile(text, opts.source);
  const space = await findSpace(client, file, opts.spaceId);
  const current = space ? await readSpaceState(client, space.id) : null;
  const plan = planApply(file, current, { prune: opts.prune });
  if (plan.problems.length > 0) throw new ApplyError(`nothing applied:\n${plan.problems.map((p) => `  ${p}`).join('\n')}`, []);
  if (opts.dryRun)
    return {
      spaceId: space?.id ?? '',
      plan,
      lines: plan.steps.map((s) =>
        s.journey?.action ? `would ${s.journey.action} ${s.label}` : `would ${s.op} ${s.label}${fieldsText(s)}`,
      ),
      changed: plan.steps.length > 0,
    };
  const lines: string[] = [];
  const ids = new Ids(current);
  let spaceId = space?.id ?? '';
  for (const step of plan.steps) {
    try {
      const id = await runStep(client, spaceId, step, ids);
      if (step.kind === 'space' && step.op === 'create') spaceId = id;
      if (step.journey?.action) lines.push(`${PAST[step.journey.action]} ${step.label}`);
      else
        lines.push(
          `${step.op === 'create' ? 'created' : step.op === 'update' ? 'updated' : step.kind === 'journey' ? 'archived' : 'deleted'} ${step.label}${step.op === 'create' ? ` (${id})` : fieldsText(step)}`,
        );
    } catch (err) {
      const reason = err instanceof ControlPlaneError ? err.errors.map((e) => e.message).join('; ') : (err as Error).message;
      throw new ApplyError(`failed to ${step.op} ${step.label}: ${reason}`, lines);
    }
  }
  return { spaceId, plan, lines, changed: plan.steps.length > 0 };
}

const PAST = { publish: 'published', pause: 'paused', resume: 'resumed' } as const;

const fieldsText = (s: Step) => (s.fields?.length ? ` (${s.fields.join(', ')})` : '');

/** Ids of what the space holds, by the names the file uses; filled in as objects are created. */
class Ids {
  readonly computations = new Map<string, string>();
  readonly destinations = new Map<string, string>();
  readonly journeys = new Map<string, string>();
  constructor(state: SpaceState | null) {
    for (const c of [...(state?.audiences ?? []), ...(state?.computedTraits ?? [])]) this.computations.set(c.key, c.id);
    for (const d of state?.destinations ?? []) this.destinations.set(d.name, d.id);
    for (const j of state?.journeys ?? []) this.journeys.set(j.key, j.id);
  }
}

async function runStep(client: ControlPlaneClient, spaceId: string, step: Step, ids: Ids): Promise<string> {
  const space = `/spaces/${encodeURIComponent(spaceId)}`;
  const send = async (method: string, path: string, field: string) => {
    const data = await client.request<Record<string, { id?: string }>>(method, path, method === 'DELETE' ? undefined : step.body);
    return data[field]?.id ?? step.id ?? '';
  };
  const target = (path: string) => (step.op === 'create' ? path : `${path}/${step.id}`);
  const method = step.op === 'create' ? 'POST' : step.op === 'update' ? 'PATCH' : 'DELETE';
  switch (step.kind) {
    case 'space':
      return send(method, step.op === 'create' ? '/spaces' : space, 'space');
    case 'source':
      return send(method, target(`${space}/sources`), 'source');
    case 'destination': {
      const id = await send(method, target(`${space}/destinations`), 'destination');
      if (step.op === 'create') ids.destinations.set(String(step.body?.name), id);
      return id;
    }
    case 'audience':
    case 'computed_trait': {
      const id = await send(method, target(`${space}/${KIND_PATH[step.kind].path}`), KIND_PATH[step.kind].one);
      if (step.op === 'create') ids.computations.set(String(step.body?.key), id);
      return id;
    }
    case 'journey': {
      const key = step.journey!.key;
      const journeys = `${space}/journeys`;
      if (step.journey!.action) {
        const data = await client.request<{ journey: { id: string } }>(
          'POST',
          `${journeys}/${ids.journeys.get(key)}/${step.journey!.action}`,
        );
        return data.journey.id;
      }
      // Destination names and audience keys become ids (of objects this apply may just have created).
      const body = step.body ? resolveJourneyRefs(step.body, ids) : undefined;
      if (step.op === 'delete') return (await client.request<{ journey: { id: string } }>('DELETE', `${journeys}/${step.id}`)).journey.id;
      const data = await client.request<{ journey: { id: string } }>(
        step.op === 'create' ? 'POST' : 'PATCH',
        step.op === 'create' ? journeys : `${journeys}/${step.id}`,
        body,
      );
      ids.journeys.set(key, data.journey.id);
      return data.journey.id;
    }
    case 'connection': {
      const c = step.connection!;
      const computationId = ids.computations.get(c.computationKey);
      const base = `${space}/${KIND_PATH[c.computationKind].path}/${computationId}/destinations`;
      if (step.op !== 'create') return send(method, `${base}/${step.id}`, 'connection');
      const destinationId = ids.destinations.get(c.destinationName);
      if (!computationId || !destinationId)
        throw new Error(`unresolved ${!computationId ? `computation ${c.computationKey}` : `destination '${c.destinationName}'`}`);
      const data = await client.request<{ connection: { id: string } }>('POST', base, { destinationId, ...step.body });
      return data.connection.id;
    }
  }
}

/** The space as a space file text (what apply takes back unchanged). */
export async function exportSpace(
  client: ControlPlaneClient,
  spaceId: string,
  format: 'yaml' | 'json',
): Promise<{ text: string; skipped: string[] }> {
  const { file, skipped } = toSpaceFile(await readSpaceState(client, spaceId));
  return { text: formatSpaceFile(file, format), skipped };
}

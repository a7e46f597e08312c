// The declarative space file of `engage apply` / `engage export` (YAML or
// JSON): a whole space, its sources, destinations, audiences and computed
// traits, with each computation's destinations (connections) nested in it.
// Objects are matched by what a person reads: sources and destinations by
// name, computations by key (the snake_cased name unless given). Pure: no IO.
import YAML from 'yaml';
import { z } from 'zod';
import { traitActivationFields } from '@engage/delivery';
import { journeyInputSchema } from '@engage/journeys';

const name = z.string().trim().min(1, 'must not be empty');
const rateLimit = z
  .object({ requestsPerSecond: z.number().positive('must be > 0'), burst: z.number().int().positive('must be > 0').optional() })
  .strict();

const sourceSpec = z
  .object({
    name,
    enabled: z.boolean().default(true),
    rateLimit: rateLimit.optional(),
    /** Read-only: export prints it so operators can find it; apply never changes it. */
    writeKey: z.string().optional(),
  })
  .strict();

const destinationSpec = z
  .object({
    name,
    type: z.string().min(1, 'must not be empty'),
    settings: z.record(z.unknown()).default({}),
    rateLimit: rateLimit.optional(),
    enabled: z.boolean().default(true),
  })
  .strict();

const connectionSettings = z
  .object({
    identify: z.boolean().default(true),
    track: z.boolean().default(false),
    enteredEvent: z.string().optional(),
    exitedEvent: z.string().optional(),
    identifierTypes: z.array(z.string()).optional(),
    // Trait Enrichment and ID Sync, checked as the control plane checks them.
    ...traitActivationFields,
  })
  .strict();

const connectionSpec = z
  .object({
    /** The destination's name, in this file or already in the space. */
    destination: name,
    enabled: z.boolean().default(true),
    settings: connectionSettings.default({}),
  })
  .strict();

const computationSpec = z
  .object({
    name,
    key: z.string().optional(),
    description: z.string().default(''),
    enabled: z.boolean().default(true),
    definition: z
      .object({
        // YAML block scalars end in a newline; the API stores the query trimmed.
        query: z.string().trim().min(1, 'must not be empty'),
        type: z.enum(['users', 'accounts']).default('users'),
      })
      .strict(),
    options: z
      .object({ includeHistoricalData: z.boolean().default(false), computeMode: z.enum(['realtime', 'batch']).default('realtime') })
      .strict()
      .default({}),
    destinations: z.array(connectionSpec).default([]),
  })
  .strict();

/**
 * A journey as the API takes it (CONTRACT.md section 9), matched by key. In a
 * space file `destinationId` may be a destination's name and `entry.audienceId`
 * an audience's key (in the file or the space); apply sends their ids.
 * `status`: Live or Paused publish the draft when it differs from the last
 * version (then pause or resume); Draft keeps a never-published journey a
 * draft; left out, apply edits the draft and leaves the lifecycle alone.
 */
const journeySpec = journeyInputSchema.extend({ status: z.enum(['Draft', 'Live', 'Paused']).optional() }).strict();

export const spaceFileSchema = z
  .object({
    space: z.object({ id: z.string().regex(/^spa_/, 'must be a space id (spa_...)').optional(), name }).strict(),
    sources: z.array(sourceSpec).default([]),
    destinations: z.array(destinationSpec).default([]),
    audiences: z.array(computationSpec).default([]),
    computedTraits: z.array(computationSpec).default([]),
    /** Optional so a space without journeys exports as before. */
    journeys: z.array(journeySpec).optional(),
  })
  .strict();

export type SpaceFile = z.infer<typeof spaceFileSchema>;
export type SourceSpec = SpaceFile['sources'][number];
export type DestinationSpec = SpaceFile['destinations'][number];
export type ComputationSpec = Omit<SpaceFile['audiences'][number], 'key'> & { key: string };
/** A parsed file: defaults filled in, every computation's key known. */
export type ParsedSpaceFile = Omit<SpaceFile, 'audiences' | 'computedTraits'> & {
  audiences: ComputationSpec[];
  computedTraits: ComputationSpec[];
};
export type ConnectionSpec = ComputationSpec['destinations'][number];
export type JourneySpec = z.infer<typeof journeySpec>;

export class SpaceFileError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'SpaceFileError';
  }
}

/** Segment's key rule, as the control plane applies it: "Order Completed Last 30 Days" -> "order_completed_last_30_days". */
export function snakeCase(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

const pathText = (path: Array<string | number>) => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');

/**
 * Parses YAML or JSON text (JSON is YAML) into a validated space file with
 * every default filled in and every computation's key derived. Throws
 * SpaceFileError listing each problem with where it is.
 */
export function parseSpaceFile(text: string, source = 'space file'): ParsedSpaceFile {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SpaceFileError(
      doc.errors.map((e) => `${source}:${e.linePos?.[0].line ?? '?'}:${e.linePos?.[0].col ?? '?'}: ${e.message.split('\n')[0]}`),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new SpaceFileError([`${source}: must be a mapping with space, sources, destinations, audiences, computedTraits`]);
  const result = spaceFileSchema.safeParse(raw);
  if (!result.success) {
    throw new SpaceFileError(
      result.error.issues.flatMap((i) =>
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => `${source}: ${pathText([...i.path, k])}: unknown field`)
          : [`${source}: ${pathText(i.path) || '(top)'}: ${i.message}`],
      ),
    );
  }
  const file = result.data;
  const problems: string[] = [];
  const withKeys = (list: SpaceFile['audiences'], field: string): ComputationSpec[] =>
    list.map((c, i) => {
      const key = c.key ?? snakeCase(c.name);
      if (!key) problems.push(`${source}: ${field}[${i}].name: must contain a letter or digit to derive a key from`);
      return { ...c, key };
    });
  const audiences = withKeys(file.audiences, 'audiences');
  const computedTraits = withKeys(file.computedTraits, 'computedTraits');

  // Names and keys identify objects: two of them would make apply ambiguous.
  const duplicates = (labels: Array<[string, string]>, what: string) => {
    const seen = new Map<string, string>();
    for (const [value, where] of labels) {
      const first = seen.get(value);
      if (first) problems.push(`${source}: ${where}: ${what} '${value}' is also used by ${first}`);
      else seen.set(value, where);
    }
  };
  duplicates(
    file.sources.map((s, i) => [s.name, `sources[${i}].name`]),
    'source name',
  );
  duplicates(
    file.destinations.map((d, i) => [d.name, `destinations[${i}].name`]),
    'destination name',
  );
  duplicates(
    (file.journeys ?? []).map((j, i) => [j.key, `journeys[${i}].key`]),
    'journey key',
  );
  // Audiences and traits share one key space (trait() reads both).
  duplicates(
    [
      ...audiences.map((a, i): [string, string] => [a.key, `audiences[${i}]`]),
      ...computedTraits.map((t, i): [string, string] => [t.key, `computedTraits[${i}]`]),
    ],
    'key',
  );
  for (const [field, list] of [
    ['audiences', audiences],
    ['computedTraits', computedTraits],
  ] as const) {
    list.forEach((c, i) =>
      duplicates(
        c.destinations.map((d, j) => [d.destination, `${field}[${i}].destinations[${j}].destination`]),
        'destination',
      ),
    );
  }
  if (problems.length > 0) throw new SpaceFileError(problems);
  return { ...file, audiences, computedTraits };
}

/** Prints a space file as YAML (default) or JSON, fields in a stable order. */
export function formatSpaceFile(file: SpaceFile, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(file, null, 2)}\n`;
  return YAML.stringify(file, { lineWidth: 0 });
}

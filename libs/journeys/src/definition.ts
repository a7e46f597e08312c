// A journey as operators write it (CONTRACT.md section 9): the request body's
// schema, the checks of its step graph, durations and send-step keys. Shared by
// the control plane's API and `engage apply`, so both refuse the same things
// with the same messages.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { JourneyStep } from '@engage/config-store';
import { traitActivationFields } from '@engage/delivery';

const stepId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'step ids are 1-64 letters, digits, _ or -');

export const journeyStepSchema = z.discriminatedUnion('type', [
  z
    .object({
      id: stepId,
      type: z.literal('send'),
      name: z.string().min(1).max(120),
      destinations: z
        .array(
          z
            .object({
              destinationId: z.string().min(1),
              // Trait Enrichment and ID Sync as on any connection (the publish copies these settings to the step's connections).
              settings: z
                .object({ identify: z.boolean().default(true), track: z.boolean().default(true), ...traitActivationFields })
                .strict()
                .default({}),
            })
            .strict(),
        )
        .min(1)
        .max(20),
      next: stepId,
    })
    .strict(),
  z.object({ id: stepId, type: z.literal('wait'), duration: z.string().min(1), next: stepId }).strict(),
  z.object({ id: stepId, type: z.literal('split'), query: z.string().min(1).max(10_000), true: stepId, false: stepId }).strict(),
  z
    .object({
      id: stepId,
      type: z.literal('branch'),
      branches: z
        .array(z.object({ name: z.string().max(120).optional(), query: z.string().min(1).max(10_000), next: stepId }).strict())
        .min(1)
        .max(10),
      else: stepId,
    })
    .strict(),
  z.object({ id: stepId, type: z.literal('exit') }).strict(),
]);

export const journeyKeySchema = z.string().regex(/^[a-z0-9_]{1,64}$/, 'key is 1-64 lowercase letters, digits or _');

export const journeyEntrySchema = z.union([
  z.object({ audienceId: z.string().min(1) }).strict(),
  z.object({ query: z.string().min(1).max(10_000) }).strict(),
]);

/** POST /spaces/{s}/journeys (and a space file's journeys entry). */
export const journeyInputSchema = z
  .object({
    name: z.string().min(1).max(200),
    key: journeyKeySchema,
    entry: journeyEntrySchema,
    reentry: z.enum(['never', 'after_exit']).default('never'),
    includeExistingMembers: z.boolean().default(false),
    steps: z.array(journeyStepSchema).min(1).max(100),
    start: stepId,
  })
  .strict();

export type JourneyInput = z.infer<typeof journeyInputSchema>;

/** PATCH: any field but the key (it names the send steps' keys). */
export const journeyPatchSchema = journeyInputSchema.omit({ key: true }).partial().strict();

const UNIT_MS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Longest wait: a year. */
export const MAX_WAIT_MS = 365 * UNIT_MS.day!;

/** "3 seconds", "1 minute", "2 hours", "7 days" -> ms; null when it is none of those. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+)\s*(second|minute|hour|day)s?\s*$/i.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2]!.toLowerCase()]!;
  return ms > 0 && ms <= MAX_WAIT_MS ? ms : null;
}

/** "Opened Email" -> "opened_email". */
export function snakeCase(text: string): string {
  return (
    text
      .normalize('NFKD')
      // Accents split off by NFKD, and anything else outside ASCII, go.
      .replace(/[^ -~]/g, '')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'step'
  );
}

const SUFFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** Six lowercase letters or digits: what keeps two steps of the same name apart. */
export function randomStepSuffix(): string {
  return [...randomBytes(6)].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
}

/** `j_o_<journey key>__<snake_cased step name>_<6 [a-z0-9]>` (CONTRACT.md section 9). */
export function sendStepKey(journeyKey: string, stepName: string, suffix: string): string {
  return `j_o_${journeyKey}__${snakeCase(stepName)}_${suffix}`;
}

export const SEND_STEP_KEY = /^j_o_[a-z0-9_]+__[a-z0-9_]+_[a-z0-9]{6}$/;

/** The steps a step leads to. */
export function nextStepsOf(step: JourneyStep): string[] {
  switch (step.type) {
    case 'send':
    case 'wait':
      return [step.next];
    case 'split':
      return [step.true, step.false];
    case 'branch':
      return [...step.branches.map((b) => b.next), step.else];
    case 'exit':
      return [];
  }
}

/**
 * What is wrong with a step graph, as messages naming the step and field
 * (empty: none). A journey is a directed acyclic graph from `start`: every
 * step reachable, every path ending at an exit, durations readable.
 */
export function journeyGraphProblems(def: { start: string; steps: JourneyStep[] }): string[] {
  const problems: string[] = [];
  const byId = new Map<string, JourneyStep>();
  for (const step of def.steps) {
    if (byId.has(step.id)) problems.push(`steps: id "${step.id}" is used twice`);
    byId.set(step.id, step);
  }
  if (!byId.has(def.start)) problems.push(`start: no step "${def.start}"`);
  for (const step of def.steps) {
    for (const next of nextStepsOf(step)) if (!byId.has(next)) problems.push(`steps.${step.id}: leads to "${next}", which is not a step`);
    if (step.type === 'wait' && parseDuration(step.duration) === null)
      problems.push(
        `steps.${step.id}.duration: "${step.duration}" is not a duration like "3 seconds", "2 hours" or "7 days" (at most a year)`,
      );
  }
  if (problems.length > 0) return problems;

  // Depth-first from start: a step seen again on the current path is a cycle.
  const state = new Map<string, 'open' | 'done'>();
  const visit = (id: string, path: string[]): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'open') {
      problems.push(`steps: a cycle ${[...path.slice(path.indexOf(id)), id].join(' -> ')}; a journey only moves forward`);
      return;
    }
    state.set(id, 'open');
    for (const next of nextStepsOf(byId.get(id)!)) visit(next, [...path, id]);
    state.set(id, 'done');
  };
  visit(def.start, []);
  for (const step of def.steps) if (!state.has(step.id)) problems.push(`steps.${step.id}: not reachable from start "${def.start}"`);
  return problems;
}

/**
 * The send steps' keys for a definition: those of `existing` kept (a step's
 * key never changes across edits, destinations key their data by it), new
 * send steps given one.
 */
export function assignStepKeys(
  journeyKey: string,
  steps: JourneyStep[],
  existing: Record<string, string> = {},
  suffix: () => string = randomStepSuffix,
): Record<string, string> {
  const keys: Record<string, string> = { ...existing };
  for (const step of steps) if (step.type === 'send' && !keys[step.id]) keys[step.id] = sendStepKey(journeyKey, step.name, suffix());
  return keys;
}

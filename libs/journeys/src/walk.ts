// How a user moves through a published journey version: from a step, through
// sends and splits (instant), to the next wait or an exit. Pure: the caller
// gives the user's membership of the version's condition audiences, read once
// before the walk, and emits, stores and schedules what the walk returns.
import type { JourneyStep, JourneyVersion } from '@engage/config-store';
import { parseDuration } from './definition';

export interface ReachedStep {
  stepId: string;
  type: JourneyStep['type'];
  /** Send steps: the key their changes carry. */
  key?: string;
}

export type WalkEnd = { type: 'wait'; stepId: string; dueAt: number } | { type: 'exit'; stepId: string };

export interface Walk {
  /** Every step the user reached, in order (the first is `from`). */
  reached: ReachedStep[];
  end: WalkEnd;
}

/**
 * The computation_key of the record for reaching a step that is not a send
 * step (send steps carry their own key): no connection names it, so it is
 * never delivered; it keeps the journey's trail on the changes topic.
 */
export const journeyStepRecordKey = (journeyKey: string, stepId: string): string => `${journeyKey}__${stepId}`;

/** The audiences whose membership a walk of this version may read: its split and branch conditions. */
export function conditionAudiences(version: JourneyVersion): string[] {
  return [...new Set(Object.values(version.conditions).flat())];
}

/**
 * Walks from step `from` (reached now) until a wait or an exit. A wait's due
 * time counts from `now`. `isMember(audienceId)` answers for this user at this
 * moment. Throws on a version that is not a graph of known steps (the control
 * plane checks before publishing; a throw here is a bug).
 */
export function walkJourney(version: JourneyVersion, from: string, now: number, isMember: (audienceId: string) => boolean): Walk {
  const byId = new Map(version.steps.map((s) => [s.id, s]));
  const reached: ReachedStep[] = [];
  let id = from;
  // A published version is acyclic, so a walk visits each step at most once.
  for (let guard = 0; guard <= version.steps.length; guard++) {
    const step = byId.get(id);
    if (!step) throw new Error(`journey version ${version.version}: no step "${id}"`);
    reached.push(step.type === 'send' ? { stepId: id, type: 'send', key: version.stepKeys[id] } : { stepId: id, type: step.type });
    switch (step.type) {
      case 'send':
        id = step.next;
        break;
      case 'wait': {
        const ms = parseDuration(step.duration);
        if (ms === null) throw new Error(`journey version ${version.version}: step "${id}" has no valid duration`);
        return { reached, end: { type: 'wait', stepId: id, dueAt: now + ms } };
      }
      case 'split':
        id = isMember(conditionOf(version, id, 0)) ? step.true : step.false;
        break;
      case 'branch': {
        const i = step.branches.findIndex((_, n) => isMember(conditionOf(version, id, n)));
        id = i === -1 ? step.else : step.branches[i]!.next;
        break;
      }
      case 'exit':
        return { reached, end: { type: 'exit', stepId: id } };
    }
  }
  throw new Error(`journey version ${version.version}: a cycle from "${from}"`);
}

function conditionOf(version: JourneyVersion, stepId: string, n: number): string {
  const id = version.conditions[stepId]?.[n];
  if (id === undefined) throw new Error(`journey version ${version.version}: step "${stepId}" condition ${n} has no audience`);
  return id;
}

/** The step a user at wait step `stepId` moves on to when the wait is over. */
export function afterWait(version: JourneyVersion, stepId: string): string {
  const step = version.steps.find((s) => s.id === stepId);
  if (!step || step.type !== 'wait') throw new Error(`journey version ${version.version}: "${stepId}" is not a wait step`);
  return step.next;
}

/** Where a user is in one journey (the runner's stored record). */
export interface JourneyProgress {
  /** The version the user walks (frozen at entry). */
  version: number;
  /** Entries so far: 1 on the first; re-entry (after_exit) counts up. */
  run: number;
  /** 'waiting' at a wait step until dueAt; 'exited' after reaching an exit. */
  status: 'waiting' | 'exited';
  step: string;
  dueAt?: number;
  enteredAt: number;
}

/**
 * Whether a user with `progress` enters again, and as which run: never while
 * inside; after an exit only with re-entry `after_exit` (Segment: "users can
 * re-enter after they exit").
 */
export function entryRun(progress: JourneyProgress | null, reentry: 'never' | 'after_exit'): number | null {
  if (!progress) return 1;
  if (progress.status !== 'exited' || reentry !== 'after_exit') return null;
  return progress.run + 1;
}

import type { JourneyStep, JourneyVersion } from '@engage/config-store';
import {
  assignStepKeys,
  entryRun,
  journeyGraphProblems,
  journeyInputSchema,
  parseDuration,
  SEND_STEP_KEY,
  sendStepKey,
  snakeCase,
  walkJourney,
  type JourneyProgress,
} from './index';

const send = (id: string, name: string, next: string): JourneyStep => ({
  id,
  type: 'send',
  name,
  destinations: [{ destinationId: 'dst_1', settings: { identify: true, track: true } }],
  next,
});

// CONTRACT.md section 9's example.
const firstPurchase: JourneyStep[] = [
  send('welcome', 'Opened Email', 'wait'),
  { id: 'wait', type: 'wait', duration: '3 seconds', next: 'bought' },
  { id: 'bought', type: 'split', query: "event('Order Completed').count() >= 1", true: 'thanks', false: 'exit' },
  send('thanks', 'Thank You', 'exit'),
  { id: 'exit', type: 'exit' },
];

const version = (steps: JourneyStep[], conditions: Record<string, string[]> = { bought: ['aud_bought'] }): JourneyVersion => ({
  version: 1,
  publishedAt: '2026-12-04T00:00:00.000Z',
  entryComputationId: 'aud_entry',
  start: steps[0]!.id,
  steps,
  conditions,
  stepKeys: { welcome: 'j_o_first_purchase__opened_email_aaaaaa', thanks: 'j_o_first_purchase__thank_you_bbbbbb' },
});

describe('journey definitions', () => {
  test('send-step keys: j_o_<journey key>__<snake_cased step name>_<6 [a-z0-9]>', () => {
    expect(sendStepKey('first_purchase', 'Opened Email', 'dje83h')).toBe('j_o_first_purchase__opened_email_dje83h');
    expect(snakeCase('ThankYou -- Émail!')).toBe('thank_you_email');
    const keys = assignStepKeys('first_purchase', firstPurchase);
    expect(Object.keys(keys).sort()).toEqual(['thanks', 'welcome']);
    expect(keys.welcome).toMatch(/^j_o_first_purchase__opened_email_[a-z0-9]{6}$/);
    expect(keys.welcome).toMatch(SEND_STEP_KEY);
  });

  test('an edit keeps the keys of existing send steps and gives new ones a key', () => {
    const before = assignStepKeys('first_purchase', firstPurchase);
    const after = assignStepKeys('first_purchase', [...firstPurchase, send('again', 'Reminder', 'exit')], before);
    expect(after.welcome).toBe(before.welcome);
    expect(after.thanks).toBe(before.thanks);
    expect(after.again).toMatch(/^j_o_first_purchase__reminder_[a-z0-9]{6}$/);
  });

  test('durations: seconds to days, at most a year', () => {
    expect(parseDuration('3 seconds')).toBe(3000);
    expect(parseDuration('1 minute')).toBe(60_000);
    expect(parseDuration('2 hours')).toBe(7_200_000);
    expect(parseDuration('7 days')).toBe(604_800_000);
    expect(parseDuration('0 days')).toBeNull();
    expect(parseDuration('400 days')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
  });

  test('the graph checks name the step and what is wrong', () => {
    expect(journeyGraphProblems({ start: 'welcome', steps: firstPurchase })).toEqual([]);
    expect(journeyGraphProblems({ start: 'nope', steps: firstPurchase })).toContain('start: no step "nope"');
    expect(
      journeyGraphProblems({
        start: 'welcome',
        steps: [...firstPurchase.slice(0, 4), { id: 'exit', type: 'wait', duration: 'x', next: 'welcome' }],
      }),
    ).toEqual(['steps.exit.duration: "x" is not a duration like "3 seconds", "2 hours" or "7 days" (at most a year)']);
    const cycle = journeyGraphProblems({
      start: 'a',
      steps: [send('a', 'A', 'b'), { id: 'b', type: 'wait', duration: '1 day', next: 'a' }],
    });
    expect(cycle.join('\n')).toMatch(/a cycle a -> b -> a/);
    expect(journeyGraphProblems({ start: 'welcome', steps: [...firstPurchase, { id: 'orphan', type: 'exit' }] })).toEqual([
      'steps.orphan: not reachable from start "welcome"',
    ]);
    expect(journeyGraphProblems({ start: 'a', steps: [send('a', 'A', 'gone')] })).toEqual([
      'steps.a: leads to "gone", which is not a step',
    ]);
  });

  test('the request schema takes the contract example and refuses unknown fields', () => {
    const body = {
      name: 'First Purchase',
      key: 'first_purchase',
      entry: { audienceId: 'aud_1' },
      reentry: 'never',
      includeExistingMembers: false,
      steps: firstPurchase,
      start: 'welcome',
    };
    expect(journeyInputSchema.parse(body).steps).toHaveLength(5);
    expect(journeyInputSchema.safeParse({ ...body, key: 'First Purchase' }).success).toBe(false);
    expect(journeyInputSchema.safeParse({ ...body, surprise: 1 }).success).toBe(false);
  });

  test('send step destinations take Trait Enrichment and ID Sync, checked as on connections', () => {
    const withSettings = (settings: Record<string, unknown>) => ({
      name: 'First Purchase',
      key: 'first_purchase',
      entry: { audienceId: 'aud_1' },
      steps: [{ ...firstPurchase[0], destinations: [{ destinationId: 'dst_1', settings }] }, ...firstPurchase.slice(1)],
      start: 'welcome',
    });
    const settings = {
      identify: true,
      track: false,
      traitEnrichment: ['plan', 'ltv'],
      idSync: [
        { type: 'email', strategy: 'all', limit: 2 },
        { type: 'phone', strategy: 'last' },
      ],
    };
    const parsed = journeyInputSchema.parse(withSettings(settings)).steps[0]!;
    expect(parsed.type === 'send' && parsed.destinations[0]!.settings).toEqual(settings);
    const bad = journeyInputSchema.safeParse(withSettings({ idSync: [{ type: 'email', strategy: 'first', limit: 2 }] }));
    expect(bad.success ? [] : bad.error.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['steps.0.destinations.0.settings.idSync.0.limit', 'only with strategy "all" (got "first")'],
    ]);
  });
});

describe('walking a published version', () => {
  test('entry walks the sends to the first wait, due after its duration', () => {
    const walk = walkJourney(version(firstPurchase), 'welcome', 1_000, () => false);
    expect(walk.reached).toEqual([
      { stepId: 'welcome', type: 'send', key: 'j_o_first_purchase__opened_email_aaaaaa' },
      { stepId: 'wait', type: 'wait' },
    ]);
    expect(walk.end).toEqual({ type: 'wait', stepId: 'wait', dueAt: 4_000 });
  });

  test('a split takes the true branch for a member of its condition audience, else the false one', () => {
    const yes = walkJourney(version(firstPurchase), 'bought', 0, (a) => a === 'aud_bought');
    expect(yes.reached.map((s) => s.stepId)).toEqual(['bought', 'thanks', 'exit']);
    expect(yes.end).toEqual({ type: 'exit', stepId: 'exit' });
    const no = walkJourney(version(firstPurchase), 'bought', 0, () => false);
    expect(no.reached.map((s) => s.stepId)).toEqual(['bought', 'exit']);
  });

  test('a multi-branch split takes the first branch that holds, else its else', () => {
    const steps: JourneyStep[] = [
      {
        id: 'tier',
        type: 'branch',
        branches: [
          { query: 'gold', next: 'gold' },
          { query: 'silver', next: 'silver' },
        ],
        else: 'exit',
      },
      send('gold', 'Gold', 'exit'),
      send('silver', 'Silver', 'exit'),
      { id: 'exit', type: 'exit' },
    ];
    const v = { ...version(steps, { tier: ['aud_gold', 'aud_silver'] }), stepKeys: { gold: 'k_gold', silver: 'k_silver' } };
    expect(walkJourney(v, 'tier', 0, (a) => a !== 'aud_none').reached.map((s) => s.stepId)).toEqual(['tier', 'gold', 'exit']);
    expect(walkJourney(v, 'tier', 0, (a) => a === 'aud_silver').reached.map((s) => s.stepId)).toEqual(['tier', 'silver', 'exit']);
    expect(walkJourney(v, 'tier', 0, () => false).reached.map((s) => s.stepId)).toEqual(['tier', 'exit']);
  });

  test('re-entry: never while inside; after an exit only when after_exit', () => {
    const inside: JourneyProgress = { version: 1, run: 1, status: 'waiting', step: 'wait', dueAt: 5, enteredAt: 0 };
    const out: JourneyProgress = { ...inside, status: 'exited', step: 'exit' };
    expect(entryRun(null, 'never')).toBe(1);
    expect(entryRun(inside, 'after_exit')).toBeNull();
    expect(entryRun(out, 'never')).toBeNull();
    expect(entryRun(out, 'after_exit')).toBe(2);
  });
});

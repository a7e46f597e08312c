import { z } from 'zod';
import type { ComputationChange } from '@engage/schemas';
import { buildEventCalls, callMessageId, enrichmentTraits, selectIdSync, splitMembers, traitActivationFields } from './index';

const change: ComputationChange = {
  change_id: 'chg_1',
  space_id: 'spa_1',
  computation_id: 'aud_1',
  computation_key: 'big_spenders',
  computation_class: 'audience',
  level: 'user',
  profile_id: 'pro_1',
  value: true,
  previous: false,
  value_is_json: false,
  reason: 'realtime',
  occurred_at: 0,
  emitted_at: Date.parse('2026-11-22T10:00:00Z'),
  // In the order the profile gained them.
  external_ids: [
    { type: 'user_id', id: 'u1' },
    { type: 'email', id: 'first@x.co' },
    { type: 'phone', id: '+15550001' },
    { type: 'email', id: 'second@x.co' },
    { type: 'email', id: 'third@x.co' },
    { type: 'phone', id: '+15550002' },
  ],
  user_id: 'u1',
  anonymous_id: null,
  traits_json: JSON.stringify({ plan: 'pro', first_name: 'Ada', big_spenders: 'custom value', empty: null }),
};
const personas = {
  computation_class: 'audience',
  computation_id: 'aud_1',
  computation_key: 'big_spenders',
  namespace: 'spa_1',
  space_id: 'spa_1',
};
const destination = { id: 'dst_1', name: 'Hook' };
const base = { userId: 'u1', timestamp: '2026-11-22T10:00:00.000Z', integrations: { All: false, Hook: true } };
const mid = (kind: string, ident: string) => callMessageId('chg_1', 'dst_1', kind, ident);
const settingsSchema = z.object({ identify: z.boolean(), track: z.boolean(), ...traitActivationFields }).strict();

describe('Trait Enrichment', () => {
  it('adds custom traits (traits_json) and computed traits (by key) to identify traits and track context.traits; the change wins on its key', () => {
    const enrichment = enrichmentTraits(['plan', 'ltv', 'big_spenders', 'missing', 'empty'], {
      custom: JSON.parse(change.traits_json) as Record<string, unknown>,
      computed: { ltv: 120.5 },
    });
    expect(enrichment).toEqual({ plan: 'pro', ltv: 120.5, big_spenders: 'custom value' });
    const calls = buildEventCalls(
      change,
      destination,
      { identify: true, track: true, identifierTypes: ['user_id'], traitEnrichment: ['plan', 'ltv', 'big_spenders'] },
      enrichment,
    );
    expect(calls).toEqual([
      {
        type: 'identify',
        ...base,
        messageId: mid('identify', 'profile'),
        traits: { plan: 'pro', ltv: 120.5, big_spenders: true },
        context: { personas },
      },
      {
        type: 'track',
        ...base,
        event: 'Audience Entered',
        messageId: mid('track', 'profile'),
        properties: { audience_key: 'big_spenders', big_spenders: true },
        context: { personas, traits: { plan: 'pro', ltv: 120.5, big_spenders: true } },
      },
    ]);
  });

  it('the call identifier wins over an enriched trait of its name; a computed trait wins over a custom one of the same name', () => {
    expect(enrichmentTraits(['email', 'plan'], { custom: { email: 'old@x.co', plan: 'free' }, computed: { plan: 'pro' } })).toEqual({
      email: 'old@x.co',
      plan: 'pro',
    });
    const calls = buildEventCalls(
      change,
      destination,
      { identify: false, track: true, idSync: [{ type: 'email', strategy: 'first' }] },
      { email: 'old@x.co', plan: 'pro' },
    );
    expect(calls.map((c) => c.context.traits)).toEqual([{ email: 'first@x.co', plan: 'pro' }]);
  });

  it('without traitEnrichment nothing is added (Default Setup)', () => {
    const calls = buildEventCalls(change, destination, { identify: true, track: true, identifierTypes: ['user_id'] });
    expect(calls.map((c) => [c.traits, c.context.traits])).toEqual([
      [{ big_spenders: true }, undefined],
      [undefined, undefined],
    ]);
  });
});

describe('ID Sync', () => {
  const identify = (
    idSync: Array<{ type: string; strategy: 'last' | 'first' | 'all'; limit?: number }>,
    over: Partial<ComputationChange> = {},
  ) => buildEventCalls({ ...change, ...over }, destination, { identify: true, track: false, idSync });

  it('last: the most recently added identifier of the type, one call, messageId per identifier', () => {
    expect(identify([{ type: 'email', strategy: 'last' }])).toEqual([
      {
        type: 'identify',
        ...base,
        messageId: mid('identify', 'email:third@x.co'),
        traits: { big_spenders: true, email: 'third@x.co' },
        context: { personas },
      },
    ]);
  });

  it('first: the first added identifier of each listed type; types not listed are not sent', () => {
    expect(
      identify([
        { type: 'email', strategy: 'first' },
        { type: 'phone', strategy: 'first' },
      ]),
    ).toEqual([
      {
        type: 'identify',
        ...base,
        messageId: mid('identify', 'email:first@x.co'),
        traits: { big_spenders: true, email: 'first@x.co' },
        context: { personas },
      },
      {
        type: 'identify',
        ...base,
        messageId: mid('identify', 'phone:+15550001'),
        traits: { big_spenders: true, phone: '+15550001' },
        context: { personas },
      },
    ]);
  });

  it('all: every identifier of the type in the order added, up to limit', () => {
    expect(identify([{ type: 'email', strategy: 'all', limit: 2 }]).map((c) => [c.messageId, c.traits])).toEqual([
      [mid('identify', 'email:first@x.co'), { big_spenders: true, email: 'first@x.co' }],
      [mid('identify', 'email:second@x.co'), { big_spenders: true, email: 'second@x.co' }],
    ]);
    expect(identify([{ type: 'email', strategy: 'all' }]).map((c) => c.traits?.email)).toEqual(['first@x.co', 'second@x.co', 'third@x.co']);
  });

  it('a type the profile has none of: one call with userId only', () => {
    expect(identify([{ type: 'ios.idfa', strategy: 'last' }])).toEqual([
      { type: 'identify', ...base, messageId: mid('identify', 'profile'), traits: { big_spenders: true }, context: { personas } },
    ]);
  });

  it('exits are not narrowed: every identifier of the listed types (all ID combinations)', () => {
    const exit = buildEventCalls({ ...change, value: false, previous: true }, destination, {
      identify: false,
      track: true,
      idSync: [{ type: 'email', strategy: 'last' }],
    });
    expect(exit).toEqual(
      ['first@x.co', 'second@x.co', 'third@x.co'].map((email) => ({
        type: 'track',
        ...base,
        event: 'Audience Exited',
        messageId: mid('track', `email:${email}`),
        properties: { audience_key: 'big_spenders', big_spenders: false },
        context: { personas, traits: { email } },
      })),
    );
  });

  it('computed trait changes follow ID Sync whatever their value', () => {
    const calls = identify([{ type: 'email', strategy: 'first' }], {
      computation_class: 'trait',
      computation_key: 'ltv',
      value: 0,
    });
    expect(calls.map((c) => c.traits)).toEqual([{ ltv: 0, email: 'first@x.co' }]);
  });

  it('list members: adds follow ID Sync, removals reach every identifier of its types', () => {
    const ids = change.external_ids;
    const members = [
      { profileId: 'p1', member: true, ids },
      { profileId: 'p2', member: false, ids },
    ];
    const { add, remove } = splitMembers(
      members,
      ['email', 'phone'],
      [
        { type: 'email', strategy: 'last' },
        { type: 'user_id', strategy: 'first' },
      ],
    );
    expect(add.map((x) => [x.member.profileId, x.id])).toEqual([
      ['p1', { type: 'email', id: 'third@x.co' }],
      ['p1', { type: 'user_id', id: 'u1' }],
    ]);
    expect(remove.map((x) => [x.member.profileId, x.id])).toEqual([
      ['p2', { type: 'user_id', id: 'u1' }],
      ['p2', { type: 'email', id: 'first@x.co' }],
      ['p2', { type: 'email', id: 'second@x.co' }],
      ['p2', { type: 'email', id: 'third@x.co' }],
    ]);
    // Default Setup: the identifier types, every value.
    expect(splitMembers(members, ['phone']).add.map((x) => x.id.id)).toEqual(['+15550001', '+15550002']);
  });

  it('selectIdSync keeps the order of the entries', () => {
    expect(
      selectIdSync(change.external_ids, [
        { type: 'phone', strategy: 'last' },
        { type: 'email', strategy: 'first' },
      ]),
    ).toEqual([
      { type: 'phone', id: '+15550002' },
      { type: 'email', id: 'first@x.co' },
    ]);
  });
});

describe('traitActivationFields', () => {
  const issues = (settings: unknown) => {
    const r = settingsSchema.safeParse(settings);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts the settings shape', () => {
    expect(
      issues({
        identify: true,
        track: true,
        traitEnrichment: ['plan', 'ltv'],
        idSync: [
          { type: 'email', strategy: 'all', limit: 3 },
          { type: 'phone', strategy: 'last' },
        ],
      }),
    ).toEqual([]);
  });

  it('refuses a limit without all, bounds, duplicates and a fourth all', () => {
    expect(issues({ identify: true, track: true, idSync: [{ type: 'email', strategy: 'last', limit: 2 }] })).toEqual([
      'idSync.0.limit: only with strategy "all" (got "last")',
    ]);
    expect(issues({ identify: true, track: true, idSync: [{ type: 'email', strategy: 'all', limit: 11 }] })).toEqual([
      'idSync.0.limit: Number must be less than or equal to 10',
    ]);
    expect(issues({ identify: true, track: true, idSync: [{ type: 'email', strategy: 'newest' }] })).toHaveLength(1);
    expect(
      issues({
        identify: true,
        track: true,
        idSync: ['email', 'phone', 'ios.idfa', 'android.idfa'].map((type) => ({ type, strategy: 'all' })),
      }),
    ).toEqual(['idSync: at most 3 identifier types may use strategy "all"']);
    expect(
      issues({
        identify: true,
        track: true,
        idSync: [
          { type: 'email', strategy: 'all' },
          { type: 'email', strategy: 'last' },
        ],
      }),
    ).toEqual(['idSync: must not name an identifier type twice']);
    expect(issues({ identify: true, track: true, idSync: [] })).toEqual([
      'idSync: must name at least one identifier type (omit idSync for the default setup)',
    ]);
    expect(issues({ identify: true, track: true, traitEnrichment: ['plan', 'plan', ''] })).toEqual([
      'traitEnrichment.2: must not be empty',
      'traitEnrichment: must not name a trait twice',
    ]);
  });
});

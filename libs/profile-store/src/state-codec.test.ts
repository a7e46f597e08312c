import { compileComputation, dependencyOrder, applyEvent, parseQuery } from '@engage/engine';
import { emptyProfile, type StoredProfile } from './profile-state.repository';
import { decodeState, encodeState, isCompact, packState, slotsOf, unpackState, type CompactState } from './state-codec';

const ref = { spaceId: 'spa_1', profileId: 'pro_1' };
const ids = [
  'aud_0123456789abcdefghijklmnopq',
  'tra_0123456789abcdefghijklmnopq',
  'aud_zzzzzzzzzzzzzzzzzzzzzzzzzzz',
  'tra_dropped_computation_xxxxxx',
];
const slotOf = (id: string) => ids.indexOf(id) + 40; // two base-36 digits
const idOf = (slot: number) => ids[slot - 40]!;
const roundTrip = (p: StoredProfile) => decodeState(unpackState(packState(encodeState(p, slotOf))) as CompactState, ref, idOf);

it('stores every part of a profile and gives the same profile back', () => {
  const profile: StoredProfile = {
    ...emptyProfile(ref),
    traits: { email: 'a@b.co', plan: 'pro' },
    userId: 'u1',
    anonymousId: null,
    externalIds: [
      { type: 'user_id', id: 'u1' },
      { type: 'email', id: 'a@b.co' },
    ],
    metadata: { createdAt: 1, updatedAt: 2, firstMessageId: 'm1', firstSourceId: 's1', lastMessageId: 'm2', lastSourceId: 's2' },
    incremental: {
      tok: 'evt_x',
      h: 1_700_000_000_000,
      n: 3,
      c: { [ids[0]!]: { v: 1, s: [{ n: 2 }] }, [ids[1]!]: { v: 3, s: [[1, 2]] }, [ids[2]!]: { v: 2, s: [] } },
      m: { keep: 1, from: [] },
    },
    values: {
      [ids[0]!]: { value: true, version: 1 }, // computed with its state's version
      [ids[1]!]: { value: ['a', 2], version: 2 }, // an older version than its state (being rebuilt)
      [ids[3]!]: { value: 7, version: 5 }, // its computation was dropped: no state left
    },
    historyLength: 12,
    changeSeq: 4,
    accounts: ['acc_1'],
  };
  expect(roundTrip(profile)).toEqual(profile);
});

it('reads documents of the readable JSON form, as they were stored', () => {
  const readable = { ...emptyProfile(ref), traits: { plan: 'pro' } };
  expect(unpackState(Buffer.from(JSON.stringify(readable)))).toEqual(readable);
});

it('keeps a fresh profile fresh, and tells the compact form from the readable one', () => {
  const fresh = emptyProfile(ref);
  const doc = encodeState(fresh, slotOf);
  expect(doc).toEqual({ $: 3 });
  expect(isCompact(doc)).toBe(true);
  expect(isCompact(fresh)).toBe(false);
  expect(roundTrip(fresh)).toEqual(fresh);
});

it('names each computation once, by its slot, for a state the engine built (a third of the readable JSON or less)', () => {
  const keys = new Set(['orders', 'viewed']);
  const ordered = dependencyOrder([
    compileComputation(
      {
        id: ids[0]!,
        key: 'viewed',
        class: 'audience',
        ast: parseQuery("event('Product Viewed').within(7 days).count() >= 2", { type: 'users' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      keys,
    ),
    compileComputation(
      {
        id: ids[1]!,
        key: 'orders',
        class: 'trait',
        ast: parseQuery("event('Order Completed').sum(property('revenue'))", { type: 'trait' }),
        countsEventsFrom: 0,
        definitionVersion: 1,
      },
      keys,
    ),
  ]);
  const profile = emptyProfile(ref);
  for (let i = 0; i < 4; i++) {
    const event = i % 2 ? 'Product Viewed' : 'Order Completed';
    const e = {
      type: 'track' as const,
      event,
      timestamp: 1_000 * i,
      arrivedAt: 1_000 * i,
      sourceId: 's',
      messageId: `m${i}`,
      eventId: `evt_${i}`,
      properties: { revenue: 10 },
      traits: {},
      context: {},
    };
    applyEvent(profile, e, ordered, { maxEvents: 10, now: 1_000 * i });
  }
  profile.events = [];
  const doc = encodeState(profile, slotOf);
  expect(slotsOf(doc).sort()).toEqual([40, 41]);
  const bytes = packState(doc);
  expect(bytes.includes(ids[0]!)).toBe(false);
  expect(bytes.length * 3).toBeLessThanOrEqual(JSON.stringify(profile).length);
  expect(roundTrip(profile)).toEqual(profile);
});

it('reads documents of format 2 (entries keyed by the slot in base 36), as stores written before format 3 hold them', () => {
  // Format 2 as stop 20's code wrote it: the same profile as format 3 reads it.
  const format2 = {
    $: 2,
    t: { plan: 'pro' },
    u: 'u1',
    i: ['evt_x', 1_700_000_000_000],
    c: {
      [(40).toString(36)]: [1, [{ n: 2 }], true],
      [(41).toString(36)]: [3, [[1, 2]], ['a', 2], 2],
      [(42).toString(36)]: [2, []],
      [(43).toString(36)]: [null, null, 7, 5],
    },
    r: { changeSeq: 4 },
  };
  const doc = unpackState(packState(format2 as unknown as CompactState)) as CompactState;
  expect(isCompact(doc)).toBe(true);
  expect(slotsOf(doc).sort()).toEqual([40, 41, 42, 43]);
  const profile = decodeState(doc, ref, idOf);
  expect(profile.incremental).toEqual({
    tok: 'evt_x',
    h: 1_700_000_000_000,
    n: 3,
    c: { [ids[0]!]: { v: 1, s: [{ n: 2 }] }, [ids[1]!]: { v: 3, s: [[1, 2]] }, [ids[2]!]: { v: 2, s: [] } },
  });
  expect(profile.values).toEqual({
    [ids[0]!]: { value: true, version: 1 },
    [ids[1]!]: { value: ['a', 2], version: 2 },
    [ids[3]!]: { value: 7, version: 5 },
  });
  expect(profile.changeSeq).toBe(4);
  // Saved again, it is format 3, and reads back the same.
  expect(roundTrip(profile)).toEqual(profile);
  expect(encodeState(profile, slotOf).$).toBe(3);
});

it('refuses a document of a format it does not know (a newer release wrote it) instead of misreading it', () => {
  const newer = packState({ $: 4, c: [] } as unknown as CompactState);
  expect(() => unpackState(newer)).toThrow(/format 4: this release reads formats 2 and 3/);
  // Retried as an outage (isInfrastructureError reads `retriable`), not dead-lettered: the upgrade ends it.
  expect(() => unpackState(newer)).toThrow(expect.objectContaining({ retriable: true }));
  // Bytes that are no document of any release are this profile's error, not an outage to wait out.
  for (const damaged of [packState(null as unknown as CompactState), packState({ x: 1 } as unknown as CompactState)]) {
    expect(() => unpackState(damaged)).toThrow(/no document this release reads/);
    expect(() => unpackState(damaged)).toThrow(expect.not.objectContaining({ retriable: true }));
  }
});

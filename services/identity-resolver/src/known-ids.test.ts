import { KnownIds } from './known-ids';

const ids = (...pairs: Array<[string, string]>) => pairs.map(([type, id]) => ({ type, id }));

describe('KnownIds', () => {
  it('answers the profile only when every id of the event was seen on that one profile', () => {
    const known = new KnownIds({ maxEntries: 100, ttlMs: 60_000 });
    known.remember('spa_1', ids(['user_id', 'u1'], ['anonymous_id', 'a1']), 'pro_1');
    known.remember('spa_1', ids(['anonymous_id', 'a2']), 'pro_2');

    expect(known.profileOf('spa_1', ids(['user_id', 'u1'], ['anonymous_id', 'a1']))).toBe('pro_1');
    expect(known.profileOf('spa_1', ids(['anonymous_id', 'a1']))).toBe('pro_1');
    // One id unknown, ids on two profiles, another space, no ids: the graph decides.
    expect(known.profileOf('spa_1', ids(['user_id', 'u1'], ['email', 'x@example.com']))).toBeNull();
    expect(known.profileOf('spa_1', ids(['anonymous_id', 'a1'], ['anonymous_id', 'a2']))).toBeNull();
    expect(known.profileOf('spa_2', ids(['user_id', 'u1']))).toBeNull();
    expect(known.profileOf('spa_1', [])).toBeNull();
    // The same value under another type is another id.
    expect(known.profileOf('spa_1', ids(['email', 'u1']))).toBeNull();
  });

  it('forgets an id within ttlMs of the last time the graph confirmed it', () => {
    let now = 0;
    const known = new KnownIds({ maxEntries: 100, ttlMs: 1000 }, { now: () => now });
    known.remember('spa_1', ids(['user_id', 'u1']), 'pro_1');
    now = 499;
    expect(known.profileOf('spa_1', ids(['user_id', 'u1']))).toBe('pro_1');
    now = 700; // a new generation: u1's is the one before it
    expect(known.profileOf('spa_1', ids(['user_id', 'u1']))).toBe('pro_1');
    known.remember('spa_1', ids(['user_id', 'u2']), 'pro_2');
    now = 1250; // another generation: u1's is gone, u2's kept
    expect(known.profileOf('spa_1', ids(['user_id', 'u1']))).toBeNull();
    expect(known.profileOf('spa_1', ids(['user_id', 'u2']))).toBe('pro_2');
    now = 5000; // idle far longer than ttlMs: nothing kept
    expect(known.profileOf('spa_1', ids(['user_id', 'u2']))).toBeNull();
  });

  it('holds about maxEntries ids at most, forgetting the oldest generation', () => {
    const known = new KnownIds({ maxEntries: 4, ttlMs: 60_000 });
    for (let i = 0; i < 50; i++) {
      known.remember('spa_1', ids(['user_id', `u${i}`]), `pro_${i}`);
      expect(known.size).toBeLessThanOrEqual(4);
    }
    expect(known.profileOf('spa_1', ids(['user_id', 'u49']))).toBe('pro_49');
    expect(known.profileOf('spa_1', ids(['user_id', 'u0']))).toBeNull();
  });

  it('with maxEntries 0 answers nothing', () => {
    const known = new KnownIds({ maxEntries: 0, ttlMs: 60_000 });
    known.remember('spa_1', ids(['user_id', 'u1']), 'pro_1');
    expect(known.profileOf('spa_1', ids(['user_id', 'u1']))).toBeNull();
    expect(known.size).toBe(0);
  });
});

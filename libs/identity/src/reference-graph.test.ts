import { DEFAULT_IDENTITY_RULES, ReferenceGraph, type ExternalId, type GraphEvent } from './index';

let n = 0;
const ev = (...pairs: Array<[string, string]>): GraphEvent => ({
  eventKey: `evt_${++n}`,
  ids: pairs.map(([type, id]): ExternalId => ({ type, id })),
  accountId: null,
  timestamp: 1_760_000_000_000 + n,
});

describe('ReferenceGraph (the merge algorithm, as a specification)', () => {
  it("follows Segment's priority example: a new user_id with a known email demotes the email", () => {
    const g = new ReferenceGraph(DEFAULT_IDENTITY_RULES);
    const jane = g.resolve(ev(['user_id', 'abc123'], ['email', 'jane@example1.com']));
    expect(g.resolve(ev(['user_id', 'abc456'], ['email', 'jane@example1.com']))).toEqual({
      profileId: expect.not.stringMatching(jane.profileId),
      created: true,
      merged: [],
      added: [{ type: 'user_id', id: 'abc456' }],
      gained: [],
      dropped: [{ type: 'email', id: 'jane@example1.com' }],
      accountLinked: false,
    });
  });

  it('merges an anonymous profile into the identified one, which takes over its ids', () => {
    const g = new ReferenceGraph(DEFAULT_IDENTITY_RULES);
    const user = g.resolve(ev(['user_id', 'u1']));
    const anon = g.resolve(ev(['anonymous_id', 'a1'], ['ios.id', 'd1']));
    expect(g.resolve(ev(['user_id', 'u1'], ['anonymous_id', 'a1']))).toEqual(
      expect.objectContaining({
        profileId: user.profileId,
        merged: [anon.profileId],
        gained: [
          { type: 'anonymous_id', id: 'a1' },
          { type: 'ios.id', id: 'd1' },
        ],
      }),
    );
    expect(g.ids.get('ios.id\u001fd1')).toBe(user.profileId);
    expect(g.aliases.get(anon.profileId)).toBe(user.profileId);
  });
});

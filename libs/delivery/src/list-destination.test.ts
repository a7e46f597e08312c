import { createHash } from 'node:crypto';
import {
  chunk,
  classifyFacebookResponse,
  FACEBOOK_BATCH_LIMIT,
  facebookNormalise,
  facebookOutcome,
  facebookPayloads,
  flushIntervalMs,
  normaliseIdentifier,
  splitMembers,
} from './index';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('identifier normalisation and hashing (Facebook customer list rules)', () => {
  it('trims and lowercases emails, keeps phone digits without leading zeros, refuses what cannot match', () => {
    expect(normaliseIdentifier('email', '  Alice@Example.COM ')).toEqual({ ok: true, value: 'alice@example.com' });
    expect(normaliseIdentifier('email', 'not-an-email')).toEqual({ ok: false, reason: 'invalid email "not-an-email"' });
    expect(normaliseIdentifier('phone', '+1 (650) 555-1212')).toEqual({ ok: true, value: '16505551212' });
    expect(normaliseIdentifier('phone', '0044 20 7946 0958')).toEqual({ ok: true, value: '442079460958' });
    expect(normaliseIdentifier('phone', '12')).toMatchObject({ ok: false });
    expect(normaliseIdentifier('first_name', " O'Brien ")).toEqual({ ok: true, value: 'obrien' });
  });

  it('hashes with SHA-256 per schema, sends mobile ad ids as they are, and names unmatched types', () => {
    expect(facebookNormalise({ type: 'email', id: ' Alice@Example.com' })).toEqual({
      ok: true,
      type: 'email',
      value: sha('alice@example.com'),
    });
    expect(facebookNormalise({ type: 'ios.idfa', id: 'AB-CD' })).toEqual({ ok: true, type: 'ios.idfa', value: 'ab-cd' });
    expect(facebookNormalise({ type: 'user_id', id: 'u1' })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('identifier type user_id is not matched'),
    });
    const items = [
      facebookNormalise({ type: 'email', id: 'a@b.co' }),
      facebookNormalise({ type: 'email', id: 'bad' }),
      facebookNormalise({ type: 'phone', id: '+33 6 12 34 56 78' }),
      facebookNormalise({ type: 'email', id: 'c@d.co' }),
    ];
    expect(facebookPayloads(items)).toEqual([
      { body: { payload: { schema: 'EMAIL_SHA256', data: [sha('a@b.co'), sha('c@d.co')] } }, indexes: [0, 3] },
      { body: { payload: { schema: 'PHONE_SHA256', data: [sha('33612345678')] } }, indexes: [2] },
    ]);
    expect(facebookOutcome({ invalid_entry_samples: { [sha('c@d.co')]: 'bad hash' } }, [sha('a@b.co'), sha('c@d.co')], [0, 3])).toEqual({
      failed: [{ index: 3, reason: 'Facebook refused the entry: bad hash' }],
    });
    expect(FACEBOOK_BATCH_LIMIT).toBe(10_000);
  });

  it('retries Facebook throttling (HTTP 400 with #80003 / #17), fails bad tokens and parameters at once', () => {
    expect(classifyFacebookResponse(400, { error: { code: 80003, message: 'too many calls' } }, null, 0)).toEqual({
      kind: 'retry',
      reason: 'HTTP 400 (#80003) too many calls',
      retryAfterMs: undefined,
    });
    expect(classifyFacebookResponse(400, { error: { code: 17, message: 'User request limit reached' } }, '2', 0)).toMatchObject({
      kind: 'retry',
      retryAfterMs: 2000,
    });
    expect(classifyFacebookResponse(401, { error: { code: 190, message: 'Invalid OAuth access token' } }, null, 0)).toEqual({
      kind: 'fail',
      reason: 'HTTP 401 (#190) Invalid OAuth access token',
    });
    expect(classifyFacebookResponse(400, { error: { code: 100, message: 'Invalid parameter' } }, null, 0).kind).toBe('fail');
    expect(classifyFacebookResponse(503, null, null, 0).kind).toBe('retry');
    expect(classifyFacebookResponse(200, { num_received: 1 }, null, 0)).toEqual({ kind: 'delivered' });
  });
});

describe('list flush helpers', () => {
  it('splits adds and removes on the matched identifier types, chunks, and reads the cadence', () => {
    const members = [
      {
        profileId: 'p1',
        member: true,
        ids: [
          { type: 'user_id', id: 'u1' },
          { type: 'email', id: 'a@b.co' },
          { type: 'email', id: 'c@d.co' },
        ],
      },
      { profileId: 'p2', member: false, ids: [{ type: 'email', id: 'e@f.co' }] },
    ];
    const { add, remove } = splitMembers(members, ['email']);
    expect(add.map((x) => x.id.id)).toEqual(['a@b.co', 'c@d.co']);
    expect(remove.map((x) => [x.member.profileId, x.id.id])).toEqual([['p2', 'e@f.co']]);
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(() => chunk([1], 0)).toThrow('chunk size must be >= 1, got 0');
    expect([flushIntervalMs({}), flushIntervalMs({ syncIntervalSeconds: 30 }), flushIntervalMs({ cadenceMinutes: 5 })]).toEqual([
      3600_000, 30_000, 300_000,
    ]);
  });
});

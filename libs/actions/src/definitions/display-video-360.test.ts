// Our Display & Video 360 definition's pure parts: how members become
// editCustomerMatchMembers requests, how emails are hashed, how Google's
// errors read, and its settings as the catalog checks them. The HTTP side
// runs against an emulator in services/dispatcher/src/actions-dv360.int.test.ts.
import { createHash } from 'node:crypto';
import { settingsIssues, withDefaultSettings } from '../catalog';
import { googleMessage, hashedEmail, planMemberEdits } from './display-video-360';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const member = (email: string | undefined, inAudience: unknown, over: Record<string, unknown> = {}) => ({
  external_audience_id: '4242',
  audience_key: 'vip',
  values: { vip: inAudience },
  ...(email === undefined ? {} : { email }),
  ...over,
});
const GRANTED = { adUserData: 'CONSENT_STATUS_GRANTED', adPersonalization: 'CONSENT_STATUS_GRANTED' };

describe('display-video-360: members as editCustomerMatchMembers requests', () => {
  it('hashes trimmed, lower-cased emails; a SHA-256 hex hash passes through (lower-cased)', () => {
    expect(hashedEmail('  Ann@Example.COM ')).toBe(sha256('ann@example.com'));
    const hash = sha256('bob@example.com');
    expect(hashedEmail(hash)).toBe(hash);
    expect(hashedEmail(hash.toUpperCase())).toBe(hash);
    // Not 64 hex digits: an email like any other.
    expect(hashedEmail(hash.slice(1))).toBe(sha256(hash.slice(1)));
  });

  it('entries and exits go in separate requests, entries grouped by consent; members without email or membership are refused alone', () => {
    const { edits, refused } = planMemberEdits('123', [
      member('a@example.com', true),
      member('b@example.com', false),
      member(undefined, true),
      member('c@example.com', true, { ad_personalization_consent: 'CONSENT_STATUS_DENIED' }),
      member('d@example.com', true),
      member('e@example.com', 'yes'),
      member('  ', false),
    ]);
    expect(edits).toEqual([
      {
        indices: [0, 4],
        body: {
          advertiserId: '123',
          addedContactInfoList: {
            contactInfos: [{ hashedEmails: [sha256('a@example.com')] }, { hashedEmails: [sha256('d@example.com')] }],
            consent: GRANTED,
          },
        },
      },
      {
        indices: [1],
        body: { advertiserId: '123', removedContactInfoList: { contactInfos: [{ hashedEmails: [sha256('b@example.com')] }] } },
      },
      {
        indices: [3],
        body: {
          advertiserId: '123',
          addedContactInfoList: {
            contactInfos: [{ hashedEmails: [sha256('c@example.com')] }],
            consent: { adUserData: 'CONSENT_STATUS_GRANTED', adPersonalization: 'CONSENT_STATUS_DENIED' },
          },
        },
      },
    ]);
    expect(refused).toEqual([
      { index: 2, message: expect.stringMatching(/^no email/) },
      { index: 5, message: expect.stringMatching(/^'vip' is not true or false/) },
      { index: 6, message: expect.stringMatching(/^no email/) },
    ]);
  });

  it("reads Google's error answers: status and message", () => {
    const answer = JSON.stringify({ error: { code: 400, message: 'Invalid hashed email.', status: 'INVALID_ARGUMENT' } });
    expect(googleMessage(answer, 'Bad Request')).toBe('INVALID_ARGUMENT: Invalid hashed email.');
    expect(googleMessage('not json', 'Bad Request')).toBe('not json');
    expect(googleMessage('', 'Bad Request')).toBe('Bad Request');
    expect(googleMessage(JSON.stringify({ other: 1 }), 'Bad Request')).toBe('Bad Request');
  });

  it('takes advertiserId, a membership duration up to 540 days (540 by default) and OAuth tokens', () => {
    const oauth = { access_token: 'ya29.a', refresh_token: '1//r', clientId: 'c', clientSecret: 's' };
    expect(settingsIssues('display-video-360', { advertiserId: '123', oauth })).toEqual([]);
    expect(withDefaultSettings('display-video-360', { advertiserId: '123' })).toEqual({ advertiserId: '123', membershipDurationDays: 540 });
    expect(settingsIssues('display-video-360', { oauth })).toEqual([['settings.advertiserId', 'is required']]);
    expect(settingsIssues('display-video-360', { advertiserId: '123' })).toEqual([
      ['settings.oauth', 'is required: {access_token, refresh_token?, clientId?, clientSecret?}'],
    ]);
    expect(settingsIssues('display-video-360', { advertiserId: '123', oauth, membershipDurationDays: 541 })).toEqual([
      ['settings.membershipDurationDays', expect.stringContaining('540')],
    ]);
    expect(settingsIssues('display-video-360', { advertiserId: '123', oauth, partnerId: 'x' })).toEqual([
      ['settings.partnerId', expect.stringMatching(/^is not a setting of display-video-360/)],
    ]);
  });
});

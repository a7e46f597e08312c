// A local emulator of Google's OAuth token endpoint and the Display & Video
// 360 API v3 calls of our display-video-360 definition (Customer Match
// first-party audiences and their members) over real HTTP, enforcing their
// documented contract and keeping each audience's members (hashed emails) so
// a test can read what Google holds. Faults queued by a test answer the next
// requests first.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { googleTokenEndpoint } from './google-oauth';
import { Receiver, type Responder } from './receiver';
import type { Emulator } from './vendor-emulators';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Body = any;
type Answer = ReturnType<Responder>;

const STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** A Google API error: `{error: {code, message, status}}` (google.rpc.Status). */
export const googleError = (code: number, message: string, headers?: Record<string, string>): Answer => ({
  status: code,
  ...(headers ? { headers } : {}),
  body: { error: { code, message, status: STATUS[code] ?? 'UNKNOWN' } },
});

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const SHA256_HEX = /^[0-9a-f]{64}$/;
const CONSENT = ['CONSENT_STATUS_GRANTED', 'CONSENT_STATUS_DENIED'];

export interface Dv360Audience {
  advertiserId: string;
  displayName: string;
  description?: string;
  membershipDurationDays: string;
  members: Set<string>;
  /** The consent each add came with, in order. */
  consents: Array<{ adUserData: string; adPersonalization: string }>;
}

/**
 * Google OAuth 2.0 (POST https://oauth2.googleapis.com/token, form
 * grant_type=refresh_token, refresh_token, client_id, client_secret ->
 * {access_token, expires_in, token_type}; 400 invalid_grant for a revoked
 * refresh token, 401 invalid_client for a wrong client). Display & Video 360
 * API v3 (developers.google.com/display-video/api/reference/rest/v3/firstAndThirdPartyAudiences)
 * at displayvideo.googleapis.com, every call with `Authorization: Bearer`
 * (401 UNAUTHENTICATED for an unknown or expired token), for the advertisers
 * the token's user may reach (403 PERMISSION_DENIED for others):
 * POST /v3/firstAndThirdPartyAudiences?advertiserId= (a first-party
 * CUSTOMER_MATCH_CONTACT_INFO audience: displayName, membershipDurationDays
 * 1..540, contactInfoList with consent), GET
 * /v3/firstAndThirdPartyAudiences/{id}?advertiserId=, and POST
 * /v3/firstAndThirdPartyAudiences/{id}:editCustomerMatchMembers
 * {advertiserId, addedContactInfoList {contactInfos, consent} |
 * removedContactInfoList {contactInfos}}: one list a request, at least one
 * contact info, each with hashedEmails of SHA-256 lower-case hex (400
 * INVALID_ARGUMENT otherwise); the answer is {firstAndThirdPartyAudienceId}.
 * `throttleOnce` answers the next member edit with a 429 RESOURCE_EXHAUSTED and Retry-After.
 */
export async function dv360Emulator(opts: {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** Access tokens valid from the start. */
  accessTokens?: string[];
  /** Advertisers the token's user may reach. */
  advertiserIds: string[];
}) {
  const live = new Set<string>(opts.accessTokens ?? []);
  const audiences = new Map<string, Dv360Audience>();
  const faults: Answer[] = [];
  let throttle: string | null = null;
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();

  const token = googleTokenEndpoint(opts, { tag: 'dv360', scope: 'https://www.googleapis.com/auth/display-video', live });

  /** Why a contact info list is malformed, if it is. */
  function badContactInfos(list: Body, added: boolean): string | undefined {
    const infos = list?.contactInfos;
    if (!Array.isArray(infos) || infos.length === 0) return 'contactInfos must list at least one contact info.';
    for (const [i, info] of infos.entries()) {
      const emails = info?.hashedEmails;
      if (!Array.isArray(emails) || emails.length === 0) return `contactInfos[${i}] has no hashedEmails.`;
      if (emails.some((e: unknown) => typeof e !== 'string' || !SHA256_HEX.test(e)))
        return `contactInfos[${i}].hashedEmails must be SHA-256 hashes in lower-case hex.`;
    }
    if (added && (!CONSENT.includes(list.consent?.adUserData) || !CONSENT.includes(list.consent?.adPersonalization)))
      return 'addedContactInfoList.consent needs adUserData and adPersonalization.';
    return undefined;
  }

  function check(method: string, rawPath: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    const url = new URL(rawPath, 'http://emulator');
    if (headers.host === 'oauth2.googleapis.com' && method === 'POST' && url.pathname === '/token') return token(body);
    if (headers.host !== 'displayvideo.googleapis.com') return googleError(404, `no such host ${String(headers.host)}`);
    const bearer = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
    if (!bearer || !live.has(bearer))
      return googleError(
        401,
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      );
    const advertiserId = url.searchParams.get('advertiserId') ?? (typeof body?.advertiserId === 'string' ? body.advertiserId : null);
    if (!advertiserId) return googleError(400, 'advertiserId is required.');
    if (!opts.advertiserIds.includes(advertiserId))
      return googleError(403, `The caller does not have permission (advertiser ${advertiserId}).`);

    if (url.pathname === '/v3/firstAndThirdPartyAudiences' && method === 'POST') {
      if (typeof body?.displayName !== 'string' || body.displayName === '') return googleError(400, 'displayName is required.');
      if (body.firstAndThirdPartyAudienceType !== 'FIRST_AND_THIRD_PARTY_AUDIENCE_TYPE_FIRST_PARTY')
        return googleError(400, 'firstAndThirdPartyAudienceType must be FIRST_AND_THIRD_PARTY_AUDIENCE_TYPE_FIRST_PARTY.');
      if (body.audienceType !== 'CUSTOMER_MATCH_CONTACT_INFO') return googleError(400, 'audienceType must be CUSTOMER_MATCH_CONTACT_INFO.');
      const days = Number(body.membershipDurationDays);
      if (!Number.isInteger(days) || days < 1 || days > 540) return googleError(400, 'membershipDurationDays must be between 1 and 540.');
      const consent = body.contactInfoList?.consent;
      if (!Array.isArray(body.contactInfoList?.contactInfos) || !CONSENT.includes(consent?.adUserData))
        return googleError(400, 'contactInfoList with consent is required.');
      if ([...audiences.values()].some((a) => a.advertiserId === advertiserId && a.displayName === body.displayName))
        return googleError(400, 'Display name is already in use by another audience of this advertiser.');
      const id = String(5_000_000 + audiences.size + 1);
      audiences.set(id, {
        advertiserId,
        displayName: body.displayName,
        ...(typeof body.description === 'string' ? { description: body.description } : {}),
        membershipDurationDays: String(days),
        members: new Set(),
        consents: [],
      });
      return { status: 200, body: { name: `firstAndThirdPartyAudiences/${id}`, firstAndThirdPartyAudienceId: id, ...body } };
    }
    const one = /^\/v3\/firstAndThirdPartyAudiences\/([^/:]+)(:editCustomerMatchMembers)?$/.exec(url.pathname);
    const audience = one ? audiences.get(one[1]!) : undefined;
    if (!one || !audience || audience.advertiserId !== advertiserId)
      return googleError(404, `Requested entity was not found (${method} ${url.pathname}).`);
    if (!one[2] && method === 'GET')
      return {
        status: 200,
        body: {
          name: `firstAndThirdPartyAudiences/${one[1]}`,
          firstAndThirdPartyAudienceId: one[1],
          displayName: audience.displayName,
          audienceType: 'CUSTOMER_MATCH_CONTACT_INFO',
          membershipDurationDays: audience.membershipDurationDays,
        },
      };
    if (!one[2] || method !== 'POST') return googleError(404, `no such method ${method} ${url.pathname}`);
    if (throttle !== null) {
      const retryAfter = throttle;
      throttle = null;
      return googleError(429, 'Quota exceeded for quota metric Write requests per minute per advertiser.', { 'retry-after': retryAfter });
    }
    if (body?.advertiserId !== advertiserId) return googleError(400, 'advertiserId is required in the request body.');
    const added = body.addedContactInfoList;
    const removed = body.removedContactInfoList;
    if (added && removed) return googleError(400, 'Only one of addedContactInfoList and removedContactInfoList may be set in a request.');
    if (!added && !removed) return googleError(400, 'One of addedContactInfoList and removedContactInfoList is required.');
    const bad = badContactInfos(added ?? removed, Boolean(added));
    if (bad) return googleError(400, bad);
    for (const info of (added ?? removed).contactInfos as Array<{ hashedEmails: string[] }>)
      for (const h of info.hashedEmails) void (added ? audience.members.add(h) : audience.members.delete(h));
    if (added) audience.consents.push(added.consent);
    return { status: 200, body: { firstAndThirdPartyAudienceId: one[1] } };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    audiences,
    /** Google's access tokens last an hour: this one is now refused. */
    expire: (accessToken: string) => void live.delete(accessToken),
    /** The next member edit gets a 429 RESOURCE_EXHAUSTED with this Retry-After (seconds). */
    throttleOnce: (retryAfterSeconds: number) => void (throttle = String(retryAfterSeconds)),
  };
}

// A local emulator of Google's OAuth token endpoint and the Google Ads API's
// Customer Match calls (user lists, offline user data jobs) over real HTTP,
// enforcing their documented contract and keeping each user list's members
// (hashed identifiers) so a test can read what Google holds. Faults queued by
// a test answer the next requests first.
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
};

/** A Google Ads API error: `{error: {code, message, status, details: [GoogleAdsFailure]}}`. */
export const googleAdsError = (
  code: number,
  message: string,
  errorCode: Record<string, string> = {},
  headers?: Record<string, string>,
): Answer => ({
  status: code,
  ...(headers ? { headers } : {}),
  body: {
    error: {
      code,
      message,
      status: STATUS[code] ?? 'UNKNOWN',
      details: [{ '@type': 'type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure', errors: [{ errorCode, message }] }],
    },
  },
});

/** Identifiers per addOperations request (Google's limit for Customer Match). */
export const MAX_IDENTIFIERS = 100_000;

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Google OAuth (POST https://www.googleapis.com/oauth2/v4/token, form
 * grant_type=refresh_token, refresh_token, client_id, client_secret ->
 * {access_token, expires_in}; 400 invalid_grant for a revoked refresh token,
 * 401 invalid_client for a wrong client). Google Ads API v21
 * (developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match)
 * at googleads.googleapis.com, every call with `Authorization: Bearer` and
 * `developer-token`: customers/{id}/userLists:mutate (a CRM-based list; a
 * name taken is NAME_ALREADY_USED), customers/{id}/offlineUserDataJobs:create
 * (a CUSTOMER_MATCH_USER_LIST job for a list of that customer, consent given),
 * {job}:addOperations (create/remove of userIdentifiers, at most 100,000
 * identifiers a request; with enablePartialFailure a bad operation is a
 * partialFailureError naming its index, the others are kept) and {job}:run
 * (applies the job). 401 UNAUTHENTICATED for an expired token; a 429
 * RESOURCE_EXHAUSTED with Retry-After and CONCURRENT_MODIFICATION come as faults.
 */
export async function googleAdsEmulator(opts: {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  developerToken: string;
  customerId: string;
}) {
  const live = new Set<string>();
  const lists = new Map<string, { name: string; uploadKeyType: string; members: Set<string> }>();
  const jobs = new Map<string, { listId: string; ops: Array<{ add: boolean; ids: string[] }>; ran: boolean }>();
  const faults: Answer[] = [];
  const receiver = await new Receiver((path, body, _nth, headers, method) => faults.shift() ?? check(method, path, body, headers)).start();
  const base = `/v21/customers/${opts.customerId}`;

  const token = googleTokenEndpoint(opts, { tag: 'google', scope: 'https://www.googleapis.com/auth/adwords', live });

  function check(method: string, path: string, body: Body, headers: http.IncomingHttpHeaders): Answer {
    if (headers.host === 'www.googleapis.com' && method === 'POST' && path === '/oauth2/v4/token') return token(body);
    if (headers.host !== 'googleads.googleapis.com' || method !== 'POST')
      return googleAdsError(404, `no such endpoint ${method} ${headers.host}${path}`);
    const bearer = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
    if (!bearer || !live.has(bearer))
      return googleAdsError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token.', {
        authenticationError: 'OAUTH_TOKEN_INVALID',
      });
    if (headers['developer-token'] !== opts.developerToken)
      return googleAdsError(401, 'The developer token is not valid.', { authenticationError: 'DEVELOPER_TOKEN_INVALID' });
    if (path === `${base}/userLists:mutate`) {
      const create = body?.operations?.[0]?.create;
      if (!create?.name || !create.crmBasedUserList?.uploadKeyType)
        return googleAdsError(400, 'Request contains an invalid argument.', { fieldError: 'REQUIRED' });
      if ([...lists.values()].some((l) => l.name === create.name))
        return googleAdsError(400, 'Name is already being used for another user list for the account.', {
          userListError: 'NAME_ALREADY_USED',
        });
      const id = String(9000 + lists.size + 1);
      lists.set(id, { name: create.name, uploadKeyType: create.crmBasedUserList.uploadKeyType, members: new Set() });
      return { status: 200, body: { results: [{ resourceName: `customers/${opts.customerId}/userLists/${id}` }] } };
    }
    if (path === `${base}/offlineUserDataJobs:create`) {
      const job = body?.job;
      const listId = /^customers\/(\d+)\/userLists\/(\d+)$/.exec(job?.customerMatchUserListMetadata?.userList ?? '');
      if (job?.type !== 'CUSTOMER_MATCH_USER_LIST' || !listId)
        return googleAdsError(400, 'Request contains an invalid argument.', { fieldError: 'REQUIRED' });
      if (listId[1] !== opts.customerId || !lists.has(listId[2]!))
        return googleAdsError(400, 'The user list does not exist for this customer.', { offlineUserDataJobError: 'INVALID_USER_LIST_ID' });
      const consent = job.customerMatchUserListMetadata.consent ?? {};
      if (!consent.adUserData || !consent.adPersonalization)
        return googleAdsError(400, 'Customer Match uploads need consent (adUserData, adPersonalization).', {
          offlineUserDataJobError: 'INVALID_CONSENT',
        });
      const id = String(7000 + jobs.size + 1);
      jobs.set(id, { listId: listId[2]!, ops: [], ran: false });
      return { status: 200, body: { resourceName: `customers/${opts.customerId}/offlineUserDataJobs/${id}` } };
    }
    const jobCall = new RegExp(`^${base}/offlineUserDataJobs/(\\d+):(addOperations|run)$`).exec(path);
    const job = jobCall && jobs.get(jobCall[1]!);
    if (!job) return googleAdsError(404, `no such endpoint ${path}`);
    if (job.ran) return googleAdsError(400, 'The job has already run.', { offlineUserDataJobError: 'INVALID_JOB_STATUS' });
    if (jobCall[2] === 'run') {
      const members = lists.get(job.listId)!.members;
      for (const op of job.ops) for (const id of op.ids) void (op.add ? members.add(id) : members.delete(id));
      job.ran = true;
      return { status: 200, body: { name: `customers/${opts.customerId}/operations/${jobCall[1]}` } };
    }
    const operations: Body[] = body?.operations;
    if (!Array.isArray(operations) || operations.length === 0)
      return googleAdsError(400, 'Request contains an invalid argument.', { fieldError: 'REQUIRED' });
    const identifiers = operations.reduce((n, op) => n + ((op?.create ?? op?.remove)?.userIdentifiers?.length ?? 0), 0);
    if (identifiers > MAX_IDENTIFIERS)
      return googleAdsError(400, `At most ${MAX_IDENTIFIERS} identifiers a request, got ${identifiers}.`, {
        offlineUserDataJobError: 'TOO_MANY_USER_IDENTIFIERS',
      });
    const failures: Body[] = [];
    operations.forEach((op, index) => {
      const ids: Body[] = (op?.create ?? op?.remove)?.userIdentifiers ?? [];
      const hashed = ids.map((i) => i.hashedEmail ?? i.hashedPhoneNumber).filter((v) => v !== undefined);
      if (hashed.length === 0 || hashed.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
        failures.push({
          errorCode: { offlineUserDataJobError: 'INVALID_SHA256_FORMAT' },
          message: 'The SHA256 encoded value is malformed.',
          location: { fieldPathElements: [{ fieldName: 'operations', index }] },
        });
        return;
      }
      job.ops.push({ add: Boolean(op.create), ids: hashed });
    });
    if (failures.length > 0 && !body.enablePartialFailure) return googleAdsError(400, failures[0].message, failures[0].errorCode);
    return {
      status: 200,
      body: failures.length > 0 ? { partialFailureError: { code: 3, message: failures[0].message, details: [{ errors: failures }] } } : {},
    };
  }

  const emulator: Emulator = { receiver, target: receiver.url.replace(/^http:\/\//, ''), faults };
  return {
    ...emulator,
    lists,
    /** Google's access tokens last an hour: this one is now refused. */
    expire: (accessToken: string) => void live.delete(accessToken),
  };
}

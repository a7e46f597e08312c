// What a vendor's answer means where its HTTP status alone misleads the
// retry policy: read once, by slug, where the runtime turns the answer into
// an outcome, so the policy itself (libs/delivery classifyActionOutcome)
// stays vendor-neutral. Pure: an answer's status and body in, a reading out.
import { FACEBOOK_RETRY_CODES } from '@engage/delivery';

/** What an answer stands for beyond its HTTP status; undefined when the status says it all. */
export interface VendorReading {
  /** The vendor is over a request limit: retried as a 429 is, whatever the status. */
  rateLimited?: boolean;
  /** The status the answer stands for, when it is not the HTTP status (an error answered with a 200). */
  status?: number;
  /** The vendor's error, when the HTTP status carries none. */
  message?: string;
}

type Reader = (status: number, body: unknown) => VendorReading | undefined;

function parsed(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

/** Salesforce's errors: `[{message, errorCode}]`. */
function salesforceErrorCodes(body: unknown): string[] {
  const errors = parsed(body);
  return Array.isArray(errors) ? errors.map((e) => String((e as { errorCode?: unknown })?.errorCode ?? '')) : [];
}

/**
 * TikTok's Marketing API answers errors with HTTP 200 and a non-zero `code`
 * in the body (`{code, message, request_id, data}`), and the definition
 * sends its audience changes with throwHttpErrors off and returns the answer
 * unread: without this every refusal would pass for a delivery.
 * https://business-api.tiktok.com/portal/docs?id=1737172488964097 (return codes)
 */
function tiktokAnswer(status: number, body: unknown): VendorReading | undefined {
  const answer = parsed(body) as { code?: unknown; message?: unknown } | undefined;
  if (status < 200 || status >= 300 || typeof answer?.code !== 'number' || answer.code === 0) return undefined;
  const message = `TikTok code ${answer.code}: ${String(answer.message ?? '')}`;
  // 40100: too many requests (the app's or advertiser's QPS or daily limit).
  if (answer.code === 40100) return { rateLimited: true, status: 429, message };
  // 40104: no access token; 40105: the token is invalid or revoked; 40001: no permission on the advertiser.
  if (answer.code === 40104 || answer.code === 40105) return { status: 401, message };
  if (answer.code === 40001) return { status: 403, message };
  // 5xxxx: TikTok's own errors.
  if (answer.code >= 50000) return { status: 503, message };
  return { status: 400, message };
}

/**
 * Marketo's REST API answers errors with HTTP 200, `success: false` and coded
 * errors (developer.adobe.com/marketo-apis/error-codes): what each code means
 * for a call, read by our own lead upsert (definitions/marketo.ts) and for
 * Marketo Static Lists, whose definition turns them into per-item statuses.
 * 600/601/602: no, an invalid or an expired access token (a new one is got);
 * 606 (100 calls per 20 s), 607 (the daily quota), 615 (10 concurrent calls):
 * over a limit; 604/608/611/713 (timeouts, unavailable) and 1016 (too many
 * bulk imports queued, at most 10): retried; any other code is refused.
 */
export type MarketoCodeMeaning = 'token' | 'rateLimited' | 'retried' | 'refused';

const MARKETO_TOKEN_CODES = ['600', '601', '602'];
const MARKETO_LIMIT_CODES = ['606', '607', '615'];
const MARKETO_RETRIED_CODES = ['604', '608', '611', '713', '1016'];

export function marketoCodeMeaning(code: unknown): MarketoCodeMeaning {
  const c = String(code);
  if (MARKETO_TOKEN_CODES.includes(c)) return 'token';
  if (MARKETO_LIMIT_CODES.includes(c)) return 'rateLimited';
  return MARKETO_RETRIED_CODES.includes(c) ? 'retried' : 'refused';
}

/**
 * Marketo Static Lists: its definition reads `success: false` itself (a
 * per-item 400 for the codes it knows as final, a 500 RETRYABLE_ERROR for the
 * rest, the error as the item's body), but a limit code is then an ordinary
 * retry and a missing token (600) is retried forever: read by code here.
 */
function marketoAnswer(_status: number, body: unknown): VendorReading | undefined {
  const answer = parsed(body) as { code?: unknown; message?: unknown; success?: unknown; errors?: unknown } | undefined;
  const error = Array.isArray(answer?.errors) ? (answer.errors[0] as { code?: unknown; message?: unknown } | undefined) : answer;
  if (error?.code === undefined || answer?.success === true) return undefined;
  const message = `Marketo ${String(error.code)}: ${String(error.message ?? '')}`;
  const meaning = marketoCodeMeaning(error.code);
  if (meaning === 'rateLimited') return { rateLimited: true, status: 429, message };
  if (meaning === 'token') return { status: 401, message };
  return undefined;
}

/**
 * Responsys answers its throttling limits (per API per minute:
 * API_LIMIT_EXCEEDED) and its account's internal capacity (per 10 minutes:
 * INTERNAL_CAPACITY_LIMIT_EXCEEDED) with HTTP 401, as it does refused
 * credentials: `{type, title, errorCode, detail, errorDetails}`.
 * https://docs.oracle.com/en/cloud/saas/marketing/responsys-develop/API/GetStarted/FAQs/faqs-https-status-codes.htm
 * NOTE: actions-core takes every 401 of an OAuth definition for a stale
 * token: a throttled merge costs a few logins before its answer comes here.
 */
function responsysAnswer(status: number, body: unknown): VendorReading | undefined {
  const answer = parsed(body) as { errorCode?: unknown; detail?: unknown } | undefined;
  if (status !== 401 || (answer?.errorCode !== 'API_LIMIT_EXCEEDED' && answer?.errorCode !== 'INTERNAL_CAPACITY_LIMIT_EXCEEDED'))
    return undefined;
  return { rateLimited: true, message: `Responsys ${answer.errorCode}: ${String(answer.detail ?? '')}` };
}

/**
 * Facebook's Graph API answers errors as `{error: {message, type, code,
 * error_subcode, is_transient, fbtrace_id}}`, most with HTTP 400: an invalid,
 * expired or revoked access token (code 190, OAuthException; 102, a session)
 * and throttling (4, 17, 32, 613, 80003 ... with 1 and 2, transient
 * failures: FACEBOOK_RETRY_CODES, shared with our own adapter) alike. The definition turns each into a per-item 400
 * holding the payload (its identifiers before hashing) and Facebook's code in
 * a message, so the runtime hands this Facebook's own answer.
 * https://developers.facebook.com/docs/graph-api/guides/error-handling
 * https://developers.facebook.com/docs/marketing-api/overview/rate-limiting
 */
function facebookAnswer(status: number, body: unknown): VendorReading | undefined {
  const error = (parsed(body) as { error?: { code?: unknown; message?: unknown; is_transient?: unknown } } | undefined)?.error;
  if (status < 400 || typeof error?.code !== 'number') return undefined;
  const message = `Facebook code ${error.code}: ${String(error.message ?? '')}`;
  if (FACEBOOK_RETRY_CODES.has(error.code) || error.is_transient === true) return { rateLimited: true, status: 429, message };
  if (error.code === 190 || error.code === 102) return { status: 401, message };
  // 10 and 200-299: the token lacks a permission (ads_management, access to the ad account).
  if (error.code === 10 || (error.code >= 200 && error.code < 300)) return { status: 403, message };
  // Any other (100: a bad parameter ...): refused with Facebook's message, not the item's payload (its identifiers unhashed).
  return { message };
}

const READERS: Record<string, Reader> = {
  // NOTE: Salesforce answers its org's API request limit (a rolling 24 h
  // allocation) with a 403 REQUEST_LIMIT_EXCEEDED, not a 429: the calls wait
  // for the allocation to free up; the credentials are fine.
  // https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
  salesforce: (status, body) =>
    status === 403 && salesforceErrorCodes(body).includes('REQUEST_LIMIT_EXCEEDED') ? { rateLimited: true } : undefined,
  'tiktok-audiences': tiktokAnswer,
  'marketo-static-lists': marketoAnswer,
  responsys: responsysAnswer,
  'facebook-custom-audiences': facebookAnswer,
};

/** How `slug`'s vendor meant an answer with this status and body (a string as received, or parsed). */
export function readVendorAnswer(slug: string, status: number, body: unknown): VendorReading | undefined {
  return READERS[slug]?.(status, body);
}

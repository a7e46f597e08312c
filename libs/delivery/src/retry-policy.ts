// When a destination's answer means "try again" (DESIGN.md delivery model):
// 408, 423, 429 and 5xx except 501 are retried with exponential backoff and
// jitter, 429 waiting at least its Retry-After; other 4xx fail at once.

export type DeliveryVerdict =
  { kind: 'delivered' } | { kind: 'retry'; reason: string; retryAfterMs?: number } | { kind: 'fail'; reason: string };

export function classifyResponse(status: number, retryAfterHeader?: string | null, now = Date.now()): DeliveryVerdict {
  if (status >= 200 && status < 300) return { kind: 'delivered' };
  const reason = `HTTP ${status}`;
  if (status === 408 || status === 423 || status === 429 || (status >= 500 && status !== 501)) {
    return { kind: 'retry', reason, retryAfterMs: parseRetryAfter(retryAfterHeader, now) };
  }
  return { kind: 'fail', reason };
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Segment's documented default rate limits (requests per second) by destination type. */
export const DEFAULT_RATE_LIMITS: Record<string, number> = {
  braze: 100,
  customerio: 30,
  hubspot: 5,
  intercom: 8,
  iterable: 500,
  mailchimp: 10,
  marketo: 5,
  pardot: 2,
  responsys: 3,
  sendgrid: 100,
  salesforce: 5,
  'salesforce-marketing-cloud': 20,
  zendesk: 50,
  // Not in Segment's table: Facebook throttles per ad account by a usage score; a modest default.
  'facebook-custom-audiences': 10,
};

/** Actions definitions (by slug) that share a vendor's limit under another name. */
const SLUG_RATE_LIMIT_ALIASES: Record<string, string> = {
  'braze-cohorts': 'braze',
  'iterable-lists': 'iterable',
  'actions-pardot': 'pardot',
  'sendgrid-audiences': 'sendgrid',
  'marketo-static-lists': 'marketo',
};

/** The default rate of a destination type, or of an Actions destination's slug (requests per second). */
export function defaultRateLimit(destination: { type: string; slug?: string }): number | undefined {
  if (destination.type === 'actions' && destination.slug)
    return DEFAULT_RATE_LIMITS[SLUG_RATE_LIMIT_ALIASES[destination.slug] ?? destination.slug];
  return DEFAULT_RATE_LIMITS[destination.type];
}

/** The destination's rate: its own override, else the type's (or slug's) default, else none (null). */
export function rateLimitOf(destination: {
  type: string;
  slug?: string;
  rateLimit?: { requestsPerSecond: number; burst?: number };
}): { perSecond: number; burst: number } | null {
  const perSecond = destination.rateLimit?.requestsPerSecond ?? defaultRateLimit(destination);
  if (!perSecond) return null;
  // Burst defaults to 1 (evenly spaced requests): a larger burst lets a 1 s
  // window see burst + rate requests, more than the documented limit.
  return { perSecond, burst: destination.rateLimit?.burst ?? 1 };
}

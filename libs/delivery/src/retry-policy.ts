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

/**
 * Segment's documented default rate limits of Engage destinations (requests
 * per second, docs "Engage destinations: rate limits"), by vendor: Braze 100,
 * Customer.io 30, HubSpot 5, Intercom 8, Iterable 500, Mailchimp 10, Marketo
 * 5, Pardot 2, Resci 200, Responsys 3, SendGrid 100, Salesforce 5, SFMC 20,
 * Zendesk 50. Keyed by destination type (the classic types of that name).
 */
export const DEFAULT_RATE_LIMITS: Record<string, number> = {
  braze: 100,
  customerio: 30,
  hubspot: 5,
  intercom: 8,
  iterable: 500,
  mailchimp: 10,
  marketo: 5,
  pardot: 2,
  resci: 200,
  responsys: 3,
  sendgrid: 100,
  salesforce: 5,
  'salesforce-marketing-cloud': 20,
  zendesk: 50,
  // Not in Segment's table: Facebook throttles per ad account by a usage score; a modest default.
  'facebook-custom-audiences': 10,
};

/** Where a default rate comes from: Segment's table of its vendor, or this system's own choice where Segment documents none. */
export interface DefaultRateLimit {
  requestsPerSecond: number;
  source: 'segment' | 'engage';
  note: string;
}

const documented = (vendor: string, requestsPerSecond: number): DefaultRateLimit => ({
  requestsPerSecond,
  source: 'segment',
  note: `Segment's documented rate limit for ${vendor}`,
});

/**
 * Default rates of Actions destinations, by slug: each definition of a vendor
 * in Segment's table (several slugs can share one vendor's limit), and
 * Facebook Custom Audiences, for which neither Segment nor Facebook documents
 * a per-second figure, and Display & Video 360 (Google documents per-minute
 * quotas per project and per advertiser: Engage's default stays below them). Slugs not here have no default (a destination may set
 * its own rateLimit). Resci has no Actions definition, so no slug carries its 200/s.
 */
export const ACTIONS_DEFAULT_RATE_LIMITS: Readonly<Record<string, DefaultRateLimit>> = {
  'actions-pardot': documented('Pardot', 2),
  braze: documented('Braze', 100),
  'braze-cohorts': documented('Braze', 100),
  customerio: documented('Customer.io', 30),
  'display-video-360': {
    requestsPerSecond: 2,
    source: 'engage',
    note:
      "Engage's default: Segment documents no rate limit for Display & Video 360; Google's API limits are per minute: " +
      '700 write requests per project and 150 per advertiser (developers.google.com/display-video/api/limits), and a ' +
      'destination writes to one advertiser: 2/s stays below both (each request carries a batch of members); ' +
      "set the destination's rateLimit to change it",
  },
  'facebook-custom-audiences': {
    requestsPerSecond: 10,
    source: 'engage',
    note:
      "Engage's default: Segment documents no rate limit for Facebook, and Facebook's Marketing API throttles " +
      'custom audience uploads per ad account by a usage score (Business Use Case rate limits), not a fixed rate; ' +
      "set the destination's rateLimit to change it",
  },
  hubspot: documented('HubSpot', 5),
  intercom: documented('Intercom', 8),
  iterable: documented('Iterable', 500),
  'iterable-lists': documented('Iterable', 500),
  mailchimp: documented('Mailchimp', 10),
  marketo: documented('Marketo', 5),
  'marketo-static-lists': documented('Marketo', 5),
  responsys: documented('Responsys', 3),
  salesforce: documented('Salesforce', 5),
  'salesforce-marketing-cloud': documented('Salesforce Marketing Cloud', 20),
  sendgrid: documented('SendGrid', 100),
  'sendgrid-audiences': documented('SendGrid', 100),
  zendesk: documented('Zendesk', 50),
};

/** The default rate of an Actions destination's slug, with where it comes from; undefined when it has none. */
export function actionsDefaultRateLimit(slug: string): DefaultRateLimit | undefined {
  return Object.hasOwn(ACTIONS_DEFAULT_RATE_LIMITS, slug) ? ACTIONS_DEFAULT_RATE_LIMITS[slug] : undefined;
}

/** The default rate of a destination type, or of an Actions destination's slug (requests per second). */
export function defaultRateLimit(destination: { type: string; slug?: string }): number | undefined {
  if (destination.type === 'actions') return destination.slug ? actionsDefaultRateLimit(destination.slug)?.requestsPerSecond : undefined;
  return Object.hasOwn(DEFAULT_RATE_LIMITS, destination.type) ? DEFAULT_RATE_LIMITS[destination.type] : undefined;
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

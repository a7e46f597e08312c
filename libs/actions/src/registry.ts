// Segment's open destination definitions (@segment/action-destinations, MIT)
// as this system runs them: an allow-list of slugs, each loaded on first use
// from the package's CommonJS build, one definition at a time.
//
// NOTE: the package's index loads all ~214 definitions (1.2 s, +113 MB); a
// single definition under dist/destinations/<slug> loads in ~0.2 s. The ESM
// build of actions-core does not load on Node, so everything here is require()d.
import type { DestinationDefinition } from '@segment/actions-core';

/**
 * Slugs a destination of type `actions` may name. Only definitions tested
 * here against an emulator of the vendor's documented API are listed
 * (services/dispatcher/src/actions.int.test.ts: Braze, Customer.io,
 * Iterable, Iterable Lists, HubSpot with OAuth refresh, SendGrid, Mailchimp,
 * Zendesk; actions-marketo.int.test.ts: Marketo; actions-marketo-static-lists.int.test.ts:
 * Marketo Static Lists (a bulk CSV import, a lookup and removal);
 * actions-responsys.int.test.ts: Responsys (a merge into a Profile Extension
 * Table; its actions with a request client of their own are not offered,
 * definitions/responsys.ts); actions-sfmc.int.test.ts: Salesforce Marketing
 * Cloud (a row upsert into a data extension; its V2 actions, which need a
 * mapping-save hook, are not offered); actions-google-ads.int.test.ts: Google
 * Ads Customer Match (google-enhanced-conversions' userList, the user list
 * from createAudience, OAuth refresh, hashed emails through offline user
 * data jobs);
 * actions-audiences.int.test.ts: Braze Cohorts, SendGrid Lists, Snap
 * Audiences, LinkedIn Audiences, TikTok Audiences (its advertiser from the
 * connection's audienceSettings, its 200-with-error-code answers read by
 * vendor-answers.ts), Facebook Custom Audiences (its ad account from the
 * settings or the connection's audienceSettings, Facebook's error codes in a
 * 400 read by vendor-answers.ts);
 * actions-dv360.int.test.ts: Display & Video 360 (our own Customer Match
 * definition, OAuth refresh);
 * actions-crm.int.test.ts: Intercom, Klaviyo, Salesforce and Pardot with OAuth
 * refresh); the
 * others of issue 19 are follow-ups. Definitions that use the AWS SDK, SFTP or
 * Kafka do not go through the request client our HTTP overrides reach: never
 * list them untested.
 * NOTE: the-trade-desk-crm runs as a full-audience destination
 * (full-audience.ts; actions-ttd.int.test.ts): its default flow uploads to
 * Segment's own S3 bucket (AWS SDK, Segment's credentials), so it runs with
 * its legacy flow's feature flag, which calls The Trade Desk's CRM data API
 * (a drop endpoint, then a PUT of the file of emails); that upload replaces
 * the whole CRM segment (MergeMode Replace) and needs at least 1,500 records,
 * so the dispatcher sends no entries or exits but, on the connection's list
 * cadence or "sync now", the audience's whole membership in one batch
 * (services/dispatcher/src/full-audience-sync.ts).
 * NOTE: display-video-360 is our own definition (definitions/display-video-360.ts;
 * actions-dv360.int.test.ts), not the package's: the package's acts as
 * Segment's own data partner account with Google (Segment's partner id as
 * the Login-Customer-Id, Segment's OAuth refresh token read from the
 * environment, uploads to Google's bulk uploader as the network `segment`),
 * which no other operator holds, and sends Google user ids from cookie
 * matching and mobile advertising ids. Ours makes a first-party Customer
 * Match audience through Google's public Display & Video 360 API v3 with
 * the operator's own OAuth credentials and adds and removes SHA-256 hashed
 * emails.
 * NOTE: google-enhanced-conversions reads the operator's Google Ads developer
 * token (ADWORDS_DEVELOPER_TOKEN) and, to create a user list, its OAuth
 * client (GOOGLE_ENHANCED_CONVERSIONS_CLIENT_ID / _SECRET) from the environment.
 * NOTE: braze-cohorts sends Braze's partner key, which its definition reads
 * from the dispatcher's environment (BRAZE_COHORTS_PARTNER_API_KEY_US / _EU,
 * issued by Braze to a technology partner), with the customer's data import key.
 */
export const ACTIONS_SLUGS: readonly string[] = [
  'actions-pardot',
  'braze',
  'braze-cohorts',
  'customerio',
  'display-video-360',
  'facebook-custom-audiences',
  'google-enhanced-conversions',
  'hubspot',
  'intercom',
  'iterable',
  'iterable-lists',
  'klaviyo',
  'linkedin-audiences',
  'mailchimp',
  'marketo',
  'marketo-static-lists',
  'responsys',
  'salesforce',
  'salesforce-marketing-cloud',
  'sendgrid',
  'sendgrid-audiences',
  'snap-audiences',
  'tiktok-audiences',
  'the-trade-desk-crm',
  'zendesk',
];

/**
 * Definitions of our own in actions-core's format, for vendors the package
 * lacks (issue 19 item 5): loaded instead of the package's (src/definitions).
 * NOTE: our `display-video-360` replaces the package's (Segment's partner
 * account only: see the NOTE on ACTIONS_SLUGS); our `marketo` is a lead upsert; marketo-static-lists is the
 * package's definition with removeFromList's batch matching leads by value
 * (the package's reads Marketo's lookup by position: one exit without a lead
 * failed its whole batch after the removal was made).
 */
const OWN_DEFINITIONS: Record<string, () => { default?: AnyDefinition }> = {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  'display-video-360': () => require('./definitions/display-video-360') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  'google-enhanced-conversions': () => require('./definitions/google-enhanced-conversions') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  mailchimp: () => require('./definitions/mailchimp') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  marketo: () => require('./definitions/marketo') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  'marketo-static-lists': () => require('./definitions/marketo-static-lists') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  responsys: () => require('./definitions/responsys') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  'salesforce-marketing-cloud': () => require('./definitions/salesforce-marketing-cloud') as { default?: AnyDefinition },
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  zendesk: () => require('./definitions/zendesk') as { default?: AnyDefinition },
};

/**
 * OAuth definitions that get their access token from their own settings (a
 * client credentials grant: Marketo's client id and secret, ours and
 * Marketo Static Lists'; Responsys's username and password; SFMC's client id
 * and secret for its subdomain) in refreshAccessToken: no `settings.oauth` is given;
 * the runtime gets a token before their first call and keeps it (a refusal
 * then gets a new one through actions-core's refresh).
 */
const TOKEN_FROM_SETTINGS: readonly string[] = ['marketo', 'marketo-static-lists', 'responsys', 'salesforce-marketing-cloud'];

export function getsTokenFromSettings(slug: string | undefined): boolean {
  return typeof slug === 'string' && TOKEN_FROM_SETTINGS.includes(slug);
}

export function isActionsSlug(slug: unknown): slug is string {
  return typeof slug === 'string' && ACTIONS_SLUGS.includes(slug);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDefinition = DestinationDefinition<any> & {
  audienceFields?: Record<string, unknown>;
  audienceConfig?: unknown;
};

const loaded = new Map<string, AnyDefinition>();

/** The definition of an allowed slug (loaded once per process); throws for any other slug. */
export function loadDefinition(slug: string): AnyDefinition {
  if (!isActionsSlug(slug)) throw new Error(`'${slug}' is not an Actions destination available here (${ACTIONS_SLUGS.join(', ')})`);
  let definition = loaded.get(slug);
  if (!definition) {
    const mod =
      OWN_DEFINITIONS[slug]?.() ??
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require(`@segment/action-destinations/dist/destinations/${slug}`) as { default?: AnyDefinition });
    if (!mod.default) throw new Error(`@segment/action-destinations has no definition at dist/destinations/${slug}`);
    definition = mod.default;
    loaded.set(slug, definition);
  }
  return definition;
}

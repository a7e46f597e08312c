// Segment's Google Ads definition (google-enhanced-conversions) as offered
// here: its Customer Match action (userList) only, an audience as a CRM-based
// user list created through the definition's createAudience when a
// connection is made, SHA-256 hashed identifiers added and removed through an
// offline user data job.
// NOTE: the conversion actions (click, call, adjustments) need a Google Ads
// conversion action and a click id (gclid) that an audience change does not
// carry: left out until tested. The definition's automatic preset names a
// browser plugin (sessionAttributesEncoded), not an action: left out too.
// NOTE: the definition reads the operator's Google Ads API developer token
// (ADWORDS_DEVELOPER_TOKEN, sent with every call) and, to create a user
// list, its OAuth client (GOOGLE_ENHANCED_CONVERSIONS_CLIENT_ID / _SECRET)
// from the process environment of the dispatcher and the control plane.
import type { AnyDefinition } from '../registry';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = (require('@segment/action-destinations/dist/destinations/google-enhanced-conversions') as { default: AnyDefinition }).default;

/** Actions of the package's Google Ads definition that are offered. */
export const GOOGLE_ADS_ACTIONS = ['userList'] as const;

const offered = (id: string) => (GOOGLE_ADS_ACTIONS as readonly string[]).includes(id);

const definition: AnyDefinition = {
  ...pkg,
  actions: Object.fromEntries(GOOGLE_ADS_ACTIONS.map((id) => [id, pkg.actions[id]!])),
  presets: (pkg.presets ?? []).filter((p) => offered(p.partnerAction)),
};

export default definition;

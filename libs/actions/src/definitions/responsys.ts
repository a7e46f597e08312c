// Segment's Responsys definition as offered here: only the actions whose
// requests go through actions-core's request client (Send Audience and Send
// Custom Traits: a merge into a Profile Extension Table), so that every
// request is the runtime's (its agent, DESTINATION_HTTP_OVERRIDES, its kept
// responses and errors).
// NOTE: Upsert List Member, Send to PET and Send Audience as PET are left
// out: they send with a request client of their own (actions-core's
// createRequestClient, built without the definition's extendRequest) and poll
// the async API's answers with it, and Send Audience as PET waits 6 s in
// process before creating a table. The segmentWriteKey settings are left out
// too: they forward each of Responsys's answers to a Segment source
// (api.segment.io).
import type { AnyDefinition } from '../registry';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = (require('@segment/action-destinations/dist/destinations/responsys') as { default: AnyDefinition }).default;

/** Actions of the package's Responsys definition that are offered. */
export const RESPONSYS_ACTIONS = ['sendAudience', 'sendCustomTraits'] as const;

const authentication = pkg.authentication as NonNullable<AnyDefinition['authentication']> & { fields: Record<string, unknown> };
const LEFT_OUT_SETTINGS = ['segmentWriteKey', 'segmentWriteKeyRegion'];
const fields = Object.fromEntries(Object.entries(authentication.fields).filter(([name]) => !LEFT_OUT_SETTINGS.includes(name)));

const definition: AnyDefinition = {
  ...pkg,
  authentication: { ...authentication, fields } as AnyDefinition['authentication'],
  actions: Object.fromEntries(RESPONSYS_ACTIONS.map((id) => [id, pkg.actions[id]!])),
};

export default definition;

// Segment's Salesforce Marketing Cloud definition as offered here: the
// actions that run from a mapping alone (Send Contact to Data Extension, Send
// Event to Data Extension, Upsert Contact, Send Event to Journey Builder).
// NOTE: the V2 actions (Send Contact/Event to Data Extension V2, Async Data
// Extension) find their data extension in the output of a hook run when
// Segment's editor saves the mapping (onMappingSave, which creates or selects
// the data extension through SFMC's SOAP API); mappings here run no hooks,
// so those actions would have no data extension: left out.
import type { AnyDefinition } from '../registry';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = (require('@segment/action-destinations/dist/destinations/salesforce-marketing-cloud') as { default: AnyDefinition }).default;

/** Actions of the package's SFMC definition that are offered. */
export const SFMC_ACTIONS = ['contactDataExtension', 'dataExtension', 'contact', 'apiEvent'] as const;

const definition: AnyDefinition = {
  ...pkg,
  actions: Object.fromEntries(SFMC_ACTIONS.map((id) => [id, pkg.actions[id]!])),
};

export default definition;

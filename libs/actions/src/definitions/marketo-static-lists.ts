// Segment's Marketo Static Lists definition with one action's batch replaced:
// removeFromList's performBatch reads Marketo's lead lookup by position
// (`result[i].id` for the i-th payload), but the lookup answers only the
// leads it found, in its own order: one exit of someone Marketo has no lead
// for failed the whole batch with a TypeError after the removal was made.
// Here each payload is matched to its lead by the lookup value; a person with
// no lead, or a lead not in the list, is not a member: their exit is done.
// Same endpoints, same errors as the package's; everything else is the package's.
import { IntegrationError, MultiStatusResponse, ErrorCodes, type ActionDefinition, type RequestClient } from '@segment/actions-core';
import type { AnyDefinition } from '../registry';
import { marketoCodeMeaning } from '../vendor-answers';

interface Settings {
  api_endpoint: string;
}

interface RemovePayload {
  external_id?: string;
  lookup_field: string;
  field_value: string;
}

interface MarketoAnswer {
  success?: boolean;
  errors?: Array<{ code?: string; message?: string }>;
  result?: Array<Record<string, unknown> & { id?: number; status?: string }>;
}

/** Lookup values and lead ids per call (Marketo's limit for both). */
const MAX_PER_CALL = 300;

/** `success: false` as every item's status: a token error is thrown (actions-core gets a new token and runs the batch again). */
function refusedBatch(answer: MarketoAnswer, size: number): MultiStatusResponse {
  const error = answer.errors?.[0] ?? { code: 'unknown', message: 'Marketo answered success: false with no error' };
  const meaning = marketoCodeMeaning(error.code);
  if (meaning === 'token') throw new IntegrationError(error.message ?? 'access token refused', ErrorCodes.INVALID_AUTHENTICATION, 401);
  const out = new MultiStatusResponse();
  for (let i = 0; i < size; i++)
    out.setErrorResponseAtIndex(i, {
      status: meaning === 'refused' ? 400 : meaning === 'rateLimited' ? 429 : 500,
      errortype: meaning === 'refused' ? ErrorCodes.BAD_REQUEST : ErrorCodes.RETRYABLE_ERROR,
      errormessage: error.message ?? `Marketo ${error.code}`,
      body: error,
    });
  return out;
}

async function removeFromListBatch(request: RequestClient, settings: Settings, payloads: RemovePayload[]): Promise<MultiStatusResponse> {
  const out = new MultiStatusResponse();
  const listId = payloads[0]?.external_id;
  if (!listId) {
    payloads.forEach((_, i) =>
      out.setErrorResponseAtIndex(i, {
        status: 400,
        errortype: ErrorCodes.PAYLOAD_VALIDATION_FAILED,
        errormessage: 'No "external_id" found in payload',
      }),
    );
    return out;
  }
  const endpoint = settings.api_endpoint.replace('/rest', '');
  const field = payloads[0]!.lookup_field;
  const values = [...new Set(payloads.map((p) => p.field_value).filter(Boolean))];
  const leadsByValue = new Map<string, number[]>();
  for (let start = 0; start < values.length; start += MAX_PER_CALL) {
    const chunk = values.slice(start, start + MAX_PER_CALL);
    const lookup = await request<MarketoAnswer>(
      `${endpoint}/rest/v1/leads.json?filterType=${encodeURIComponent(field)}&filterValues=${encodeURIComponent(chunk.join(','))}` +
        `&fields=${encodeURIComponent(`id,${field}`)}`,
      { method: 'GET', throwHttpErrors: false },
    );
    if (!lookup.data?.success) return refusedBatch(lookup.data ?? {}, payloads.length);
    for (const lead of lookup.data.result ?? []) {
      const value = String(lead[field] ?? '');
      if (typeof lead.id === 'number') leadsByValue.set(value, [...(leadsByValue.get(value) ?? []), lead.id]);
    }
  }
  const ids = [...new Set([...leadsByValue.values()].flat())];
  for (let start = 0; start < ids.length; start += MAX_PER_CALL) {
    const removal = await request<MarketoAnswer>(
      `${endpoint}/rest/v1/lists/${encodeURIComponent(listId)}/leads.json?id=${ids.slice(start, start + MAX_PER_CALL).join(',')}`,
      { method: 'DELETE', throwHttpErrors: false },
    );
    if (!removal.data?.success) return refusedBatch(removal.data ?? {}, payloads.length);
  }
  payloads.forEach((p, i) => {
    if (!p.field_value)
      return out.setErrorResponseAtIndex(i, {
        status: 400,
        errortype: ErrorCodes.PAYLOAD_VALIDATION_FAILED,
        errormessage: `No ${p.lookup_field} to find the lead by`,
      });
    const found = leadsByValue.get(p.field_value) ?? [];
    out.setSuccessResponseAtIndex(i, {
      status: 200,
      sent: found.map((id) => `id=${id}`).join(','),
      body: found.length > 0 ? { removed: found } : { removed: [], note: `Marketo has no lead with ${p.lookup_field} ${p.field_value}` },
    });
  });
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = (require('@segment/action-destinations/dist/destinations/marketo-static-lists') as { default: AnyDefinition }).default;
const removeFromList = pkg.actions.removeFromList!;
const performBatch: ActionDefinition<Settings, RemovePayload>['performBatch'] = (request, { settings, payload }) =>
  removeFromListBatch(request, settings, payload);

const definition: AnyDefinition = {
  ...pkg,
  actions: {
    ...pkg.actions,
    removeFromList: {
      ...removeFromList,
      performBatch: performBatch as typeof removeFromList.performBatch,
    },
  },
};

export default definition;

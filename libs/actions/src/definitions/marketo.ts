// Marketo lead upsert, a definition of our own in actions-core's format
// (issue 19 item 5: the package has Marketo Static Lists only), run by the
// same runtime as Segment's. An Engage audience or computed trait is a lead
// field named after its key (the field must exist in Marketo):
//   POST https://{munchkinId}.mktorest.com/rest/v1/leads.json
//        {action: 'createOrUpdate', lookupField: 'email', input: [{email, <key>: value}, ...]}
// at most 300 leads a call, `Authorization: Bearer <access token>`.
// The token comes from the REST API's client credentials (a LaunchPoint
// service's client id and secret): POST /identity/oauth/token
// grant_type=client_credentials, through actions-core's OAuth refresh, so the
// runtime keeps it per destination as it keeps any refreshed token.
// Marketo answers errors with HTTP 200 and `success: false`
// (developer.adobe.com/marketo-apis/error-codes): 600/601/602 (no, invalid,
// expired token) get a new token; 606/607/615 (rate, daily quota, concurrency
// limits) and 604/608/611/713 (timeouts, unavailable) are retried; others are
// refused. Each lead of a successful call has its own status (`skipped` with
// reasons when Marketo refused that one).
import {
  IntegrationError,
  InvalidAuthenticationError,
  MultiStatusResponse,
  PayloadValidationError,
  RetryableError,
  defaultValues,
  type ActionDefinition,
  type DestinationDefinition,
  type JSONLikeObject,
  type RequestClient,
} from '@segment/actions-core';
import { marketoCodeMeaning } from '../vendor-answers';

interface Settings {
  munchkinId: string;
  clientId: string;
  clientSecret: string;
}

interface Payload {
  email: string;
  key: string;
  values: Record<string, unknown>;
  enable_batching?: boolean;
  batch_size?: number;
}

/** Leads per call (Marketo's limit for leads.json). */
export const MAX_LEADS = 300;

const MUNCHKIN_ID = /^[0-9]{3}-[A-Za-z]{3}-[0-9]{3}$/;

const baseUrl = (settings: Settings) => {
  if (!MUNCHKIN_ID.test(settings.munchkinId ?? ''))
    throw new PayloadValidationError(`'${settings.munchkinId}' is not a Munchkin ID (123-ABC-456)`);
  return `https://${settings.munchkinId.toLowerCase()}.mktorest.com`;
};

interface MarketoAnswer {
  success?: boolean;
  errors?: Array<{ code?: string | number; message?: string }>;
  result?: Array<{ id?: number; status?: string; reasons?: Array<{ code?: string | number; message?: string }> }>;
}

/** An answer with `success: false` as the error actions-core and the runtime understand. */
function refusal(answer: MarketoAnswer): Error {
  const errors = answer.errors ?? [];
  const message = errors.map((e) => `${e.code}: ${e.message}`).join('; ') || 'Marketo answered success: false';
  const codes = errors.map((e) => String(e.code));
  const meanings = codes.map(marketoCodeMeaning);
  if (meanings.includes('token')) return new InvalidAuthenticationError(`Marketo refused the access token (${message})`);
  if (meanings.includes('rateLimited') || meanings.includes('retried'))
    return new RetryableError(`Marketo: ${message}`, codes.includes('606') ? 429 : 503);
  return new IntegrationError(`Marketo: ${message}`, `MARKETO_${codes[0] ?? 'ERROR'}`, 400);
}

async function upsert(request: RequestClient, settings: Settings, payloads: Payload[]): Promise<MultiStatusResponse> {
  const out = new MultiStatusResponse();
  for (let start = 0; start < payloads.length; start += MAX_LEADS) {
    const chunk = payloads.slice(start, start + MAX_LEADS);
    const input = chunk.map((p) => {
      if (!(p.key in p.values)) throw new PayloadValidationError(`'${p.key}' has no value in the event`);
      return { email: p.email, [p.key]: p.values[p.key] } as JSONLikeObject;
    });
    const response = await request<MarketoAnswer>(`${baseUrl(settings)}/rest/v1/leads.json`, {
      method: 'post',
      json: { action: 'createOrUpdate', lookupField: 'email', input },
    });
    const answer = response.data;
    if (!answer?.success) throw refusal(answer ?? {});
    chunk.forEach((_, i) => {
      const lead = answer.result?.[i];
      const sent = input[i]!;
      if (lead && (lead.status === 'created' || lead.status === 'updated')) {
        out.setSuccessResponseAtIndex(start + i, { status: 200, sent, body: lead });
      } else {
        const reasons = (lead?.reasons ?? []).map((r) => `${r.code}: ${r.message}`).join('; ');
        out.setErrorResponseAtIndex(start + i, {
          status: 400,
          errortype: 'BAD_REQUEST',
          errormessage: `Marketo ${lead?.status ?? 'gave no result for'} the lead${reasons ? ` (${reasons})` : ''}`,
          sent,
        });
      }
    });
  }
  return out;
}

const upsertLead: ActionDefinition<Settings, Payload> = {
  title: 'Create or Update Lead',
  description: 'Creates or updates the Marketo lead with this email and sets the lead field named after the audience or trait key.',
  defaultSubscription: 'type = "identify"',
  fields: {
    email: {
      label: 'Email',
      type: 'string',
      format: 'email',
      required: true,
      description: "The lead's email address (Marketo's lookup field).",
      default: {
        '@if': { exists: { '@path': '$.traits.email' }, then: { '@path': '$.traits.email' }, else: { '@path': '$.context.traits.email' } },
      },
    },
    key: {
      label: 'Lead Field',
      type: 'string',
      required: true,
      description: 'The lead field to set (its REST API name): the audience or computed trait key.',
      default: { '@path': '$.context.personas.computation_key' },
    },
    values: {
      label: 'Traits or Properties',
      type: 'object',
      required: true,
      description: "Where the key's value is: the identify traits or the track properties.",
      default: { '@if': { exists: { '@path': '$.traits' }, then: { '@path': '$.traits' }, else: { '@path': '$.properties' } } },
    },
    enable_batching: {
      label: 'Batch Leads',
      type: 'boolean',
      description: 'Send up to Batch Size leads a call.',
      default: true,
    },
    batch_size: {
      label: 'Batch Size',
      type: 'integer',
      description: `Leads a call, at most ${MAX_LEADS} (Marketo's limit).`,
      minimum: 1,
      maximum: MAX_LEADS,
      default: MAX_LEADS,
    },
  },
  perform: async (request, { payload, settings, auth }) => {
    // No token yet (a new destination, a restart): actions-core gets one through refreshAccessToken and runs this again.
    if (!auth?.accessToken) throw new InvalidAuthenticationError('no Marketo access token yet');
    const result = await upsert(request, settings, [payload]);
    const only = result.getResponseAtIndex(0)?.value() as { status?: number; errormessage?: string } | undefined;
    if (only?.errormessage) throw new IntegrationError(only.errormessage, 'BAD_REQUEST', only.status ?? 400);
    return only;
  },
  performBatch: (request, { payload, settings, auth }) => {
    if (!auth?.accessToken) throw new InvalidAuthenticationError('no Marketo access token yet');
    return upsert(request, settings, payload);
  },
};

const definition: DestinationDefinition<Settings> = {
  name: 'Marketo (Engage)',
  slug: 'marketo',
  mode: 'cloud',
  description: 'Audiences and computed traits as lead fields of Marketo leads, upserted by email (REST API).',
  authentication: {
    scheme: 'oauth2',
    fields: {
      munchkinId: {
        label: 'Munchkin ID',
        type: 'string',
        required: true,
        description: 'Your Munchkin account ID (123-ABC-456): the REST API is at https://{munchkinId}.mktorest.com.',
      },
      clientId: { label: 'Client ID', type: 'string', required: true, description: "The LaunchPoint API service's client id." },
      clientSecret: {
        label: 'Client Secret',
        type: 'password',
        required: true,
        description: "The LaunchPoint API service's client secret.",
      },
    },
    // Client credentials: a new access token from the settings (Marketo's expire after an hour).
    refreshAccessToken: async (request, { settings }) => {
      const response = await request<{ access_token?: string }>(`${baseUrl(settings)}/identity/oauth/token`, {
        method: 'post',
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: settings.clientId, client_secret: settings.clientSecret }),
      });
      if (!response.data?.access_token) throw new InvalidAuthenticationError('Marketo issued no access token');
      return { accessToken: response.data.access_token };
    },
  },
  extendRequest: ({ auth }): { headers: Record<string, string> } => ({
    headers: auth?.accessToken ? { authorization: `Bearer ${auth.accessToken}` } : {},
  }),
  presets: [
    {
      name: 'Audiences and Traits (identify)',
      subscribe: 'type = "identify"',
      partnerAction: 'upsertLead',
      mapping: defaultValues(upsertLead.fields),
      type: 'automatic',
    },
  ],
  actions: { upsertLead },
};

export default definition;

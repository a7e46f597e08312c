// Display & Video 360 Customer Match, a definition of our own in
// actions-core's format under the package's slug (display-video-360): the
// package's definition works only as Segment's own Google data-partner account
// (registry.ts), this one with the operator's own OAuth credentials through
// Google's public Display & Video 360 API v3:
//   POST https://displayvideo.googleapis.com/v3/firstAndThirdPartyAudiences?advertiserId={advertiserId}
//        a first-party CUSTOMER_MATCH_CONTACT_INFO audience per Engage audience (createAudience, on connection)
//   GET  .../v3/firstAndThirdPartyAudiences/{id}?advertiserId={advertiserId}                     (getAudience)
//   POST .../v3/firstAndThirdPartyAudiences/{id}:editCustomerMatchMembers
//        {advertiserId, addedContactInfoList: {contactInfos: [{hashedEmails: [sha256]}], consent}} for entries,
//        {advertiserId, removedContactInfoList: {contactInfos: [...]}} for exits (one list a request)
// `Authorization: Bearer <access token>`; the token refreshed with the
// refresh token and the OAuth client in settings.oauth at
// https://oauth2.googleapis.com/token, kept by the runtime as any refreshed token.
// Google's errors are `{error: {code, message, status}}` with an honest HTTP
// status: 401 UNAUTHENTICATED (actions-core refreshes the token; still
// refused, the runtime flags the credentials), 403 PERMISSION_DENIED
// (flagged), 429 RESOURCE_EXHAUSTED and 5xx (retried, Retry-After honoured),
// 400 INVALID_ARGUMENT (refused with Google's message). Each request's
// answer becomes the status of its members (performBatch's multistatus), so
// the runtime classifies them as any other per-item status: no reader of our own.
// https://developers.google.com/display-video/api/reference/rest/v3/firstAndThirdPartyAudiences
import { createHash } from 'node:crypto';
import {
  MultiStatusResponse,
  defaultValues,
  type ActionDefinition,
  type AudienceDestinationDefinition,
  type JSONLikeObject,
  type RequestClient,
} from '@segment/actions-core';

interface Settings {
  advertiserId: string;
  membershipDurationDays?: number;
}

export type ConsentStatus = 'CONSENT_STATUS_GRANTED' | 'CONSENT_STATUS_DENIED';

interface Payload {
  external_audience_id: string;
  audience_key: string;
  values: Record<string, unknown>;
  email?: string;
  ad_user_data_consent?: ConsentStatus;
  ad_personalization_consent?: ConsentStatus;
  enable_batching?: boolean;
  batch_size?: number;
}

export const DV360_API = 'https://displayvideo.googleapis.com/v3';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Google's longest (and default here) Customer Match membership, in days. */
export const MAX_MEMBERSHIP_DAYS = 540;
/** Contact infos a request may carry (Google: at most 500,000 members a request after splitting). */
export const MAX_CONTACT_INFOS = 500_000;

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** An email as Google matches it: SHA-256 hex of the trimmed, lower-cased address; a hash already made (64 hex digits) as it is, lower-cased. */
export function hashedEmail(email: string): string {
  const trimmed = email.trim();
  if (SHA256_HEX.test(trimmed)) return trimmed.toLowerCase();
  return createHash('sha256').update(trimmed.toLowerCase()).digest('hex');
}

const advertiserOf = (settings: Settings) => encodeURIComponent(String(settings.advertiserId ?? '').trim());

/** Google's `{error: {code, message, status}}` as a message: `INVALID_ARGUMENT: <message>`. */
export function googleMessage(content: unknown, fallback: string): string {
  let answer: unknown = content;
  if (typeof content === 'string') {
    try {
      answer = JSON.parse(content) as unknown;
    } catch {
      return content.slice(0, 500) || fallback;
    }
  }
  const error = (answer as { error?: { message?: unknown; status?: unknown } } | undefined)?.error;
  if (typeof error?.message !== 'string') return fallback;
  return typeof error.status === 'string' ? `${error.status}: ${error.message}` : error.message;
}

/** One editCustomerMatchMembers request: the adds of one consent, or the removes, with the indices of their members. */
export interface MemberEdit {
  indices: number[];
  body: JSONLikeObject;
}

/**
 * The requests a batch makes, and the members refused before any (no email,
 * no membership value): pure, so the split is tested without HTTP. Entries
 * and exits go in separate requests (a request adds or removes); entries are
 * grouped by their consent (it is stated per request).
 */
export function planMemberEdits(
  advertiserId: string,
  payloads: Payload[],
): { edits: MemberEdit[]; refused: Array<{ index: number; message: string }> } {
  const refused: Array<{ index: number; message: string }> = [];
  const groups = new Map<string, { indices: number[]; hashes: string[]; consent?: { adUserData: string; adPersonalization: string } }>();
  payloads.forEach((p, index) => {
    const inAudience = p.values?.[p.audience_key];
    if (typeof inAudience !== 'boolean') {
      refused.push({ index, message: `'${p.audience_key}' is not true or false in the event: not an audience membership` });
      return;
    }
    const email = typeof p.email === 'string' ? p.email.trim() : '';
    if (!email) {
      refused.push({ index, message: 'no email: Display & Video 360 Customer Match matches members by their hashed email' });
      return;
    }
    const consent = {
      adUserData: p.ad_user_data_consent ?? 'CONSENT_STATUS_GRANTED',
      adPersonalization: p.ad_personalization_consent ?? 'CONSENT_STATUS_GRANTED',
    };
    const key = inAudience ? `add:${consent.adUserData}:${consent.adPersonalization}` : 'remove';
    const group = groups.get(key) ?? { indices: [], hashes: [], ...(inAudience ? { consent } : {}) };
    group.indices.push(index);
    group.hashes.push(hashedEmail(email));
    groups.set(key, group);
  });
  const edits: MemberEdit[] = [];
  for (const group of groups.values()) {
    for (let start = 0; start < group.indices.length; start += MAX_CONTACT_INFOS) {
      const contactInfos = group.hashes.slice(start, start + MAX_CONTACT_INFOS).map((h) => ({ hashedEmails: [h] }));
      edits.push({
        indices: group.indices.slice(start, start + MAX_CONTACT_INFOS),
        body: group.consent
          ? { advertiserId, addedContactInfoList: { contactInfos, consent: group.consent } }
          : { advertiserId, removedContactInfoList: { contactInfos } },
      });
    }
  }
  return { edits, refused };
}

async function editMembers(request: RequestClient, settings: Settings, payloads: Payload[]): Promise<MultiStatusResponse> {
  const out = new MultiStatusResponse();
  const { edits, refused } = planMemberEdits(String(settings.advertiserId ?? '').trim(), payloads);
  for (const r of refused)
    out.setErrorResponseAtIndex(r.index, { status: 400, errortype: 'PAYLOAD_VALIDATION_FAILED', errormessage: r.message });
  for (const edit of edits) {
    // Each member's own audience (the batch is one connection's: the same id, but read per member).
    const audienceId = payloads[edit.indices[0]!]!.external_audience_id;
    const sent = edit.body;
    try {
      const response = await request(
        `${DV360_API}/firstAndThirdPartyAudiences/${encodeURIComponent(audienceId)}:editCustomerMatchMembers`,
        {
          method: 'post',
          json: edit.body,
        },
      );
      for (const i of edit.indices)
        out.setSuccessResponseAtIndex(i, { status: response.status, sent, body: (response.data ?? {}) as JSONLikeObject });
    } catch (err) {
      const e = err as { message?: string; response?: { status?: number; content?: string } };
      // No answer (a network error): thrown, so the runtime retries the batch as it does any network error.
      if (e.response?.status === undefined) throw err;
      const message = googleMessage(e.response.content, e.message ?? `HTTP ${e.response.status}`);
      for (const i of edit.indices)
        out.setErrorResponseAtIndex(i, {
          status: e.response.status,
          errortype: 'BAD_REQUEST',
          errormessage: `Display & Video 360 ${message}`,
          sent,
        });
    }
  }
  return out;
}

const CONSENT_CHOICES = [
  { value: 'CONSENT_STATUS_GRANTED', label: 'Granted' },
  { value: 'CONSENT_STATUS_DENIED', label: 'Denied' },
];

const syncAudience: ActionDefinition<Settings, Payload> = {
  title: 'Sync Audience',
  description:
    'Adds members entering the audience to the Display & Video 360 Customer Match audience and removes those leaving it, by SHA-256 hashed email.',
  defaultSubscription: 'type = "identify" or event = "Audience Entered" or event = "Audience Exited"',
  fields: {
    external_audience_id: {
      label: 'Customer Match Audience ID',
      type: 'string',
      required: true,
      unsafe_hidden: true,
      description: 'The firstAndThirdPartyAudienceId made when the connection was (createAudience).',
      default: { '@path': '$.context.personas.external_audience_id' },
    },
    audience_key: {
      label: 'Audience Key',
      type: 'string',
      required: true,
      unsafe_hidden: true,
      description: 'The Engage audience key: where the membership is true or false.',
      default: { '@path': '$.context.personas.computation_key' },
    },
    values: {
      label: 'Traits or Properties',
      type: 'object',
      required: true,
      unsafe_hidden: true,
      description: 'Where the audience key is true (entered) or false (exited): the identify traits or the track properties.',
      default: { '@if': { exists: { '@path': '$.traits' }, then: { '@path': '$.traits' }, else: { '@path': '$.properties' } } },
    },
    email: {
      label: 'Email',
      type: 'string',
      description: "The member's email (SHA-256 hashed after trimming and lower-casing; a 64-hex-digit hash is sent as it is).",
      default: {
        '@if': { exists: { '@path': '$.traits.email' }, then: { '@path': '$.traits.email' }, else: { '@path': '$.context.traits.email' } },
      },
    },
    ad_user_data_consent: {
      label: 'Ad User Data Consent',
      type: 'string',
      description: "Consent to send the members' data to Google for advertising (Google's EU user consent policy).",
      choices: CONSENT_CHOICES,
      default: 'CONSENT_STATUS_GRANTED',
    },
    ad_personalization_consent: {
      label: 'Ad Personalization Consent',
      type: 'string',
      description: 'Consent to personalised advertising for the members.',
      choices: CONSENT_CHOICES,
      default: 'CONSENT_STATUS_GRANTED',
    },
    enable_batching: {
      label: 'Batch Members',
      type: 'boolean',
      description: 'Send up to Batch Size members a request.',
      default: true,
    },
    batch_size: {
      label: 'Batch Size',
      type: 'integer',
      description: 'Members a request (the dispatcher sends at most 1,000 a request; Google takes up to 500,000).',
      minimum: 1,
      maximum: MAX_CONTACT_INFOS,
      default: 1000,
    },
  },
  perform: async (request, { payload, settings }) => {
    const result = await editMembers(request, settings, [payload]);
    const only = result.getResponseAtIndex(0)?.value() as { status?: number; errormessage?: string } | undefined;
    if (only?.errormessage) throw Object.assign(new Error(only.errormessage), { status: only.status ?? 400 });
    return only;
  },
  performBatch: (request, { payload, settings }) => editMembers(request, settings, payload),
};

interface AudienceAnswer {
  firstAndThirdPartyAudienceId?: string;
  displayName?: string;
}

const definition: AudienceDestinationDefinition<Settings> = {
  name: 'Display & Video 360 (Engage)',
  slug: 'display-video-360',
  mode: 'cloud',
  description:
    "Audiences as first-party Customer Match audiences of a Display & Video 360 advertiser (API v3), members added and removed by SHA-256 hashed email, with the operator's own Google OAuth credentials.",
  authentication: {
    scheme: 'oauth2',
    fields: {
      advertiserId: {
        label: 'Advertiser ID',
        type: 'string',
        required: true,
        description: 'The Display & Video 360 advertiser the Customer Match audiences are made in.',
      },
      membershipDurationDays: {
        label: 'Membership Duration (days)',
        type: 'number',
        description: `How long a member stays in a new audience without being added again (1 to ${MAX_MEMBERSHIP_DAYS}).`,
        minimum: 1,
        maximum: MAX_MEMBERSHIP_DAYS,
        default: MAX_MEMBERSHIP_DAYS,
      },
    },
    // Google OAuth 2.0: a new access token from the refresh token and the OAuth client it was issued to.
    refreshAccessToken: async (request, { auth }) => {
      const response = await request<{ access_token?: string }>(GOOGLE_TOKEN_URL, {
        method: 'post',
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: auth.refreshToken,
          client_id: auth.clientId,
          client_secret: auth.clientSecret,
        }),
      });
      if (!response.data?.access_token) throw new Error('Google issued no access token');
      return { accessToken: response.data.access_token };
    },
  },
  extendRequest: ({ auth }): { headers: Record<string, string> } => ({
    headers: auth?.accessToken ? { authorization: `Bearer ${auth.accessToken}` } : {},
  }),
  audienceFields: {},
  audienceConfig: {
    mode: { type: 'synced', full_audience_sync: false },
    async createAudience(request, { settings, audienceName, personas }) {
      const days = Number(settings.membershipDurationDays ?? MAX_MEMBERSHIP_DAYS);
      const response = await request<AudienceAnswer>(`${DV360_API}/firstAndThirdPartyAudiences?advertiserId=${advertiserOf(settings)}`, {
        method: 'post',
        json: {
          displayName: audienceName,
          ...(personas?.computation_key ? { description: `Engage audience ${personas.computation_key}` } : {}),
          firstAndThirdPartyAudienceType: 'FIRST_AND_THIRD_PARTY_AUDIENCE_TYPE_FIRST_PARTY',
          audienceType: 'CUSTOMER_MATCH_CONTACT_INFO',
          membershipDurationDays: String(Number.isInteger(days) && days >= 1 && days <= MAX_MEMBERSHIP_DAYS ? days : MAX_MEMBERSHIP_DAYS),
          contactInfoList: {
            contactInfos: [],
            consent: { adUserData: 'CONSENT_STATUS_GRANTED', adPersonalization: 'CONSENT_STATUS_GRANTED' },
          },
        },
      });
      const id = response.data?.firstAndThirdPartyAudienceId;
      if (!id) throw new Error('Display & Video 360 answered without a firstAndThirdPartyAudienceId');
      return { externalId: String(id) };
    },
    async getAudience(request, { settings, externalId }) {
      const response = await request<AudienceAnswer>(
        `${DV360_API}/firstAndThirdPartyAudiences/${encodeURIComponent(externalId)}?advertiserId=${advertiserOf(settings)}`,
        { method: 'get' },
      );
      return { externalId: String(response.data?.firstAndThirdPartyAudienceId ?? externalId) };
    },
  },
  presets: [
    {
      name: 'Audience Entered and Exited',
      subscribe: 'type = "identify" or event = "Audience Entered" or event = "Audience Exited"',
      partnerAction: 'syncAudience',
      mapping: defaultValues(syncAudience.fields),
      type: 'automatic',
    },
  ],
  actions: { syncAudience },
};

export default definition;

// Mailchimp audience members (Marketing API 3.0), a definition of our own in
// actions-core's format (issue 19 item 5: the package has no Mailchimp), run
// by the same runtime as Segment's. An Engage audience is a Mailchimp tag on
// the member: active while in the audience, inactive after the exit.
//   PUT  /3.0/lists/{list_id}/members/{md5(lowercase email)}  {email_address, status_if_new, merge_fields}
//   POST /3.0/lists/{list_id}/members/{hash}/tags            {tags: [{name, status}]}
// Basic auth with any user name and the API key, whose suffix is the data
// center (`...-us21` -> https://us21.api.mailchimp.com).
import { createHash } from 'node:crypto';
import { PayloadValidationError, defaultValues, type ActionDefinition, type DestinationDefinition } from '@segment/actions-core';

interface Settings {
  apiKey: string;
  listId: string;
  statusIfNew?: string;
}

interface Payload {
  email: string;
  audience_key: string;
  values: Record<string, unknown>;
  merge_fields?: Record<string, unknown>;
}

/** The API base of the key's data center. */
export function mailchimpBase(apiKey: string): string {
  const dc = /-([a-z]+\d+)$/.exec(apiKey)?.[1];
  if (!dc) throw new PayloadValidationError('the Mailchimp API key has no data center suffix (…-us21)');
  return `https://${dc}.api.mailchimp.com/3.0`;
}

export const subscriberHash = (email: string) => createHash('md5').update(email.trim().toLowerCase()).digest('hex');

const upsertMember: ActionDefinition<Settings, Payload> = {
  title: 'Upsert Member and Audience Tag',
  description:
    'Creates or updates the list member by email and sets a tag named after the audience: active while the profile is in it, inactive after it left.',
  defaultSubscription: 'type = "identify"',
  fields: {
    email: {
      label: 'Email',
      type: 'string',
      format: 'email',
      required: true,
      description: "The member's email address.",
      default: {
        '@if': { exists: { '@path': '$.traits.email' }, then: { '@path': '$.traits.email' }, else: { '@path': '$.context.traits.email' } },
      },
    },
    audience_key: {
      label: 'Audience Key',
      type: 'string',
      required: true,
      description: 'The tag name: the Engage audience (or trait) key.',
      default: { '@path': '$.context.personas.computation_key' },
    },
    values: {
      label: 'Traits or Properties',
      type: 'object',
      required: true,
      description: 'Where the audience key is true or false: the identify traits or the track properties.',
      default: { '@if': { exists: { '@path': '$.traits' }, then: { '@path': '$.traits' }, else: { '@path': '$.properties' } } },
    },
    merge_fields: {
      label: 'Merge Fields',
      type: 'object',
      description: 'Merge fields of the list (they must exist in Mailchimp), e.g. FNAME, LNAME.',
      default: { FNAME: { '@path': '$.traits.first_name' }, LNAME: { '@path': '$.traits.last_name' } },
    },
  },
  perform: async (request, { payload, settings }) => {
    const inAudience = payload.values[payload.audience_key];
    if (typeof inAudience !== 'boolean')
      throw new PayloadValidationError(`'${payload.audience_key}' is not true or false in the event: not an audience membership`);
    const member = `${mailchimpBase(settings.apiKey)}/lists/${encodeURIComponent(settings.listId)}/members/${subscriberHash(payload.email)}`;
    await request(member, {
      method: 'put',
      json: {
        email_address: payload.email.trim(),
        status_if_new: settings.statusIfNew ?? 'subscribed',
        ...(payload.merge_fields && Object.keys(payload.merge_fields).length > 0 ? { merge_fields: payload.merge_fields } : {}),
      },
    });
    return request(`${member}/tags`, {
      method: 'post',
      json: { tags: [{ name: payload.audience_key, status: inAudience ? 'active' : 'inactive' }] },
    });
  },
};

const definition: DestinationDefinition<Settings> = {
  name: 'Mailchimp (Engage)',
  slug: 'mailchimp',
  mode: 'cloud',
  description: 'Audiences as tags on the members of a Mailchimp list (Marketing API 3.0).',
  authentication: {
    scheme: 'custom',
    fields: {
      apiKey: {
        label: 'API Key',
        type: 'password',
        required: true,
        description: 'A Mailchimp API key; its suffix is the data center (…-us21).',
      },
      listId: { label: 'Audience (List) ID', type: 'string', required: true, description: 'The Mailchimp audience the members belong to.' },
      statusIfNew: {
        label: 'Status of New Members',
        type: 'string',
        description: 'subscribed, or pending to send a confirmation email first.',
        choices: ['subscribed', 'pending', 'unsubscribed', 'transactional'].map((value) => ({ value, label: value })),
        default: 'subscribed',
      },
    },
  },
  extendRequest: ({ settings }) => ({ username: 'engage', password: settings.apiKey }),
  presets: [
    {
      name: 'Audience Membership (identify)',
      subscribe: 'type = "identify"',
      partnerAction: 'upsertMember',
      mapping: defaultValues(upsertMember.fields),
      type: 'automatic',
    },
  ],
  actions: { upsertMember },
};

export default definition;

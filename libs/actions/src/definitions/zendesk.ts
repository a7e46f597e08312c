// Zendesk Support users (API v2), a definition of our own in actions-core's
// format (issue 19 item 5: the package has no Zendesk), run by the same
// runtime as Segment's. An Engage audience or computed trait is a custom user
// field named after its key (a checkbox for audiences; the field must exist
// in Zendesk):
//   POST https://{subdomain}.zendesk.com/api/v2/users/create_or_update.json
//        {user: {email, name, external_id, user_fields: {<key>: value}}}
// Basic auth `{agent email}/token:{API token}`.
import { PayloadValidationError, defaultValues, type ActionDefinition, type DestinationDefinition } from '@segment/actions-core';

interface Settings {
  subdomain: string;
  email: string;
  apiToken: string;
}

interface Payload {
  email?: string;
  external_id?: string;
  name?: string;
  key: string;
  values: Record<string, unknown>;
}

const SUBDOMAIN = /^[a-z0-9][a-z0-9-]{0,62}$/;

const upsertUser: ActionDefinition<Settings, Payload> = {
  title: 'Create or Update User',
  description:
    'Creates or updates the Zendesk user (by external id or email) and sets the user field named after the audience or trait key.',
  defaultSubscription: 'type = "identify"',
  fields: {
    external_id: { label: 'External ID', type: 'string', description: "The user's id in your system.", default: { '@path': '$.userId' } },
    email: {
      label: 'Email',
      type: 'string',
      format: 'email',
      description: "The user's email address.",
      default: {
        '@if': { exists: { '@path': '$.traits.email' }, then: { '@path': '$.traits.email' }, else: { '@path': '$.context.traits.email' } },
      },
    },
    name: {
      label: 'Name',
      type: 'string',
      description: "The user's name (Zendesk requires one for a new user; the email stands in).",
      default: { '@path': '$.traits.name' },
    },
    key: {
      label: 'User Field Key',
      type: 'string',
      required: true,
      description: 'The custom user field to set: the audience or computed trait key.',
      default: { '@path': '$.context.personas.computation_key' },
    },
    values: {
      label: 'Traits or Properties',
      type: 'object',
      required: true,
      description: "Where the key's value is: the identify traits or the track properties.",
      default: { '@if': { exists: { '@path': '$.traits' }, then: { '@path': '$.traits' }, else: { '@path': '$.properties' } } },
    },
  },
  perform: (request, { payload, settings }) => {
    if (!payload.external_id && !payload.email)
      throw new PayloadValidationError('Zendesk needs an external id or an email to find the user');
    if (!(payload.key in payload.values)) throw new PayloadValidationError(`'${payload.key}' has no value in the event`);
    return request(`https://${settings.subdomain}.zendesk.com/api/v2/users/create_or_update.json`, {
      method: 'post',
      json: {
        user: {
          ...(payload.external_id ? { external_id: payload.external_id } : {}),
          ...(payload.email ? { email: payload.email } : {}),
          name: payload.name ?? payload.email ?? payload.external_id,
          user_fields: { [payload.key]: payload.values[payload.key] },
        },
      },
    });
  },
};

const definition: DestinationDefinition<Settings> = {
  name: 'Zendesk (Engage)',
  slug: 'zendesk',
  mode: 'cloud',
  description: 'Audiences and computed traits as custom user fields of Zendesk Support users (API v2).',
  authentication: {
    scheme: 'custom',
    fields: {
      subdomain: { label: 'Subdomain', type: 'string', required: true, description: 'yourcompany in yourcompany.zendesk.com.' },
      email: { label: 'Agent Email', type: 'string', required: true, description: 'The email of the agent the API token belongs to.' },
      apiToken: {
        label: 'API Token',
        type: 'password',
        required: true,
        description: 'A Zendesk API token (Admin Center, Apps and integrations, APIs).',
      },
    },
  },
  extendRequest: ({ settings }) => {
    if (!SUBDOMAIN.test(settings.subdomain)) throw new PayloadValidationError(`'${settings.subdomain}' is not a Zendesk subdomain`);
    return { username: `${settings.email}/token`, password: settings.apiToken };
  },
  presets: [
    {
      name: 'Audiences and Traits (identify)',
      subscribe: 'type = "identify"',
      partnerAction: 'upsertUser',
      mapping: defaultValues(upsertUser.fields),
      type: 'automatic',
    },
  ],
  actions: { upsertUser },
};

export default definition;

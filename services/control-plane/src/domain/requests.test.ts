import { ApiError } from '../http/api-error';
import { createComputationBody, createConnectionBody, destinationSettingsIssues, parseBody } from './requests';

const errorsOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return { status: (err as ApiError).status, body: (err as ApiError).body() };
  }
  throw new Error('expected an ApiError');
};

describe('request bodies', () => {
  it('fills defaults of a computation', () => {
    expect(parseBody(createComputationBody, { name: 'X', definition: { query: " event('A').count() > 1 " } })).toEqual({
      name: 'X',
      description: '',
      enabled: true,
      definition: { query: "event('A').count() > 1", type: 'users' },
      options: { includeHistoricalData: false, computeMode: 'realtime' },
    });
  });

  it('names every bad field with its reason, one item per unknown field', () => {
    expect(
      errorsOf(() => parseBody(createComputationBody, { name: '', key: 'Not Snake', definition: { query: 'q', extra: 1 }, a: 1, b: 2 })),
    ).toEqual({
      status: 422,
      body: {
        errors: [
          { type: 'validation', field: 'name', message: 'name: must not be empty' },
          { type: 'validation', field: 'key', message: 'key: must be snake_case: lowercase letters, digits and _' },
          { type: 'validation', field: 'definition.extra', message: 'definition.extra: unknown field' },
          { type: 'validation', field: 'a', message: 'a: unknown field' },
          { type: 'validation', field: 'b', message: 'b: unknown field' },
        ],
      },
    });
    expect(errorsOf(() => parseBody(createConnectionBody, [1]))).toEqual({
      status: 400,
      body: { errors: [{ type: 'bad-request', message: 'the request body must be a JSON object (Content-Type: application/json)' }] },
    });
  });

  it('connection settings take Trait Enrichment and ID Sync, and name the bad field', () => {
    const settings = {
      identify: true,
      track: true,
      traitEnrichment: ['lifetime_value', 'plan'],
      idSync: [
        { type: 'email', strategy: 'all', limit: 3 },
        { type: 'phone', strategy: 'last' },
      ],
    };
    expect(parseBody(createConnectionBody, { destinationId: 'dst_1', settings })).toEqual({
      destinationId: 'dst_1',
      enabled: true,
      settings,
    });
    expect(
      errorsOf(() =>
        parseBody(createConnectionBody, {
          destinationId: 'dst_1',
          settings: { traitEnrichment: [''], idSync: [{ type: 'email', strategy: 'first', limit: 2 }] },
        }),
      ),
    ).toEqual({
      status: 422,
      body: {
        errors: [
          { type: 'validation', field: 'settings.traitEnrichment.0', message: 'settings.traitEnrichment.0: must not be empty' },
          {
            type: 'validation',
            field: 'settings.idSync.0.limit',
            message: 'settings.idSync.0.limit: only with strategy "all" (got "first")',
          },
        ],
      },
    });
  });

  it('checks webhook settings: url required, absolute http(s), headers strings', () => {
    expect(destinationSettingsIssues('webhook', { url: 'https://h.example/x', headers: { a: 'b' } })).toEqual([]);
    expect(destinationSettingsIssues('list-webhook', {})).toEqual([['settings.url', 'is required for type list-webhook']]);
    expect(destinationSettingsIssues('webhook', { url: '/relative' })).toEqual([
      ['settings.url', "must be an absolute http(s) URL, got '/relative'"],
    ]);
    expect(destinationSettingsIssues('webhook', { url: 'javascript:alert(1)' })).toEqual([
      ['settings.url', "must be an absolute http(s) URL, got 'javascript:alert(1)'"],
    ]);
    expect(destinationSettingsIssues('webhook', { url: 5, headers: ['x'] })).toEqual([
      ['settings.url', 'must be a string'],
      ['settings.headers', 'must be an object of string header values'],
    ]);
    // List destinations: a batch size every flush can be cut into; Facebook's credentials.
    expect(destinationSettingsIssues('list-webhook', { url: 'http://h/x', batchSize: 'ten' })).toEqual([
      ['settings.batchSize', 'must be a whole number from 1 to 100000 for type list-webhook, got "ten"'],
    ]);
    expect(destinationSettingsIssues('list-webhook', { url: 'http://h/x', batchSize: 0, syncIntervalSeconds: -1 })).toEqual([
      ['settings.batchSize', 'must be a whole number from 1 to 100000 for type list-webhook, got 0'],
      ['settings.syncIntervalSeconds', 'must be a number of seconds > 0, got -1'],
    ]);
    expect(destinationSettingsIssues('facebook-custom-audiences', { batchSize: 20000, accessToken: '' })).toEqual([
      ['settings.batchSize', 'must be a whole number from 1 to 10000 for type facebook-custom-audiences, got 20000'],
      ['settings.accessToken', 'is required for type facebook-custom-audiences (a non-empty string)'],
      ['settings.adAccountId', 'is required for type facebook-custom-audiences (a non-empty string)'],
    ]);
    expect(destinationSettingsIssues('facebook-custom-audiences', { accessToken: 't', adAccountId: '1', batchSize: 500 })).toEqual([]);
    // Types whose settings this API does not know are passed through.
    expect(destinationSettingsIssues('braze', { anything: true })).toEqual([]);
  });
});

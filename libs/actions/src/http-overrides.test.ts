import { ConfigError, parseConfig, z } from '@engage/config';
import { httpOverridesSetting, parseHttpOverrides } from './http-overrides';

describe('DESTINATION_HTTP_OVERRIDES', () => {
  it('reads a JSON object of vendor host -> host:port; unset is none', () => {
    expect(parseHttpOverrides(undefined)).toEqual({});
    expect(parseHttpOverrides('{"rest.iad-01.braze.com":"127.0.0.1:18555"}')).toEqual({ 'rest.iad-01.braze.com': '127.0.0.1:18555' });
  });

  it('refuses anything else, naming what is wrong', () => {
    expect(() => parseHttpOverrides('["a"]')).toThrow('DESTINATION_HTTP_OVERRIDES must be a JSON object of vendor host -> host:port');
    expect(() => parseHttpOverrides('{"api.hubapi.com":"127.0.0.1"}')).toThrow(
      'DESTINATION_HTTP_OVERRIDES: api.hubapi.com must map to "host:port", got "127.0.0.1"',
    );
    expect(() => parseHttpOverrides('{')).toThrow(SyntaxError);
  });
});

describe('httpOverridesSetting (the config key of the dispatcher and the control plane)', () => {
  const schema = z.object({ DESTINATION_HTTP_OVERRIDES: httpOverridesSetting });
  it('parses the JSON text; unset is none', () => {
    expect(parseConfig(schema, { DESTINATION_HTTP_OVERRIDES: '{"api.iterable.com":"127.0.0.1:9"}' })).toEqual({
      DESTINATION_HTTP_OVERRIDES: { 'api.iterable.com': '127.0.0.1:9' },
    });
    expect(parseConfig(schema, {})).toEqual({ DESTINATION_HTTP_OVERRIDES: {} });
  });

  it('makes a bad value a config issue naming the key and what is wrong', () => {
    expect(() => parseConfig(schema, { DESTINATION_HTTP_OVERRIDES: '{"api.hubapi.com":"127.0.0.1"}' })).toThrow(
      new ConfigError(['DESTINATION_HTTP_OVERRIDES: DESTINATION_HTTP_OVERRIDES: api.hubapi.com must map to "host:port", got "127.0.0.1"']),
    );
  });
});

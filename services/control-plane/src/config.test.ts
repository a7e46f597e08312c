import { ConfigError, parseConfig } from '@engage/config';
import { configSchema } from './config';

describe('control plane config: DESTINATION_HTTP_OVERRIDES (httpOverridesSetting in @engage/actions)', () => {
  const required = { CONTROL_PLANE_TOKEN: 'a-long-token' };

  it('reads vendor host -> host:port; unset is none', () => {
    const overrides = '{"rest.iad-01.braze.com":"127.0.0.1:18555"}';
    expect(parseConfig(configSchema, { ...required, DESTINATION_HTTP_OVERRIDES: overrides }).DESTINATION_HTTP_OVERRIDES).toEqual({
      'rest.iad-01.braze.com': '127.0.0.1:18555',
    });
    expect(parseConfig(configSchema, required).DESTINATION_HTTP_OVERRIDES).toEqual({});
  });

  it('refuses a value that is not a JSON object of host:port, naming the key', () => {
    expect(() => parseConfig(configSchema, { ...required, DESTINATION_HTTP_OVERRIDES: '["a"]' })).toThrow(
      new ConfigError(['DESTINATION_HTTP_OVERRIDES: DESTINATION_HTTP_OVERRIDES must be a JSON object of vendor host -> host:port']),
    );
  });
});

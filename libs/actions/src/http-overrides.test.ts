import { parseHttpOverrides } from './http-overrides';

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

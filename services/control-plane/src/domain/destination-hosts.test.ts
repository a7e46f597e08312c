import { addressRefusal, EMPTY_ALLOW_LIST, hostRefusal, parseAllowList, urlSettings } from './destination-hosts';

describe('addressRefusal', () => {
  it('refuses loopback, private, link-local and unspecified addresses, v4 and v6, when nothing is allowed', () => {
    const verdicts = Object.fromEntries(
      [
        '127.0.0.1',
        '127.255.0.9',
        '::1',
        '10.1.2.3',
        '172.16.0.1',
        '172.31.255.255',
        '192.168.1.1',
        'fc00::1',
        'fd12:3456::1',
        '169.254.169.254',
        'fe80::1',
        '0.0.0.0',
        '::',
        '::ffff:127.0.0.1',
        '::ffff:10.0.0.1',
        '93.184.216.34',
        '172.32.0.1',
        '2606:4700::1111',
        '8.8.8.8',
      ].map((a) => [a, addressRefusal(a, EMPTY_ALLOW_LIST)]),
    );
    expect(verdicts).toEqual({
      '127.0.0.1': '127.0.0.1 is a loopback address',
      '127.255.0.9': '127.255.0.9 is a loopback address',
      '::1': '::1 is a loopback address',
      '10.1.2.3': '10.1.2.3 is a private address',
      '172.16.0.1': '172.16.0.1 is a private address',
      '172.31.255.255': '172.31.255.255 is a private address',
      '192.168.1.1': '192.168.1.1 is a private address',
      'fc00::1': 'fc00::1 is a private address',
      'fd12:3456::1': 'fd12:3456::1 is a private address',
      '169.254.169.254': '169.254.169.254 is a link-local address',
      'fe80::1': 'fe80::1 is a link-local address',
      '0.0.0.0': '0.0.0.0 is an unspecified address',
      '::': ':: is an unspecified address',
      // An IPv4-mapped IPv6 address is the IPv4 address it maps.
      '::ffff:127.0.0.1': '127.0.0.1 is a loopback address',
      '::ffff:10.0.0.1': '10.0.0.1 is a private address',
      '93.184.216.34': null,
      '172.32.0.1': null,
      '2606:4700::1111': null,
      '8.8.8.8': null,
    });
  });

  it('admits a refused address inside an allowed CIDR or equal to an allowed address, and no other', () => {
    const allow = parseAllowList(' 127.0.0.0/8, 10.1.0.0/16 ,fd00::/8,169.254.1.2,[::1]');
    expect(
      ['127.0.0.1', '::ffff:127.0.0.2', '10.1.200.3', '10.2.0.1', 'fd00::5', 'fc00::5', '169.254.1.2', '169.254.1.3', '::1'].map((a) =>
        addressRefusal(a, allow),
      ),
    ).toEqual([
      null,
      null,
      null,
      '10.2.0.1 is a private address',
      null,
      'fc00::5 is a private address',
      null,
      '169.254.1.3 is a link-local address',
      null,
    ]);
  });
});

describe('hostRefusal', () => {
  it('requires every resolved address to be allowed, unless the host name itself is allowed', () => {
    const allow = parseAllowList('127.0.0.0/8,Hooks.Internal');
    expect(hostRefusal('localhost', ['127.0.0.1', '::1'], allow)).toBe(
      '::1 is a loopback address (localhost resolves to it); destinations may not reach loopback, private, link-local or unspecified addresses unless DESTINATION_ALLOWED_HOSTS allows them',
    );
    expect(hostRefusal('localhost', ['127.0.0.1'], allow)).toBeNull();
    expect(hostRefusal('mixed.example', ['93.184.216.34', '10.0.0.1'], EMPTY_ALLOW_LIST)).toMatch(
      /^10\.0\.0\.1 is a private address \(mixed/,
    );
    expect(hostRefusal('hooks.internal', ['10.0.0.1'], allow)).toBeNull();
    expect(hostRefusal('[fe80::1]', ['fe80::1'], allow)).toMatch(/^fe80::1 is a link-local address; /);
    expect(hostRefusal('public.example', ['93.184.216.34'], EMPTY_ALLOW_LIST)).toBeNull();
  });
});

describe('parseAllowList', () => {
  it('parses hosts, addresses and CIDRs, and names a bad entry', () => {
    const list = parseAllowList('a.example, 127.0.0.0/8,,::1 ');
    expect([...list.hosts]).toEqual(['a.example']);
    expect(list.ranges.map(([ip, bits]) => `${ip.toString()}/${bits}`)).toEqual(['127.0.0.0/8', '::1/128']);
    expect(parseAllowList('')).toEqual(EMPTY_ALLOW_LIST);
    expect(() => parseAllowList('127.0.0.0/33')).toThrow("'127.0.0.0/33' is not a valid CIDR");
    expect(() => parseAllowList('hooks.example:8080')).toThrow("'hooks.example:8080' is neither a host name, an IP address nor a CIDR");
  });
});

describe('urlSettings', () => {
  it('finds every top-level http(s) URL setting, with the hostname a URL parser sees', () => {
    expect(
      urlSettings({
        url: 'http://2130706433:8080/a',
        apiBaseUrl: 'https://[::1]/v1',
        endpoint: 'https://rest.iad-01.braze.com',
        app_id: 'abc',
        other: 'ftp://10.0.0.1/',
        batchSize: 10,
      }),
    ).toEqual([
      { field: 'settings.url', host: '127.0.0.1' },
      { field: 'settings.apiBaseUrl', host: '[::1]' },
      { field: 'settings.endpoint', host: 'rest.iad-01.braze.com' },
    ]);
  });
});

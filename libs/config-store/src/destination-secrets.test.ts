import { MASK, maskSettings, restoreSecrets } from './destination-secrets';

describe('maskSettings', () => {
  it("masks the destination's declared secret fields (an Actions definition's password fields) whatever their name, at the top level", () => {
    const settings = { siteId: 'site-1', accountRegion: 'US', nested: { siteId: 'x' } };
    expect(maskSettings(settings, ['siteId'])).toEqual({ siteId: MASK, accountRegion: 'US', nested: { siteId: 'x' } });
    expect(restoreSecrets({ siteId: MASK, accountRegion: 'EU' }, settings, ['siteId'])).toEqual({
      settings: { siteId: 'site-1', accountRegion: 'EU' },
      issues: [],
    });
    expect(restoreSecrets({ siteId: MASK }, {}, ['siteId']).issues).toEqual([
      ['settings.siteId', `'${MASK}' stands for a stored secret, and there is none here: send the value itself`],
    ]);
  });

  it('masks secret settings at any depth, header values one by one, and leaves the rest', () => {
    expect(
      maskSettings({
        url: 'https://hooks.example/a',
        headers: { Authorization: 'Bearer s3cret', 'x-team': 'growth', empty: '' },
        accessToken: 'EAAB...',
        api_key: 'k-1',
        oauth: { refresh_token: 'r', expires: 3600 },
        nested: { clientSecret: 'c', region: 'eu' },
        batchSize: 10,
        syncIntervalSeconds: 60,
        adAccountId: 'act_1',
        password: null,
      }),
    ).toEqual({
      url: 'https://hooks.example/a',
      headers: { Authorization: MASK, 'x-team': MASK, empty: '' },
      accessToken: MASK,
      api_key: MASK,
      oauth: { refresh_token: MASK, expires: MASK },
      nested: { clientSecret: MASK, region: 'eu' },
      batchSize: 10,
      syncIntervalSeconds: 60,
      adAccountId: 'act_1',
      password: null,
    });
  });
});

describe('secrets in a URL', () => {
  it('masks secret query values and a userinfo password, and leaves the rest of the URL as it was written', () => {
    expect(
      maskSettings({
        url: 'https://user:pw-1@hooks.example/in?api_key=k-1&team=growth&access%5Ftoken=t-1&empty_token=#frag',
        other: 'https://hooks.example/plain?page=2',
      }),
    ).toEqual({
      url: `https://user:${MASK}@hooks.example/in?api_key=${MASK}&team=growth&access%5Ftoken=${MASK}&empty_token=#frag`,
      other: 'https://hooks.example/plain?page=2',
    });
  });

  it('a URL sent back with its masks keeps the stored secrets; a mask with nothing stored behind it is refused', () => {
    const stored = { url: 'https://user:pw-1@hooks.example/in?api_key=k-1&team=growth' };
    expect(restoreSecrets({ url: `https://user:${MASK}@hooks.example/v2?api_key=${MASK}&team=ops` }, stored)).toEqual({
      settings: { url: 'https://user:pw-1@hooks.example/v2?api_key=k-1&team=ops' },
      issues: [],
    });
    expect(restoreSecrets({ url: `https://hooks.example/in?token=${MASK}` }, stored).issues).toEqual([
      ['settings.url', `'${MASK}' for 'token' in this URL stands for a stored secret, and there is none here: send the value itself`],
    ]);
  });
});

describe('restoreSecrets', () => {
  const stored = { url: 'https://a.example', headers: { Authorization: 'Bearer s3cret', 'x-team': 'growth' }, accessToken: 't-1' };

  it('keeps the stored value where the mask comes back, takes new values, drops what is left out', () => {
    expect(restoreSecrets({ url: 'https://b.example', headers: { Authorization: MASK, 'x-new': 'v' }, accessToken: MASK }, stored)).toEqual(
      {
        settings: { url: 'https://b.example', headers: { Authorization: 'Bearer s3cret', 'x-new': 'v' }, accessToken: 't-1' },
        issues: [],
      },
    );
    expect(restoreSecrets({ url: 'https://a.example', accessToken: 't-2' }, stored)).toEqual({
      settings: { url: 'https://a.example', accessToken: 't-2' },
      issues: [],
    });
  });

  it('refuses a mask with no stored secret behind it, and leaves a mask in a setting that is not secret as it is', () => {
    expect(restoreSecrets({ headers: { 'x-other': MASK }, apiKey: MASK, name: MASK }, stored)).toEqual({
      settings: { headers: { 'x-other': undefined }, apiKey: undefined, name: MASK },
      issues: [
        ['settings.headers.x-other', `'${MASK}' stands for a stored secret, and there is none here: send the value itself`],
        ['settings.apiKey', `'${MASK}' stands for a stored secret, and there is none here: send the value itself`],
      ],
    });
    // A whole secret object sent as the mask keeps the stored object.
    expect(restoreSecrets({ headers: MASK }, stored).settings).toEqual({ headers: stored.headers });
  });
});

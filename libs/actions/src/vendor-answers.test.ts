import { marketoCodeMeaning, readVendorAnswer } from './vendor-answers';

describe("readVendorAnswer: a vendor's answer where its HTTP status misleads", () => {
  const limit = [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }];

  it("reads Salesforce's 403 REQUEST_LIMIT_EXCEEDED as a rate limit, as received (a string) or parsed", () => {
    expect(readVendorAnswer('salesforce', 403, JSON.stringify(limit))).toEqual({ rateLimited: true });
    expect(readVendorAnswer('salesforce', 403, limit)).toEqual({ rateLimited: true });
  });

  it("reads TikTok's errors answered with HTTP 200 and a code: rate limit, credentials, the rest refused", () => {
    const answer = (code: number, message: string) => JSON.stringify({ code, message, request_id: 'r1', data: {} });
    expect(readVendorAnswer('tiktok-audiences', 200, answer(0, 'OK'))).toBeUndefined();
    expect(readVendorAnswer('tiktok-audiences', 200, { code: 40100, message: 'Too many requests' })).toEqual({
      rateLimited: true,
      status: 429,
      message: 'TikTok code 40100: Too many requests',
    });
    expect(readVendorAnswer('tiktok-audiences', 200, answer(40105, 'Access token is incorrect or has been revoked.'))).toEqual({
      status: 401,
      message: 'TikTok code 40105: Access token is incorrect or has been revoked.',
    });
    expect(readVendorAnswer('tiktok-audiences', 200, answer(40001, 'No permission'))).toMatchObject({ status: 403 });
    expect(readVendorAnswer('tiktok-audiences', 200, answer(40002, 'batch_data: too long'))).toMatchObject({ status: 400 });
    expect(readVendorAnswer('tiktok-audiences', 200, answer(51001, 'internal error'))).toMatchObject({ status: 503 });
    expect(readVendorAnswer('tiktok-audiences', 429, answer(40100, 'x'))).toBeUndefined();
  });

  it("reads Marketo Static Lists' coded errors (a per-item body or an answer): limits as rate limits, token codes as 401, others left to the definition", () => {
    const answer = (code: string, message: string) => JSON.stringify({ requestId: 'r', success: false, errors: [{ code, message }] });
    expect(readVendorAnswer('marketo-static-lists', 500, { code: '606', message: 'Max rate limit' })).toEqual({
      rateLimited: true,
      status: 429,
      message: 'Marketo 606: Max rate limit',
    });
    expect(readVendorAnswer('marketo-static-lists', 200, answer('607', 'Daily quota reached'))).toMatchObject({ rateLimited: true });
    expect(readVendorAnswer('marketo-static-lists', 500, { code: '600', message: 'Access token not specified' })).toEqual({
      status: 401,
      message: 'Marketo 600: Access token not specified',
    });
    expect(readVendorAnswer('marketo-static-lists', 400, { code: '1013', message: 'Object not found' })).toBeUndefined();
    expect(readVendorAnswer('marketo-static-lists', 200, { requestId: 'r', success: true, result: [] })).toBeUndefined();
    expect(marketoCodeMeaning('1016')).toBe('retried');
    expect(marketoCodeMeaning(602)).toBe('token');
  });

  it("reads Responsys's throttling, answered with a 401, as a rate limit; its other 401s stay refused credentials", () => {
    const answer = (errorCode: string) => JSON.stringify({ type: '', title: 't', errorCode, detail: 'd', errorDetails: [] });
    expect(readVendorAnswer('responsys', 401, answer('API_LIMIT_EXCEEDED'))).toEqual({
      rateLimited: true,
      message: 'Responsys API_LIMIT_EXCEEDED: d',
    });
    expect(readVendorAnswer('responsys', 401, answer('INTERNAL_CAPACITY_LIMIT_EXCEEDED'))).toMatchObject({ rateLimited: true });
    expect(readVendorAnswer('responsys', 401, answer('TOKEN_EXPIRED'))).toBeUndefined();
    expect(readVendorAnswer('responsys', 400, answer('API_LIMIT_EXCEEDED'))).toBeUndefined();
  });

  it("reads Facebook's coded errors in a 400: throttling as a rate limit, 190 as refused credentials, the rest with Facebook's message", () => {
    const answer = (code: number, message: string, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ error: { message, type: 'OAuthException', code, fbtrace_id: 't', ...extra } });
    const slug = 'facebook-custom-audiences';
    expect(readVendorAnswer(slug, 400, answer(80003, 'There have been too many calls to this ad-account.'))).toEqual({
      rateLimited: true,
      status: 429,
      message: 'Facebook code 80003: There have been too many calls to this ad-account.',
    });
    for (const code of [4, 17, 32, 613, 80004])
      expect(readVendorAnswer(slug, 400, answer(code, 'limit'))).toMatchObject({ rateLimited: true });
    expect(readVendorAnswer(slug, 500, answer(99, 'unknown', { is_transient: true }))).toMatchObject({ rateLimited: true });
    expect(readVendorAnswer(slug, 400, answer(190, 'Invalid OAuth access token'))).toEqual({
      status: 401,
      message: 'Facebook code 190: Invalid OAuth access token',
    });
    expect(readVendorAnswer(slug, 401, { error: { code: 190, message: 'Error validating access token' } })).toMatchObject({ status: 401 });
    expect(readVendorAnswer(slug, 400, answer(200, '(#200) no permission to access ad account 1'))).toMatchObject({ status: 403 });
    expect(readVendorAnswer(slug, 400, answer(100, '(#100) Invalid parameter'))).toEqual({
      message: 'Facebook code 100: (#100) Invalid parameter',
    });
    expect(readVendorAnswer(slug, 200, { id: '1' })).toBeUndefined();
    expect(readVendorAnswer(slug, 400, { externalId: 'u1', email: 'a@b.co' })).toBeUndefined();
  });

  it("leaves Salesforce's other 403s (refused access) and every other answer to their status", () => {
    expect(readVendorAnswer('salesforce', 403, [{ message: 'no access', errorCode: 'INSUFFICIENT_ACCESS' }])).toBeUndefined();
    expect(readVendorAnswer('salesforce', 403, 'not json')).toBeUndefined();
    expect(readVendorAnswer('salesforce', 400, limit)).toBeUndefined();
    expect(readVendorAnswer('braze', 403, limit)).toBeUndefined();
  });
});

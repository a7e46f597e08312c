import { readVendorAnswer } from './vendor-answers';

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

  it("leaves Salesforce's other 403s (refused access) and every other answer to their status", () => {
    expect(readVendorAnswer('salesforce', 403, [{ message: 'no access', errorCode: 'INSUFFICIENT_ACCESS' }])).toBeUndefined();
    expect(readVendorAnswer('salesforce', 403, 'not json')).toBeUndefined();
    expect(readVendorAnswer('salesforce', 400, limit)).toBeUndefined();
    expect(readVendorAnswer('braze', 403, limit)).toBeUndefined();
  });
});

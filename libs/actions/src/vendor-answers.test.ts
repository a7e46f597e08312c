import { readVendorAnswer } from './vendor-answers';

describe("readVendorAnswer: a vendor's answer where its HTTP status misleads", () => {
  const limit = [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }];

  it("reads Salesforce's 403 REQUEST_LIMIT_EXCEEDED as a rate limit, as received (a string) or parsed", () => {
    expect(readVendorAnswer('salesforce', 403, JSON.stringify(limit))).toEqual({ rateLimited: true });
    expect(readVendorAnswer('salesforce', 403, limit)).toEqual({ rateLimited: true });
  });

  it("leaves Salesforce's other 403s (refused access) and every other answer to their status", () => {
    expect(readVendorAnswer('salesforce', 403, [{ message: 'no access', errorCode: 'INSUFFICIENT_ACCESS' }])).toBeUndefined();
    expect(readVendorAnswer('salesforce', 403, 'not json')).toBeUndefined();
    expect(readVendorAnswer('salesforce', 400, limit)).toBeUndefined();
    expect(readVendorAnswer('braze', 403, limit)).toBeUndefined();
  });
});

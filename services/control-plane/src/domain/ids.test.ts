import { newId, newWriteKey, snakeCase } from './ids';

describe('ids', () => {
  it('snake_cases names as Segment derives keys', () => {
    expect(
      ['Order Completed Last 30 Days', 'High-Value Users!', '  Café  Visitors ', 'lifetimeValue', 'already_snake'].map(snakeCase),
    ).toEqual(['order_completed_last_30_days', 'high_value_users', 'cafe_visitors', 'lifetime_value', 'already_snake']);
  });

  it('makes prefixed ids and write keys that do not repeat', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId('aud')));
    expect(ids.size).toBe(1000);
    expect([...ids].every((id) => /^aud_[0-9A-Za-z]{27}$/.test(id))).toBe(true);
    expect(newWriteKey()).toMatch(/^[0-9A-Za-z]{32}$/);
  });
});

import { compileRules, DEFAULT_IDENTITY_RULES, MAX_ID_LENGTH, parseIdentityRules, unsafePatternReason } from './index';

describe('unsafePatternReason', () => {
  it('refuses patterns that backtrack exponentially, backreferences and too many unbounded quantifiers', () => {
    const refused = [
      '^(a+)+$',
      '(a|aa)*',
      '^((a|a)c)+$',
      '(\\w+\\s?){2,}',
      '(?:x*y?)+z',
      '(a?)+',
      '(a{2})+',
      '(a)\\1',
      '(?<x>a)\\k<x>',
      '.*x.*y.*z',
      'a'.repeat(257),
    ];
    expect(refused.filter((p) => unsafePatternReason(p) === null)).toEqual([]);
  });

  it('accepts the usual blocked-value patterns', () => {
    const accepted = ['^[0-]*$', '^test.*@.*$', '(?:foo|bar)', '^(abc)+$', '^(a|b)?c+$', '[(+]+', '\\(a+\\)+', 'a{2,3}', 'x{', '^.{0,5}$'];
    expect(accepted.map((p) => [p, unsafePatternReason(p)])).toEqual(accepted.map((p) => [p, null]));
  });
});

describe('blocked patterns in identity rules', () => {
  it('are refused at validation, naming the pattern, and left out of the parsed rules', () => {
    const { rules, errors } = parseIdentityRules({ blockedPatterns: ['^(a+)+$', '^x'] });
    expect(errors).toEqual([
      {
        field: 'blockedPatterns[0]',
        message: 'pattern "^(a+)+$" repeats a group that itself holds a quantifier (nested quantifiers): exponential time on some inputs',
      },
    ]);
    expect(rules.blockedPatterns).toEqual(['^x']);
  });

  it('are never compiled when unsafe, even from a stored record that skipped validation', () => {
    const compiled = compileRules({ ...DEFAULT_IDENTITY_RULES, blockedPatterns: ['^(a+)+$', '(', '^x'] });
    expect(compiled.ignoredPatterns).toEqual([
      { pattern: '^(a+)+$', reason: expect.stringContaining('nested quantifiers') },
      { pattern: '(', reason: expect.stringContaining('invalid regular expression') },
    ]);
    // Would take 2^35 steps had the pattern been compiled; the test would hang.
    expect(compiled.isBlocked('a'.repeat(35) + '!')).toBe(false);
    expect(compiled.isBlocked('X-1')).toBe(true);
  });

  it('run only on values up to MAX_ID_LENGTH: longer ones are blocked without matching (they are never ids)', () => {
    const compiled = compileRules({ ...DEFAULT_IDENTITY_RULES, blockedValues: [], blockedPatterns: ['^b'] });
    expect(compiled.isBlocked('a'.repeat(MAX_ID_LENGTH))).toBe(false);
    expect(compiled.isBlocked('a'.repeat(MAX_ID_LENGTH + 1))).toBe(true);
  });
});

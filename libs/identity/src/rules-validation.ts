// Checks a space's identity rules as sent to the control plane: every problem
// named with its field, so the API can answer 422 with a useful message.
import { ID_TYPE } from './external-ids';
import {
  blockedPatternProblem,
  DEFAULT_IDENTITY_RULES,
  WINDOW_MS,
  type IdentifierLimit,
  type IdentityRules,
  type LimitWindow,
} from './rules';

export interface RuleError {
  field: string;
  message: string;
}

const WINDOWS = Object.keys(WINDOW_MS) as LimitWindow[];
const MAX_LIMIT = 1000;
const MAX_BLOCKED = 1000;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function limit(v: unknown, field: string, errors: RuleError[]): IdentifierLimit | null {
  if (typeof v === 'number') v = { limit: v, window: 'ever' };
  if (!isObject(v)) return (errors.push({ field, message: 'expected {limit, window} or a number' }), null);
  const n = v.limit;
  const window = v.window ?? 'ever';
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    errors.push({ field: `${field}.limit`, message: `expected an integer from 1 to ${MAX_LIMIT}` });
  if (typeof window !== 'string' || !WINDOWS.includes(window as LimitWindow))
    errors.push({ field: `${field}.window`, message: `expected one of ${WINDOWS.join(', ')}` });
  return { limit: n as number, window: window as LimitWindow };
}

function stringList(v: unknown, field: string, errors: RuleError[], check?: (s: string, f: string) => void): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))
    return (errors.push({ field, message: 'expected an array of strings' }), []);
  if (v.length > MAX_BLOCKED) errors.push({ field, message: `at most ${MAX_BLOCKED} entries` });
  v.forEach((s: string, i) => check?.(s, `${field}[${i}]`));
  return v as string[];
}

/**
 * Validates a (partial) rules body and fills in Segment's defaults for what is
 * missing. Unknown fields are errors: a typo must not silently keep a default.
 */
export function parseIdentityRules(input: unknown): { rules: IdentityRules; errors: RuleError[] } {
  const errors: RuleError[] = [];
  if (!isObject(input)) return { rules: DEFAULT_IDENTITY_RULES, errors: [{ field: '', message: 'expected a JSON object' }] };
  const known = new Set(Object.keys(DEFAULT_IDENTITY_RULES));
  for (const k of Object.keys(input))
    if (!known.has(k)) errors.push({ field: k, message: `unknown field; expected one of ${[...known].join(', ')}` });
  const type = (s: string, f: string) => {
    if (!ID_TYPE.test(s)) errors.push({ field: f, message: 'identifier types are lowercase letters, digits, _ . - (at most 64)' });
  };
  const rules: IdentityRules = { ...DEFAULT_IDENTITY_RULES };
  if ('priority' in input) {
    rules.priority = stringList(input.priority, 'priority', errors, type);
    if (new Set(rules.priority).size !== rules.priority.length)
      errors.push({ field: 'priority', message: 'an identifier type is listed twice' });
  }
  if ('limits' in input) {
    if (!isObject(input.limits)) errors.push({ field: 'limits', message: 'expected an object: identifier type -> {limit, window}' });
    else {
      rules.limits = {};
      for (const [t, v] of Object.entries(input.limits)) {
        type(t, `limits.${t}`);
        const l = limit(v, `limits.${t}`, errors);
        if (l) rules.limits[t] = l;
      }
    }
  }
  if ('defaultLimit' in input) rules.defaultLimit = limit(input.defaultLimit, 'defaultLimit', errors) ?? rules.defaultLimit;
  if ('blockedValues' in input) rules.blockedValues = stringList(input.blockedValues, 'blockedValues', errors);
  if ('blockedPatterns' in input) {
    // A refused pattern is also left out of the rules: whoever compiles them
    // after logging the errors (the resolver, on an old record) never runs it.
    const usable: string[] = [];
    stringList(input.blockedPatterns, 'blockedPatterns', errors, (s, f) => {
      const problem = blockedPatternProblem(s);
      if (problem === null) usable.push(s);
      else errors.push({ field: f, message: problem.startsWith('invalid') ? problem : `pattern ${JSON.stringify(s)} ${problem}` });
    });
    rules.blockedPatterns = usable;
  }
  if ('maxMergesPerProfile' in input) {
    const m = input.maxMergesPerProfile;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < 0 || m > 100000)
      errors.push({ field: 'maxMergesPerProfile', message: 'expected an integer from 0 to 100000' });
    else rules.maxMergesPerProfile = m;
  }
  if ('customIdentifiers' in input) {
    const list = input.customIdentifiers;
    if (!Array.isArray(list)) errors.push({ field: 'customIdentifiers', message: 'expected an array of {type, key}' });
    else {
      rules.customIdentifiers = [];
      list.forEach((c: unknown, i) => {
        if (!isObject(c) || typeof c.type !== 'string' || typeof c.key !== 'string' || c.key === '') {
          errors.push({ field: `customIdentifiers[${i}]`, message: 'expected {type, key} strings' });
          return;
        }
        type(c.type, `customIdentifiers[${i}].type`);
        rules.customIdentifiers.push({ type: c.type, key: c.key });
      });
    }
  }
  return { rules, errors };
}

// Comparisons shared by the reference and the incremental evaluator, so both
// give one answer by construction for a given left value, right value and time.
import { durationMs, type Comparison } from './ast';
import type { Value } from './event';

export function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

export function toTime(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? null : t;
  }
  return null;
}

export function valuesEqual(a: Value, b: Value): boolean {
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== null && nb !== null) return na === nb;
  if (Array.isArray(a) || Array.isArray(b)) return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

export function present(v: Value | undefined): v is Exclude<Value, null> {
  return v !== null && v !== undefined;
}

/** True for the comparators whose answer moves with the evaluation time. */
export const isRelativeDate = (op: Comparison['op']): op is 'within_last' | 'within_next' | 'before_last' | 'after_next' =>
  op === 'within_last' || op === 'within_next' || op === 'before_last' || op === 'after_next';

/** True for the comparators that take a Scalar operand (`c.value` is a ScalarExpr). */
export const takesScalar = (op: Comparison['op']): boolean =>
  op === 'equals' || op === 'differs' || op === 'greater_than' || op === 'at_least' || op === 'less_than' || op === 'at_most';

/**
 * `left <comparison> right` at time `now`. `right` is the evaluated operand of
 * the six scalar comparators (ignored by the others). A missing left value
 * satisfies only absent(): `differs` is true only when the value exists
 * (the reference's note; `NOT (x = v)` is the null-inclusive form).
 */
export function compareValues(left: Value, c: Comparison, right: Value, now: number): boolean {
  if (c.op === 'exists' || c.op === 'absent') return c.op === 'exists' ? present(left) : !present(left);
  if (!present(left)) return false;
  switch (c.op) {
    case 'equals':
    case 'differs': {
      if (!present(right)) return false;
      return c.op === 'equals' ? valuesEqual(left, right) : !valuesEqual(left, right);
    }
    case 'greater_than':
    case 'at_least':
    case 'less_than':
    case 'at_most': {
      const l = toNumber(left);
      const r = toNumber(right);
      if (l === null || r === null) return false;
      return c.op === 'greater_than' ? l > r : c.op === 'at_least' ? l >= r : c.op === 'less_than' ? l < r : l <= r;
    }
    case 'contains':
      return typeof left === 'string' && c.values.some((v) => v !== null && left.includes(String(v)));
    case 'omits':
      return typeof left === 'string' && !left.includes(c.value);
    case 'starts_with':
      return typeof left === 'string' && left.startsWith(c.value);
    case 'ends_with':
      return typeof left === 'string' && left.endsWith(c.value);
    case 'one_of':
      return c.values.some((v) => v !== null && valuesEqual(left, v));
    case 'before_date':
    case 'after_date': {
      const t = toTime(left);
      if (t === null) return false;
      return c.op === 'before_date' ? t < Date.parse(c.value) : t > Date.parse(c.value);
    }
    case 'within_last':
    case 'within_next':
    case 'before_last':
    case 'after_next': {
      const t = toTime(left);
      if (t === null) return false;
      const d = durationMs(c.duration);
      if (c.op === 'within_last') return t >= now - d && t <= now;
      if (c.op === 'within_next') return t >= now && t <= now + d;
      if (c.op === 'before_last') return t <= now - d;
      return t >= now + d; // after_next
    }
  }
  return false;
}

/**
 * The earliest integer instant > `after` at which a relative-date comparison of
 * the (fixed) time `t` can flip, or null. Derived from the inequalities above.
 */
export function relativeDateFlipAfter(
  t: number,
  op: 'within_last' | 'within_next' | 'before_last' | 'after_next',
  d: number,
  after: number,
): number | null {
  let points: number[];
  if (op === 'within_last')
    points = [Math.ceil(t), Math.floor(t + d) + 1]; // t <= now <= t + d
  else if (op === 'within_next')
    points = [Math.ceil(t - d), Math.floor(t) + 1]; // t - d <= now <= t
  else if (op === 'before_last')
    points = [Math.ceil(t + d)]; // now >= t + d
  else points = [Math.floor(t - d) + 1]; // now <= t - d
  let best: number | null = null;
  for (const p of points) if (p > after && (best === null || p < best)) best = p;
  return best;
}

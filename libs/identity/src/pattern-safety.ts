// Blocked-value patterns are written by a space's admin but run (by V8's
// backtracking engine) on ids the sender controls: `^(a+)+$` against 35 "a"s
// and a "!" takes 2^35 steps and freezes the resolver. A linear-time engine
// would need a native build (re2) on every machine, so instead the patterns
// that backtrack catastrophically are refused where they are written, and the
// input they run on is bounded (MAX_ID_LENGTH). What is refused:
// - a repeated group that itself holds a quantifier or an alternation
//   (`(a+)+`, `(a|aa)*`, `(\w+\s?){2,}`): exponential in the input length;
// - backreferences (`\1`, `\k<name>`): no engine matches them in linear time;
// - more than MAX_UNBOUNDED_QUANTIFIERS unbounded quantifiers (`.*x.*y.*`):
//   each one multiplies the polynomial worst case by the input length;
// - patterns longer than MAX_PATTERN_LENGTH.
// Pure, no IO.

/** Longest blocked-value pattern accepted, characters. */
export const MAX_PATTERN_LENGTH = 256;
/** Most `*`, `+` and `{n,}` in one pattern: with ids of at most MAX_ID_LENGTH chars, O(n^3) at worst. */
export const MAX_UNBOUNDED_QUANTIFIERS = 2;

interface Frame {
  /** A quantifier (any, `?` included) somewhere inside the group. */
  quantified: boolean;
  /** A `|` directly or deeper inside the group. */
  alternation: boolean;
}

/** A quantifier at `i` (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`): its length and whether it repeats (and how). */
function quantifierAt(p: string, i: number): { length: number; repeats: boolean; unbounded: boolean } | null {
  const c = p[i];
  let length: number;
  let repeats: boolean;
  let unbounded: boolean;
  if (c === '*' || c === '+') [length, repeats, unbounded] = [1, true, true];
  else if (c === '?') [length, repeats, unbounded] = [1, false, false];
  else if (c === '{') {
    // Outside unicode mode a `{` that is not a well-formed quantifier is a literal.
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (!m) return null;
    const max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
    [length, repeats, unbounded] = [m[0].length, max > 1, max === Infinity];
  } else return null;
  if (p[i + length] === '?') length++; // lazy: the same backtracking, in another order
  return { length, repeats, unbounded };
}

/**
 * Why `pattern` could take super-linear time on a hostile input, or null when
 * it is safe. Assumes the pattern compiles (check that first).
 */
export function unsafePatternReason(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN_LENGTH) return `is ${pattern.length} characters, over the ${MAX_PATTERN_LENGTH}-character limit`;
  const stack: Frame[] = [{ quantified: false, alternation: false }];
  // The last atom, for the quantifier that may follow it: a closed group's frame, or a plain atom.
  let last: Frame | 'atom' | null = null;
  let unbounded = 0;
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && pattern[i + 2] === '<'))
        return 'uses a backreference, which no linear-time engine supports';
      i += 2;
      last = 'atom';
    } else if (c === '[') {
      // A character class is one atom: skip to its unescaped `]` (a `]` right after `[` or `[^` closes it in JS).
      let j = i + 1;
      if (pattern[j] === '^') j++;
      while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
      i = j + 1;
      last = 'atom';
    } else if (c === '(') {
      stack.push({ quantified: false, alternation: false });
      // Skip the group's prefix: (?: (?= (?! (?<= (?<! (?<name>
      const prefix = /^\(\?(?::|=|!|<=|<!|<[A-Za-z_$][\w$]*>)/.exec(pattern.slice(i));
      i += prefix ? prefix[0].length : 1;
      last = null;
    } else if (c === ')') {
      const group = stack.length > 1 ? stack.pop()! : { quantified: false, alternation: false };
      const parent = stack[stack.length - 1]!;
      // `((a|a)c)+` is as exponential as `(a|a)+`: what is inside counts for every enclosing group.
      parent.quantified ||= group.quantified;
      parent.alternation ||= group.alternation;
      last = group;
      i++;
    } else if (c === '|') {
      stack[stack.length - 1]!.alternation = true;
      last = null;
      i++;
    } else {
      const q = last === null ? null : quantifierAt(pattern, i);
      if (q) {
        if (q.repeats && last !== 'atom' && last !== null && (last.quantified || last.alternation)) {
          return last.quantified
            ? 'repeats a group that itself holds a quantifier (nested quantifiers): exponential time on some inputs'
            : 'repeats a group that holds an alternation: exponential time on some inputs';
        }
        if (q.unbounded && ++unbounded > MAX_UNBOUNDED_QUANTIFIERS)
          return `has more than ${MAX_UNBOUNDED_QUANTIFIERS} unbounded quantifiers (*, +, {n,}): polynomial time of a high degree`;
        stack[stack.length - 1]!.quantified = true;
        i += q.length;
        last = null;
      } else {
        last = c === '^' || c === '$' ? null : 'atom';
        i++;
      }
    }
  }
  return null;
}

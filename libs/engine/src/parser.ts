// Recursive-descent parser with the reference's type rules built in: each
// call in a chain is allowed only on the return type of the previous one
// (VectorExtractor -> filters/reducers, Scalar -> comparators, ListScalar ->
// count, Comparator -> nothing). Errors carry line, column and what was expected.
import type {
  BoolExpr,
  Comparison,
  Duration,
  Filter,
  LiteralValue,
  QueryAst,
  QueryType,
  Reducer,
  ScalarExpr,
  StreamExpr,
  TimeUnit,
  ValueType,
} from './ast';
import { tokenize, type Token } from './lexer';
import { QueryError } from './query-error';

export const MAX_PRIMARY_EXPRESSIONS = 50;

const SCALAR_COMPARATORS = {
  equals: 'equals',
  differs: 'differs',
  greater_than: 'greater_than',
  at_least: 'at_least',
  less_than: 'less_than',
  at_most: 'at_most',
} as const;
const SUGAR_OPS: Record<string, keyof typeof SCALAR_COMPARATORS> = {
  '=': 'equals',
  '==': 'equals',
  '!=': 'differs',
  '>': 'greater_than',
  '>=': 'at_least',
  '<': 'less_than',
  '<=': 'at_most',
};
const FILTERS = new Set(['where', 'sources', 'within', 'between']);
const REDUCERS = new Set(['count', 'sum', 'avg', 'min', 'max', 'mode', 'first', 'last', 'unique']);
const COMPARATORS = new Set([
  ...Object.keys(SCALAR_COMPARATORS),
  'exists',
  'absent',
  'contains',
  'one_of',
  'omits',
  'starts_with',
  'ends_with',
  'before_date',
  'after_date',
  'within_last',
  'within_next',
  'before_last',
  'after_next',
]);

type Chain =
  | { type: 'stream'; expr: StreamExpr }
  | { type: 'scalar'; expr: ScalarExpr }
  | { type: 'list'; expr: ScalarExpr }
  | { type: 'bool'; expr: BoolExpr };

const TYPE_NAME: Record<Chain['type'], string> = { stream: 'VectorExtractor', scalar: 'Scalar', list: 'ListScalar', bool: 'Comparator' };

export function parseQuery(text: string, opts: { type: QueryType }): QueryAst {
  return new Parser(text, opts.type).parse();
}

class Parser {
  private readonly tokens: Token[];
  private pos = 0;
  private primaries = 0;
  /** Depth of `where(...)` and reducer arguments: property()/context() are legal inside. */
  private propertyScope = 0;
  /** Event streams entered: > 1 means a nested event condition, where `parent:` is legal. */
  private eventDepth = 0;

  constructor(
    private readonly input: string,
    private readonly type: QueryType,
  ) {
    this.tokens = tokenize(input);
  }

  parse(): QueryAst {
    if (this.type === 'trait') {
      this.countPrimary(this.peek());
      const chain = this.parseChain();
      if (this.peek().kind === 'op') {
        this.fail(
          'a computed trait must end in a Scalar or ListScalar, but a comparison makes it a Comparator',
          'the end of the query',
          this.peek(),
        );
      }
      if (chain.type !== 'scalar' && chain.type !== 'list') {
        this.fail(
          `a computed trait must end in a Scalar or ListScalar (a reducer such as count() or sum(...)), found a ${TYPE_NAME[chain.type]}`,
          'a reducer',
          this.tokens[0]!,
        );
      }
      this.expectEof();
      return { type: 'trait', root: chain.expr as ScalarExpr };
    }
    const root = this.parseOr();
    this.expectEof();
    return { type: this.type, root };
  }

  // ------------------------------------------------------------ junctions

  private parseOr(): BoolExpr {
    const items = [this.parseAnd()];
    while (this.isKeyword('OR')) {
      this.next();
      items.push(this.parseAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items: items.flatMap((i) => (i.kind === 'or' ? i.items : [i])) };
  }

  private parseAnd(): BoolExpr {
    const items = [this.parseUnary()];
    while (this.isKeyword('AND')) {
      this.next();
      items.push(this.parseUnary());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items: items.flatMap((i) => (i.kind === 'and' ? i.items : [i])) };
  }

  private parseUnary(): BoolExpr {
    const t = this.peek();
    if (this.isKeyword('NOT')) {
      this.next();
      return { kind: 'not', expr: this.parseUnary() };
    }
    if (this.isKeyword('ANY') || this.isKeyword('ALL')) {
      if (this.type !== 'accounts') this.fail(`${t.text} is only valid in an account-level (type accounts) audience`, 'a condition', t);
      this.next();
      return { kind: t.text === 'ANY' ? 'any' : 'all', expr: this.parseUnary() };
    }
    if (t.text === '(' || t.text === '{') {
      this.next();
      const inner = this.parseOr();
      this.expect(t.text === '(' ? ')' : '}');
      return inner;
    }
    const start = this.peek();
    this.countPrimary(start);
    const chain = this.parseChain();
    if (chain.type === 'bool') return chain.expr;
    if (chain.type === 'scalar' && this.peek().kind === 'op') return this.parseSugar(chain.expr);
    const hint = chain.type === 'stream' ? 'a reducer such as .count() and then a comparison' : 'a comparison such as >= 1 or .exists()';
    return this.fail(
      `a condition must end in a Comparator, but this ${TYPE_NAME[chain.type]} does not`,
      hint,
      this.peek().kind === 'eof' ? start : this.peek(),
    );
  }

  private parseSugar(left: ScalarExpr): BoolExpr {
    const opToken = this.next();
    const op = SUGAR_OPS[opToken.text]!;
    return { kind: 'compare', left, comparison: { op, value: this.parseOperand() } };
  }

  /** The right side of a comparison: a literal (sugar for literal(...)) or a scalar chain such as trait('x'). */
  private parseOperand(): ScalarExpr {
    const t = this.peek();
    const literal = this.tryLiteral();
    if (literal !== undefined) return { kind: 'literal', value: literal };
    if (t.kind === 'ident') {
      const chain = this.parseChain();
      if (chain.type === 'scalar') return chain.expr;
      this.fail(`expected a Scalar to compare with, found a ${TYPE_NAME[chain.type]}`, 'a value', t);
    }
    return this.fail(`expected a value but found '${t.text}'`, 'a value', t);
  }

  // ------------------------------------------------------------ chains

  private parseChain(): Chain {
    // An event(...) extractor deepens the nesting for the rest of its chain only.
    const depthBefore = this.eventDepth;
    let chain = this.parseExtractor();
    while (this.peek().text === '.') {
      this.next();
      const nameTok = this.peek();
      if (nameTok.kind !== 'ident') this.fail(`expected a function name after '.' but found '${nameTok.text}'`, 'a function name', nameTok);
      this.next();
      chain = this.applyCall(chain, nameTok);
    }
    this.eventDepth = depthBefore;
    return chain;
  }

  private parseExtractor(): Chain {
    const t = this.peek();
    if (t.kind !== 'ident')
      return this.fail(`expected an extractor (event, trait, property, context, literal) but found '${t.text}'`, 'an extractor', t);
    this.next();
    switch (t.text) {
      case 'event': {
        this.eventDepth++;
        this.expect('(');
        const name = this.parseName();
        this.expect(')');
        return { type: 'stream', expr: { kind: 'event', name, filters: [] } };
      }
      case 'trait': {
        this.expect('(');
        const name = this.parseName();
        this.expect(')');
        return { type: 'scalar', expr: { kind: 'trait', name } };
      }
      case 'property':
      case 'context': {
        if (this.propertyScope === 0) this.fail(`${t.text}() is only valid inside where(...) or a reducer`, 'event(...) or trait(...)', t);
        this.expect('(');
        let parent = false;
        if (t.text === 'property' && this.isLabel('parent')) {
          if (this.eventDepth < 2)
            this.fail('property(parent: ...) is only valid inside a nested event condition', 'property(...)', this.peek());
          this.next();
          this.next();
          parent = true;
        }
        const name = this.parseName();
        this.expect(')');
        return { type: 'scalar', expr: t.text === 'property' ? { kind: 'property', name, parent } : { kind: 'context', path: name } };
      }
      case 'literal': {
        this.expect('(');
        const value = this.tryLiteral();
        if (value === undefined)
          this.fail(`expected a literal value but found '${this.peek().text}'`, 'a string, number, true, false or null', this.peek());
        this.expect(')');
        return { type: 'scalar', expr: { kind: 'literal', value: value as LiteralValue } };
      }
      default:
        return this.fail(`unknown extractor '${t.text}'`, 'event, trait, property, context or literal', t);
    }
  }

  private applyCall(chain: Chain, nameTok: Token): Chain {
    const name = nameTok.text;
    if (chain.type === 'stream') {
      if (FILTERS.has(name))
        return { type: 'stream', expr: { ...chain.expr, filters: [...chain.expr.filters, this.parseFilter(name, nameTok)] } };
      if (REDUCERS.has(name)) {
        const reducer = this.parseReducer(name);
        const expr: ScalarExpr = { kind: 'reduce', stream: chain.expr, reducer };
        return { type: name === 'unique' ? 'list' : 'scalar', expr };
      }
      return this.fail(`${name}() cannot follow a VectorExtractor`, 'a filter (where, sources, within, between) or a reducer', nameTok);
    }
    if (chain.type === 'list') {
      if (name !== 'count') this.fail(`${name}() cannot follow a ListScalar`, 'count()', nameTok);
      this.expect('(');
      this.expect(')');
      return { type: 'scalar', expr: { kind: 'list_count', list: chain.expr } };
    }
    if (chain.type === 'scalar') {
      if (!COMPARATORS.has(name))
        return this.fail(`${name}() cannot follow a Scalar`, 'a comparator such as equals(...) or exists()', nameTok);
      return { type: 'bool', expr: { kind: 'compare', left: chain.expr, comparison: this.parseComparison(name) } };
    }
    return this.fail(`nothing can follow a Comparator, found ${name}()`, "AND, OR or ')'", nameTok);
  }

  private parseFilter(name: string, nameTok: Token): Filter {
    this.expect('(');
    const braced = this.peek().text === '{' ? (this.next(), true) : false;
    let filter: Filter;
    if (name === 'where') {
      this.propertyScope++;
      filter = { kind: 'where', condition: this.parseOr() };
      this.propertyScope--;
    } else if (name === 'sources') {
      const label = this.peek();
      if (!this.isLabel('include') && !this.isLabel('exclude'))
        this.fail(`sources() takes include: or exclude:, found '${label.text}'`, 'exclude:', label);
      this.next();
      this.next();
      filter = { kind: 'sources', mode: label.text as 'include' | 'exclude', ids: this.parseLiteralList().map(String) };
    } else {
      let parent = false;
      if (this.isLabel('parent')) {
        if (this.eventDepth < 2)
          this.fail(`${name}(parent: ...) is only valid inside a nested event condition`, `${name}(<n> days)`, this.peek());
        this.next();
        this.next();
        parent = true;
      }
      const first = this.parseDuration();
      if (name === 'within') filter = { kind: 'within', duration: first, parent };
      else {
        this.expect(',');
        const end = this.parseDuration();
        if (end.amount * (end.unit === 'day' ? 24 : 1) < first.amount * (first.unit === 'day' ? 24 : 1)) {
          this.fail('between(start, end): end must not be before start', 'an end at least as far back as the start', nameTok);
        }
        filter = { kind: 'between', start: first, end, parent };
      }
    }
    if (braced) this.expect('}');
    this.expect(')');
    return filter;
  }

  private parseReducer(name: string): Reducer {
    this.expect('(');
    if (name === 'count') {
      this.expect(')');
      return { fn: 'count' };
    }
    this.propertyScope++;
    const argTok = this.peek();
    const chain = this.parseChain();
    this.propertyScope--;
    if (chain.type !== 'scalar')
      this.fail(`${name}() takes a property such as property('price'), found a ${TYPE_NAME[chain.type]}`, "property('...')", argTok);
    const of = chain.expr as ScalarExpr;
    let as: ValueType | undefined;
    if (this.isKeyword('as')) {
      this.next();
      const typeTok = this.next();
      const allowed = name === 'mode' ? ['number', 'string', 'array'] : ['number', 'string'];
      if ((name !== 'min' && name !== 'max' && name !== 'mode') || !allowed.includes(typeTok.text)) {
        this.fail(
          `'as ${typeTok.text}' is not valid in ${name}()`,
          name === 'mode' || name === 'min' || name === 'max' ? allowed.join(', ') : "')'",
          typeTok,
        );
      }
      as = typeTok.text as ValueType;
    }
    let reducer: Reducer;
    if (name === 'mode') {
      let minFrequency = 1;
      if (this.peek().text === ',') {
        this.next();
        const n = this.next();
        if (n.kind !== 'number' || !Number.isInteger(n.value) || (n.value as number) < 1)
          this.fail('mode() minimum frequency must be a positive integer', 'a positive integer', n);
        minFrequency = n.value as number;
      }
      reducer = { fn: 'mode', of, as: as ?? 'string', minFrequency };
    } else if (name === 'min' || name === 'max') {
      reducer = { fn: name, of, as: (as ?? 'number') as 'number' | 'string' };
    } else {
      reducer = { fn: name as 'sum' | 'avg' | 'first' | 'last' | 'unique', of };
    }
    this.expect(')');
    return reducer;
  }

  private parseComparison(name: string): Comparison {
    this.expect('(');
    let comparison: Comparison;
    if (name in SCALAR_COMPARATORS) comparison = { op: name as keyof typeof SCALAR_COMPARATORS, value: this.parseOperand() };
    else if (name === 'exists' || name === 'absent') comparison = { op: name };
    else if (name === 'contains' || name === 'one_of') comparison = { op: name, values: this.parseLiteralList() };
    else if (name === 'within_last' || name === 'within_next' || name === 'before_last' || name === 'after_next')
      comparison = { op: name, duration: this.parseDuration() };
    else {
      const t = this.next();
      if (t.kind !== 'string') this.fail(`${name}() takes a quoted string`, 'a quoted string', t);
      if ((name === 'before_date' || name === 'after_date') && Number.isNaN(Date.parse(t.value as string))) {
        this.fail(`${name}() takes an ISO 8601 timestamp, '${t.value}' is not one`, 'an ISO 8601 timestamp', t);
      }
      comparison = { op: name as 'omits' | 'starts_with' | 'ends_with' | 'before_date' | 'after_date', value: t.value as string };
    }
    this.expect(')');
    return comparison;
  }

  // ------------------------------------------------------------ pieces

  /** A name: quoted, or bare text up to ')' (the reference accepts both). */
  private parseName(): string {
    const t = this.peek();
    if (t.kind === 'string') {
      this.next();
      return t.value as string;
    }
    const first = t;
    let last: Token | null = null;
    while (this.peek().text !== ')' && this.peek().kind !== 'eof') last = this.next();
    if (!last) return this.fail('expected a name', "a name such as 'Order Completed'", first);
    return this.input.slice(first.offset, last.offset + last.text.length).trim();
  }

  private parseDuration(): Duration {
    const n = this.next();
    if (n.kind !== 'number' || !Number.isInteger(n.value) || (n.value as number) < 0)
      this.fail(`expected a whole number of hours or days, found '${n.text}'`, 'a duration such as 7 days', n);
    const u = this.next();
    const unit = /^(hour|hours|day|days)$/.exec(u.text)?.[1];
    if (!unit) this.fail(`expected a time unit (hour(s), day(s)) but found '${u.text}'`, 'hours or days', u);
    return { amount: n.value as number, unit: (unit!.startsWith('hour') ? 'hour' : 'day') as TimeUnit };
  }

  private parseLiteralList(): LiteralValue[] {
    const bracketed = this.peek().text === '[' ? (this.next(), true) : false;
    const values: LiteralValue[] = [];
    do {
      const v = this.tryLiteral();
      if (v === undefined) this.fail(`expected a value but found '${this.peek().text}'`, 'a quoted string or number', this.peek());
      values.push(v as LiteralValue);
    } while (this.peek().text === ',' && this.tokens[this.pos + 1]?.kind !== 'eof' && (this.next(), true));
    if (bracketed) this.expect(']');
    return values;
  }

  private tryLiteral(): LiteralValue | undefined {
    const t = this.peek();
    if (t.kind === 'string' || t.kind === 'number') {
      this.next();
      return t.value as LiteralValue;
    }
    if (t.kind === 'ident' && (t.text === 'true' || t.text === 'false' || t.text === 'null')) {
      this.next();
      return t.text === 'null' ? null : t.text === 'true';
    }
    return undefined;
  }

  /**
   * A primary expression is one condition chain joined to others by AND / OR /
   * NOT (nested conditions inside where(...) included), or a trait's root
   * chain; extractors inside a chain (a reducer's property(), a literal
   * operand) belong to it and do not count on their own.
   */
  private countPrimary(t: Token) {
    if (++this.primaries > MAX_PRIMARY_EXPRESSIONS) {
      this.fail(
        `too many primary expressions: a definition allows at most ${MAX_PRIMARY_EXPRESSIONS}`,
        `at most ${MAX_PRIMARY_EXPRESSIONS} primary expressions`,
        t,
      );
    }
  }

  private isKeyword(word: string) {
    const t = this.peek();
    return t.kind === 'ident' && t.text === word;
  }

  private isLabel(word: string) {
    return this.isKeyword(word) && this.tokens[this.pos + 1]?.text === ':';
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    const t = this.tokens[this.pos]!;
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private expect(text: string): Token {
    const t = this.peek();
    if (t.text !== text || t.kind === 'string') this.fail(`expected '${text}' but found '${t.text}'`, `'${text}'`, t);
    return this.next();
  }

  private expectEof() {
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(`unexpected '${t.text}' after a complete expression`, 'AND, OR or the end of the query', t);
  }

  private fail(message: string, expected: string, at: Token): never {
    throw new QueryError(message, at.line, at.column, expected);
  }
}

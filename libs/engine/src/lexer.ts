// Tokens with 1-based line and column, for error messages.
import { QueryError } from './query-error';

export type TokenKind = 'ident' | 'string' | 'number' | 'punct' | 'op' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  /** For strings: the unquoted value; for numbers: the number. */
  value?: string | number;
  line: number;
  column: number;
  /** Index of the token's first character in the input. */
  offset: number;
}

const PUNCT = new Set(['(', ')', '{', '}', '[', ']', ',', '.', ':']);

export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  const advance = (n: number) => {
    for (let k = 0; k < n; k++) {
      if (input[i] === '\n') {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      advance(1);
      continue;
    }
    const start = { line, column: col, offset: i };
    if (c === "'" || c === '"') {
      let j = i + 1;
      let value = '';
      while (j < input.length && input[j] !== c) {
        if (input[j] === '\\' && j + 1 < input.length) j++;
        value += input[j];
        j++;
      }
      if (j >= input.length) throw new QueryError('unterminated string', start.line, start.column, `closing ${c}`);
      tokens.push({ kind: 'string', text: input.slice(i, j + 1), value, ...start });
      advance(j + 1 - i);
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(input.slice(i));
    if (num && (c !== '-' || /\d/.test(input[i + 1] ?? ''))) {
      tokens.push({ kind: 'number', text: num[0], value: Number(num[0]), ...start });
      advance(num[0].length);
      continue;
    }
    const op = /^(==|!=|>=|<=|=|>|<)/.exec(input.slice(i));
    if (op) {
      tokens.push({ kind: 'op', text: op[0], ...start });
      advance(op[0].length);
      continue;
    }
    if (PUNCT.has(c)) {
      tokens.push({ kind: 'punct', text: c, ...start });
      advance(1);
      continue;
    }
    const ident = /^[A-Za-z_$][A-Za-z0-9_$-]*/.exec(input.slice(i));
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0], ...start });
      advance(ident[0].length);
      continue;
    }
    throw new QueryError(`unexpected character '${c}'`, line, col, 'an expression');
  }
  tokens.push({ kind: 'eof', text: 'end of query', line, column: col, offset: i });
  return tokens;
}

// deploy/README.md "Redis keyspaces" checked against the sources, without
// Redis: every key family the TypeScript of libs/*/src and services/*/src
// builds must have a row in the table, every row must name a family the
// sources still build, and a row's "built in" cell (third column) must name
// exactly the files that spell its keys, so the table cannot drift.
//
// What counts as a key family (REDIS_KEY_PREFIX left out, every `${...}` a `*`):
// - a template literal that starts with the key prefix (`${this.config.keyPrefix}`,
//   `${config.keyPrefix}`, `${prefix}`, ...) followed by `<word>:`: a root;
// - a template literal that starts with a builder of the same file
//   (`${this.membersKey(id)}:snapshot:...`, `${base}:log`), and `builder(...) + x`:
//   the builder's family followed by the rest;
// - in a Lua script, `prefix .. 'p:' .. pid .. ':ids'` (any variable named *prefix),
//   joined to the open prefixes (families ending in `:`) of the files of its
//   directory that use the script.
// Open prefixes and bases (a string built once and only used as the head of
// others: `this.base`, `const base`) are not families themselves; they must
// lead to one. SCAN patterns (a literal `*` in the source) must match a row.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..');
const README = path.join(REPO, 'deploy/README.md');

/** `${...}` in the sources and `<...>` in the table both become `*`; runs of `*` are one. */
const WILD = '*';
const collapse = (s: string) => s.replace(/\*+/g, WILD);

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        // Test support (fixtures, emulators) is not the product.
        if (!['node_modules', 'dist', 'testing'].includes(entry.name)) walk(full);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
    }
  };
  for (const top of ['libs', 'services'])
    for (const pkg of readdirSync(path.join(REPO, top), { withFileTypes: true })) {
      if (!pkg.isDirectory() || pkg.name === 'testing') continue;
      try {
        walk(path.join(REPO, top, pkg.name, 'src'));
      } catch {
        // a package without src/
      }
    }
  return out.sort();
}

type Part = { lit: string } | { expr: string };
interface Template {
  start: number;
  parts: Part[];
}

/** Template literals of a file (nested ones included), skipping comments and quoted strings; also the file with comments blanked. */
function scan(text: string): { templates: Template[]; code: string } {
  const templates: Template[] = [];
  const code = text.split('');
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (code[k] !== '\n') code[k] = ' ';
  };
  // Returns the index after the closing backtick.
  const template = (open: number): number => {
    const parts: Part[] = [];
    let lit = '';
    let i = open + 1;
    templates.push({ start: open, parts });
    while (i < text.length) {
      const c = text[i]!;
      if (c === '\\') {
        lit += text.slice(i, i + 2);
        i += 2;
      } else if (c === '`') {
        parts.push({ lit });
        return i + 1;
      } else if (c === '$' && text[i + 1] === '{') {
        parts.push({ lit });
        lit = '';
        const end = expression(i + 2);
        parts.push({ expr: text.slice(i + 2, end - 1) });
        i = end;
      } else {
        lit += c;
        i++;
      }
    }
    return i;
  };
  // From inside `${`: returns the index after the matching `}`.
  const expression = (from: number): number => {
    let depth = 0;
    let i = from;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '`') i = template(i);
      else if (c === "'" || c === '"') i = quoted(i);
      else if (c === '{') {
        depth++;
        i++;
      } else if (c === '}') {
        if (depth === 0) return i + 1;
        depth--;
        i++;
      } else i++;
    }
    return i;
  };
  // Ends at the closing quote, or at the line's end (a regex literal holding a quote must not swallow the file).
  const quoted = (open: number): number => {
    let i = open + 1;
    while (i < text.length && text[i] !== text[open] && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
    return i + 1;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i);
      const to = end < 0 ? text.length : end;
      blank(i, to);
      i = to;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const to = end < 0 ? text.length : end + 2;
      blank(i, to);
      i = to;
    } else if (c === '`') i = template(i);
    else if (c === "'" || c === '"') i = quoted(i);
    else i++;
  }
  return { templates, code: code.join('') };
}

interface Definition {
  name: string;
  at: number;
  /** A function (arrow, method, getter) rather than a string built once. */
  fn: boolean;
  template?: Template;
  /** `const key = this.key(...)`: the name of the builder it calls. */
  alias?: string;
}

interface Found {
  family: string;
  files: Set<string>;
}

interface Extracted {
  families: Map<string, Set<string>>;
  /** Families ending in `:` and bases: must lead to a family. */
  heads: Found[];
  /** SCAN MATCH patterns. */
  globs: Found[];
}

/** The key prefix as the builders name it: `prefix`, `keyPrefix`, `this.config.keyPrefix`, `config.redisKeyPrefix`. */
const PREFIX_EXPR = /^(?:\w+\.)*(?:prefix|keyPrefix|redisKeyPrefix)$/;
const KEY_SHAPE = /^[a-z][\w-]*:/;

function extract(): Extracted {
  const families = new Map<string, Set<string>>();
  const heads: Found[] = [];
  const globs: Found[] = [];
  const add = (family: string, ...files: string[]) => {
    const set = families.get(family) ?? new Set<string>();
    for (const f of files) set.add(f);
    families.set(family, set);
  };
  const openByFile = new Map<string, Set<string>>();
  const luaByDir: Array<{ file: string; script: string | undefined; suffix: string }> = [];
  const codeByFile = new Map<string, string>();

  for (const abs of sourceFiles()) {
    const file = path.relative(REPO, abs).split(path.sep).join('/');
    const text = readFileSync(abs, 'utf8');
    const { templates, code } = scan(text);
    codeByFile.set(file, code);

    // Definitions: what the text right before a template (or a call) names.
    const defs: Definition[] = [];
    for (const t of templates) {
      const before = text.slice(Math.max(0, t.start - 300), t.start);
      let m = /(?:^|[^\w.$])(?:this\.)?(\w+)\s*=\s*(\([^()]*\)\s*(?::\s*[\w<>[\]| ]+)?=>\s*)?$/.exec(before);
      if (m) defs.push({ name: m[1]!, at: t.start, fn: m[2] !== undefined, template: t });
      else if ((m = /(\w+)\s*:\s*\([^()]*\)\s*=>\s*$/.exec(before))) defs.push({ name: m[1]!, at: t.start, fn: true, template: t });
      else if ((m = /(\w+)\s*\([^()]*\)\s*(?::\s*[\w<>[\]| ]+)?\{\s*return\s*$/.exec(before)))
        defs.push({ name: m[1]!, at: t.start, fn: true, template: t });
    }
    for (const m of code.matchAll(/\b(?:const|let)\s+(\w+)\s*=\s*(?:this\.)?(\w+)\s*\(/g))
      defs.push({ name: m[1]!, at: m.index!, fn: false, alias: m[2]! });

    const memo = new Map<Template, { family: string; glob: boolean } | null>();
    const resolveName = (name: string, before: number, seen: Set<Definition>): string | null => {
      const named = defs.filter((d) => d.name === name && !seen.has(d));
      const earlier = named.filter((d) => d.at < before).sort((a, b) => b.at - a.at);
      const def = earlier[0] ?? (named.length === 1 ? named[0] : undefined);
      if (!def) return null;
      seen.add(def);
      if (def.template) return familyOf(def.template, seen)?.family ?? null;
      return resolveName(def.alias!, def.at, seen);
    };
    const familyOf = (t: Template, seen = new Set<Definition>()): { family: string; glob: boolean } | null => {
      if (memo.has(t)) return memo.get(t)!;
      memo.set(t, null);
      const [first, head, ...rest] = t.parts;
      let result: { family: string; glob: boolean } | null = null;
      if (first && 'lit' in first && first.lit === '' && head && 'expr' in head) {
        const restText = rest.map((p) => ('lit' in p ? p.lit : WILD)).join('');
        const glob = rest.some((p) => 'lit' in p && p.lit.includes('*'));
        const expr = head.expr.trim();
        if (PREFIX_EXPR.test(expr)) {
          if (KEY_SHAPE.test(restText)) result = { family: collapse(restText), glob };
        } else {
          const ref = /^(?:this\.)?(\w+)(?:\(.*\))?$/s.exec(expr);
          const base = ref ? resolveName(ref[1]!, t.start, seen) : null;
          if (base !== null) result = { family: collapse(base + restText), glob };
        }
      }
      memo.set(t, result);
      return result;
    };

    const usedAsHead = new Set<string>();
    for (const t of templates) {
      const head = t.parts[1];
      if (head && 'expr' in head) {
        const ref = /^(?:this\.)?(\w+)(?:\(.*\))?$/s.exec(head.expr.trim());
        if (ref) usedAsHead.add(ref[1]!);
      }
    }
    for (const t of templates) {
      const found = familyOf(t);
      if (!found) continue;
      const def = defs.find((d) => d.template === t);
      if (found.glob) globs.push({ family: found.family, files: new Set([file]) });
      else if (found.family.endsWith(':')) {
        heads.push({ family: found.family, files: new Set([file]) });
        const open = openByFile.get(file) ?? new Set<string>();
        open.add(found.family);
        openByFile.set(file, open);
      } else if (def && !def.fn && usedAsHead.has(def.name)) heads.push({ family: found.family, files: new Set([file]) });
      else add(found.family, file);
    }
    // builder(...) + x
    for (const m of code.matchAll(/(?:this\.)?(\w+)\([^()]*\)\s*\+\s*[\w.]+/g)) {
      const base = resolveName(m[1]!, m.index!, new Set());
      if (base !== null && base.endsWith(':')) add(collapse(base + WILD), file);
    }
    // Lua: <name>prefix .. 'lit' .. expr ...
    const token = `(?:'[^']*'|[A-Za-z_][\\w.]*(?:\\[[^\\]]*\\])*)`;
    const chain = new RegExp(`\\b\\w*prefix\\s*\\.\\.\\s*(${token}(?:\\s*\\.\\.\\s*${token})*)`, 'gi');
    for (const t of templates) {
      const lua = t.parts.map((p) => ('lit' in p ? p.lit : WILD)).join('');
      const script = defs.find((d) => d.template === t)?.name;
      for (const m of lua.matchAll(chain)) {
        const suffix = collapse(
          m[1]!
            .split(/\s*\.\.\s*/)
            .map((piece) => (piece.startsWith("'") ? piece.slice(1, -1) : WILD))
            .join(''),
        );
        luaByDir.push({ file, script, suffix });
      }
    }
  }
  // A script's suffixes under the open prefixes of the files of its directory that use it.
  for (const { file, script, suffix } of luaByDir) {
    const dir = path.posix.dirname(file);
    for (const [user, open] of openByFile) {
      if (path.posix.dirname(user) !== dir) continue;
      if (user !== file && !(script && new RegExp(`\\b${script}\\b`).test(codeByFile.get(user)!))) continue;
      for (const prefix of open) add(collapse(prefix + suffix), user, file);
    }
  }
  return { families, heads, globs };
}

interface Row {
  family: string;
  line: string;
  builtIn: string[];
}

/** The rows of the first table under "## Redis keyspaces": first cell's first `code` is the pattern, the third cell names the files. */
function tableRows(): Row[] {
  const text = readFileSync(README, 'utf8');
  const start = text.indexOf('\n## Redis keyspaces\n');
  if (start < 0) throw new Error('deploy/README.md has no "## Redis keyspaces" section');
  const next = text.indexOf('\n## ', start + 1);
  const lines = text.slice(start, next < 0 ? text.length : next).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: Row[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1);
    const pattern = /`([^`]+)`/.exec(cells[0] ?? '');
    if (!pattern) throw new Error(`a row of the Redis keyspaces table names no key: ${line}`);
    rows.push({
      family: collapse(pattern[1]!.replace(/<[^>]*>/g, WILD)),
      line,
      builtIn: [...(cells[2] ?? '').matchAll(/(?:libs|services)\/[\w./-]+\.ts/g)].map((m) => m[0]),
    });
  }
  return rows;
}

const globRegex = (glob: string) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

describe('deploy/README.md Redis keyspaces table', () => {
  const found = extract();
  const rows = tableRows();
  const documented = new Map(rows.map((r) => [r.family, r]));

  it('reads both sides (a broken extractor or table parser would pass vacuously)', () => {
    expect(found.families.size).toBeGreaterThan(20);
    expect(rows.length).toBeGreaterThan(20);
    expect(new Set(rows.map((r) => r.family)).size).toBe(rows.length);
  });

  it('has a row for every key family the sources build', () => {
    const missing = [...found.families]
      .filter(([family]) => !documented.has(family))
      .map(([family, files]) => `${family} (${[...files].join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('names no family the sources no longer build', () => {
    expect(rows.filter((r) => !found.families.has(r.family)).map((r) => r.line)).toEqual([]);
  });

  it('names, for each family, exactly the files that build its keys', () => {
    const wrong = rows
      .filter((r) => found.families.has(r.family))
      .map((r) => ({ family: r.family, table: [...r.builtIn].sort(), sources: [...found.families.get(r.family)!].sort() }))
      .filter((r) => JSON.stringify(r.table) !== JSON.stringify(r.sources));
    expect(wrong).toEqual([]);
  });

  it('leaves no key prefix, base or SCAN pattern without a family', () => {
    const families = [...found.families.keys()];
    const dangling = [
      ...found.heads.filter((h) => !families.some((f) => f.startsWith(h.family) && f !== h.family)),
      ...found.globs.filter((g) => !families.some((f) => globRegex(g.family).test(f))),
    ].map((h) => `${h.family} (${[...h.files].join(', ')})`);
    expect(dangling).toEqual([]);
  });
});

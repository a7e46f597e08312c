// The audience CSV formats of audience-csv.ts, a page at a time, written
// straight from the stored identifiersJson bytes into one buffer per page.
// NOTE: the million-row export spent most of its Node time building,
// flattening and collecting a string per row (and in the garbage collector
// for them); copying bytes costs a fraction of that (bench/csv.bench.mjs).
// The row functions of audience-csv.ts stay the reference: these give the same
// text (audience-csv-pages.test.ts), and fall back to them for the rare stored
// value that holds a JSON escape (a backslash).
import { csvField, formattedHeader, formattedRow, normaliseForHash, parseIdentifiers, sha256Hex, singleColumnRows } from './audience-csv';

const QUOTE = 34;
const COMMA = 44;
const NEWLINE = 10;
const BACKSLASH = 92;
const CLOSE_BRACKET = 93;

// Little-endian lengths of the spool records. NOTE: Buffer's writeUInt32LE and
// friends validate their arguments on every call, which showed in the profile.
function putU32(out: Buffer, value: number, at: number): void {
  out[at] = value & 0xff;
  out[at + 1] = (value >>> 8) & 0xff;
  out[at + 2] = (value >>> 16) & 0xff;
  out[at + 3] = value >>> 24;
}
function putU16(out: Buffer, value: number, at: number): void {
  out[at] = value & 0xff;
  out[at + 1] = value >>> 8;
}
const u32 = (b: Buffer, at: number) => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
const u16 = (b: Buffer, at: number) => b[at]! | (b[at + 1]! << 8);

/** Where a page renderer gets its output buffer (at least `size` bytes; contents undefined). */
export type PageAllocator = (size: number) => Buffer;

/**
 * Output buffers reused from page to page. NOTE: a fresh buffer per page made
 * a million-row export allocate ~270 MB that the garbage collector reclaimed
 * late (peak RSS +150 MB); a few reused ones keep it flat. A buffer handed to
 * a socket must not change until the socket is done with it: take() marks
 * the buffers of the page being rendered, settle() (the write's callback)
 * frees them.
 */
export class PageBufferRing {
  private readonly free: Buffer[] = [];
  private taken: Buffer[] = [];

  readonly take: PageAllocator = (size) => {
    const i = this.free.findIndex((b) => b.length >= size);
    const buffer = i === -1 ? Buffer.allocUnsafe(Math.max(size, 1 << 20)) : this.free.splice(i, 1)[0]!;
    this.taken.push(buffer);
    return buffer;
  };

  /** The buffers taken since the last call; give them to settle() once written. */
  claim(): Buffer[] {
    const claimed = this.taken;
    this.taken = [];
    return claimed;
  }

  settle(buffers: Buffer[]): void {
    // A few spare buffers are enough: one being rendered, the ones the socket still holds.
    for (const b of buffers) if (this.free.length < 4) this.free.push(b);
  }
}

/** Writes the key column at `at` (room for 3 bytes per UTF-16 unit + 2 is the caller's): our ids are plain ASCII, copied as is. */
function writeCsvKey(out: Buffer, at: number, key: string): number {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 128 || c === QUOTE || c === COMMA || c === NEWLINE || c === 13) return at + out.write(csvField(key), at, 'utf8');
  }
  for (let i = 0; i < key.length; i++) out[at + i] = key.charCodeAt(i);
  return at + key.length;
}

// Byte ranges of the identifiersJson being rendered, reused for every row so
// the hot loop allocates nothing: [types, then per type: nameStart, nameEnd,
// valueCount, then valueStart, valueEnd per value].
let ranges = new Int32Array(256);

function room(at: number, need: number): void {
  if (at + need <= ranges.length) return;
  const bigger = new Int32Array(Math.max(ranges.length * 2, at + need));
  bigger.set(ranges);
  ranges = bigger;
}

/**
 * Reads an identifiersJson buffer into `ranges`. False when a string in it
 * holds an escape (a backslash): the caller renders that row as text.
 * Layout (JSON.stringify of {type: [values]}): {"t":["v","w"],"u":["x"]}
 */
function scanIdentifiers(json: Buffer): boolean {
  const n = json.length;
  let at = 1;
  let w = 1;
  let types = 0;
  while (at < n && json[at] === QUOTE) {
    room(w, 3);
    const header = w;
    ranges[w] = ++at;
    while (at < n && json[at] !== QUOTE) if (json[at++] === BACKSLASH) return false;
    ranges[w + 1] = at;
    w += 3;
    at += 3; // past '":['
    let values = 0;
    while (json[at] === QUOTE) {
      room(w, 2);
      ranges[w++] = ++at;
      while (at < n && json[at] !== QUOTE) if (json[at++] === BACKSLASH) return false;
      ranges[w++] = at++;
      values++;
      if (json[at] === COMMA) at++;
    }
    ranges[header + 2] = values;
    types++;
    if (json[at] === CLOSE_BRACKET) at++;
    if (json[at] === COMMA) at++;
  }
  ranges[0] = types;
  return true;
}

/** Whether the last copyJsonFieldAndScan filled `ranges` (false: the JSON holds an escape). */
let scanned = false;

// Cursors of copyJsonFieldAndScan (module state, so its hot loop allocates no closure per row).
let outAt = 0;
let jsonAt = 0;

/** Copies the string at json[jsonAt] (a '"') through its closing quote, quotes doubled; false at an escape (not copied). */
function copyJsonString(out: Buffer, json: Buffer): boolean {
  const n = json.length;
  out[outAt++] = QUOTE;
  out[outAt++] = QUOTE;
  jsonAt++;
  for (;;) {
    if (jsonAt >= n) return false;
    const b = json[jsonAt]!;
    if (b === QUOTE) break;
    if (b === BACKSLASH) return false;
    out[outAt++] = b;
    jsonAt++;
  }
  out[outAt++] = QUOTE;
  out[outAt++] = QUOTE;
  jsonAt++;
  return true;
}

/**
 * copyJsonField and scanIdentifiers in one pass over the bytes (the formatted
 * export's first pass does both for every row); sets `scanned`.
 */
function copyJsonFieldAndScan(out: Buffer, at: number, json: Buffer): number {
  const n = json.length;
  if (n <= 2) {
    ranges[0] = 0;
    scanned = true;
    return copyJsonField(out, at, json);
  }
  outAt = at;
  out[outAt++] = QUOTE;
  out[outAt++] = json[0]!; // '{'
  jsonAt = 1;
  let w = 1;
  let types = 0;
  let ok = true;
  while (jsonAt < n && json[jsonAt] === QUOTE) {
    room(w, 3);
    const header = w;
    ranges[w] = jsonAt + 1;
    if (!(ok = copyJsonString(out, json))) break;
    ranges[w + 1] = jsonAt - 1;
    w += 3;
    out[outAt++] = json[jsonAt++]!; // ':'
    out[outAt++] = json[jsonAt++]!; // '['
    let values = 0;
    while (json[jsonAt] === QUOTE) {
      room(w, 2);
      ranges[w] = jsonAt + 1;
      if (!(ok = copyJsonString(out, json))) break;
      ranges[w + 1] = jsonAt - 1;
      w += 2;
      values++;
      if (json[jsonAt] === COMMA) out[outAt++] = json[jsonAt++]!;
    }
    if (!ok) break;
    ranges[header + 2] = values;
    types++;
    if (json[jsonAt] === CLOSE_BRACKET) out[outAt++] = json[jsonAt++]!;
    if (json[jsonAt] === COMMA) out[outAt++] = json[jsonAt++]!;
  }
  // The rest: the closing '}', or after an escape the remainder, quotes doubled.
  for (; jsonAt < n; jsonAt++) {
    const b = json[jsonAt]!;
    out[outAt++] = b;
    if (b === QUOTE) out[outAt++] = QUOTE;
  }
  out[outAt++] = QUOTE;
  if (ok) ranges[0] = types;
  scanned = ok;
  return outAt;
}

/** Whether the row in `ranges` fits a spool record's uint16 counts (identity limits keep them far below). */
function fitsSpoolGroups(): boolean {
  if (ranges[0]! > 0xffff) return false;
  for (let t = 0, r = 1; t < ranges[0]!; t++) {
    if (ranges[r + 2]! > 0xffff) return false;
    r += 3 + 2 * ranges[r + 2]!;
  }
  return true;
}

/** Per type, the [start, end) of its name and of each value; null when the JSON holds an escape. */
export function identifierRanges(json: Buffer): Array<{ name: [number, number]; values: number[] }> | null {
  if (!scanIdentifiers(json)) return null;
  const out: Array<{ name: [number, number]; values: number[] }> = [];
  for (let t = 0, r = 1; t < ranges[0]!; t++) {
    const count = ranges[r + 2]!;
    out.push({ name: [ranges[r]!, ranges[r + 1]!], values: Array.from(ranges.subarray(r + 3, r + 3 + 2 * count)) });
    r += 3 + 2 * count;
  }
  return out;
}

/** Byte copy for the short fields of a row: Buffer.copy's call overhead outweighs a few bytes. */
function copyBytes(out: Buffer, at: number, from: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) out[at++] = from[i]!;
  return at;
}

/** Copies json[start, end) as one CSV field: quoted when it holds a comma (no '"', CR or LF can occur without an escape). */
function copyField(out: Buffer, at: number, json: Buffer, start: number, end: number): number {
  let quoted = false;
  for (let i = start; i < end; i++) if (json[i] === COMMA) quoted = true;
  if (quoted) out[at++] = QUOTE;
  at = copyBytes(out, at, json, start, end);
  if (quoted) out[at++] = QUOTE;
  return at;
}

const sameBytes = (a: Buffer, aStart: number, aEnd: number, b: Buffer) => {
  if (aEnd - aStart !== b.length) return false;
  for (let i = 0; i < b.length; i++) if (a[aStart + i] !== b[i]) return false;
  return true;
};

/** The external_ids column: the JSON with '"' doubled, in quotes ('{}' needs none). */
function copyJsonField(out: Buffer, at: number, json: Buffer): number {
  if (json.length <= 2) return at + json.copy(out, at);
  out[at++] = QUOTE;
  for (let j = 0; j < json.length; j++) {
    const byte = json[j]!;
    out[at++] = byte;
    if (byte === QUOTE) out[at++] = QUOTE;
  }
  out[at++] = QUOTE;
  return at;
}

/** Unformatted rows (key,external_ids) of a page. */
export function unformattedPage(keys: string[], identifiers: Buffer[], alloc: PageAllocator = Buffer.allocUnsafe): Buffer {
  let bound = 0;
  for (let i = 0; i < keys.length; i++) bound += 6 * keys[i]!.length + 2 * identifiers[i]!.length + 6;
  const out = alloc(bound);
  let at = 0;
  for (let i = 0; i < keys.length; i++) {
    at = writeCsvKey(out, at, keys[i]!);
    out[at++] = COMMA;
    at = copyJsonField(out, at, identifiers[i]!);
    out[at++] = NEWLINE;
  }
  return out.subarray(0, at);
}

/**
 * The formatted layout: per id type, the widest count of values any profile
 * observed has. The types seen are numbered in the order they were first
 * seen; spool records name a type by that number.
 */
export class FormattedLayout {
  // NOTE: kept as bytes too, so a row's type names are matched without decoding them.
  private readonly known: Array<{ name: Buffer; type: string; width: number }> = [];

  private observeText(json: Buffer): void {
    const byType = parseIdentifiers(json.toString('utf8'));
    for (const type in byType) this.widen(this.indexOf(type), byType[type]!.length);
  }

  /** Widens the types in `ranges` (filled from `json`); writes each type's number into its name-start slot. */
  private observeRanges(json: Buffer): void {
    for (let t = 0, r = 1; t < ranges[0]!; t++) {
      const count = ranges[r + 2]!;
      const index = this.indexAt(json, ranges[r]!, ranges[r + 1]!);
      this.widen(index, count);
      ranges[r] = index;
      r += 3 + 2 * count;
    }
  }

  private indexAt(json: Buffer, start: number, end: number): number {
    for (let i = 0; i < this.known.length; i++) if (sameBytes(json, start, end, this.known[i]!.name)) return i;
    return this.indexOf(json.toString('utf8', start, end));
  }

  private indexOf(type: string): number {
    const i = this.known.findIndex((k) => k.type === type);
    if (i !== -1) return i;
    if (this.known.length === 0xffff) throw new Error('a formatted CSV export supports up to 65,535 external id types');
    this.known.push({ name: Buffer.from(type, 'utf8'), type, width: 0 });
    return this.known.length - 1;
  }

  private widen(index: number, n: number): void {
    const k = this.known[index]!;
    if (n > k.width) k.width = n;
  }

  /** How many types have been seen (their numbers are 0 to this, exclusive). */
  typeCount(): number {
    return this.known.length;
  }

  /** Types sorted as identifiersJson sorts them, with their column count and number. */
  types(): Array<{ type: string; width: number; index: number }> {
    return this.known
      .map((k, index) => ({ type: k.type, width: k.width, index }))
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  }

  /**
   * Observes a page and writes its spool records: each row's key and
   * external_ids columns already rendered, and its values per type as CSV
   * fields, so that the second pass, once the layout is known, only copies
   * and pads. Returns the records, each behind its length (uint32 LE).
   * Record: u32 prefix length, prefix, u8 kind; kind 0 (values as bytes):
   * u16 groups, then per group u16 type number, u16 values, u32 length, the
   * values joined by ','; kind 1 (escapes): u32 length, the identifiersJson.
   */
  spoolPage(keys: string[], identifiers: Buffer[], alloc: PageAllocator = Buffer.allocUnsafe): Buffer {
    let bound = 0;
    for (let i = 0; i < keys.length; i++) bound += 6 * keys[i]!.length + 4 * identifiers[i]!.length + 40;
    const out = alloc(bound);
    let at = 0;
    for (let i = 0; i < keys.length; i++) {
      const json = identifiers[i]!;
      const recordAt = at;
      const prefixAt = at + 8;
      at = writeCsvKey(out, prefixAt, keys[i]!);
      out[at++] = COMMA;
      at = copyJsonFieldAndScan(out, at, json);
      putU32(out, at - prefixAt, recordAt + 4);
      if (scanned && fitsSpoolGroups()) {
        this.observeRanges(json);
        out[at++] = 0;
        putU16(out, ranges[0]!, at);
        at += 2;
        for (let t = 0, r = 1; t < ranges[0]!; t++) {
          const count = ranges[r + 2]!;
          putU16(out, ranges[r]!, at); // the type's number (observeRanges put it there)
          putU16(out, count, at + 2);
          const valuesAt = at + 8;
          at = valuesAt;
          for (let v = 0; v < count; v++) {
            if (v > 0) out[at++] = COMMA;
            at = copyField(out, at, json, ranges[r + 3 + 2 * v]!, ranges[r + 4 + 2 * v]!);
          }
          putU32(out, at - valuesAt, valuesAt - 4);
          r += 3 + 2 * count;
        }
      } else {
        this.observeText(json);
        out[at++] = 1;
        putU32(out, json.length, at);
        at = copyBytes(out, at + 4, json, 0, json.length);
      }
      putU32(out, at - recordAt - 4, recordAt);
    }
    return out.subarray(0, at);
  }

  /** [type, index] per column, as formattedRow takes them. */
  columns(): Array<[string, number]> {
    return this.types().flatMap(({ type, width }) => Array.from({ length: width }, (_, i) => [type, i] as [string, number]));
  }

  header(): string {
    return formattedHeader(this.columns());
  }
}

/** Formatted rows from spool records (FormattedLayout.spoolPage) once every profile was observed. */
export function formattedPage({ data, starts }: SpoolRecords, layout: FormattedLayout, alloc: PageAllocator = Buffer.allocUnsafe): Buffer {
  const types = layout.types();
  const columns = layout.columns();
  const groupAt = new Int32Array(layout.typeCount()).fill(-1);
  const records = starts.length - 1;
  let out = alloc(2 * (starts[records]! - starts[0]!) + records * (columns.length + 8));
  let at = 0;
  for (let i = 0; i < records; i++) {
    const base = starts[i]! + 4; // past the record's length
    const prefixLength = u32(data, base);
    let r = base + 4 + prefixLength;
    if (data[r] === 1) {
      // Escaped values: the reference row's columns, as text.
      const json = data.toString('utf8', r + 5, r + 5 + u32(data, r + 1));
      const row = formattedRow({ key: '', json }, columns);
      const need = prefixLength + 3 * row.length + 1;
      if (at + need > out.length) out = grow(out, at, need, alloc);
      at = copyBytes(out, at, data, base + 4, base + 4 + prefixLength);
      at += out.write(columnsOf(row), at, 'utf8');
      continue;
    }
    at += data.copy(out, at, base + 4, base + 4 + prefixLength);
    // Where each type's values are in this record (by type number), then the columns in layout order.
    const groups = u16(data, r + 1);
    r += 3;
    for (let g = 0; g < groups; g++) {
      groupAt[u16(data, r)] = r;
      r += 8 + u32(data, r + 4);
    }
    for (const { width, index } of types) {
      const g = groupAt[index]!;
      let written = 0;
      if (g !== -1) {
        groupAt[index] = -1;
        written = u16(data, g + 2);
        if (written > 0) {
          out[at++] = COMMA;
          at = copyBytes(out, at, data, g + 8, g + 8 + u32(data, g + 4));
        }
      }
      for (let v = written; v < width; v++) out[at++] = COMMA;
    }
    out[at++] = NEWLINE;
  }
  return out.subarray(0, at);
}

/** The part of a formattedRow after its first two columns (key and external_ids), from the first ',' after them. */
function columnsOf(row: string): string {
  // formattedRow('', json) starts with ',' (empty key), then the quoted JSON field.
  if (row.charCodeAt(1) === QUOTE) return row.slice(closingQuote(row, 2) + 1);
  const comma = row.indexOf(',', 1); // '{}' needs no quotes
  return comma === -1 ? '\n' : row.slice(comma);
}

/** Index of the quote closing a CSV quoted field whose content starts at `from`. */
function closingQuote(row: string, from: number): number {
  let i = from;
  for (;;) {
    const q = row.indexOf('"', i);
    if (row.charCodeAt(q + 1) !== QUOTE) return q;
    i = q + 2;
  }
}

function grow(out: Buffer, used: number, need: number, alloc: PageAllocator): Buffer {
  const bigger = alloc(Math.max(out.length * 2, used + need));
  out.copy(bigger, 0, 0, used);
  return bigger;
}

let hashScratch = Buffer.allocUnsafe(256);

/**
 * SHA-256 hex of normaliseForHash(value) for json[start, end). NOTE: for an
 * ASCII value it normalises the bytes in place of three strings per value:
 * trimming is of spaces only (JSON escapes every other ASCII whitespace, and
 * escaped values never get here), lower-casing of A-Z only. Any other byte
 * takes the string path, whose Unicode rules it must match.
 */
function hashOfValue(json: Buffer, start: number, end: number, idType: string, lowerCase: boolean): string {
  let upper = false;
  for (let i = start; i < end; i++) {
    const b = json[i]!;
    if (b >= 128) return sha256Hex(normaliseForHash(idType, json.toString('utf8', start, end)));
    if (b >= 65 && b <= 90) upper = true;
  }
  while (start < end && json[start] === 32) start++;
  while (end > start && json[end - 1] === 32) end--;
  if (!lowerCase || !upper) return sha256Hex(json.subarray(start, end));
  if (hashScratch.length < end - start) hashScratch = Buffer.allocUnsafe(2 * (end - start));
  for (let i = start; i < end; i++) {
    const b = json[i]!;
    hashScratch[i - start] = b >= 65 && b <= 90 ? b + 32 : b;
  }
  return sha256Hex(hashScratch.subarray(0, end - start));
}

/** Single-column rows of a page: one per value of `idType`, SHA-256 of the normalised value unless raw. */
export function singleColumnPage(
  identifiers: Buffer[],
  idType: string,
  hashed: boolean,
  alloc: PageAllocator = Buffer.allocUnsafe,
): Buffer {
  const wanted = Buffer.from(idType, 'utf8');
  const lowerCase = normaliseForHash(idType, 'A') === 'a';
  let out = alloc(identifiers.length * (hashed ? 66 : 40));
  let at = 0;
  for (const json of identifiers) {
    if (!scanIdentifiers(json)) {
      const rows = singleColumnRows({ key: '', json: json.toString('utf8') }, idType, hashed);
      const need = Buffer.byteLength(rows);
      if (at + need > out.length) out = grow(out, at, need, alloc);
      at += out.write(rows, at, 'utf8');
      continue;
    }
    for (let t = 0, r = 1; t < ranges[0]!; t++) {
      const values = ranges[r + 2]!;
      if (sameBytes(json, ranges[r]!, ranges[r + 1]!, wanted)) {
        for (let v = r + 3; v < r + 3 + 2 * values; v += 2) {
          const start = ranges[v]!;
          const end = ranges[v + 1]!;
          if (at + 2 * (end - start) + 70 > out.length) out = grow(out, at, 2 * (end - start) + 70, alloc);
          if (hashed) at += out.write(hashOfValue(json, start, end, idType, lowerCase), at, 'latin1');
          else at = copyField(out, at, json, start, end);
          out[at++] = NEWLINE;
        }
        break;
      }
      r += 3 + 2 * values;
    }
  }
  return out.subarray(0, at);
}

// Spool records: each behind its length (uint32 LE), so any byte may occur in them.

/**
 * Whole spool records in `data`: record i (its length prefix included) spans
 * starts[i] to starts[i + 1]. NOTE: offsets, not a Buffer view per record:
 * a million views were a measurable share of the export's garbage.
 */
export interface SpoolRecords {
  data: Buffer;
  starts: number[];
}

/** Reads spool records back from chunks of the file, in order. */
export async function* spoolRecords(chunks: AsyncIterable<Buffer>): AsyncGenerator<SpoolRecords> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    const starts: number[] = [0];
    let at = 0;
    while (at + 4 <= data.length) {
      const end = at + 4 + u32(data, at);
      if (end > data.length) break;
      starts.push(end);
      at = end;
    }
    rest = data.subarray(at);
    if (starts.length > 1) yield { data, starts };
  }
  if (rest.length > 0) throw new Error(`CSV export spool ends inside a record (${rest.length} bytes left): the file was cut`);
}

// Audience CSV rows in the three formats Segment documents
// (segment-docs src/engage/audiences/index.md, "Download your Audience as a CSV file"):
//   unformatted    key,external_ids            (external_ids: JSON {type: [values]})
//   formatted      key,external_ids,<type>,<type>_1,...   one column per id type,
//                  indexed columns when a profile has several values of a type
//   single_column  <type>                      one row per value of one id type,
//                  SHA-256 hashed unless raw values are asked for
// Pure: the control plane streams these rows out of Redis.
import crypto from 'node:crypto';

export type CsvFormat = 'unformatted' | 'formatted' | 'single_column';
export const CSV_FORMATS: readonly CsvFormat[] = ['unformatted', 'formatted', 'single_column'];

export interface ExternalIdPair {
  type: string;
  id: string;
}

export interface ExportedProfile {
  /** The profile (or account) key: our profile id, Segment's segment_id. */
  key: string;
  /** The profile's identifiers as stored (see identifiersJson): already the unformatted column. */
  json: string;
}

/** RFC 4180 quoting: only when the field needs it. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export const csvLine = (fields: string[]) => `${fields.map(csvField).join(',')}\n`;

/** Values per id type, types and values in a stable (sorted) order so exports are reproducible. */
export function idsByType(ids: ExternalIdPair[]): Map<string, string[]> {
  // NOTE: hot path of a million-row export: plain loops, sort only what has more than one entry.
  const byType = new Map<string, string[]>();
  for (const { type, id } of ids) {
    const values = byType.get(type);
    if (!values) byType.set(type, [id]);
    else if (!values.includes(id)) values.push(id);
  }
  if (byType.size > 1) {
    const types = [...byType.keys()].sort();
    const sorted = new Map<string, string[]>();
    for (const t of types) sorted.set(t, byType.get(t)!);
    for (const values of sorted.values()) if (values.length > 1) values.sort();
    return sorted;
  }
  for (const values of byType.values()) if (values.length > 1) values.sort();
  return byType;
}

/**
 * A profile's identifiers as `{"<type>":["<value>",...]}`, types and values
 * sorted. The evaluator stores this string per profile, so an export copies it
 * into the unformatted column without re-encoding it.
 */
export function identifiersJson(ids: ExternalIdPair[]): string {
  return JSON.stringify(Object.fromEntries(idsByType(ids)));
}

/** The values per type of an identifiersJson string (the text path; audience-csv-pages.ts reads the bytes). */
export const parseIdentifiers = (json: string) => JSON.parse(json) as Record<string, string[]>;

const parsed = (p: ExportedProfile) => parseIdentifiers(p.json);

export const UNFORMATTED_HEADER = csvLine(['key', 'external_ids']);

/** The external_ids column: identifiersJson always holds a '"' unless it is '{}'. */
const jsonField = (json: string) => (json.length > 2 ? `"${json.replaceAll('"', '""')}"` : csvField(json));

export function unformattedRow(p: ExportedProfile): string {
  return `${csvField(p.key)},${jsonField(p.json)}\n`;
}

/**
 * The column layout of a formatted export: for each id type, as many columns
 * as the profile with the most values of that type needs. Built in a first
 * pass over the snapshot (observe), since the header comes before any row.
 */
export class FormattedColumns {
  private readonly widest = new Map<string, number>();

  observe(p: ExportedProfile): void {
    const byType = parsed(p);
    for (const type in byType) {
      const n = byType[type]!.length;
      if (n > (this.widest.get(type) ?? 0)) this.widest.set(type, n);
    }
  }

  /** [type, index] per column, types sorted. */
  columns(): Array<[string, number]> {
    return [...this.widest.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([type, n]) => Array.from({ length: n }, (_, i) => [type, i] as [string, number]));
  }

  header(): string {
    return formattedHeader(this.columns());
  }
}

/** The formatted header: key, external_ids, then email, email_1, ... per column. */
export const formattedHeader = (columns: Array<[string, number]>) =>
  csvLine(['key', 'external_ids', ...columns.map(([type, i]) => (i === 0 ? type : `${type}_${i}`))]);

export function formattedRow(p: ExportedProfile, columns: Array<[string, number]>): string {
  const byType = parsed(p);
  let line = `${csvField(p.key)},${jsonField(p.json)}`;
  for (const [type, i] of columns) line += `,${csvField(byType[type]?.[i] ?? '')}`;
  return `${line}\n`;
}

/**
 * How a value is normalised before hashing, so the hash matches what list
 * destinations compute (Facebook, Snapchat, Braze: trimmed, lower-cased email).
 */
export function normaliseForHash(type: string, value: string): string {
  const trimmed = value.trim();
  return type === 'email' ? trimmed.toLowerCase() : trimmed;
}

// crypto.hash (Node >= 20.12) is the one-shot form: no Hash object per value.
export const sha256Hex: (data: string | Buffer) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

export function singleColumnHeader(idType: string): string {
  return csvLine([idType]);
}

/** One row per value of `idType` (none when the profile has no such id). */
export function singleColumnRows(p: ExportedProfile, idType: string, hashed: boolean): string {
  const values = parsed(p)[idType];
  if (!values) return '';
  let rows = '';
  for (const v of values) rows += `${hashed ? sha256Hex(normaliseForHash(idType, v)) : csvField(v)}\n`;
  return rows;
}

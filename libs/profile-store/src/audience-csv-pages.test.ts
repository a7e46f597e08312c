// The page renderers must give exactly the text of the reference row functions.
import {
  FormattedColumns,
  formattedRow,
  identifiersJson,
  singleColumnRows,
  unformattedRow,
  type ExportedProfile,
  type ExternalIdPair,
} from './audience-csv';
import { FormattedLayout, formattedPage, identifierRanges, singleColumnPage, spoolRecords, unformattedPage } from './audience-csv-pages';

// A small deterministic generator (no dependency): the same profiles every run.
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TYPES = ['anonymous_id', 'email', 'user_id', 'ios.id', 'phone'];
const PIECES = ['a', 'Bob', '@x.io', ',', ' ', 'ü', '☃', '"', '\\', '\n', '0', '-', ':[', ']'];

function profiles(n: number, seed: number, plainOnly = false): ExportedProfile[] {
  const next = random(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
  const out: ExportedProfile[] = [];
  for (let i = 0; i < n; i++) {
    const ids: ExternalIdPair[] = [];
    const count = Math.floor(next() * 6);
    for (let k = 0; k < count; k++) {
      let id = '';
      const len = Math.floor(next() * 5);
      for (let c = 0; c < len; c++) {
        const piece = pick(PIECES);
        if (!plainOnly || !['"', '\\', '\n'].includes(piece)) id += piece;
      }
      ids.push({ type: pick(TYPES), id });
    }
    out.push({ key: next() < 0.05 ? `pro,"${i}"` : `pro_${i}`, json: identifiersJson(ids) });
  }
  return out;
}

const bytesOf = (ps: ExportedProfile[]) => ps.map((p) => Buffer.from(p.json, 'utf8'));

describe.each([
  ['values with escapes (the text fallback)', false],
  ['plain values (the byte path)', true],
])('audience CSV pages, %s', (_name, plainOnly) => {
  const ps = profiles(400, plainOnly ? 11 : 7, plainOnly);

  it('unformatted: the same text as unformattedRow', () => {
    expect(
      unformattedPage(
        ps.map((p) => p.key),
        bytesOf(ps),
      ).toString('utf8'),
    ).toBe(ps.map(unformattedRow).join(''));
  });

  it('formatted: the same layout and text as FormattedColumns and formattedRow, through the spool records', async () => {
    const reference = new FormattedColumns();
    for (const p of ps) reference.observe(p);
    const layout = new FormattedLayout();
    // Two spool pages, read back in odd-sized chunks, as the export does.
    const spool = Buffer.concat([
      layout.spoolPage(
        ps.slice(0, 150).map((p) => p.key),
        bytesOf(ps.slice(0, 150)),
      ),
      layout.spoolPage(
        ps.slice(150).map((p) => p.key),
        bytesOf(ps.slice(150)),
      ),
    ]);
    expect(layout.header()).toBe(reference.header());
    async function* chunks() {
      for (let i = 0; i < spool.length; i += 1000) yield spool.subarray(i, i + 1000);
    }
    let text = '';
    for await (const records of spoolRecords(chunks())) text += formattedPage(records, layout).toString('utf8');
    const columns = reference.columns();
    expect(text).toBe(ps.map((p) => formattedRow(p, columns)).join(''));
  });

  it.each([
    ['email', true],
    ['email', false],
    ['phone', true],
    ['user_id', false],
  ] as const)('single column %s hashed=%s: the same text as singleColumnRows', (idType, hashed) => {
    expect(singleColumnPage(bytesOf(ps), idType, hashed).toString('utf8')).toBe(
      ps.map((p) => singleColumnRows(p, idType, hashed)).join(''),
    );
  });
});

it('identifierRanges leaves escaped JSON to the text path and reads plain JSON exactly', () => {
  expect(identifierRanges(Buffer.from(identifiersJson([{ type: 'email', id: 'a"b' }])))).toBeNull();
  const json = Buffer.from(
    identifiersJson([
      { type: 'email', id: 'x,y' },
      { type: 'email', id: '' },
      { type: 'user_id', id: 'u1' },
    ]),
  );
  const ranges = identifierRanges(json)!;
  expect(ranges.map((t) => [json.toString('utf8', ...t.name), t.values.length / 2])).toEqual([
    ['email', 2],
    ['user_id', 1],
  ]);
  expect(identifierRanges(Buffer.from('{}'))).toEqual([]);
});

it('spool records come back whole and in order, whatever the chunk boundaries; a cut file is an error', async () => {
  const blobs = profiles(300, 5).map((p) => Buffer.from(p.json, 'utf8'));
  const file = Buffer.concat(blobs.flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b]));
  for (const size of [1, 7, 64, 4096, file.length]) {
    async function* chunks() {
      for (let i = 0; i < file.length; i += size) yield file.subarray(i, i + size);
    }
    const back: string[] = [];
    for await (const { data, starts } of spoolRecords(chunks()))
      for (let i = 0; i + 1 < starts.length; i++) back.push(data.toString('utf8', starts[i]! + 4, starts[i + 1]));
    expect(back).toEqual(blobs.map((b) => b.toString('utf8')));
  }
  async function* cut() {
    yield file.subarray(0, file.length - 3);
  }
  await expect(async () => {
    for await (const _ of spoolRecords(cut())) void _;
  }).rejects.toThrow('spool ends inside a record');
});

import { createHash } from 'node:crypto';
import {
  FormattedColumns,
  UNFORMATTED_HEADER,
  csvField,
  parseIdentifiers,
  formattedRow,
  identifiersJson,
  singleColumnHeader,
  singleColumnRows,
  unformattedRow,
  type ExportedProfile,
} from './audience-csv';

const luke: ExportedProfile = {
  key: 'pro_1',
  json: identifiersJson([
    { type: 'email', id: 'luke@force.com' },
    { type: 'anonymous_id', id: 'anon_1' },
    { type: 'email', id: 'chosen_one@force.com' },
    { type: 'email', id: 'luke@force.com' },
  ]),
};
const yoda: ExportedProfile = {
  key: 'pro_2',
  json: identifiersJson([
    { type: 'email', id: ' Green_Master@Force.com ' },
    { type: 'anonymous_id', id: 'anon_2' },
  ]),
};
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('audience CSV formats (Segment: unformatted, formatted with indexed columns, single column)', () => {
  it('unformatted: key and a JSON object of external ids per type', () => {
    expect(UNFORMATTED_HEADER + unformattedRow(luke)).toBe(
      'key,external_ids\npro_1,"{""anonymous_id"":[""anon_1""],""email"":[""chosen_one@force.com"",""luke@force.com""]}"\n',
    );
  });

  it('formatted: a column per id type, indexed columns for the profile with the most values', () => {
    const columns = new FormattedColumns();
    columns.observe(luke);
    columns.observe(yoda);
    const csv = columns.header() + formattedRow(luke, columns.columns()) + formattedRow(yoda, columns.columns());
    expect(csv.split('\n')).toEqual([
      'key,external_ids,anonymous_id,email,email_1',
      'pro_1,"{""anonymous_id"":[""anon_1""],""email"":[""chosen_one@force.com"",""luke@force.com""]}",anon_1,chosen_one@force.com,luke@force.com',
      'pro_2,"{""anonymous_id"":[""anon_2""],""email"":["" Green_Master@Force.com ""]}",anon_2, Green_Master@Force.com ,',
      '',
    ]);
  });

  it('single column: a row per value, SHA-256 of the normalised value by default, raw when asked', () => {
    expect(singleColumnHeader('email') + singleColumnRows(luke, 'email', true) + singleColumnRows(yoda, 'email', true)).toBe(
      `email\n${sha('chosen_one@force.com')}\n${sha('luke@force.com')}\n${sha('green_master@force.com')}\n`,
    );
    expect(singleColumnRows(luke, 'email', false)).toBe('chosen_one@force.com\nluke@force.com\n');
    expect(singleColumnRows(luke, 'user_id', true)).toBe('');
  });

  it('quotes only fields that need it (RFC 4180)', () => {
    expect([csvField('plain'), csvField('a,b'), csvField('say "hi"'), csvField('two\nlines')]).toEqual([
      'plain',
      '"a,b"',
      '"say ""hi"""',
      '"two\nlines"',
    ]);
  });
});

describe('parseIdentifiers', () => {
  it('gives what JSON.parse gives, for plain values, empty ones, quotes, backslashes and unicode', () => {
    const cases = [
      [],
      [{ type: 'email', id: 'a@b.c' }],
      [
        { type: 'user_id', id: '' },
        { type: 'email', id: 'x,y' },
        { type: 'email', id: 'say "hi"' },
        { type: 'phone', id: 'back\\slash' },
        { type: 'ios.id', id: 'ünï ☃ \n line' },
        { type: 'anonymous_id', id: ':[not a type]' },
      ],
    ];
    for (const ids of cases) {
      const json = identifiersJson(ids);
      expect(parseIdentifiers(json)).toEqual(JSON.parse(json));
    }
  });
});

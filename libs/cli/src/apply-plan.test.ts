import { readFileSync } from 'node:fs';
import path from 'node:path';
import { planApply } from './apply-plan';
import { formatSpaceFile, parseSpaceFile, SpaceFileError, type ParsedSpaceFile } from './space-file';
import { toSpaceFile, type SpaceState } from './space-state';

const YAML_FILE = `
space:
  name: Production
sources:
  - name: Web
audiences:
  - name: Big Spenders
    definition:
      query: |
        trait('lifetime_value') > 500
    destinations:
      - destination: Hook
        settings: { identify: true, track: true }
computedTraits:
  - name: Lifetime Value
    definition:
      query: event('Order Completed').sum(property('revenue'))
destinations:
  - name: Hook
    type: webhook
    settings: { url: 'http://hooks.example/in' }
`;

/** What the space would hold after applying `file` (ids made up). */
function stateOf(file: ParsedSpaceFile): SpaceState {
  const computations = (list: ParsedSpaceFile['audiences'], prefix: string) =>
    list.map((c) => ({
      id: `${prefix}_${c.key}`,
      name: c.name,
      key: c.key,
      description: c.description,
      enabled: c.enabled,
      definition: c.definition,
      options: c.options,
    }));
  const audiences = computations(file.audiences, 'aud');
  const computedTraits = computations(file.computedTraits, 'tra');
  return {
    space: { id: 'spa_1', name: file.space.name },
    sources: file.sources.map((s) => ({
      id: `src_${s.name}`,
      name: s.name,
      enabled: s.enabled,
      rateLimit: s.rateLimit,
      writeKey: `wk_${s.name}`,
    })),
    destinations: file.destinations.map((d) => ({ id: `dst_${d.name}`, ...d })),
    audiences,
    computedTraits,
    connections: [...file.audiences, ...file.computedTraits].flatMap((c) =>
      c.destinations.map((con) => ({
        id: `con_${c.key}_${con.destination}`,
        computationId: [...audiences, ...computedTraits].find((x) => x.key === c.key)!.id,
        destinationId: `dst_${con.destination}`,
        enabled: con.enabled,
        settings: con.settings,
      })),
    ),
  };
}

describe('space file', () => {
  it('fills defaults and derives keys', () => {
    const file = parseSpaceFile(YAML_FILE);
    expect(file.audiences[0]).toEqual({
      name: 'Big Spenders',
      key: 'big_spenders',
      description: '',
      enabled: true,
      definition: { query: "trait('lifetime_value') > 500", type: 'users' },
      options: { includeHistoricalData: false, computeMode: 'realtime' },
      destinations: [{ destination: 'Hook', enabled: true, settings: { identify: true, track: true } }],
    });
    expect(file.sources).toEqual([{ name: 'Web', enabled: true }]);
    // JSON is YAML: the same file as JSON parses the same.
    expect(parseSpaceFile(formatSpaceFile(file, 'json'))).toEqual(file);
  });

  it('names every problem with where it is', () => {
    const bad = `
space: { name: P }
sources: [{ name: Web, colour: red }, { name: Web }]
audiences:
  - name: A
    definition: { query: "x", type: people }
  - name: B
    key: a
    definition: { query: "y" }
`;
    const problems = (() => {
      try {
        parseSpaceFile(bad, 'space.yaml');
      } catch (err) {
        return (err as SpaceFileError).problems;
      }
      return [];
    })();
    expect(problems).toEqual([
      'space.yaml: sources[0].colour: unknown field',
      "space.yaml: audiences[0].definition.type: Invalid enum value. Expected 'users' | 'accounts', received 'people'",
    ]);
    expect(() => parseSpaceFile('space: { name: P }\nsources: [{ name: Web }, { name: Web }]\n', 'f')).toThrow(
      "f: sources[1].name: source name 'Web' is also used by sources[0].name",
    );
    expect(() =>
      parseSpaceFile(
        'space: { name: P }\naudiences: [{ name: X, definition: { query: q } }]\ncomputedTraits: [{ name: x, definition: { query: q } }]\n',
        'f',
      ),
    ).toThrow("f: computedTraits[0]: key 'x' is also used by audiences[0]");
    expect(() => parseSpaceFile('space: {name: P\n', 'f.yaml')).toThrow(/^f\.yaml:2:1: /);
  });
});

describe('planApply', () => {
  it('creates a new space in dependency order: referenced computations before their readers, connections last', () => {
    const plan = planApply(parseSpaceFile(YAML_FILE), null);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.map((s) => `${s.op} ${s.label}`)).toEqual([
      "create space 'Production'",
      "create source 'Web'",
      "create destination 'Hook'",
      'create computed trait lifetime_value',
      'create audience big_spenders',
      "create connection big_spenders -> 'Hook'",
    ]);
    expect(plan.steps[3]!.body).toEqual(
      expect.objectContaining({ key: 'lifetime_value', options: { includeHistoricalData: false, computeMode: 'realtime' } }),
    );
  });

  it('plans nothing when the space matches, and the export of that space plans nothing either', () => {
    const file = parseSpaceFile(YAML_FILE);
    const state = stateOf(file);
    expect(planApply(file, state)).toEqual({ steps: [], unchanged: 6, problems: [] });
    const exported = parseSpaceFile(formatSpaceFile(toSpaceFile(state).file, 'yaml'));
    expect(planApply(exported, state)).toEqual({ steps: [], unchanged: 6, problems: [] });
  });

  it('updates only the fields that differ', () => {
    const state = stateOf(parseSpaceFile(YAML_FILE));
    const edited = parseSpaceFile(
      YAML_FILE.replace("trait('lifetime_value') > 500", "trait('lifetime_value') > 900")
        .replace('- name: Web', '- name: Web\n    enabled: false')
        .replace('identify: true, track: true', 'identify: false, track: true'),
    );
    const plan = planApply(edited, state);
    expect(plan.steps.map((s) => [s.op, s.label, s.body])).toEqual([
      ['update', "source 'Web'", { enabled: false }],
      ['update', 'audience big_spenders', { definition: { query: "trait('lifetime_value') > 900", type: 'users' } }],
      ['update', "connection big_spenders -> 'Hook'", { settings: { identify: false, track: true } }],
    ]);
    expect(plan.unchanged).toBe(3);
  });

  it('refuses what cannot change after creation, and connections to unknown destinations, before any write', () => {
    const state = stateOf(parseSpaceFile(YAML_FILE));
    const edited = parseSpaceFile(
      YAML_FILE.replace('type: webhook', 'type: list-webhook')
        .replace(
          "query: event('Order Completed').sum(property('revenue'))",
          "query: event('Order Completed').sum(property('revenue'))\n    options: { computeMode: batch }",
        )
        .replace('- destination: Hook', '- destination: Hook\n      - destination: Nowhere')
        .replace("trait('lifetime_value') > 500", "trait('lifetime_value') >"),
    );
    const plan = planApply(edited, state);
    expect(plan.problems).toEqual([
      "destinations[0] 'Hook': type cannot change from webhook to list-webhook; give the new destination another name",
      expect.stringMatching(/^audiences\[0\] 'big_spenders': definition\.query: 1:\d+: /),
      "computedTraits[0] 'lifetime_value': options.computeMode cannot change from realtime to batch after creation",
      "audiences[0].destinations[1].destination: no destination named 'Nowhere' in the file or the space",
    ]);
  });

  it('prunes what the file no longer holds, readers before what they read', () => {
    const state = stateOf(parseSpaceFile(YAML_FILE));
    const plan = planApply(parseSpaceFile('space: { name: Production }\n'), state, { prune: true });
    expect(plan.steps.map((s) => `${s.op} ${s.label}`)).toEqual([
      "delete connection big_spenders -> 'Hook'",
      'delete audience big_spenders',
      'delete computed trait lifetime_value',
      "delete destination 'Hook'",
      "delete source 'Web'",
    ]);
  });
});

describe('examples/space.yaml', () => {
  it('is a valid space file that plans a whole new space', () => {
    const text = readFileSync(path.resolve(__dirname, '../examples/space.yaml'), 'utf8');
    const plan = planApply(parseSpaceFile(text, 'examples/space.yaml'), null);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.filter((s) => s.kind === 'connection')).toHaveLength(3);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { planApply } from './apply-plan';
import { formatSpaceFile, parseSpaceFile, SpaceFileError, type ParsedSpaceFile } from './space-file';
import { toSpaceFile, type JourneyObject, type SpaceState } from './space-state';

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
    journeys: [],
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

  it('connection settings take Trait Enrichment and ID Sync, checked as the control plane checks them', () => {
    const withSettings = (settings: string) =>
      `space: { name: P }\naudiences: [{ name: A, definition: { query: q }, destinations: [{ destination: Hook, settings: ${settings} }] }]\n`;
    const file = parseSpaceFile(withSettings('{ traitEnrichment: [plan], idSync: [{ type: email, strategy: all, limit: 2 }] }'), 'f');
    expect(file.audiences[0]!.destinations[0]!.settings).toEqual({
      identify: true,
      track: false,
      traitEnrichment: ['plan'],
      idSync: [{ type: 'email', strategy: 'all', limit: 2 }],
    });
    expect(() => parseSpaceFile(withSettings('{ idSync: [{ type: email, strategy: last, limit: 2 }] }'), 'f')).toThrow(
      'f: audiences[0].destinations[0].settings.idSync[0].limit: only with strategy "all" (got "last")',
    );
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

describe('planApply: journeys', () => {
  const JOURNEY = `
  - name: First Purchase
    key: first_purchase
    entry: { audienceId: big_spenders }
    status: Live
    steps:
      - { id: welcome, type: send, name: Opened Email, destinations: [{ destinationId: Hook }], next: wait }
      - { id: wait, type: wait, duration: 3 days, next: done }
      - { id: done, type: exit }
    start: welcome
`;
  const withJourney = (extra = JOURNEY) => parseSpaceFile(`${YAML_FILE}journeys:${extra}`);
  /** The space after applying `file`'s journey as the API shows it (names resolved to ids, published). */
  function stateWith(file: ParsedSpaceFile, over: Partial<JourneyObject> = {}): SpaceState {
    const state = stateOf(file);
    const j = file.journeys![0]!;
    state.journeys = [
      {
        id: 'jou_1',
        name: j.name,
        key: j.key,
        status: 'Live',
        entry: { audienceId: 'aud_big_spenders' },
        reentry: j.reentry,
        includeExistingMembers: j.includeExistingMembers,
        steps: j.steps.map((s) =>
          s.type === 'send' ? { ...s, destinations: s.destinations.map((d) => ({ ...d, destinationId: `dst_${d.destinationId}` })) } : s,
        ),
        start: j.start,
        versions: [{ version: 1 }],
        draftChanged: false,
        ...over,
      },
    ];
    return state;
  }

  it('creates a journey after what it names, then publishes it when the file says Live', () => {
    const plan = planApply(withJourney(), null);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.slice(-2).map((s) => [s.op, s.label, s.journey])).toEqual([
      ['create', 'journey first_purchase', { key: 'first_purchase' }],
      ['update', 'journey first_purchase', { key: 'first_purchase', action: 'publish' }],
    ]);
    // Names stay names in the plan: the step resolves them to ids (maybe of objects created just before).
    expect(plan.steps.at(-2)!.body).toEqual(expect.objectContaining({ entry: { audienceId: 'big_spenders' } }));
    expect(plan.steps.at(-2)!.body).not.toHaveProperty('status');
  });

  it('plans nothing when the published journey matches, and round-trips through export', () => {
    const file = withJourney();
    const state = stateWith(file);
    expect(planApply(file, state)).toEqual({ steps: [], unchanged: 7, problems: [] });
    const exported = toSpaceFile(state).file;
    expect(exported.journeys![0]!.entry).toEqual({ audienceId: 'big_spenders' });
    expect(planApply(parseSpaceFile(formatSpaceFile(exported, 'yaml')), state)).toEqual({ steps: [], unchanged: 7, problems: [] });
  });

  it('patches the draft and publishes it when the definition changed; pauses, resumes as asked', () => {
    const file = withJourney();
    const edited = withJourney(JOURNEY.replace('duration: 3 days', 'duration: 2 days'));
    const plan = planApply(edited, stateWith(file));
    expect(plan.steps.map((s) => [s.op, s.label, s.fields])).toEqual([
      ['update', 'journey first_purchase', ['steps']],
      ['update', 'journey first_purchase', ['publish']],
    ]);
    const paused = withJourney(JOURNEY.replace('status: Live', 'status: Paused'));
    expect(planApply(paused, stateWith(file)).steps.map((s) => s.journey?.action)).toEqual(['pause']);
    expect(planApply(file, stateWith(file, { status: 'Paused' })).steps.map((s) => s.journey?.action)).toEqual(['resume']);
    // A draft edited through the API and not published: Live publishes it.
    expect(planApply(file, stateWith(file, { draftChanged: true })).steps.map((s) => s.journey?.action)).toEqual(['publish']);
    // No status: the draft is edited, the lifecycle left alone.
    const noStatus = withJourney(JOURNEY.replace('    status: Live\n', '').replace('duration: 3 days', 'duration: 2 days'));
    expect(planApply(noStatus, stateWith(file)).steps.map((s) => s.journey?.action ?? s.op)).toEqual(['update']);
  });

  it('refuses graph problems, unknown names, archived keys and going back to Draft, before any write', () => {
    const broken = withJourney(JOURNEY.replace('next: done', 'next: nowhere').replace('destinationId: Hook', 'destinationId: Nope'));
    expect(planApply(broken, null).problems).toEqual([
      `journeys[0] 'first_purchase': steps.wait: leads to "nowhere", which is not a step`,
      "journeys[0] 'first_purchase': steps.welcome.destinations.0.destinationId: no destination 'Nope' (name or id) in the file or the space",
    ]);
    const file = withJourney();
    expect(planApply(file, stateWith(file, { status: 'Archived' })).problems).toEqual([
      "journeys[0] 'first_purchase': the journey is archived in the space (jou_1); journey keys are never reused: give it another key",
    ]);
    expect(planApply(withJourney(JOURNEY.replace('status: Live', 'status: Draft')), stateWith(file)).problems).toEqual([
      "journeys[0] 'first_purchase': status Draft, but the journey was published (Live); use Live or Paused",
    ]);
  });

  it('prunes (archives) journeys the file dropped, before what they read', () => {
    const state = stateWith(withJourney());
    const plan = planApply(parseSpaceFile('space: { name: Production }\n'), state, { prune: true });
    expect(plan.steps.map((s) => `${s.op} ${s.label}`).slice(0, 2)).toEqual([
      'delete journey first_purchase',
      "delete connection big_spenders -> 'Hook'",
    ]);
  });
});

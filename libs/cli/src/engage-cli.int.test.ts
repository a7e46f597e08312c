// `npx engage apply` / `export` as an operator runs them (the built bin, as a
// process) against a real control plane on the real infrastructure.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { startService, testInfrastructure, uniqueName, type ServiceProcess } from '@engage/testing';

const TOKEN = 'cli-test-token';
const BIN = path.resolve(__dirname, '../engage.js');
let proc: ServiceProcess;
let url: string;
const dir = mkdtempSync(path.join(tmpdir(), 'engage-cli-'));

function engage(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, CONTROL_PLANE_URL: url, CONTROL_PLANE_TOKEN: TOKEN, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(stdin ?? '');
  });
}

async function api(method: string, p: string) {
  const res = await fetch(`${url}${p}`, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as any;
}

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

beforeAll(async () => {
  const infra = testInfrastructure();
  const prefix = `${uniqueName('cli')}.`;
  proc = startService('control-plane', {
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: infra.schemaRegistryUrl,
    REDIS_URL: infra.redisUrl,
    TOPIC_PREFIX: prefix,
    REDIS_KEY_PREFIX: prefix,
    CONTROL_PLANE_PORT: '0',
    CONTROL_PLANE_TOKEN: TOKEN,
    // The files' destinations point at 127.0.0.1:9 (nothing is sent to them).
    DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8',
  });
  url = `http://127.0.0.1:${await proc.port()}`;
});
afterAll(() => proc?.stop());

const SPACE = (spaceName: string) => `
space:
  name: ${spaceName}
sources:
  - name: Web
  - name: Backend
    rateLimit: { requestsPerSecond: 200 }
destinations:
  - name: Hook
    type: webhook
    settings: { url: 'http://127.0.0.1:9/hook', headers: { x-team: growth } }
    rateLimit: { requestsPerSecond: 20, burst: 40 }
  - name: Lists
    type: list-webhook
    settings: { url: 'http://127.0.0.1:9/lists' }
audiences:
  # Reads a computed trait listed below: apply creates the trait first.
  - name: Big Spenders
    description: Lifetime value over 500
    definition:
      query: |
        trait('lifetime_value') > 500
    options: { includeHistoricalData: true }
    destinations:
      - destination: Hook
        settings: { identify: true, track: true, enteredEvent: Became Big Spender }
      - destination: Lists
  - name: Order Completed Last 30 Days
    definition: { query: "event('Order Completed').within(30 days).count() >= 1", type: users }
computedTraits:
  - name: Lifetime Value
    definition: { query: "event('Order Completed').sum(property('revenue'))" }
    destinations:
      - destination: Hook
        settings: { identify: true, track: false, identifierTypes: [user_id, email] }
`;

describe('npx engage apply / export', () => {
  it('creates a whole space, changes nothing on a second apply, and exports it back so it round-trips', async () => {
    const spaceName = uniqueName('Space');
    const spaceFile = file('space.yaml', SPACE(spaceName));

    const first = await engage(['apply', '-f', spaceFile]);
    expect(first).toEqual(expect.objectContaining({ code: 0, stderr: '' }));
    expect(first.stdout).toMatch(/applied to space spa_\w+: 11 created, 0 updated, 0 deleted, 0 unchanged\n$/);
    const lines = first.stdout.trim().split('\n');
    // The trait is created before the audience that reads it.
    expect(lines.findIndex((l) => l.startsWith('created computed trait lifetime_value'))).toBeLessThan(
      lines.findIndex((l) => l.startsWith('created audience big_spenders')),
    );
    const spaceId = /created space '[^']+' \((spa_\w+)\)/.exec(first.stdout)![1]!;

    // What the API holds is what the file says.
    const audiences = (await api('GET', `/spaces/${spaceId}/audiences`)).data.audiences;
    expect(audiences.map((a: any) => [a.key, a.description, a.options])).toEqual([
      ['big_spenders', 'Lifetime value over 500', { includeHistoricalData: true, computeMode: 'realtime' }],
      ['order_completed_last_30_days', '', { includeHistoricalData: false, computeMode: 'realtime' }],
    ]);
    const connections = (await api('GET', `/spaces/${spaceId}/audiences/${audiences[0].id}/destinations`)).data.connections;
    expect(connections.map((c: any) => c.settings)).toEqual([
      { identify: true, track: true, enteredEvent: 'Became Big Spender' },
      { identify: true, track: false },
    ]);

    // Applying again changes nothing, and says so.
    const before = await engage(['export', '--space', spaceId, '--format', 'json']);
    const second = await engage(['apply', '-f', spaceFile]);
    expect(second).toEqual({
      code: 0,
      stderr: '',
      stdout: `no changes: space ${spaceId} already matches ${spaceFile} (11 objects unchanged)\n`,
    });
    expect((await engage(['export', '--space', spaceId, '--format', 'json'])).stdout).toBe(before.stdout);

    // Export prints the space back in the same format; applied, it changes nothing.
    const exported = await engage(['export', '--space', spaceId]);
    expect(exported.code).toBe(0);
    const asYaml = YAML.parse(exported.stdout);
    expect(asYaml).toEqual(JSON.parse(before.stdout));
    expect(asYaml.space).toEqual({ id: spaceId, name: spaceName });
    expect(asYaml.sources).toEqual([
      { name: 'Web', enabled: true, writeKey: expect.stringMatching(/^\w{32}$/) },
      { name: 'Backend', enabled: true, rateLimit: { requestsPerSecond: 200 }, writeKey: expect.stringMatching(/^\w{32}$/) },
    ]);
    expect(asYaml.computedTraits[0]).toEqual({
      name: 'Lifetime Value',
      key: 'lifetime_value',
      description: '',
      enabled: true,
      definition: { query: "event('Order Completed').sum(property('revenue'))", type: 'users' },
      options: { includeHistoricalData: false, computeMode: 'realtime' },
      destinations: [
        { destination: 'Hook', enabled: true, settings: { identify: true, track: false, identifierTypes: ['user_id', 'email'] } },
      ],
    });
    const exportedFile = file('exported.yaml', exported.stdout);
    expect((await engage(['apply', '-f', exportedFile])).stdout).toMatch(/^no changes: /);
    // JSON on stdin, the space named by --space instead of the file (a copy without ids applies to it the same).
    const withoutId = { ...JSON.parse(before.stdout), space: { name: spaceName } };
    expect((await engage(['apply', '-f', '-', '--space', spaceId], {}, JSON.stringify(withoutId))).stdout).toBe(
      `no changes: space ${spaceId} already matches - (11 objects unchanged)\n`,
    );
    const jsonFile = file('exported.json', before.stdout);
    expect((await engage(['apply', '-f', jsonFile])).stdout).toMatch(/^no changes: /);

    // An edit applies as updates of exactly what changed.
    const edited = file(
      'edited.yaml',
      SPACE(spaceName)
        .replace("trait('lifetime_value') > 500", "trait('lifetime_value') > 900")
        .replace('  - name: Web\n', '  - name: Web\n    enabled: false\n')
        .replace('enteredEvent: Became Big Spender', 'enteredEvent: Became Bigger Spender')
        .replace(
          "  - name: Lists\n    type: list-webhook\n    settings: { url: 'http://127.0.0.1:9/lists' }",
          "  - name: Lists\n    type: list-webhook\n    settings: { url: 'http://127.0.0.1:9/lists2' }\n  - name: Archive\n    type: webhook\n    settings: { url: 'https://archive.example/in' }",
        ),
    );
    const third = await engage(['apply', '-f', edited]);
    expect(third.code).toBe(0);
    expect(third.stdout.trim().split('\n')).toEqual([
      "updated source 'Web' (enabled)",
      "updated destination 'Lists' (settings)",
      expect.stringMatching(/^created destination 'Archive' \(dst_\w+\)$/),
      'updated audience big_spenders (definition)',
      "updated connection big_spenders -> 'Hook' (settings)",
      `applied to space ${spaceId}: 1 created, 4 updated, 0 deleted, 7 unchanged`,
    ]);
    const big = (await api('GET', `/spaces/${spaceId}/audiences/${audiences[0].id}`)).data.audience;
    expect([big.definition.query, big.definitionVersion]).toEqual(["trait('lifetime_value') > 900", 2]);
    expect((await engage(['apply', '-f', edited])).stdout).toMatch(/^no changes: /);

    // --prune deletes what the file dropped.
    const pruned = await engage(['apply', '-f', spaceFile, '--prune', '--dry-run']);
    expect(pruned.stdout).toContain("would delete destination 'Archive'");
    expect((await api('GET', `/spaces/${spaceId}/destinations`)).data.destinations).toHaveLength(3);
    const prunedForReal = await engage(['apply', '-f', spaceFile, '--prune']);
    expect(prunedForReal.stdout).toContain("deleted destination 'Archive'");
    expect(prunedForReal.stdout).toMatch(/: 0 created, 4 updated, 1 deleted, 7 unchanged\n$/);
    // Back to the first state, field for field.
    expect((await engage(['export', '--space', spaceId, '--format', 'json'])).stdout).toBe(before.stdout);
  });

  it('applies journeys: created and published by key, names resolved to ids, republished on an edit, paused, exported', async () => {
    const spaceName = uniqueName('Space');
    const journeyFile = (duration: string, status: string) => `
space: { name: ${spaceName} }
destinations:
  - name: Hook
    type: webhook
    settings: { url: 'http://127.0.0.1:9/hook' }
audiences:
  - name: Signed Up
    definition: { query: "event('Signed Up').count() >= 1" }
journeys:
  - name: First Purchase
    key: first_purchase
    entry: { audienceId: signed_up }
    status: ${status}
    steps:
      - { id: welcome, type: send, name: Opened Email, destinations: [{ destinationId: Hook }], next: wait }
      - { id: wait, type: wait, duration: ${duration}, next: bought }
      - { id: bought, type: split, query: "event('Order Completed').count() >= 1", true: done, false: done }
      - { id: done, type: exit }
    start: welcome
`;
    const spaceFile = file('journey.yaml', journeyFile('3 days', 'Live'));
    const first = await engage(['apply', '-f', spaceFile]);
    expect(first).toEqual(expect.objectContaining({ code: 0, stderr: '' }));
    const lines = first.stdout.trim().split('\n');
    expect(lines.slice(-3)).toEqual([
      expect.stringMatching(/^created journey first_purchase \(jou_\w+\)$/),
      'published journey first_purchase',
      expect.stringMatching(/: 4 created, 1 updated, 0 deleted, 0 unchanged$/),
    ]);
    const spaceId = /created space '[^']+' \((spa_\w+)\)/.exec(first.stdout)![1]!;
    const [journey] = (await api('GET', `/spaces/${spaceId}/journeys`)).data.journeys;
    const [dst] = (await api('GET', `/spaces/${spaceId}/destinations`)).data.destinations;
    const [aud] = (await api('GET', `/spaces/${spaceId}/audiences`)).data.audiences;
    expect(journey).toEqual(
      expect.objectContaining({ key: 'first_purchase', status: 'Live', entry: { audienceId: aud.id }, draftChanged: false }),
    );
    expect(journey.versions.map((v: any) => v.version)).toEqual([1]);
    expect(journey.steps[0].destinations).toEqual([{ destinationId: dst.id, settings: { identify: true, track: true } }]);

    expect((await engage(['apply', '-f', spaceFile])).stdout).toBe(
      `no changes: space ${spaceId} already matches ${spaceFile} (4 objects unchanged)\n`,
    );
    // Export names destinations and the entry audience; applied back, it changes nothing.
    const exported = await engage(['export', '--space', spaceId]);
    expect(YAML.parse(exported.stdout).journeys[0]).toEqual(
      expect.objectContaining({ key: 'first_purchase', status: 'Live', entry: { audienceId: 'signed_up' } }),
    );
    expect(YAML.parse(exported.stdout).journeys[0].steps[0].destinations[0].destinationId).toBe('Hook');
    expect((await engage(['apply', '-f', file('journey-export.yaml', exported.stdout)])).stdout).toMatch(/^no changes: /);

    // An edit patches the draft and publishes version 2; the send step keeps its key.
    const edited = await engage(['apply', '-f', file('journey2.yaml', journeyFile('2 days', 'Live'))]);
    expect(edited.stdout.trim().split('\n')).toEqual([
      'updated journey first_purchase (steps)',
      'published journey first_purchase',
      `applied to space ${spaceId}: 0 created, 2 updated, 0 deleted, 3 unchanged`,
    ]);
    const v2 = (await api('GET', `/spaces/${spaceId}/journeys/${journey.id}`)).data.journey;
    expect(v2.versions.map((v: any) => [v.version, v.stepKeys.welcome])).toEqual([
      [1, journey.stepKeys.welcome],
      [2, journey.stepKeys.welcome],
    ]);
    const paused = await engage(['apply', '-f', file('journey3.yaml', journeyFile('2 days', 'Paused'))]);
    expect(paused.stdout.trim().split('\n')[0]).toBe('paused journey first_purchase');
    expect((await api('GET', `/spaces/${spaceId}/journeys/${journey.id}`)).data.journey.status).toBe('Paused');
  });

  it('refuses a bad file or an impossible change before any write, naming where and why', async () => {
    const spaceName = uniqueName('Space');
    const bad = await engage([
      'apply',
      '-f',
      file('bad.yaml', `space: { name: ${spaceName} }\naudiences:\n  - name: A\n    colour: red\n    definition: { query: "x" }\n`),
    ]);
    expect(bad).toEqual({ code: 1, stdout: '', stderr: expect.stringContaining('bad.yaml: audiences[0].colour: unknown field') });
    const unknownDst = await engage([
      'apply',
      '-f',
      file(
        'dst.yaml',
        `space: { name: ${spaceName} }\naudiences:\n  - name: A\n    definition: { query: "event('A').count() > 1" }\n    destinations: [{ destination: Nowhere }]\n`,
      ),
    ]);
    expect(unknownDst.code).toBe(1);
    expect(unknownDst.stderr).toContain("audiences[0].destinations[0].destination: no destination named 'Nowhere'");
    // Nothing was written: the space does not exist.
    expect((await api('GET', '/spaces?pagination.count=200')).data.spaces.some((s: any) => s.name === spaceName)).toBe(false);

    // Queries are checked before any write too, with line and column.
    const invalidQuery = await engage([
      'apply',
      '-f',
      file('q.yaml', `space: { name: ${spaceName} }\naudiences:\n  - name: Broken\n    definition: { query: "event('A').count() >=" }\n`),
    ]);
    expect(invalidQuery).toEqual({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(/audiences\[0\] 'broken': definition\.query: 1:\d+: /),
    });
    expect((await api('GET', '/spaces?pagination.count=200')).data.spaces.some((s: any) => s.name === spaceName)).toBe(false);

    // The API's own checks come back with the object they concern, after what was done before.
    const badUrl = await engage([
      'apply',
      '-f',
      file('u.yaml', `space: { name: ${spaceName} }\ndestinations:\n  - { name: Bad, type: webhook, settings: { url: 'not a url' } }\n`),
    ]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stdout).toMatch(/^created space/);
    expect(badUrl.stderr).toBe(
      "engage apply: failed to create destination 'Bad': settings.url: must be an absolute http(s) URL, got 'not a url'\n",
    );

    const usage = await engage(['apply', '-f', 'x.yaml'], { CONTROL_PLANE_TOKEN: '' });
    expect([usage.code, usage.stderr.split('\n')[0]]).toEqual([2, 'engage: no token: pass --token or set CONTROL_PLANE_TOKEN']);
    const wrongToken = await engage(['export', '--space', 'spa_x', '--token', 'nope-nope']);
    expect([wrongToken.code, wrongToken.stderr]).toEqual([1, 'engage export: GET /spaces/spa_x: 401 missing or invalid bearer token\n']);
  });
});

describe('npx engage catalog', () => {
  it("lists the control plane's Actions destinations; with a slug, its settings (required, secret, default), actions and presets", async () => {
    const list = await engage(['catalog']);
    expect([list.code, list.stderr]).toEqual([0, '']);
    expect(list.stdout.split('\n').map((l) => l.split(/\s{2,}/).slice(0, 4))).toEqual([
      ['SLUG', 'CATEGORY', 'RATE', 'ACTIONS'],
      ['actions-pardot', 'event', '2/s', '1'],
      ['braze', 'event', '100/s', '15'],
      ['braze-cohorts', 'list', '100/s', '1'],
      ['customerio', 'event', '30/s', '15'],
      ['display-video-360', 'list', '2/s', '1'],
      ['facebook-custom-audiences', 'list', '10/s', '1'],
      ['google-enhanced-conversions', 'list', '-', '1'],
      ['hubspot', 'event', '5/s', '6'],
      ['intercom', 'event', '8/s', '3'],
      ['iterable', 'event', '500/s', '4'],
      ['iterable-lists', 'list', '500/s', '1'],
      ['klaviyo', 'list', '-', '8'],
      ['linkedin-audiences', 'list', '-', '1'],
      ['mailchimp', 'event', '10/s', '1'],
      ['marketo', 'event', '5/s', '1'],
      ['marketo-static-lists', 'list', '5/s', '2'],
      ['responsys', 'event', '3/s', '2'],
      ['salesforce', 'event', '5/s', '12'],
      ['salesforce-marketing-cloud', 'event', '20/s', '4'],
      ['sendgrid', 'event', '100/s', '2'],
      ['sendgrid-audiences', 'list', '100/s', '1'],
      ['snap-audiences', 'list', '-', '1'],
      ['tiktok-audiences', 'list', '-', '6'],
      ['the-trade-desk-crm', 'list', '-', '1'],
      ['zendesk', 'event', '50/s', '1'],
      [''],
    ]);
    const braze = await engage(['catalog', 'braze']);
    expect(braze.code).toBe(0);
    const lines = braze.stdout.split('\n');
    expect(lines[0]).toBe('Braze Cloud Mode (Actions) (braze): event destination, default rate limit 100/s');
    expect(lines[1]).toBe("  (Segment's documented rate limit for Braze)");
    expect(lines).toContain('  api_key  string, required, secret  API Key');
    expect(lines).toContain('  endpoint  string, required, default "https://rest.iad-01.braze.com"  REST Endpoint');
    expect(lines).toContain('  Identify Calls -> updateUserProfile  [type = "identify"]');
    expect(await engage(['catalog', 'nope'])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'engage catalog: GET /catalog/destinations/nope: 404 catalog destination nope not found\n',
    });
  });
});

describe('npx engage query check', () => {
  // Through npx, as the README and CI pipelines call it: the workspace's bin link, the built engine.
  const npx = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'npx',
        ['--no-install', 'engage', 'query', 'check', ...args],
        { cwd: path.resolve(__dirname, '../../..') },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  it('prints the normalised query and exits 0, or line:column: message and exits 1', async () => {
    expect(await npx(["event('Order Completed').within(30 days).count()>=1"])).toEqual({
      code: 0,
      stdout: "event('Order Completed').within(30 days).count() >= 1\n",
      stderr: '',
    });
    expect(await npx(["event('A').count() >=", '--type', 'users'])).toEqual({
      code: 1,
      stdout: '',
      stderr: "1:22: expected a value but found 'end of query'\n",
    });
    expect(await npx(["event('A').sum(property('x'))", '--type', 'trait'])).toMatchObject({ code: 0 });
  });
});

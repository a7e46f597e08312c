// The operator console in a real browser: Debian's chromium driven by
// puppeteer-core (no browser download; .ci/run installs the package), against
// the fleet (ingest, identity resolver, realtime evaluator, batch scheduler,
// control plane) as processes on the real infrastructure, the control plane
// serving the console's build at /console/; events sent with analytics-node.
// Screenshots of every page go to test/out/console/ (git-ignored). Browser-side
// code is passed as strings where it names DOM globals (the tests' tsconfig has no DOM types).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Analytics } from '@segment/analytics-node';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { HistoryStore } from '@engage/config-store';
import { createRedis } from '@engage/redis';
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';
import { Receiver } from './helpers/receiver';

const SHOTS = path.join(__dirname, 'out', 'console');
let fleet: Fleet;
let browser: Browser;
let page: Page;
let base: string;
let ingest: string;
let receiver: Receiver;
const browserErrors: string[] = [];

function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    throw new Error('chromium is not installed: apt-get install -y chromium (.ci/run installs it), or set CHROMIUM_PATH');
  }
}

const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
/** The visible text of the first element matching `selector`, once it contains `text`. */
async function waitText(selector: string, text: string | RegExp): Promise<string> {
  return waitFor(
    async () => {
      const found = await page.$$eval(selector, (els) => els.map((e: any) => e.innerText as string));
      return found.find((t) => (typeof text === 'string' ? t.includes(text) : text.test(t))) ?? null;
    },
    { timeoutMs: 15000, description: `${selector} showing ${text}` },
  );
}
async function clickLink(text: string) {
  const links = await page.$$('a');
  for (const link of links) if ((await link.evaluate((a) => a.textContent?.trim())) === text) return link.click();
  throw new Error(`no link '${text}'`);
}
async function clickButton(text: string) {
  const buttons = await page.$$('button');
  for (const b of buttons) if ((await b.evaluate((e) => e.textContent?.trim())) === text) return b.click();
  throw new Error(`no button '${text}'`);
}
async function clickLabel(text: string) {
  const labels = await page.$$('label');
  for (const l of labels) if ((await l.evaluate((e) => e.textContent?.replace(/\s+/g, ' ').trim())) === text) return l.click();
  throw new Error(`no label '${text}'`);
}
/** Presses Tab until the focused element's text (or id) is `target`; at most `max` presses. */
async function tabTo(target: string, max = 40): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const focused = await page.evaluate('[document.activeElement.textContent.trim(), document.activeElement.id]');
    if ((focused as string[]).includes(target)) return;
  }
  throw new Error(`'${target}' not reached with ${max} Tabs`);
}
/** Opaque pixels of a chart's canvas drawn in `rgb` (a series' stroke), give or take a little antialiasing. */
const strokePixels = (testId: string, rgb: [number, number, number]) =>
  page.evaluate(`(() => {
    const c = document.querySelector('[data-testid=${testId}] canvas');
    if (!c || c.width === 0) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 200 && Math.abs(d[i] - ${rgb[0]}) < 40 && Math.abs(d[i + 1] - ${rgb[1]}) < 40 && Math.abs(d[i + 2] - ${rgb[2]}) < 40) n++;
    return n;
  })()`) as Promise<number>;
const overflowsSideways = () => page.evaluate('document.documentElement.scrollWidth > window.innerWidth');
async function replaceText(selector: string, text: string) {
  await page.click(selector, { clickCount: 3 });
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  await page.type(selector, text);
}

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  // The event tester's destination: a local receiver answering 200.
  receiver = await new Receiver(() => ({ status: 200, headers: { 'x-receiver': 'yes' }, body: { ok: true } })).start();
  fleet = await startFleet('console', {
    // The webhook destinations point at 127.0.0.1:9 and at a local receiver (no dispatcher runs: only the event tester sends).
    // Audience sizes sampled each second (1 minute by default), so the size chart has points within the test.
    env: { DESTINATION_ALLOWED_HOSTS: '127.0.0.0/8', BACKFILL_CUT_GRACE_MS: '500', SIZE_HISTORY_INTERVAL_MS: '1000' },
    services: ['control-plane', 'realtime-evaluator', 'batch-scheduler', 'identity-resolver', 'ingest'],
  });
  ingest = `http://127.0.0.1:${await fleet.procs[4]!.port()}`;
  base = `http://127.0.0.1:${await fleet.procs[0]!.port()}`;
  await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { description: 'control plane ready' });
  browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    // NOTE: CI runs as root, where chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on('console', (m) => {
    if (m.type() === 'error') browserErrors.push(m.text());
  });
  page.on('pageerror', (err) => browserErrors.push(String(err)));
});
afterAll(async () => {
  await browser?.close();
  await fleet?.stop();
  await receiver?.stop();
});

describe('operator console', () => {
  it('signs in with the admin token, creates an audience from a typed query after its preview, and lists it', async () => {
    // One profile that the audience will match, sent as an app would: analytics-node to the ingest.
    const source = (await fleet.api('POST', `/spaces/${fleet.spaceId}/sources`, { name: 'Web' })).data.source;
    const analytics = new Analytics({ writeKey: source.writeKey, host: ingest, flushAt: 1, flushInterval: 100, maxRetries: 3 });
    const flushed = (fn: (done: (err?: unknown) => void) => void) =>
      new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
    await flushed((done) => analytics.identify({ userId: 'ada', traits: { plan: 'pro', email: 'ada@example.com' } }, done));
    await flushed((done) => analytics.track({ userId: 'ada', event: 'Order Completed', properties: { revenue: 42 } }, done));
    await analytics.closeAndFlush();
    const definition = { query: "event('Order Completed').count() >= 1", type: 'users' };
    await waitFor(async () => (await fleet.api('POST', `/spaces/${fleet.spaceId}/audiences/preview`, { definition })).data?.size === 1, {
      description: 'the resolver and evaluator stored the profile',
    });

    // Any console page without a token leads to the login form.
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
    await page.waitForSelector('#token');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await page.type('#token', 'not-the-token');
    await page.click('button[type=submit]');
    expect(await waitText('#token-error', 'refused')).toMatch(/This token was refused/);
    await shot('01-login-refused');

    await replaceText('#token', fleet.env.CONTROL_PLANE_TOKEN!);
    // From the keyboard: Enter in the field submits the form.
    await page.keyboard.press('Enter');
    // Back where it was going: the space's audiences, still empty.
    expect(await waitText('.empty', 'No audiences')).toMatch(/Create one/);
    expect(new URL(page.url()).pathname).toBe(`/console/spaces/${fleet.spaceId}/audiences`);
    // The token is in the session, never in the URL.
    expect(page.url()).not.toContain(fleet.env.CONTROL_PLANE_TOKEN!);
    expect(await page.evaluate("sessionStorage.getItem('engage.adminToken')")).toBe(fleet.env.CONTROL_PLANE_TOKEN);
    await shot('02-audiences-empty');

    await clickLink('+ New audience');
    await page.waitForSelector('#query');
    await page.type('#name', 'Buyers');
    // A query cut short: the error names line and column, under the text.
    await page.type('#query', "event('Order Completed').count() >=");
    expect(await waitText('[data-testid=query-error]', 'Line 1, column 36')).toMatch(/expected a value/);
    expect(await page.$eval('button[type=submit]', (b: any) => b.disabled as boolean)).toBe(true);
    await shot('03-new-audience-query-error');

    await page.type('#query', ' 1');
    await waitText('[data-testid=query-ok]', 'Valid query');
    expect(await waitText('[data-testid=preview-size]', '1 profile matches')).toMatch(/^1 profile matches/);
    expect(await waitText('table[aria-label="Sample profiles"] tbody', 'ada')).toMatch(/email:ada@example\.com[\s\S]*"plan":"pro"/);
    await shot('04-new-audience-preview');

    await page.click('button[type=submit]');
    const row = await waitText('table[aria-label=Audiences] tbody tr', 'Buyers');
    expect(row).toContain('buyers');
    expect(row).toContain('realtime');
    expect(new URL(page.url()).pathname).toBe(`/console/spaces/${fleet.spaceId}/audiences`);
    // The backfill counts the profile's earlier order: Live with 1 member, shown as it happens.
    const live = await waitText('table[aria-label=Audiences] tbody tr', /Buyers[\s\S]*Live/);
    expect(live.split('\t').map((cell) => cell.trim())).toEqual([
      'Buyers',
      'buyers',
      'users',
      'realtime',
      'Live',
      '1',
      'None',
      expect.any(String),
    ]);
    await shot('05-audiences-table');
    const saved = await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences`);
    expect(saved.data.audiences).toEqual([
      expect.objectContaining({
        name: 'Buyers',
        key: 'buyers',
        definition: { query: "event('Order Completed').count() >= 1", type: 'users' },
        options: { includeHistoricalData: true, computeMode: 'realtime' },
      }),
    ]);
  });

  it("creates a destination, connects it on the audience's overview and downloads the audience's CSV", async () => {
    // The destination, created on the Destinations page: a refused host is named beside the URL field.
    await clickLink('Destinations');
    expect(await waitText('.empty', 'No destinations yet')).toMatch(/Create one/);
    await clickButton('+ New destination');
    await page.waitForSelector('#destination-url');
    await page.type('#destination-name', 'Hook');
    await page.type('#destination-url', 'http://10.1.2.3/hook');
    await clickButton('Create destination');
    expect(await waitText('.field-error', 'settings.url')).toMatch(/private/);
    await shot('06-new-destination-refused');
    // An Actions destination's settings form comes from its definition's schema, secrets as password inputs.
    const actionsTypes = await page.$$eval('#destination-type option', (os: any[]) =>
      os.map((o) => o.value as string).filter((v) => v.startsWith('actions:')),
    );
    expect(actionsTypes.length).toBeGreaterThan(0);
    // One with a secret string setting (an API key): OAuth destinations, first in the list now, keep theirs in an object.
    const catalog: any[] = (await fleet.api('GET', '/catalog/destinations')).data.destinations;
    const withSecret = catalog.find((d) =>
      Object.values<any>(d.settings?.properties ?? {}).some((p) => p.type === 'string' && p['x-secret'] === true),
    );
    expect(actionsTypes).toContain(`actions:${withSecret.slug}`);
    await page.select('#destination-type', `actions:${withSecret.slug}`);
    await page.waitForSelector('input[type=password][id^=setting-]');
    await page.select('#destination-type', 'webhook');
    await replaceText('#destination-url', 'http://127.0.0.1:9/hook');
    await clickButton('Create destination');
    const created = await waitText('table[aria-label=Destinations] tbody tr', 'Hook');
    expect(created.split('\t').map((cell) => cell.trim())).toEqual(['Hook', 'webhook', 'Enabled', '0', '0', '0', '0', '—', '—']);
    const hookId: string = (await fleet.api('GET', `/spaces/${fleet.spaceId}/destinations`)).data.destinations[0].id;
    await shot('07-destinations');
    // Its page: settings, and off and on again.
    await clickLink('Hook');
    expect(await waitText('table[aria-label=Settings]', 'url')).toContain('http://127.0.0.1:9/hook');
    await clickButton('Disable');
    await waitText('[data-testid=destination-status]', 'Disabled');
    await clickButton('Enable');
    await waitText('[data-testid=destination-status]', 'Enabled');
    await shot('07-destination');

    await clickLink('Audiences');
    await page.waitForSelector('table[aria-label=Audiences]');
    await clickLink('Buyers');
    expect(await waitText('[data-testid=audience-size]', '1')).toBe('1');
    expect(await waitText('.empty', 'Not sent anywhere')).toMatch(/Add a destination/);
    await clickButton('+ Add destination');
    await page.waitForSelector('#destination option[value^=dst_]');
    await page.select('#destination', hookId);
    await clickLabel('Track (Audience Entered / Audience Exited)');
    await page.type('#entered-event', 'Became Buyer');
    // Trait Activation: a trait to enrich with, and ID Sync. A limit beside "first" is the API's to refuse, named beside the limit.
    await page.type('#trait-enrichment', 'plan');
    await clickButton('+ Add identifier type');
    expect(await page.$eval('#id-sync-0-type', (e: any) => e.value)).toBe('email');
    await page.select('#id-sync-0-strategy', 'first');
    await page.type('#id-sync-0-limit', '3');
    await clickButton('Connect');
    expect(await waitText('#id-sync-0-limit-error', 'only with strategy')).toMatch(/only with strategy "all" \(got "first"\)/);
    expect(await page.$eval('#id-sync-0-limit', (e: any) => e.getAttribute('aria-invalid'))).toBe('true');
    expect(await page.$('form[aria-label="Add destination"] > p.error')).toBeNull();
    await shot('08-add-destination-refused-id-sync');
    await page.select('#id-sync-0-strategy', 'all');
    await shot('08-add-destination');
    await clickButton('Connect');
    const row = await waitText('table[aria-label="Connected destinations"] tbody tr', 'Hook');
    expect(row.split('\t').map((cell) => cell.trim())).toEqual([
      'Hook webhook',
      'Not applicable',
      'Connected',
      'Pending',
      'identify, track 0 sent, 0 failed',
    ]);
    const [audience] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences;
    const connections = (await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences/${audience.id}/destinations`)).data.connections;
    expect(connections).toEqual([
      expect.objectContaining({
        destinationId: hookId,
        settings: {
          identify: true,
          track: true,
          enteredEvent: 'Became Buyer',
          traitEnrichment: ['plan'],
          idSync: [{ type: 'email', strategy: 'all', limit: 3 }],
        },
        status: 'Connected',
      }),
    ]);
    await shot('09-audience-overview');

    // The CSV comes through fetch with the token in a header, saved by the browser.
    const downloads = fs.mkdtempSync(path.join(SHOTS, 'downloads-'));
    const cdp = await page.createCDPSession();
    await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
    await clickButton('Unformatted');
    const file = await waitFor(() => fs.readdirSync(downloads).find((f) => f.endsWith('.csv')), { description: 'the CSV download' });
    expect(file).toBe('buyers-unformatted.csv');
    const csv = await waitFor(() => fs.readFileSync(path.join(downloads, file), 'utf8') || null, { description: 'the CSV written' });
    expect(csv).toContain('ada@example.com');

    // Edit: the same form, filled in; the key cannot change.
    await clickLink('Edit');
    await page.waitForSelector('#description');
    expect(await page.$eval('#key', (e: any) => [e.value, e.readOnly])).toEqual(['buyers', true]);
    await page.type('#description', 'Bought at least once');
    await waitText('[data-testid=query-ok]', 'Valid query');
    await clickButton('Save audience');
    expect(await waitText('main p', 'Bought at least once')).toBe('Bought at least once');
    expect((await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences/${audience.id}`)).data.audience).toEqual(
      expect.objectContaining({ description: 'Bought at least once', definitionVersion: 1 }),
    );
  });

  it('looks a profile up by email: traits, audiences, identifiers, events and merges (an anonymous visitor joined by an identify)', async () => {
    await clickLink('Profiles');
    await page.waitForSelector('#id-value');
    await replaceText('#id-type', 'email');
    await page.type('#id-value', 'ada@example.com');
    await page.keyboard.press('Enter');
    expect(await waitText('section[aria-label=Audiences]', 'buyers')).toMatch(/buyers\s+true/);
    expect(await waitText('section[aria-label=Traits]', 'plan')).toMatch(/plan\s+pro/);
    expect(await waitText('[data-testid=profile]', 'Order Completed')).toMatch(/user_id ada/);
    expect(new URL(page.url()).searchParams.get('id')).toBe('email:ada@example.com');
    expect(await waitText('[data-testid=merges]', 'No merges')).toMatch(/No merges/);
    await shot('10-profile');

    // An anonymous visitor, then an identify joining it to ada through the ingest: its profile merges into hers.
    const [source] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/sources`)).data.sources;
    const analytics = new Analytics({ writeKey: source.writeKey, host: ingest, flushAt: 1, flushInterval: 100, maxRetries: 3 });
    const flushed = (fn: (done: (err?: unknown) => void) => void) =>
      new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
    await flushed((done) => analytics.track({ anonymousId: 'anon-console', event: 'Product Viewed' }, done));
    const profileApi = (id: string, resource: string) =>
      fetch(`${base}/v1/spaces/${fleet.spaceId}/collections/users/profiles/${id}/${resource}`, {
        headers: { authorization: `Basic ${Buffer.from(`${fleet.env.CONTROL_PLANE_TOKEN}:`).toString('base64')}` },
      });
    // The visitor's own profile first (else the identify would only add the anonymous id to ada: no merge).
    const anonymous = await waitFor(
      async () => {
        const res = await profileApi('anonymous_id:anon-console', 'events');
        return res.status === 200 ? (((await res.json()) as any).data[0]?.related?.users as string | undefined) : null;
      },
      { timeoutMs: 30000, description: 'the anonymous profile' },
    );
    await flushed((done) => analytics.identify({ userId: 'ada', anonymousId: 'anon-console' }, done));
    await analytics.closeAndFlush();
    const merges = await waitFor(
      async () => {
        await page.goto(`${base}/console/spaces/${fleet.spaceId}/profiles?id=email:ada@example.com`);
        await page.waitForSelector('[data-testid=merges] p, [data-testid=merges] li');
        const text = await page.$eval('[data-testid=merges]', (e: any) => e.innerText as string);
        return text.includes(anonymous) ? text : null;
      },
      { timeoutMs: 30000, description: 'the merge listed on the profile page' },
    );
    expect(merges).toMatch(new RegExp(`${anonymous}\\s+merged \\S`));
    expect(merges).not.toContain('No merges');
    expect(await waitText('[data-testid=profile]', 'anon-console')).toMatch(/anonymous_id anon-console/);
    await shot('10-profile-merges');

    await replaceText('#id-value', 'nobody@example.com');
    await page.keyboard.press('Enter');
    expect(await waitText('[role=status]', 'No profile')).toContain('email:nobody@example.com');
  });

  it('creates a computed trait the same way, and shows the write key of the source', async () => {
    await clickLink('Computed traits');
    expect(await waitText('.empty', 'No computed traits')).toMatch(/Create one/);
    await clickLink('+ New computed trait');
    await page.waitForSelector('#query');
    await page.type('#name', 'Orders');
    await page.type('#query', "event('Order Completed').count(");
    expect(await waitText('[data-testid=query-error]', 'Line 1, column')).toMatch(/^Line 1, column \d+: /);
    await page.type('#query', ')');
    await waitText('[data-testid=query-ok]', 'Valid query');
    await clickButton('Save computed trait');
    const row = await waitText('table[aria-label="Computed traits"] tbody tr', /Orders[\s\S]*Live/);
    expect(row.split('\t').map((cell) => cell.trim())).toEqual([
      'Orders',
      'orders',
      'users',
      'realtime',
      'Live',
      'None',
      expect.any(String),
    ]);
    await shot('11-computed-traits');
    // Its value, on the profile (reloaded until the backfill's write is read).
    await waitFor(
      async () => {
        await page.goto(`${base}/console/spaces/${fleet.spaceId}/profiles?id=user_id:ada`);
        await page.waitForSelector('section[aria-label="Computed traits"]');
        const text = await page.$eval('section[aria-label="Computed traits"]', (e: any) => e.innerText as string);
        return /orders\s+1/.test(text) || null;
      },
      { timeoutMs: 15000, description: 'the computed trait on the profile' },
    );

    await clickLink('Sources');
    const [source] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/sources`)).data.sources;
    expect(await waitText('[data-testid=write-key]', source.writeKey)).toBe(source.writeKey);
    await clickButton('Copy');
    // Headless chromium may refuse the clipboard: then the key is selected for the user to copy.
    expect(await waitText('article [role=status]', /Copied|Selected/)).toBeTruthy();
    await shot('12-sources');
  });

  it('edits the identity rules (a refused pattern named under its field) and issues a Profile API access token', async () => {
    await clickLink('Settings');
    await page.waitForSelector('#blocked-patterns');
    await page.click('#blocked-patterns');
    await page.keyboard.press('End');
    await page.keyboard.press('PageDown');
    await page.type('#blocked-patterns', '\n(a+)+$');
    await clickButton('Save identity rules');
    expect(await waitText('.field-error', '(a+)+$')).toMatch(/backtrack|nested/i);
    await shot('13-settings-refused-pattern');
    await replaceText('#blocked-patterns', '^[0-]*$\n^test-.*$');
    await clickButton('Save identity rules');
    await waitText('[role=status]', 'Saved');
    const rules = (await fleet.api('GET', `/spaces/${fleet.spaceId}/identity-rules`)).data.identityRules;
    expect(rules).toEqual(expect.objectContaining({ isDefault: false, blockedPatterns: ['^[0-]*$', '^test-.*$'] }));

    await page.type('#token-name', 'reader');
    await clickButton('Create token');
    const token = await waitText('[data-testid=new-token]', /\S/);
    // The token shown reads this space's profiles.
    const res = await fetch(`${base}/v1/spaces/${fleet.spaceId}/collections/users/profiles/user_id:ada/traits`, {
      headers: { authorization: `Basic ${Buffer.from(`${token}:`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    await clickButton('Revoke');
    await waitText('.panel p', 'No access tokens');
    await shot('14-settings');
  });

  it('creates a space from the spaces page and fits a phone-width screen', async () => {
    await page.goto(`${base}/console/spaces`);
    await waitText('table tbody', 'console');
    await page.type('#space-name', 'Staging');
    await page.click('form.inline-form button[type=submit]');
    await waitText('table tbody', 'Staging');
    await shot('15-spaces');

    await page.setViewport({ width: 390, height: 844 });
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
    await waitText('table[aria-label=Audiences] tbody', 'Buyers');
    // The page itself does not scroll sideways (wide tables scroll inside their frame).
    expect(await overflowsSideways()).toBe(false);
    await shot('16-audiences-phone');
  });

  it('creates a journey from its JSON (a refused one answered beside the form), lists it, opens it, publishes, pauses and resumes it', async () => {
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
    await waitText('table[aria-label=Audiences] tbody', 'Buyers');
    await clickLink('Journeys');
    expect(await waitText('.empty', 'No journeys')).toMatch(/publish it/);
    await clickButton('+ New journey');
    await page.waitForSelector('#journey-json');
    // Prefilled with the contract's example, pointed at this space's audience and first destination.
    const [audience] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences;
    const [hook] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/destinations`)).data.destinations;
    const prefilled = JSON.parse(await page.$eval('#journey-json', (e: any) => e.value as string));
    expect(prefilled).toEqual(
      expect.objectContaining({ key: 'first_purchase', entry: { audienceId: audience.id }, start: 'welcome', steps: expect.any(Array) }),
    );
    expect(prefilled.steps.map((s: any) => [s.id, s.type])).toEqual([
      ['welcome', 'send'],
      ['wait', 'wait'],
      ['bought', 'split'],
      ['thanks', 'send'],
      ['exit', 'exit'],
    ]);
    expect(prefilled.steps[0].destinations).toEqual([{ destinationId: hook.id, settings: { identify: true, track: true } }]);

    // A duration the API cannot read: its 422 names the step's field beside the form, nothing is created.
    const withWait = (duration: string) =>
      JSON.stringify({ ...prefilled, steps: prefilled.steps.map((s: any) => (s.id === 'wait' ? { ...s, duration } : s)) });
    await replaceText('#journey-json', withWait('3 fortnights'));
    await clickButton('Create journey');
    expect(await waitText('#journey-errors', 'steps.wait.duration')).toMatch(/3 fortnights[\s\S]*HTTP 422/);
    expect((await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys`)).data.journeys).toEqual([]);
    await shot('17-new-journey-refused');

    await replaceText('#journey-json', withWait('1 day'));
    await clickButton('Create journey');
    const row = await waitText('table[aria-label=Journeys] tbody tr', 'First Purchase');
    expect(row.split('\t').map((cell) => cell.trim())).toEqual(['First Purchase', 'first_purchase', 'Draft', '0', '0', expect.any(String)]);
    await waitText('[role=status]', 'Created First Purchase');
    await shot('18-journeys');

    await clickLink('First Purchase');
    await waitText('[data-testid=journey-status]', 'Draft');
    const [journey] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys`)).data.journeys;
    const steps = await waitFor(
      async () => {
        const rows = await page.$$eval('table[aria-label=Steps] tbody tr', (trs) => trs.map((tr: any) => tr.innerText as string));
        return rows.length === 5 ? rows.map((r) => r.split('\t').map((cell) => cell.trim())) : null;
      },
      { description: 'the five steps' },
    );
    // In flow order: what each step does, where it leads, users at it now and who reached it.
    expect(steps).toEqual([
      ['Opened Email welcome start', 'send', `Key ${journey.stepKeys.welcome}\nTo Hook (identify, track)`, '→ wait', '0', '0'],
      ['wait', 'wait', 'Wait 1 day', '→ bought', '0', '0'],
      ['bought', 'split', "If event('Order Completed').count() >= 1", 'true → thanks\nfalse → exit', '0', '0'],
      ['Thank You thanks', 'send', `Key ${journey.stepKeys.thanks}\nTo Hook (identify, track)`, '→ exit', '0', '0'],
      ['exit', 'exit', 'Leaves the journey', 'leaves', '0', '0'],
    ]);
    expect(journey.stepKeys.welcome).toMatch(/^j_o_first_purchase__opened_email_[a-z0-9]{6}$/);
    expect(await waitText('main .empty', 'Never published')).toBeTruthy();
    expect(await page.$eval('[data-testid=journey-versions]', (e: any) => e.innerText)).toBe('0');
    await shot('19-journey-draft');

    await clickButton('Publish');
    await waitText('[data-testid=journey-status]', 'Live');
    expect(await waitText('[data-testid=journey-action-result]', 'Published')).toBe('Published version 1: the journey is Live.');
    expect(await page.$eval('[data-testid=journey-versions]', (e: any) => e.innerText)).toBe('1');
    const version = await waitText('table[aria-label=Versions] tbody tr', /\d/);
    expect(version.split('\t').map((cell) => cell.trim())).toEqual(['1', expect.any(String), 'welcome', '5']);
    // Nothing left to publish: the draft is version 1.
    const publishDisabled = async () =>
      page.$$eval('button', (bs) => bs.filter((b: any) => b.textContent.trim() === 'Publish').map((b: any) => b.disabled as boolean));
    expect(await publishDisabled()).toEqual([true]);
    const published = (await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys/${journey.id}`)).data.journey;
    expect(published).toEqual(
      expect.objectContaining({ status: 'Live', draftChanged: false, versions: [expect.objectContaining({ version: 1 })] }),
    );
    await shot('20-journey-live');

    await clickButton('Pause');
    await waitText('[data-testid=journey-status]', 'Paused');
    await waitText('[data-testid=journey-action-result]', 'Paused');
    await clickButton('Resume');
    await waitText('[data-testid=journey-status]', 'Live');
    expect((await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys/${journey.id}`)).data.journey.status).toBe('Live');
    // The list shows it Live with its one version.
    await clickLink('← Journeys');
    const listed = await waitText('table[aria-label=Journeys] tbody tr', /First Purchase[\s\S]*Live/);
    expect(listed.split('\t').map((cell) => cell.trim())).toEqual([
      'First Purchase',
      'first_purchase',
      'Live',
      '1',
      '0',
      expect.any(String),
    ]);

    // Edit the draft on its page: a wait the API refuses is named under the text; a good one enables Publish, which makes version 2.
    await clickLink('First Purchase');
    await waitText('[data-testid=journey-status]', 'Live');
    await clickButton('Edit draft');
    await page.waitForSelector('#journey-draft-json');
    const draft = JSON.parse(await page.$eval('#journey-draft-json', (e: any) => e.value as string));
    expect(Object.keys(draft).sort()).toEqual(['entry', 'includeExistingMembers', 'name', 'reentry', 'start', 'steps']);
    const draftWith = (duration: string) =>
      JSON.stringify({ ...draft, steps: draft.steps.map((s: any) => (s.id === 'wait' ? { ...s, duration } : s)) });
    await replaceText('#journey-draft-json', draftWith('2 fortnights'));
    await clickButton('Save draft');
    expect(await waitText('#journey-draft-errors', 'steps.wait.duration')).toMatch(/2 fortnights[\s\S]*HTTP 422/);
    await replaceText('#journey-draft-json', draftWith('2 days'));
    await clickButton('Save draft');
    expect(await waitText('[data-testid=journey-draft-saved]', 'Saved')).toBe('Saved the draft: publish to make it version 2.');
    await waitText('table[aria-label=Steps] tbody', 'Wait 2 days');
    expect(await publishDisabled()).toEqual([false]);
    expect((await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys/${journey.id}`)).data.journey).toEqual(
      expect.objectContaining({ draftChanged: true, versions: [expect.objectContaining({ version: 1 })] }),
    );
    await shot('20-journey-draft-edited');
    await clickButton('Publish');
    expect(await waitText('[data-testid=journey-action-result]', 'Published')).toBe('Published version 2: the journey is Live.');
    expect(await page.$eval('[data-testid=journey-versions]', (e: any) => e.innerText)).toBe('2');
    expect(await publishDisabled()).toEqual([true]);
    const republished = (await fleet.api('GET', `/spaces/${fleet.spaceId}/journeys/${journey.id}`)).data.journey;
    expect(republished).toEqual(expect.objectContaining({ status: 'Live', draftChanged: false }));
    expect(republished.versions.map((v: any) => v.version)).toEqual([1, 2]);
    expect(republished.versions[1].steps.find((s: any) => s.id === 'wait').duration).toBe('2 days');

    // At a phone's width the journey page does not scroll sideways (its tables scroll inside their frames).
    await page.setViewport({ width: 390, height: 844 });
    await page.reload();
    await waitText('table[aria-label=Steps] tbody', 'Wait 2 days');
    expect(await overflowsSideways()).toBe(false);
    await shot('20-journey-phone');
    await page.setViewport({ width: 1280, height: 900 });
  });

  it('signs out and in again, and moves between pages, with the keyboard only', async () => {
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
    await waitText('table[aria-label=Audiences] tbody', 'Buyers');
    // The first Tab stop skips the header to the page.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.textContent')).toBe('Skip to content');
    await tabTo('Sign out');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#token');
    expect(await page.evaluate('document.activeElement.id')).toBe('token');
    await page.keyboard.type(fleet.env.CONTROL_PLANE_TOKEN!);
    await tabTo('Sign in', 5);
    await page.keyboard.press('Enter');
    // Signed in again: the spaces; this space's link, then its Journeys from the nav.
    const spaceName: string = (await fleet.api('GET', `/spaces/${fleet.spaceId}`)).data.space.name;
    await waitText('table tbody', spaceName);
    await tabTo(spaceName);
    await page.keyboard.press('Enter');
    await waitText('table[aria-label=Audiences] tbody', 'Buyers');
    await tabTo('Journeys');
    await page.keyboard.press('Enter');
    await waitText('table[aria-label=Journeys] tbody', 'First Purchase');
    expect(new URL(page.url()).pathname).toBe(`/console/spaces/${fleet.spaceId}/journeys`);
    // Into the table from the nav, and Enter opens the row's link.
    await tabTo('First Purchase');
    await page.keyboard.press('Enter');
    await waitText('[data-testid=journey-status]', 'Live');
    await shot('26-keyboard-journey');
  });

  it("sends a test identify from a destination's page and shows the request, the receiver's 200 and the duration; a refused connection shows its error; a list destination's add", async () => {
    const dest = (
      await fleet.api('POST', `/spaces/${fleet.spaceId}/destinations`, {
        name: 'Receiver',
        type: 'webhook',
        settings: { url: `${receiver.url}/hook` },
        enabled: true,
      })
    ).data.destination;
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/destinations/${dest.id}`);
    await page.waitForSelector('#test-user-id');
    await page.type('#test-user-id', 'tester-1');
    await replaceText('#test-payload', '{"plan": "pro"}');
    await clickButton('Send test event');
    expect(await waitText('[data-testid=test-response-status]', /\d/)).toBe('200');
    expect(receiver.requests).toHaveLength(1);
    const arrived = receiver.requests[0]!;
    expect(arrived.body).toEqual(
      expect.objectContaining({ type: 'identify', userId: 'tester-1', traits: expect.objectContaining({ plan: 'pro' }) }),
    );
    expect(await page.$eval('[data-testid=test-request-line]', (e: any) => e.innerText)).toBe(`POST ${receiver.url}/hook`);
    // The body shown is the body the receiver got.
    const shownBody = await page.$eval('pre[aria-label="Request body"]', (e: any) => e.innerText as string);
    expect(JSON.parse(shownBody)).toEqual(arrived.body);
    expect(await waitText('table[aria-label="Request headers"]', 'content-type')).toMatch(/application\/json/);
    expect(await waitText('table[aria-label="Response headers"]', 'x-receiver')).toMatch(/x-receiver\s+yes/);
    expect(JSON.parse(await page.$eval('pre[aria-label="Response body"]', (e: any) => e.innerText as string))).toEqual({ ok: true });
    expect(await page.$eval('[data-testid=test-duration]', (e: any) => e.innerText)).toMatch(/^Answered in \d+ ms$/);
    await shot('21-event-tester');

    // A track to the destination at 127.0.0.1:9, where nothing listens: the error, no response.
    const [hook] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/destinations`)).data.destinations.filter(
      (d: any) => d.name === 'Hook',
    );
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/destinations/${hook.id}`);
    await page.waitForSelector('#test-user-id');
    await clickLabel('track');
    await clickButton('Send test event');
    expect(await waitText('[data-testid=test-error]', /\S/)).toMatch(/network error/);
    expect(await page.$eval('[data-testid=test-duration]', (e: any) => e.innerText)).toMatch(/^Failed in \d+ ms$/);
    expect(await page.$('[data-testid=test-response-status]')).toBeNull();
    await shot('22-event-tester-error');

    // A list destination takes no call type: its test adds the user to a test audience, shown with what was sent.
    const list = (
      await fleet.api('POST', `/spaces/${fleet.spaceId}/destinations`, {
        name: 'Receiver list',
        type: 'list-webhook',
        settings: { url: `${receiver.url}/list` },
        enabled: true,
      })
    ).data.destination;
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/destinations/${list.id}`);
    await page.waitForSelector('#test-user-id');
    expect(await page.$('input[name=test-type]')).toBeNull();
    await page.type('#test-user-id', 'tester-2');
    await clickButton('Send test event');
    expect(await waitText('[data-testid=test-response-status]', /\d/)).toBe('200');
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.requests[1]!.body).toEqual({
      audience_key: 'event_tester',
      audience_id: 'event_tester',
      add: ['tester-2'],
      remove: [],
    });
    expect(await page.$eval('[data-testid=test-list-sent]', (e: any) => e.innerText)).toBe('user_id: tester-2');
    expect(JSON.parse(await page.$eval('pre[aria-label="Request body"]', (e: any) => e.innerText as string))).toEqual(
      receiver.requests[1]!.body,
    );
    await shot('23-event-tester-list');
  });

  it("shows a backfill's progress and a running sync as progress bars, from the API's answers", async () => {
    // NOTE: a backfill of one profile ends before a page can see it run, so the API's answers are
    // rewritten in the browser (request interception): the audience Computing at 40%, its connection Syncing.
    const listPath = `/spaces/${fleet.spaceId}/audiences`;
    const list = await fleet.api('GET', listPath);
    const [audience] = list.data.audiences;
    const computing = { ...audience, status: 'Computing', progress: 0.4 };
    const one = await fleet.api('GET', `${listPath}/${audience.id}`);
    const connections = await fleet.api('GET', `${listPath}/${audience.id}/destinations`);
    const syncing = connections.data.connections.map((c: any) => ({ ...c, syncStatus: { ...c.syncStatus, state: 'Syncing', sent: 7 } }));
    const answers: Record<string, unknown> = {
      [listPath]: { ...list, data: { ...list.data, audiences: [computing] } },
      [`${listPath}/${audience.id}`]: { ...one, data: { ...one.data, audience: computing } },
      [`${listPath}/${audience.id}/destinations`]: { ...connections, data: { ...connections.data, connections: syncing } },
    };
    const rewrite = (req: any) => {
      const answer = req.method() === 'GET' ? answers[new URL(req.url()).pathname] : undefined;
      if (answer) void req.respond({ status: 200, contentType: 'application/json', body: JSON.stringify(answer) });
      else void req.continue();
    };
    await page.setRequestInterception(true);
    page.on('request', rewrite);
    try {
      await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
      const row = await waitText('table[aria-label=Audiences] tbody tr', /Buyers[\s\S]*Computing/);
      expect(row).toContain('40%');
      // Polled: a Computing audience is refetched every second, and the row may re-render between two looks.
      const bar = await waitFor(
        () =>
          page.$$eval(`progress[aria-label="Buyers backfill progress"]`, (els: any[]) =>
            els.length === 1 ? [els[0].max, els[0].value] : null,
          ),
        { timeoutMs: 15000, description: 'the Buyers backfill progress bar' },
      );
      expect(bar).toEqual([1, 0.4]);
      await shot('24-audiences-computing');
      await clickLink('Buyers');
      await waitText('[data-testid=progress-percent]', '40%');
      const sync = await waitText('table[aria-label="Connected destinations"] tbody tr', 'Syncing');
      expect(sync).toMatch(/Syncing\s+7 sent so far/);
      // Indeterminate: the API gives no figure of what is left to send.
      // Polled: a refetch (every 5 s) may re-render the row between the look above and this one.
      const indeterminate = await waitFor(
        () =>
          page.$$eval('progress[aria-label="Hook sync in progress"]', (els: any[]) =>
            els.length === 1 ? !els[0].hasAttribute('value') : null,
          ),
        { timeoutMs: 15000, description: 'the Hook sync progress bar' },
      );
      expect(indeterminate).toBe(true);
      await shot('25-audience-syncing');
    } finally {
      page.off('request', rewrite);
      await page.setRequestInterception(false);
    }
  });

  it("charts the audience's size and the destination's deliveries over time, at 1280 px and phone width", async () => {
    const [audience] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences`)).data.audiences;
    const hook = (await fleet.api('GET', `/spaces/${fleet.spaceId}/destinations`)).data.destinations.find((d: any) => d.name === 'Hook');
    // No dispatcher runs in this fleet and the event tester's calls are not deliveries: an empty chart says what to do.
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/destinations/${hook.id}`);
    expect(await waitText('[data-testid=delivery-history] .empty', 'No calls')).toMatch(/Connect an audience/);
    expect(await page.$('[data-testid=delivery-history] canvas')).toBeNull();
    await shot('26-destination-deliveries-empty');

    // Counts as a dispatcher's flush writes them (the keyspace module's writer, into the fleet's Redis).
    const redis = createRedis({ url: fleet.env.REDIS_URL! });
    try {
      const history = new HistoryStore({ keyPrefix: fleet.env.REDIS_KEY_PREFIX! }, { redis });
      const now = Date.now();
      await history.addDeliveries(hook.id, [
        { at: now - 3 * 60_000, outcome: 'sent', n: 5 },
        { at: now - 2 * 60_000, outcome: 'throttled', n: 2 },
        { at: now - 60_000, outcome: 'failed', n: 1 },
        { at: now, outcome: 'dead_lettered', n: 1 },
        { at: now, outcome: 'sent', n: 3 },
      ]);
    } finally {
      redis.disconnect();
    }
    await page.reload();
    expect(await waitText('[data-testid=delivery-history-summary]', 'sent')).toBe(
      'Calls per minute, in total: 8 sent, 1 failed, 2 throttled, 1 dead-lettered',
    );
    // The lines are drawn: pixels of the Sent series' green on the canvas.
    await waitFor(async () => (await strokePixels('delivery-history', [0x1b, 0x7a, 0x3d])) > 20 || null, {
      description: 'the Sent line drawn',
    });
    expect(await page.$eval('[data-testid=delivery-history] .u-legend', (e: any) => e.innerText as string)).toMatch(
      /Sent[\s\S]*Failed[\s\S]*Throttled[\s\S]*Dead-lettered/,
    );
    await shot('27-destination-deliveries-chart');

    // The audience's size, sampled by the batch scheduler since the audience was created: points of size 1.
    const sizes = await waitFor(
      async () => {
        const h = await fleet.api('GET', `/spaces/${fleet.spaceId}/audiences/${audience.id}/size-history`);
        return h.data.points.some((p: any) => p.size === 1) ? h.data.points : null;
      },
      { description: 'a size point of 1' },
    );
    expect(sizes.length).toBeGreaterThan(0);
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences/${audience.id}`);
    expect(await waitText('[data-testid=size-history-summary]', 'latest 1 at')).toMatch(/^\d+ points?; latest 1 at /);
    await waitFor(async () => (await strokePixels('size-history', [0x22, 0x55, 0xcc])) > 20 || null, {
      description: 'the size line drawn',
    });
    await shot('28-audience-size-chart');
    // A range with no points yet (the hourly tier of the last 30 days holds this hour's): still a chart, or the empty state, never an error.
    await clickButton('7 days');
    await waitFor(
      async () => (await page.$eval('[data-testid=size-history]', (e: any) => e.innerText as string)).match(/hourly|No size/) ?? null,
      {
        description: 'the 7-day range answered',
      },
    );

    // A phone-width screen: the charts take the width, the page does not scroll sideways.
    await page.setViewport({ width: 390, height: 844 });
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences/${audience.id}`);
    await waitText('[data-testid=size-history-summary]', 'latest 1 at');
    await waitFor(async () => (await strokePixels('size-history', [0x22, 0x55, 0xcc])) > 20 || null, {
      description: 'the size line drawn',
    });
    expect(
      await page.$eval('[data-testid=size-history] canvas', (e: any) => e.getBoundingClientRect().right as number),
    ).toBeLessThanOrEqual(390);
    expect(await overflowsSideways()).toBe(false);
    await shot('29-audience-size-chart-phone');
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/destinations/${hook.id}`);
    await waitText('[data-testid=delivery-history-summary]', '8 sent');
    expect(await overflowsSideways()).toBe(false);
    await shot('30-destination-deliveries-chart-phone');
    await page.setViewport({ width: 1280, height: 900 });

    // A computed trait's page has its size chart too: the profiles with a value (the fleet's one profile has an order count).
    const [trait] = (await fleet.api('GET', `/spaces/${fleet.spaceId}/computed-traits`)).data.computedTraits;
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/computed-traits/${trait.id}`);
    expect(await waitText('[data-testid=size-history-summary]', 'latest 1 at')).toMatch(/^\d+ points?; latest 1 at /);
    expect((await fleet.api('GET', `/spaces/${fleet.spaceId}/computed-traits/${trait.id}`)).data.computedTrait.size).toBe(1);
    await shot('31-computed-trait-size');
  });

  it('logged no error in the browser console', () => {
    // The answers the tests provoke: the refused login's 401, the unknown profile's 404, the refused destination host's 422.
    expect(browserErrors.filter((e) => !/status of (401|404|422)/.test(e))).toEqual([]);
  });
});

// The operator console in a real browser: Debian's chromium driven by
// puppeteer-core (no browser download; .ci/run installs the package), against
// the control plane and realtime evaluator as processes on the real
// infrastructure, serving the console's build at /console/.
// Screenshots of every page go to test/out/console/ (git-ignored). Browser-side
// code is passed as strings where it names DOM globals (the tests' tsconfig has no DOM types).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { waitFor } from '@engage/testing';
import { startFleet, type Fleet } from './helpers/evaluation-fleet';

const SHOTS = path.join(__dirname, 'out', 'console');
let fleet: Fleet;
let browser: Browser;
let page: Page;
let base: string;
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
  fleet = await startFleet('console', { services: ['control-plane', 'realtime-evaluator'] });
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
});

describe('operator console', () => {
  it('signs in with the admin token, creates an audience from a typed query after its preview, and lists it', async () => {
    // One profile that the audience will match, stored by the evaluator.
    const ids = [
      { type: 'user_id', id: 'ada', collection: 'users', encoding: 'none' },
      { type: 'email', id: 'ada@example.com', collection: 'users', encoding: 'none' },
    ];
    await fleet.send([
      fleet.event('pro_ada', { user_id: 'ada', type: 'identify', event: null, traits_json: '{"plan":"pro"}', external_ids: ids }),
      fleet.event('pro_ada', { user_id: 'ada', external_ids: ids }),
    ]);
    const definition = { query: "event('Order Completed').count() >= 1", type: 'users' };
    await waitFor(async () => (await fleet.api('POST', `/spaces/${fleet.spaceId}/audiences/preview`, { definition })).data?.size === 1, {
      description: 'the evaluator stored the profile',
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
    await page.click('button[type=submit]');
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

  it('creates a space from the spaces page and fits a phone-width screen', async () => {
    await page.goto(`${base}/console/spaces`);
    await waitText('table tbody', 'console');
    await page.type('#space-name', 'Staging');
    await page.click('form.inline-form button[type=submit]');
    await waitText('table tbody', 'Staging');
    await shot('06-spaces');

    await page.setViewport({ width: 390, height: 844 });
    await page.goto(`${base}/console/spaces/${fleet.spaceId}/audiences`);
    await waitText('table[aria-label=Audiences] tbody', 'Buyers');
    // The page itself does not scroll sideways (wide tables scroll inside their frame).
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await shot('07-audiences-phone');
  });

  it('logged no error in the browser console', () => {
    // The refused login's 401 is the one expected network error.
    expect(browserErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });
});

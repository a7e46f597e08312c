// `npx engage apply|export`: argument parsing and output. Returns the exit
// code (0 ok, 1 failed, 2 usage) instead of exiting, so tests can call it.
import { readFile, writeFile } from 'node:fs/promises';
import { ControlPlaneClient, ControlPlaneError } from './api-client';
import { ApplyError, applySpace, exportSpace } from './apply';
import { formatCatalog, formatCatalogEntry, type CatalogEntry } from './catalog';
import { SpaceFileError } from './space-file';
import { accepted, formatTestResult, type TestResult } from './test-destination';

/** A flag's JSON object value, or a usage error naming the flag. */
function jsonObject(flag: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag}: not JSON: '${text}'`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${flag} must be a JSON object`);
  return value as Record<string, unknown>;
}

export const USAGE = `usage:
  engage apply -f <space.yaml|space.json|-> [--space <spaceId>] [--dry-run] [--prune]
  engage export --space <spaceId> [--format yaml|json] [-o <file>]
  engage query check "<query>" [--type users|accounts|trait]
  engage catalog [<slug>]
  engage test-destination --space <spaceId> --destination <id> [--type identify|track]
         [--user-id <id>] [--traits <json>] [--properties <json>] [--computation-key <key>] [--json]
options (apply, export, catalog, test-destination):
  --url <url>      control plane URL (env CONTROL_PLANE_URL, default http://127.0.0.1:8088)
  --token <token>  bearer token (env CONTROL_PLANE_TOKEN)
apply creates or updates the space and everything in the file; --prune also
deletes what the space holds and the file does not (keys stay used forever).
catalog lists the Actions destinations (type actions) the control plane offers;
with a slug, that destination's settings, actions and presets.
test-destination sends one identify or track to a destination as it would
receive it and prints the request and the answer; exit 0 only on a 2xx answer.
`;

export interface CliIo {
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Reads a file, or stdin for "-". */
  read?: (path: string) => Promise<string>;
}

class UsageError extends Error {}

function parseFlags(args: string[], spec: Record<string, 'value' | 'bool'>): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const kind = spec[flag];
    if (!kind) throw new UsageError(`unknown argument '${arg}'`);
    if (kind === 'bool') out[flag] = true;
    else {
      const value = inline ?? args[++i];
      if (value === undefined || value === '') throw new UsageError(`${flag} needs a value`);
      out[flag] = value;
    }
  }
  return out;
}

function clientFrom(flags: Record<string, string | boolean>, env: CliIo['env']): ControlPlaneClient {
  const url = (flags['--url'] as string | undefined) ?? env.CONTROL_PLANE_URL ?? `http://127.0.0.1:${env.CONTROL_PLANE_PORT ?? '8088'}`;
  const token = (flags['--token'] as string | undefined) ?? env.CONTROL_PLANE_TOKEN;
  if (!token) throw new UsageError('no token: pass --token or set CONTROL_PLANE_TOKEN');
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UsageError(`--url: not an http(s) URL: '${url}'`);
  return new ControlPlaneClient({ url, token });
}

async function readInput(path: string): Promise<string> {
  if (path !== '-') return readFile(path, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (command === 'apply') {
      const flags = parseFlags(args, {
        '-f': 'value',
        '--file': 'value',
        '--space': 'value',
        '--url': 'value',
        '--token': 'value',
        '--dry-run': 'bool',
        '--prune': 'bool',
      });
      const path = (flags['-f'] ?? flags['--file']) as string | undefined;
      if (!path) throw new UsageError('apply needs -f <file> (or -f - for stdin)');
      const client = clientFrom(flags, io.env);
      let text: string;
      try {
        text = await (io.read ?? readInput)(path);
      } catch (err) {
        io.err(`engage apply: cannot read ${path}: ${(err as Error).message}\n`);
        return 1;
      }
      const result = await applySpace(client, text, {
        source: path,
        spaceId: flags['--space'] as string | undefined,
        dryRun: flags['--dry-run'] === true,
        prune: flags['--prune'] === true,
      });
      for (const line of result.lines) io.out(`${line}\n`);
      const counts = (['create', 'update', 'delete'] as const).map((op) => result.plan.steps.filter((s) => s.op === op).length);
      if (!result.changed)
        io.out(`no changes: space ${result.spaceId} already matches ${path} (${result.plan.unchanged} objects unchanged)\n`);
      else {
        const verb = flags['--dry-run'] ? 'would apply' : 'applied';
        io.out(
          `${verb} to space ${result.spaceId || '(new)'}: ${counts[0]} created, ${counts[1]} updated, ${counts[2]} deleted, ${result.plan.unchanged} unchanged\n`,
        );
      }
      return 0;
    }
    if (command === 'export') {
      const flags = parseFlags(args, {
        '--space': 'value',
        '--format': 'value',
        '-o': 'value',
        '--output': 'value',
        '--url': 'value',
        '--token': 'value',
      });
      const spaceId = flags['--space'] as string | undefined;
      if (!spaceId) throw new UsageError('export needs --space <spaceId>');
      const output = (flags['-o'] ?? flags['--output']) as string | undefined;
      const format = (flags['--format'] as string | undefined) ?? (output?.endsWith('.json') ? 'json' : 'yaml');
      if (format !== 'yaml' && format !== 'json') throw new UsageError(`--format must be yaml or json, got '${format}'`);
      const { text, skipped } = await exportSpace(clientFrom(flags, io.env), spaceId, format);
      for (const s of skipped) io.err(`engage export: left out ${s}\n`);
      if (output) await writeFile(output, text);
      else io.out(text);
      return 0;
    }
    if (command === 'catalog') {
      const slug = args[0] !== undefined && !args[0].startsWith('--') ? args[0] : undefined;
      const flags = parseFlags(slug === undefined ? args : args.slice(1), { '--url': 'value', '--token': 'value' });
      const client = clientFrom(flags, io.env);
      if (slug === undefined) {
        const { destinations } = await client.request<{ destinations: CatalogEntry[] }>('GET', '/catalog/destinations');
        io.out(formatCatalog(destinations));
      } else {
        const { destination } = await client.request<{ destination: CatalogEntry }>(
          'GET',
          `/catalog/destinations/${encodeURIComponent(slug)}`,
        );
        io.out(formatCatalogEntry(destination));
      }
      return 0;
    }
    if (command === 'test-destination') {
      const flags = parseFlags(args, {
        '--space': 'value',
        '--destination': 'value',
        '--type': 'value',
        '--user-id': 'value',
        '--traits': 'value',
        '--properties': 'value',
        '--computation-key': 'value',
        '--json': 'bool',
        '--url': 'value',
        '--token': 'value',
      });
      const spaceId = flags['--space'] as string | undefined;
      const destinationId = flags['--destination'] as string | undefined;
      if (!spaceId || !destinationId) throw new UsageError('test-destination needs --space <spaceId> and --destination <id>');
      // Optional for list destinations (they get an add); the control plane answers 400 when an event destination needs it.
      const type = flags['--type'] as string | undefined;
      if (type !== undefined && type !== 'identify' && type !== 'track')
        throw new UsageError(`--type must be identify or track, got '${type}'`);
      const body = {
        type,
        userId: flags['--user-id'] as string | undefined,
        traits: jsonObject('--traits', flags['--traits'] as string | undefined),
        properties: jsonObject('--properties', flags['--properties'] as string | undefined),
        computationKey: flags['--computation-key'] as string | undefined,
      };
      const result = await clientFrom(flags, io.env).request<TestResult>(
        'POST',
        `/spaces/${encodeURIComponent(spaceId)}/destinations/${encodeURIComponent(destinationId)}/test`,
        JSON.parse(JSON.stringify(body)),
      );
      io.out(flags['--json'] ? `${JSON.stringify(result, null, 2)}\n` : formatTestResult(result));
      return accepted(result) ? 0 : 1;
    }
    throw new UsageError(command ? `unknown command '${command}'` : 'no command');
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`engage: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof SpaceFileError) io.err(`engage ${command}: invalid space file:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
    else if (err instanceof ApplyError) {
      for (const line of err.done) io.out(`${line}\n`);
      io.err(`engage ${command}: ${err.message}\n`);
    } else if (err instanceof ControlPlaneError) io.err(`engage ${command}: ${err.message}\n`);
    else throw err;
    return 1;
  }
}

// `engage query check "<query>" [--type users|accounts|trait]`: prints the
// normalised query (exit 0) or `line:column: message` (exit 1); usage errors exit 2.
import type { QueryType } from './ast';
import { parseQuery } from './parser';
import { printQuery } from './printer';
import { QueryError } from './query-error';

export interface CommandResult {
  exitCode: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

const USAGE = 'usage: engage query check "<query>" [--type users|accounts|trait]\n';

export function queryCheckCommand(argv: string[]): CommandResult {
  const args = [...argv];
  if (args[0] === 'query') args.shift();
  if (args[0] !== 'check') return { exitCode: 2, stdout: '', stderr: USAGE };
  args.shift();
  let type: QueryType = 'users';
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--type' || a.startsWith('--type=')) {
      const v = a.includes('=') ? a.slice(7) : args[++i];
      if (v !== 'users' && v !== 'accounts' && v !== 'trait')
        return { exitCode: 2, stdout: '', stderr: `--type must be users, accounts or trait\n${USAGE}` };
      type = v;
    } else rest.push(a);
  }
  if (rest.length !== 1) return { exitCode: 2, stdout: '', stderr: USAGE };
  try {
    return { exitCode: 0, stdout: `${printQuery(parseQuery(rest[0]!, { type }))}\n`, stderr: '' };
  } catch (err) {
    if (err instanceof QueryError) return { exitCode: 1, stdout: '', stderr: `${err.format()}\n` };
    throw err;
  }
}

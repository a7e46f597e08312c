// Parses (without running) every plain JavaScript file outside the TypeScript
// build: the benches and these scripts. tsc never sees them, so a syntax error
// there would otherwise surface only when someone runs the bench (it did once:
// a quote inside a quoted string broke `npm run bench -- e2e` for a whole stop).
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const files = ['bench', 'scripts', 'test/setup'].flatMap((dir) =>
  readdirSync(path.join(root, dir))
    .filter((f) => /\.(mjs|js)$/.test(f))
    .map((f) => path.join(dir, f)),
);
let failed = 0;
for (const file of files) {
  try {
    execFileSync(process.execPath, ['--check', path.join(root, file)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    failed++;
    process.stderr.write(`[check-syntax] ${file} does not parse:\n${err.stderr}\n`);
  }
}
if (failed > 0) process.exit(1);
console.log(`[check-syntax] ${files.length} script files parse`);

#!/usr/bin/env node
// `npx engage <command>`: operator and CI tooling.
//   engage query check "<query>" [--type users|accounts|trait]
const path = require('node:path');

const [command, ...rest] = process.argv.slice(2);
if (command === 'query') {
  const { queryCheckCommand } = require('@engage/engine/dist/cli.js');
  const result = queryCheckCommand(rest);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exit(result.exitCode);
}
process.stderr.write('usage: engage query check "<query>" [--type users|accounts|trait]\n');
process.exit(2);

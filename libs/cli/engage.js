#!/usr/bin/env node
// `npx engage <command>`: operator and CI tooling.
//   engage apply -f space.yaml | engage export --space <id>   (libs/cli/src, built to dist/)
//   engage query check "<query>" [--type users|accounts|trait]
//   engage catalog [slug]                                     (the control plane's Actions destinations)
const [command, ...rest] = process.argv.slice(2);
if (command === 'query') {
  const { queryCheckCommand } = require('@engage/engine/dist/cli.js');
  const result = queryCheckCommand(rest);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exit(result.exitCode);
}
let cli;
try {
  cli = require('./dist/main.js');
} catch (err) {
  if (err && err.code !== 'MODULE_NOT_FOUND') throw err;
  process.stderr.write('engage: libs/cli is not built yet: run `npm run build` first\n');
  process.exit(1);
}
const { runCli, USAGE } = cli;
if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(USAGE);
  process.exit(command === undefined ? 2 : 0);
}
runCli(process.argv.slice(2), { env: process.env, out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`engage: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);

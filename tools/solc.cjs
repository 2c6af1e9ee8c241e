// Offline solc for forge: answers `--version` and `--standard-json` (input on stdin) with solcjs.
// forge inlines every source, so the import callback only serves stragglers from disk.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('tools/solc supports only --version and --standard-json\n');
  process.exit(1);
}
const allowed = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--allow-paths' || args[i] === '--base-path' || args[i] === '--include-path') {
    for (const p of String(args[i + 1] ?? '').split(',')) if (p) allowed.push(p);
  }
}
const input = fs.readFileSync(0, 'utf8');
const findImports = (p) => {
  for (const base of ['', ...allowed]) {
    const full = path.resolve(base, p);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
  }
  return { error: `File not found: ${p}` };
};
process.stdout.write(solc.compile(input, { import: findImports }));

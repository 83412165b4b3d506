// Installs the project's dependencies when they are missing or out of date.
// Runs before `npm start` and `npm test`, on whatever Node the machine has
// (plain JavaScript, no dependencies), so a fresh clone needs no other step.
// The dependencies include the `node` package: npm scripts then run on that
// Node (node_modules/.bin comes first on their PATH), whatever the system has.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
const nodeBinary = join(root, 'node_modules', '.bin', 'node');

function upToDate() {
  if (!existsSync(installed) || !existsSync(nodeBinary)) return false;
  if (statSync(lock).mtimeMs > statSync(installed).mtimeMs) {
    // A checkout touches the lock file; compare what it says, not when it changed.
    const wanted = JSON.parse(readFileSync(lock, 'utf8')).packages ?? {};
    const have = JSON.parse(readFileSync(installed, 'utf8')).packages ?? {};
    return Object.entries(wanted).every(([path, meta]) => path === '' || have[path]?.version === meta.version);
  }
  return true;
}

if (!upToDate()) {
  process.stderr.write('mabeam: installing dependencies (npm ci)…\n');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
}

// Builds dist/ for the package (`npm pack` runs it): the sources compiled
// to JavaScript with type declarations, and the live view's static files
// beside them. The repository itself runs src/ as it is.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
cpSync(join(root, 'src', 'view', 'public'), join(dist, 'view', 'public'), { recursive: true });
process.stderr.write(`mabeam: built ${dist}\n`);

/**
 * Start times of the embedded local stack.
 *
 *   node bench/stack-start.ts            (from the repo, after `npm ci`)
 *
 * cold   — empty project cache and an empty Maven repository: everything is
 *          downloaded from Maven Central, as on a machine that never ran it
 * fetch  — empty project cache, Maven's repository warm (copy + unpack only)
 * warm   — cached artifacts, new data folders (what a test run does)
 * reuse  — the stack is already running (what a second `mabeam dev up` does)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { startStack, stopStack, type StartedStack } from '../src/stack/index.ts';

silenceKafkajsTimerWarnings();
const rows: string[][] = [['case', 'total ms', 'phases (ms)']];
const scratch = await mkdtemp(join(tmpdir(), 'mabeam-bench-'));

async function measure(label: string, options: Parameters<typeof startStack>[0], keep = false): Promise<StartedStack> {
  const started = await startStack({ ephemeral: true, ...options, env: {} });
  const { total, ...phases } = started.report.timings;
  rows.push([label, String(total), Object.entries(phases).map(([k, v]) => `${k} ${v}`).join(', ')]);
  process.stderr.write(`${label}: ${total} ms\n`);
  if (!keep) await stopStack(started.state);
  return started;
}

try {
  const skipCold = process.argv.includes('--no-download');
  if (!skipCold) await measure('cold', { name: 'bench-cold', cacheDir: join(scratch, 'cold-cache'), mavenRepository: join(scratch, 'm2') });
  const cacheDir = join(scratch, 'cache');
  await measure('fetch', { name: 'bench-fetch', cacheDir });
  for (let i = 1; i <= 3; i++) await measure(`warm #${i}`, { name: 'bench-warm', cacheDir });
  const running = await measure('warm (kept)', { name: 'bench-reuse', cacheDir }, true);
  await measure('reuse', { name: 'bench-reuse', cacheDir, stateDir: running.state.dir }, true);
  await stopStack(running.state);
} finally {
  await rm(scratch, { recursive: true, force: true });
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n'));

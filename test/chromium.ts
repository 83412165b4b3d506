import { spawn } from 'node:child_process';
import { access, constants, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where Debian's `chromium` package puts the browser: browser tests drive it through playwright-core (never `playwright install`). */
export const chromiumPath = '/usr/bin/chromium';

const install = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium';

/**
 * Where an install started for this test run says how it ended: the file
 * holds apt's exit code and the tail of its output once it is over. One per
 * run (the run's process id), so test processes find the install their run
 * started instead of starting another (dpkg takes one at a time).
 */
export function installMarker(runId: number): string {
  return join(tmpdir(), `mabeam-chromium-install-${runId}.done`);
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false);
}

/**
 * Starts installing Debian's chromium in the background when it is missing
 * (CI machines start clean: Debian, as root), so the install overlaps the
 * tests that do not need it; `ensureChromium` waits for it. Resolves at once.
 */
export async function startChromiumInstall(runId: number): Promise<void> {
  if (await executable(chromiumPath)) return;
  if (process.getuid?.() !== 0 || !(await executable('/usr/bin/apt-get'))) return;
  const marker = installMarker(runId);
  await rm(marker, { force: true });
  process.stderr.write(`Chromium is not at ${chromiumPath}: installing it in the background (${install})\n`);
  const child = spawn('sh', ['-c', `(${install}) > ${marker}.log 2>&1; code=$?; tail -n 5 ${marker}.log > ${marker}.tail; { echo $code; cat ${marker}.tail; } > ${marker}.tmp; mv ${marker}.tmp ${marker}`], { detached: true, stdio: 'ignore' });
  child.unref();
}

/**
 * The path of a Chromium to launch: /usr/bin/chromium — waiting for the
 * install this run started (`runId`, see startChromiumInstall), or
 * installing it with apt here when none was started. Fails with what to do
 * when it is missing and cannot be installed here.
 */
export async function ensureChromium(runId?: number): Promise<string> {
  if (await executable(chromiumPath)) return chromiumPath;
  if (runId !== undefined) {
    const marker = installMarker(runId);
    const started = await access(`${marker}.log`).then(() => true, () => false);
    if (started) {
      const deadline = Date.now() + 15 * 60_000;
      while (Date.now() < deadline) {
        const done = await readFile(marker, 'utf8').catch(() => undefined);
        if (done !== undefined) {
          if (await executable(chromiumPath)) return chromiumPath;
          throw new Error(`Chromium is not installed at ${chromiumPath}: installing it (${install}) failed with code ${done.split('\n')[0]}:\n${done.split('\n').slice(1).join('\n')}`);
        }
        await sleep(500);
      }
      throw new Error(`Chromium is not installed at ${chromiumPath}: the install started for this run (${install}) did not end within 15 minutes`);
    }
  }
  return installHere();
}

async function installHere(): Promise<string> {
  const root = process.getuid?.() === 0;
  const apt = await executable('/usr/bin/apt-get');
  if (!root || !apt) {
    throw new Error(`Chromium is not installed at ${chromiumPath}, and it cannot be installed here (${!apt ? 'no apt-get: not a Debian-like system' : 'not running as root'}). Install Debian's chromium package as root: ${install}`);
  }
  process.stderr.write(`Chromium is not at ${chromiumPath}: installing it (${install})\n`);
  const code = await new Promise<number | null>((resolve) => spawn('sh', ['-c', install], { stdio: 'ignore' }).once('close', resolve));
  if (code !== 0 || !(await executable(chromiumPath))) throw new Error(`Chromium is not installed at ${chromiumPath}, and installing it (${install}) failed with code ${code}`);
  return chromiumPath;
}

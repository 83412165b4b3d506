import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { promisify } from 'node:util';

/** Where Debian's `chromium` package puts the browser: browser tests drive it through playwright-core (never `playwright install`). */
export const chromiumPath = '/usr/bin/chromium';

const install = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium';

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(() => true, () => false);
}

let found: Promise<string> | undefined;

/**
 * The path of a Chromium to launch: /usr/bin/chromium, installed with apt
 * first when it is missing (CI machines start clean: Debian, as root). Fails
 * with what to do when it is missing and cannot be installed here.
 */
export function ensureChromium(): Promise<string> {
  found ??= locate();
  // A failed attempt is not remembered: the next caller may try again (after someone installed it).
  found.catch(() => { found = undefined; });
  return found;
}

async function locate(): Promise<string> {
  if (await executable(chromiumPath)) return chromiumPath;
  const root = process.getuid?.() === 0;
  const apt = await executable('/usr/bin/apt-get');
  if (!root || !apt) {
    throw new Error(`Chromium is not installed at ${chromiumPath}, and it cannot be installed here (${!apt ? 'no apt-get: not a Debian-like system' : 'not running as root'}). Install Debian's chromium package as root: ${install}`);
  }
  process.stderr.write(`Chromium is not at ${chromiumPath}: installing it (${install})\n`);
  try {
    await promisify(execFile)('sh', ['-c', install], { timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const e = error as { message: string; stderr?: string };
    const tail = (e.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`Chromium is not installed at ${chromiumPath}, and installing it failed (${install}): ${e.message}${tail ? `\n${tail}` : ''}`);
  }
  if (!(await executable(chromiumPath))) throw new Error(`apt-get installed chromium, but there is still no executable ${chromiumPath}`);
  return chromiumPath;
}

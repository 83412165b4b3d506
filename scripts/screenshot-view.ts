/**
 * A picture of a running live view (`mabeam view`), for the docs:
 *
 *   node_modules/.bin/node scripts/screenshot-view.ts http://127.0.0.1:8080/ [--out docs/view.png]
 *       [--round R] [--variable V] [--study S] [--width 1440]
 *
 * It opens the page in Chromium (Debian's, installed by test/chromium.ts
 * when missing) with one round's sequence, one variable's lineage and one
 * study's plots shown — those named, else the decided round with the most
 * answers, the variable with the most versions and the study with the most
 * finished trials — waits until they are drawn, and writes a full-page PNG.
 * What the page logged at error level is printed; any of it exits 1.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { ensureChromium } from '../test/chromium.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string', default: 'docs/view.png' },
    round: { type: 'string' },
    variable: { type: 'string' },
    study: { type: 'string' },
    width: { type: 'string', default: '1440' },
  },
});
const base = positionals[0];
if (!base || !/^https?:\/\//.test(base)) {
  process.stderr.write('usage: node scripts/screenshot-view.ts <url of a running mabeam view> [--out docs/view.png] [--round R] [--variable V] [--study S] [--width 1440]\n');
  process.exit(2);
}
const url = new URL(base);

async function api<T>(path: string): Promise<T> {
  const response = await fetch(new URL(path, url));
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

interface Round { roundId: string; status: string; answers: number }
interface Variable { variableId: string; version: number }
interface Study { studyId: string; finished: number }

const pick = <T>(rows: T[], score: (r: T) => number): T | undefined => rows.reduce<T | undefined>((best, r) => (best === undefined || score(r) > score(best) ? r : best), undefined);

const selection: Record<string, string | undefined> = {
  round: values.round ?? pick((await api<Round[]>('/api/rounds?limit=200')).filter((r) => r.status === 'decided'), (r) => r.answers)?.roundId,
  variable: values.variable ?? pick(await api<Variable[]>('/api/variables'), (v) => v.version)?.variableId,
  study: values.study ?? pick(await api<Study[]>('/api/studies'), (s) => s.finished)?.studyId,
};
url.hash = Object.entries(selection).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v!)}`).join('&');

const browser = await chromium.launch({ executablePath: await ensureChromium(), args: ['--no-sandbox'] });
const errors: string[] = [];
try {
  const page = await browser.newPage({ viewport: { width: Number(values.width), height: 1000 }, deviceScaleFactor: 1 });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url.href);
  await page.waitForSelector('body[data-ready="true"][data-live="open"]', { timeout: 60_000 });
  if (selection.round) await page.waitForSelector('#round-detail[data-loading="false"] #sequence');
  if (selection.variable) await page.waitForSelector('#lineage[data-loading="false"] .timeline');
  if (selection.study) await page.waitForSelector('#study-detail[data-loading="false"] #study-history canvas');
  // Rows flash when they change: the picture is taken once they have settled.
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity), undefined, { timeout: 10_000 });
  await page.evaluate(() => {
    document.body.classList.add('full-page');
    window.scrollTo(0, 0);
  });
  const out = resolve(values.out!);
  await mkdir(dirname(out), { recursive: true });
  await page.screenshot({ path: out, fullPage: true });
  process.stderr.write(`${out}: ${url.href}\n`);
} finally {
  await browser.close();
}
if (errors.length > 0) {
  process.stderr.write(`the page logged errors:\n${errors.join('\n')}\n`);
  process.exitCode = 1;
}

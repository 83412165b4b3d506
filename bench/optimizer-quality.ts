/**
 * Searcher quality: how close each searcher gets to the minimum of Branin
 * (2-D, minimum 0.397887) and Hartmann-6 (6-D, minimum −3.32237) within 100
 * trials, pure (no broker, no stack):
 *
 *   node_modules/.bin/node bench/optimizer-quality.ts [--trials 100] [--seeds 10] [--parallel 8] [--json] [--no-optuna] [--more]
 *
 * Every study keeps `parallel` trials pending: it asks for `parallel`
 * proposals, then each time the oldest pending trial finishes it is told and
 * one new proposal is asked for, with the others passed as pending (so TPE's
 * constant liar applies). Rows: random search; TPE as configured by default,
 * with normalised kernel densities (equalHeightKernels: false) and
 * multivariate, `parallel` at a time; SIMBA when src/optimizer/index.ts
 * exports `simbaSearcher` (a printed line says it was skipped otherwise);
 * TPE both ways one trial at a time; and Optuna's TPESampler, run by
 * bench/optuna_tpe.py on the same functions and seeds, `parallel` at a time
 * through ask/tell with constant_liar=True (univariate, its default, and
 * multivariate=True) and one trial at a time. Python's Optuna is installed
 * when missing (`apt-get install -y python3-optuna`, as root);
 * `--no-optuna` leaves those rows out. `--more` adds nine functions for our
 * searchers only: Hartmann-3, six-hump camel, Styblinski–Tang 5-D, Ackley
 * 5-D, Rosenbrock 4-D, Levy 4-D, a space of every numeric and categorical
 * kind, four integers, and Hartmann-3 on a grid of step 0.01.
 *
 * For each row and function: the median over seeds 0..seeds−1 of the best
 * value after 25, 50 and 100 trials, and its regret (best − minimum); then
 * the ratio of TPE's median regret at 100 trials to Optuna's, `parallel` at
 * a time (univariate and multivariate) and one at a time. `--json` prints
 * one JSON object instead of the table. Progress goes to stderr.
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as optimizer from '../src/optimizer/index.ts';
import type { BaseSearcherConfig, Params, PendingTrial, SearchSpace, Searcher } from '../src/optimizer/index.ts';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  const value = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a whole number > 0, not ${args[i + 1]}`);
  return value;
};
const trials = option('--trials', 100);
const seedCount = option('--seeds', 10);
const parallel = option('--parallel', 8);
const json = flag('--json');
const seeds = Array.from({ length: seedCount }, (_, i) => i);
const checkpoints = [25, 50, 100].filter((n) => n <= trials);
const say = (line: string) => process.stderr.write(`${line}\n`);

// ---- the functions ----------------------------------------------------------

interface TestFunction {
  name: string;
  space: SearchSpace;
  minimum: number;
  f: (p: Params) => number;
}

const branin: TestFunction = {
  name: 'branin',
  space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } },
  minimum: 0.397887,
  f: (p) => {
    const x1 = p['x1'] as number;
    const x2 = p['x2'] as number;
    const b = 5.1 / (4 * Math.PI ** 2);
    const c = 5 / Math.PI;
    const t = 1 / (8 * Math.PI);
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
  },
};

const H6_ALPHA = [1, 1.2, 3, 3.2];
const H6_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const H6_P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
];
const hartmann6: TestFunction = {
  name: 'hartmann6',
  space: Object.fromEntries([1, 2, 3, 4, 5, 6].map((j) => [`x${j}`, { type: 'float', low: 0, high: 1 }])),
  minimum: -3.32237,
  f: (p) => {
    const x = [1, 2, 3, 4, 5, 6].map((j) => p[`x${j}`] as number);
    let total = 0;
    for (let i = 0; i < 4; i++) {
      let inner = 0;
      for (let j = 0; j < 6; j++) inner += H6_A[i]![j]! * (x[j]! - 1e-4 * H6_P[i]![j]!) ** 2;
      total += H6_ALPHA[i]! * Math.exp(-inner);
    }
    return -total;
  },
};
const box = (d: number, low: number, high: number, step?: number): SearchSpace =>
  Object.fromEntries(Array.from({ length: d }, (_, j) => [`x${j + 1}`, { type: 'float', low, high, ...(step !== undefined ? { step } : {}) }]));
const coords = (p: Params, d: number) => Array.from({ length: d }, (_, j) => p[`x${j + 1}`] as number);
const H3_A = [
  [3, 10, 30],
  [0.1, 10, 35],
  [3, 10, 30],
  [0.1, 10, 35],
];
const H3_P = [
  [3689, 1170, 2673],
  [4699, 4387, 7470],
  [1091, 8732, 5547],
  [381, 5743, 8828],
];
const hartmann3 = (x: readonly number[]) => -H6_ALPHA.reduce((s, a, i) => s + a * Math.exp(-x.reduce((t, xj, j) => t + H3_A[i]![j]! * (xj - 1e-4 * H3_P[i]![j]!) ** 2, 0)), 0);

/** With --more: other shapes and parameter kinds, for our searchers only (bench/optuna_tpe.py knows Branin and Hartmann-6). */
const more: TestFunction[] = [
  { name: 'hartmann3', space: box(3, 0, 1), minimum: -3.86278, f: (p) => hartmann3(coords(p, 3)) },
  {
    name: 'camel',
    space: { x1: { type: 'float', low: -3, high: 3 }, x2: { type: 'float', low: -2, high: 2 } },
    minimum: -1.0316,
    f: (p) => {
      const [a, b] = coords(p, 2) as [number, number];
      return (4 - 2.1 * a * a + a ** 4 / 3) * a * a + a * b + (-4 + 4 * b * b) * b * b;
    },
  },
  { name: 'styblinski5', space: box(5, -5, 5), minimum: -39.16617 * 5, f: (p) => coords(p, 5).reduce((s, x) => s + (x ** 4 - 16 * x * x + 5 * x) / 2, 0) },
  {
    name: 'ackley5',
    space: box(5, -32.768, 32.768),
    minimum: 0,
    f: (p) => {
      const x = coords(p, 5);
      const sq = x.reduce((s, v) => s + v * v, 0) / 5;
      const cos = x.reduce((s, v) => s + Math.cos(2 * Math.PI * v), 0) / 5;
      return -20 * Math.exp(-0.2 * Math.sqrt(sq)) - Math.exp(cos) + 20 + Math.E;
    },
  },
  {
    name: 'rosenbrock4',
    space: box(4, -2, 2),
    minimum: 0,
    f: (p) => {
      const x = coords(p, 4);
      let s = 0;
      for (let i = 0; i < 3; i++) s += 100 * (x[i + 1]! - x[i]! ** 2) ** 2 + (1 - x[i]!) ** 2;
      return s;
    },
  },
  {
    name: 'levy4',
    space: box(4, -10, 10),
    minimum: 0,
    f: (p) => {
      const w = coords(p, 4).map((x) => 1 + (x - 1) / 4);
      let s = Math.sin(Math.PI * w[0]!) ** 2;
      for (let i = 0; i < 3; i++) s += (w[i]! - 1) ** 2 * (1 + 10 * Math.sin(Math.PI * w[i]! + 1) ** 2);
      return s + (w[3]! - 1) ** 2 * (1 + Math.sin(2 * Math.PI * w[3]!) ** 2);
    },
  },
  {
    // A log float, a stepped float, a plain and a log int, a choice and a boolean; 0 at lr 1e-3, dropout 0, 4 layers, width 256, star, cache.
    name: 'mixed',
    space: {
      lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
      dropout: { type: 'float', low: 0, high: 0.5, step: 0.05 },
      layers: { type: 'int', low: 1, high: 8 },
      width: { type: 'int', low: 16, high: 1024, log: true },
      pattern: { type: 'choice', values: ['ring', 'star', 'mesh'] },
      cache: { type: 'boolean' },
    },
    minimum: 0,
    f: (p) =>
      (Math.log10(p['lr'] as number) + 3) ** 2 +
      (p['dropout'] as number) +
      Math.abs((p['layers'] as number) - 4) +
      Math.abs(Math.log2(p['width'] as number) - 8) / 2 +
      (p['cache'] ? 0 : 0.5) +
      (p['pattern'] === 'star' ? 0 : 0.7),
  },
  {
    // Four integers in [-20, 20], 0 at (3, 6, 9, 12), with ripples.
    name: 'ints4',
    space: Object.fromEntries([1, 2, 3, 4].map((j) => [`x${j}`, { type: 'int', low: -20, high: 20 }])),
    minimum: 0,
    f: (p) => [1, 2, 3, 4].reduce((s, j) => s + Math.abs((p[`x${j}`] as number) - 3 * j) + 3 * (1 - Math.cos((p[`x${j}`] as number) - 3 * j)), 0),
  },
  { name: 'hartmann3-stepped', space: box(3, 0, 1, 0.01), minimum: -3.86278, f: (p) => hartmann3(coords(p, 3)) },
];
const functions = flag('--more') ? [branin, hartmann6, ...more] : [branin, hartmann6];

// ---- one study --------------------------------------------------------------

/** Best value so far after each told trial, with `width` trials pending at a time, oldest finished first. */
function bestCurve(searcher: Searcher<unknown, BaseSearcherConfig>, config: BaseSearcherConfig, fn: TestFunction, seed: number, width: number): number[] {
  let state = searcher.init(fn.space, config, seed);
  const pending: PendingTrial[] = [];
  // A proposal that names a mini-batch is told with it (the functions here have no examples to split, so it changes nothing else).
  const miniBatches = new Map<string, number>();
  const curve: number[] = [];
  let proposed = 0;
  let best = Infinity;
  while (curve.length < trials) {
    const n = Math.min(width - pending.length, trials - proposed);
    if (n > 0) {
      const asked = searcher.ask(state, n, [...pending]);
      state = asked.state;
      for (const p of asked.proposals) {
        const id = `t${proposed++}`;
        pending.push({ id, params: p.params });
        if (p.miniBatch !== undefined) miniBatches.set(id, p.miniBatch);
      }
    }
    const done = pending.shift()!;
    const value = fn.f(done.params);
    const miniBatch = miniBatches.get(done.id!);
    state = searcher.tell(state, { id: done.id!, params: done.params, values: [value], status: 'complete', ...(miniBatch !== undefined ? { miniBatch } : {}) });
    best = Math.min(best, value);
    curve.push(best);
  }
  return curve;
}

interface Row {
  searcher: string;
  function: string;
  parallel: number;
  /** Per seed, the best value after each checkpoint. */
  perSeed: Array<{ seed: number; bestAt: Record<string, number> }>;
  medianBestAt: Record<string, number>;
  medianRegretAt: Record<string, number>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function rowOf(searcher: string, fn: TestFunction, width: number, curves: Array<{ seed: number; curve: readonly number[] }>): Row {
  const perSeed = curves.map(({ seed, curve }) => ({ seed, bestAt: Object.fromEntries(checkpoints.map((n) => [String(n), curve[n - 1]!])) }));
  const medianBestAt = Object.fromEntries(checkpoints.map((n) => [String(n), median(perSeed.map((s) => s.bestAt[String(n)]!))]));
  const medianRegretAt = Object.fromEntries(checkpoints.map((n) => [String(n), medianBestAt[String(n)]! - fn.minimum]));
  return { searcher, function: fn.name, parallel: width, perSeed, medianBestAt, medianRegretAt };
}

// ---- Optuna -----------------------------------------------------------------

const importsOptuna = (python: string) => spawnSync(python, ['-c', 'import optuna'], { stdio: 'ignore' }).status === 0;

/** A Python that imports optuna, installing Debian's python3-optuna when none does; or why there is none. */
function findOptunaPython(): { python: string } | { why: string } {
  const candidates = [...new Set([process.env['PYTHON'], 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
  const found = () => candidates.find(importsOptuna);
  let python = found();
  if (python) return { python };
  say('optuna: not importable; installing python3-optuna with apt-get');
  const apt = (...a: string[]) => spawnSync('apt-get', a, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!apt('install', '-y', 'python3-optuna')) {
    say('optuna: apt-get install failed; running apt-get update first');
    if (!apt('update') || !apt('install', '-y', 'python3-optuna')) return { why: 'apt-get install -y python3-optuna failed (root and Debian package lists are needed)' };
  }
  python = found();
  return python ? { python } : { why: `python3-optuna installed, but none of ${candidates.join(', ')} imports optuna` };
}

interface OptunaResult {
  function: string;
  mode: string;
  parallel: number;
  seed: number;
  curve: number[];
}

/** Runs bench/optuna_tpe.py in the background; its progress lines go to stderr as they come. */
function runOptuna(python: string): Promise<{ optuna: string; results: OptunaResult[] }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'optuna_tpe.py');
  const child = spawn(
    python,
    [script, '--trials', String(trials), '--seeds', seeds.join(','), '--parallel', String(parallel), '--modes', 'sequential,batch,batch-multivariate', '--functions', 'branin,hartmann6'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${python} ${script} exited with ${code}`));
      else resolve(JSON.parse(out) as { optuna: string; results: OptunaResult[] });
    });
  });
}

// ---- the run ----------------------------------------------------------------

const skipped: string[] = [];
let optunaRun: Promise<{ optuna: string; results: OptunaResult[] }> | undefined;
if (flag('--no-optuna')) skipped.push('optuna: left out (--no-optuna)');
else {
  const found = findOptunaPython();
  if ('python' in found) {
    say(`optuna: running bench/optuna_tpe.py with ${found.python} in the background`);
    optunaRun = runOptuna(found.python);
    // Rejections are handled where the run is awaited.
    optunaRun.catch(() => undefined);
  } else skipped.push(`optuna: skipped, ${found.why}`);
}

type AnySearcher = Searcher<unknown, BaseSearcherConfig>;
const minimize = { directions: ['minimize'] } as BaseSearcherConfig;
const ours: Array<{ label: string; searcher: AnySearcher; config: BaseSearcherConfig; width: number }> = [
  { label: 'random', searcher: optimizer.randomSearcher as AnySearcher, config: minimize, width: parallel },
  { label: 'tpe', searcher: optimizer.tpeSearcher as AnySearcher, config: minimize, width: parallel },
  { label: 'tpe, densities', searcher: optimizer.tpeSearcher as AnySearcher, config: { ...minimize, equalHeightKernels: false } as BaseSearcherConfig, width: parallel },
  { label: 'tpe multivariate', searcher: optimizer.tpeSearcher as AnySearcher, config: { ...minimize, multivariate: true } as BaseSearcherConfig, width: parallel },
  { label: 'tpe', searcher: optimizer.tpeSearcher as AnySearcher, config: minimize, width: 1 },
  { label: 'tpe, densities', searcher: optimizer.tpeSearcher as AnySearcher, config: { ...minimize, equalHeightKernels: false } as BaseSearcherConfig, width: 1 },
];
const simba = (optimizer as Record<string, unknown>)['simbaSearcher'] as AnySearcher | undefined;
if (simba) ours.splice(4, 0, { label: 'simba', searcher: simba, config: minimize, width: parallel });
else skipped.push('simba: skipped, src/optimizer/index.ts does not export simbaSearcher');
for (const line of skipped) say(line);

const rows: Row[] = [];
for (const { label, searcher, config, width } of ours) {
  for (const fn of functions) {
    const started = performance.now();
    let curves: Array<{ seed: number; curve: number[] }>;
    try {
      curves = seeds.map((seed) => ({ seed, curve: bestCurve(searcher, config, fn, seed, width) }));
    } catch (error) {
      const line = `${label}: skipped on ${fn.name}, ${(error as Error).message}`;
      skipped.push(line);
      say(line);
      continue;
    }
    const row = rowOf(label, fn, width, curves);
    rows.push(row);
    say(`${label} (${width} at a time) ${fn.name}: median regret at ${trials} ${fmt(row.medianRegretAt[String(trials)] ?? NaN)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

let optunaVersion: string | undefined;
if (optunaRun) {
  try {
    const run = await optunaRun;
    optunaVersion = run.optuna;
    const label = (mode: string) => (mode === 'batch-multivariate' ? 'optuna tpe multivariate' : 'optuna tpe');
    for (const mode of ['batch', 'batch-multivariate', 'sequential']) {
      for (const fn of functions) {
        const results = run.results.filter((r) => r.mode === mode && r.function === fn.name);
        if (results.length > 0) rows.push(rowOf(label(mode), fn, results[0]!.parallel, results));
      }
    }
  } catch (error) {
    const line = `optuna: failed, ${(error as Error).message}`;
    skipped.push(line);
    say(line);
  }
}

// ---- the report ---------------------------------------------------------------

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toPrecision(4);
}

const at = String(Math.max(...checkpoints));
const find = (searcher: string, fn: string, width: number) => rows.find((r) => r.searcher === searcher && r.function === fn && r.parallel === width);
const ratios = functions.flatMap((fn) =>
  [
    { ours: 'tpe', theirs: 'optuna tpe', width: parallel },
    { ours: 'tpe multivariate', theirs: 'optuna tpe multivariate', width: parallel },
    { ours: 'tpe', theirs: 'optuna tpe', width: 1 },
  ].flatMap(({ ours: a, theirs: b, width }) => {
    const x = find(a, fn.name, width);
    const y = find(b, fn.name, width);
    if (!x || !y) return [];
    const ratio = x.medianRegretAt[at]! / y.medianRegretAt[at]!;
    return [{ function: fn.name, ours: a, theirs: b, parallel: width, at: Number(at), oursRegret: x.medianRegretAt[at]!, theirsRegret: y.medianRegretAt[at]!, ratio }];
  }),
);

if (json) {
  process.stdout.write(`${JSON.stringify({ trials, seeds, parallel, checkpoints, optuna: optunaVersion ?? null, minimum: Object.fromEntries(functions.map((f) => [f.name, f.minimum])), rows, ratios, skipped })}\n`);
} else {
  const lines: string[] = [];
  lines.push(`Median over seeds ${seeds[0]}..${seeds.at(-1)} of the best value after ${checkpoints.join(' / ')} trials, and its regret (best − minimum).`);
  lines.push(`Branin minimum ${branin.minimum}, Hartmann-6 minimum ${hartmann6.minimum}.${optunaVersion ? ` Optuna ${optunaVersion}.` : ''}`);
  lines.push('');
  const head = ['function', 'searcher', 'at a time', ...checkpoints.map((n) => `best@${n}`), ...checkpoints.map((n) => `regret@${n}`)];
  const table = [head, ...rows.map((r) => [r.function, r.searcher, String(r.parallel), ...checkpoints.map((n) => fmt(r.medianBestAt[String(n)]!)), ...checkpoints.map((n) => fmt(r.medianRegretAt[String(n)]!))])];
  const sorted = [table[0]!, ...table.slice(1).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0))];
  const widths = head.map((_, c) => Math.max(...sorted.map((r) => r[c]!.length)));
  for (const r of sorted) lines.push(r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  lines.push('');
  for (const r of ratios) lines.push(`${r.function}: ${r.ours} / ${r.theirs} regret at ${r.at}, ${r.parallel} at a time: ${fmt(r.oursRegret)} / ${fmt(r.theirsRegret)} = ${r.ratio.toFixed(2)}`);
  for (const s of skipped) lines.push(s);
  process.stdout.write(`${lines.join('\n')}\n`);
}

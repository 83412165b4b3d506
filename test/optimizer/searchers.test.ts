import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { randomSearcher, type RandomSearcherState } from '../../src/optimizer/searchers/random.ts';
import { tpeSearcher, type TpeConfig, type TpeState } from '../../src/optimizer/searchers/tpe.ts';
import type { BaseSearcherConfig, Searcher } from '../../src/optimizer/searchers/types.ts';
import { checkParams, defineSpace, type Params, type SearchSpace } from '../../src/optimizer/space.ts';
import { BRANIN_MIN, branin, braninSpace, median, replay, runStudy } from './studyLoop.ts';

const minimize: BaseSearcherConfig = { directions: ['minimize'] };
const SEEDS = [1, 2, 3, 4, 5];

const mixedSpace: SearchSpace = {
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  dropout: { type: 'float', low: 0, high: 0.5, step: 0.05 },
  layers: { type: 'int', low: 1, high: 8 },
  width: { type: 'int', low: 16, high: 1024, log: true },
  pattern: { type: 'choice', values: ['ring', 'star', { kind: 'mesh', degree: 3 }] },
  cache: { type: 'boolean' },
  team: { type: 'agentSet', candidates: ['a', 'b', 'c', 'd', 'e'], minSize: 2, maxSize: 3 },
};
const mixedObjective = (p: Params) =>
  (Math.log10(p['lr'] as number) + 3) ** 2 + (p['dropout'] as number) + Math.abs((p['layers'] as number) - 4) + ((p['width'] as number) > 256 ? 0 : 1) + (p['cache'] ? 0 : 0.5) + (p['team'] as string[]).length;

describe.each([
  ['random', randomSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>],
  ['tpe', tpeSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>],
])('%s searcher as a fold', (_name, searcher) => {
  it('proposes only values that fit the space', () => {
    const run = runStudy(searcher, mixedSpace, minimize, 11, mixedObjective, { trials: 40, parallel: 4 });
    const proposals = run.log.flatMap((e) => (e.type === 'ask' ? e.proposals : []));
    expect(proposals).toHaveLength(40);
    for (const p of proposals) expect(checkParams(mixedSpace, p.params)).toBeUndefined();
  });

  it('gives identical proposals for the same seed and the same results, and others for another seed', () => {
    const a = runStudy(searcher, mixedSpace, minimize, 3, mixedObjective, { trials: 30, parallel: 3 });
    const b = runStudy(searcher, mixedSpace, minimize, 3, mixedObjective, { trials: 30, parallel: 3 });
    const c = runStudy(searcher, mixedSpace, minimize, 4, mixedObjective, { trials: 30, parallel: 3 });
    expect(b.log).toEqual(a.log);
    expect(c.log).not.toEqual(a.log);
  });

  it('rebuilt from the logged asks and tells, proposes what the uninterrupted fold proposes next', () => {
    const run = runStudy(searcher, braninSpace, minimize, 9, branin, { trials: 25, parallel: 4 });
    const rebuilt = replay(searcher, braninSpace, minimize, 9, run.log);
    expect(rebuilt.proposals).toEqual(run.log.flatMap((e) => (e.type === 'ask' ? e.proposals : [])));
    expect(rebuilt.state).toEqual(run.state);
    // The state is plain JSON: a snapshot written and read back goes on the same way.
    const snapshot = JSON.parse(JSON.stringify(run.state)) as typeof run.state;
    const pending = [{ id: 'p', params: { x1: 1, x2: 2 } }];
    const next = searcher.ask(run.state, 3, pending);
    expect(searcher.ask(rebuilt.state, 3, pending)).toEqual(next);
    expect(searcher.ask(snapshot, 3, pending)).toEqual(next);
    // Asking does not change the state it was given.
    expect(run.state).toEqual(snapshot);
  });

  it('records the seed each proposal drew from and a digest of what it was computed from', () => {
    const state = searcher.init(braninSpace, minimize, 5);
    const { proposals } = searcher.ask(state, 3);
    expect(new Set(proposals.map((p) => p.seed)).size).toBe(3);
    for (const p of proposals) {
      expect(Number.isInteger(p.seed) && p.seed >= 0 && p.seed < 2 ** 32).toBe(true);
      expect(p.digest).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('refuses a told trial whose params or values do not fit the study', () => {
    const state = searcher.init(braninSpace, minimize, 5);
    expect(() => searcher.tell(state, { id: 't', params: { x1: 11, x2: 1 }, values: [1], status: 'complete' })).toThrow(/Trial t: its params do not fit the search space: x1: 11 is outside \[-5, 10\]/);
    expect(() => searcher.tell(state, { id: 't', params: { x1: 1, x2: 1 }, values: [1, 2], status: 'complete' })).toThrow('Trial t: has 2 values for 1 objectives');
    expect(() => searcher.tell(state, { id: 't', params: { x1: 1, x2: 1 }, values: null, status: 'complete' })).toThrow('a complete trial needs values');
  });

  it('takes pruned and failed trials', () => {
    let state = searcher.init(braninSpace, minimize, 5);
    for (let i = 0; i < 12; i++) {
      const { state: next, proposals } = searcher.ask(state, 1);
      const params = proposals[0]!.params;
      const status = i % 3 === 0 ? 'failed' : i % 3 === 1 ? 'pruned' : 'complete';
      state = searcher.tell(next, { id: `t${i}`, params, values: status === 'failed' ? null : [branin(params)], status, step: 3 });
    }
    const { proposals } = searcher.ask(state, 2);
    for (const p of proposals) expect(checkParams(braninSpace, p.params)).toBeUndefined();
  });
});

describe('random searcher', () => {
  it('accepts several objectives', () => {
    const state = randomSearcher.init(braninSpace, { directions: ['minimize', 'maximize'] }, 1);
    const { state: next, proposals } = randomSearcher.ask(state, 1);
    expect(() => randomSearcher.tell(next, { id: 'a', params: proposals[0]!.params, values: [1, 2], status: 'complete' })).not.toThrow();
  });

  it('refuses bad options and seeds', () => {
    expect(() => randomSearcher.init(braninSpace, { directions: [] }, 1)).toThrow(/directions: name at least one direction/);
    expect(() => randomSearcher.init(braninSpace, minimize, 1.5)).toThrow('A random seed must be a whole number, not 1.5');
  });
});

describe('TPE searcher', () => {
  it('refuses a study with several objectives (TPE is single-objective for now)', () => {
    try {
      tpeSearcher.init(braninSpace, { directions: ['minimize', 'maximize'] }, 1);
      expect.unreachable();
    } catch (error) {
      expect(isMabeamError(error, 'INVALID_OPTIONS')).toBe(true);
      expect((error as Error).message).toContain('handles one objective only');
      expect((error as Error).message).toContain('use the random searcher');
    }
  });

  it('refuses unknown or bad options', () => {
    expect(() => tpeSearcher.init(braninSpace, { ...minimize, nEiCandidates: 0 } as TpeConfig, 1)).toThrow(/nEiCandidates/);
    expect(() => tpeSearcher.init(braninSpace, { ...minimize, gamma: 0.2 } as unknown as TpeConfig, 1)).toThrow(/gamma/);
  });

  it('counts a trial told twice once', () => {
    let state = tpeSearcher.init(braninSpace, minimize, 1);
    const trial = { id: 'x', params: { x1: 0, x2: 0 }, values: [3], status: 'complete' as const };
    state = tpeSearcher.tell(state, trial);
    expect(tpeSearcher.tell(state, trial)).toBe(state);
  });

  it('treats pending trials as the worst values (constant liar): one batch spreads out, and the digest says what each proposal saw', () => {
    const run = runStudy(tpeSearcher, braninSpace, minimize, 2, branin, { trials: 30 });
    const { proposals } = tpeSearcher.ask(run.state, 8);
    expect(new Set(proposals.map((p) => p.digest)).size).toBe(8);
    expect(new Set(proposals.map((p) => JSON.stringify(p.params))).size).toBe(8);
    // The liar is what separates them: without it the first proposal (nothing pending yet) is the same, the later ones not.
    const noLiar: TpeState = { ...run.state, config: { ...run.state.config, constantLiar: false } };
    const plain = tpeSearcher.ask(noLiar, 8).proposals;
    expect(plain[0]!.params).toEqual(proposals[0]!.params);
    for (let j = 1; j < 8; j++) expect(plain[j]!.params).not.toEqual(proposals[j]!.params);
  });

  it('maximises as well as it minimises', () => {
    const run = runStudy(tpeSearcher, braninSpace, { directions: ['maximize'] }, 1, (p) => -branin(p), { trials: 100 });
    expect(-run.best.value).toBeLessThanOrEqual(0.5);
  });
});

describe('Branin (minimum 0.397887)', () => {
  const config: TpeConfig = { directions: ['minimize'] };
  const bestAt = (searcher: Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>, parallel: number) =>
    SEEDS.map((seed) => runStudy(searcher, braninSpace, config, seed, branin, { trials: 100, parallel }).curve);
  const tpeSequential = bestAt(tpeSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>, 1);
  const randomSequential = bestAt(randomSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>, 1);

  it('TPE, one trial at a time, reaches 0.5 within 100 trials (seed 1)', () => {
    const curve = tpeSequential[0]!;
    expect(curve[99]).toBeGreaterThanOrEqual(BRANIN_MIN - 1e-6);
    expect(curve[99]).toBeLessThanOrEqual(0.5);
  });

  it("TPE's median best at 50 and 100 trials beats random search's over 5 seeds", () => {
    // At 25 trials (15 after the 10 random start-up ones) five seeds are too few to tell them apart.
    for (const at of [50, 100]) {
      const tpe = median(tpeSequential.map((c) => c[at - 1]!));
      const random = median(randomSequential.map((c) => c[at - 1]!));
      expect(tpe, `at ${at} trials: TPE ${tpe}, random ${random}`).toBeLessThan(random);
    }
    // Measured, median best at 25 / 50 / 100 trials: seeds 1–5, TPE 0.96 / 0.66 / 0.425 and random 0.94 / 0.92 / 0.81;
    // seeds 1–10, TPE 1.18 / 0.83 / 0.44 and random 1.64 / 1.23 / 0.86 (Optuna 3.1 for reference: 0.58 at 50, 0.41 at 100;
    // bench/optimizer-quality.ts compares them over seeds 0–9).
    expect(median(tpeSequential.map((c) => c[99]!))).toBeLessThanOrEqual(0.5);
  });

  it('TPE with 8 trials pending at a time still reaches 0.6 within 100 trials (median over 5 seeds)', () => {
    const parallel = bestAt(tpeSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>, 8);
    const at100 = median(parallel.map((c) => c[99]!));
    // Measured, median over seeds 1–5: 0.94 / 0.52 / 0.46 at 25 / 50 / 100 (seeds 1–10: 1.17 / 0.53 / 0.42).
    expect(at100).toBeLessThanOrEqual(0.6);
    expect(at100).toBeLessThan(median(randomSequential.map((c) => c[99]!)));
  });
});

describe('team composition', () => {
  // 8 candidates; members cost 0.5 each, so only the three whose skill exceeds
  // the cost pay for themselves, and a synergy between two of them makes the
  // best team {c1, c4, c6} (quality 1.4, and 1.65 with the auction protocol); every other team is worse.
  const candidates = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7'];
  const skill: Record<string, number> = { c0: 0.3, c1: 0.9, c2: 0.2, c3: 0.45, c4: 0.8, c5: 0.1, c6: 0.7, c7: 0.4 };
  const BEST = ['c1', 'c4', 'c6'];
  const quality = (team: string[]) => team.reduce((s, c) => s + skill[c]! - 0.5, 0) + (team.includes('c1') && team.includes('c4') ? 0.5 : 0);
  const space = defineSpace({ team: { type: 'agentSet', candidates, minSize: 1, maxSize: 6 }, protocol: { type: 'choice', values: ['vote', 'auction', 'leader'] } });
  const objective = (p: Params) => quality(p['team'] as string[]) + (p['protocol'] === 'auction' ? 0.25 : 0);

  it('the synthetic function has the stated best team', () => {
    let best: string[] = [];
    for (let mask = 1; mask < 256; mask++) {
      const team = candidates.filter((_, i) => mask & (1 << i));
      if (team.length <= 6 && quality(team) > quality(best)) best = team;
    }
    expect(best).toEqual(BEST);
  });

  it('TPE tries the best team within 100 trials for most seeds, and far more often than random search', () => {
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const firstTry = (searcher: Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>) =>
      seeds.map((seed) => {
        const run = runStudy(searcher, space, { directions: ['maximize'] }, seed, objective, { trials: 100 });
        return run.log.findIndex((e) => e.type === 'tell' && (e.trial.params['team'] as string[]).join() === BEST.join());
      });
    const tpe = firstTry(tpeSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>).filter((i) => i >= 0).length;
    const random = firstTry(randomSearcher as Searcher<RandomSearcherState | TpeState, BaseSearcherConfig>).filter((i) => i >= 0).length;
    // Measured: TPE 9 of 10 seeds (first told at trials 16–97; multivariate: 10 of 10, at 15–57), random search 1 of 10 (246 teams to choose from).
    expect(tpe).toBeGreaterThanOrEqual(7);
    expect(tpe).toBeGreaterThan(random + 4);
  });

  it('TPE, sequentially with a fixed seed, ends with the best team and protocol (quality 1.65) within 100 trials', () => {
    const run = runStudy(tpeSearcher, space, { directions: ['maximize'] }, 3, objective, { trials: 100 });
    expect(run.best.value).toBeCloseTo(1.65, 9);
    expect(run.best.params).toEqual({ team: BEST, protocol: 'auction' });
  });
});

import { describe, expect, it } from 'vitest';
import { splitObservations, tpeSearcher, type TpeConfig, type TpeState } from '../../src/optimizer/searchers/tpe.ts';
import { checkParams, type Params, type SearchSpace } from '../../src/optimizer/space.ts';
import { replay, runStudy } from './studyLoop.ts';

const unit: SearchSpace = { x: { type: 'float', low: 0, high: 1 } };
const square: SearchSpace = { x: { type: 'float', low: 0, high: 1 }, y: { type: 'float', low: 0, high: 1 } };

/** A TPE state told the given trials, in order. */
function told(space: SearchSpace, config: Omit<TpeConfig, 'directions'>, trials: Array<[Params, number]>): TpeState {
  let state = tpeSearcher.init(space, { directions: ['minimize'], ...config }, 1);
  trials.forEach(([params, value], i) => (state = tpeSearcher.tell(state, { id: `t${i}`, params, values: [value], status: 'complete' })));
  return state;
}

/** One proposal from `state` for each of the seeds 0..n−1. */
function proposals(state: TpeState, n: number): Params[] {
  return Array.from({ length: n }, (_, seed) => tpeSearcher.ask({ ...state, seed }, 1).proposals[0]!.params);
}

describe('TPE below and above groups', () => {
  const trials = (n: number): Array<[Params, number]> => Array.from({ length: n }, (_, i) => [{ x: i / n }, n - i]);
  const pending = Array.from({ length: 8 }, (_, i) => ({ x: 0.01 * i }));

  it('gamma counts the trials told, not the pending ones', () => {
    // 10 told + 8 pending: gamma(10) = 1, where counting the pending ones would give ceil(1.8) = 2.
    const ten = splitObservations(told(unit, {}, trials(10)), pending);
    expect(ten.below).toEqual([{ x: 0.9 }]);
    expect(ten.above).toHaveLength(17);
    const twenty = splitObservations(told(unit, {}, trials(20)), pending);
    expect(twenty.below).toEqual([{ x: 0.9 }, { x: 0.95 }]);
  });

  it('puts pending trials in the above group, after the told ones (the constant liar)', () => {
    const { below, above } = splitObservations(told(unit, {}, trials(30)), pending);
    expect(below).toHaveLength(3);
    expect(above.slice(-8)).toEqual(pending);
  });
});

describe('TPE options', () => {
  it('scores with equal kernel heights by default, and by densities when multivariate unless told otherwise', () => {
    const config = (c: Omit<TpeConfig, 'directions'>) => tpeSearcher.init(unit, { directions: ['minimize'], ...c }, 1).config;
    expect(config({})).toMatchObject({ multivariate: false, equalHeightKernels: true });
    expect(config({ multivariate: true })).toMatchObject({ multivariate: true, equalHeightKernels: false });
    expect(config({ multivariate: true, equalHeightKernels: true })).toMatchObject({ multivariate: true, equalHeightKernels: true });
    expect(config({ equalHeightKernels: false })).toMatchObject({ multivariate: false, equalHeightKernels: false });
  });

  it('refuses options that are not booleans', () => {
    expect(() => tpeSearcher.init(unit, { directions: ['minimize'], multivariate: 'yes' } as unknown as TpeConfig, 1)).toThrow(/multivariate/);
    expect(() => tpeSearcher.init(unit, { directions: ['minimize'], equalHeightKernels: 1 } as unknown as TpeConfig, 1)).toThrow(/equalHeightKernels/);
  });
});

describe('TPE scoring with equal kernel heights', () => {
  // Two equally good trials, at 0.25 and 0.75, and 18 worse ones packed around 0.75.
  const trials: Array<[Params, number]> = [
    [{ x: 0.25 }, 0],
    [{ x: 0.75 }, 0],
    ...Array.from({ length: 18 }, (_, k): [Params, number] => [{ x: 0.7 + (0.1 * k) / 17 }, 1]),
  ];
  const awayFromBoth = (ps: Params[]) => ps.filter((p) => Math.abs((p['x'] as number) - 0.25) > 0.1 && Math.abs((p['x'] as number) - 0.75) > 0.1).length;

  it('stays by the good trials, where normalised densities also go where nothing was tried', () => {
    const equal = proposals(told(unit, {}, trials), 400);
    const densities = proposals(told(unit, { equalHeightKernels: false }, trials), 400);
    // Both keep away from the crowd of worse trials around 0.75.
    for (const ps of [equal, densities]) expect(ps.filter((p) => Math.abs((p['x'] as number) - 0.75) < 0.1)).toHaveLength(0);
    // Measured: 0 of 400 proposals away from both good trials with equal heights, 46 with densities
    // (the prior kernel's width makes it weigh more in g, so g is flatter and the empty parts look less attractive).
    expect(awayFromBoth(equal)).toBeLessThan(10);
    expect(awayFromBoth(densities)).toBeGreaterThan(3 * awayFromBoth(equal) + 20);
  });

  it('scores a grid value by its cell mass times the kernel width, to the same effect', () => {
    const grid: SearchSpace = { x: { type: 'int', low: 0, high: 100 } };
    const onGrid = trials.map(([p, v]): [Params, number] => [{ x: Math.round((p['x'] as number) * 100) }, v]);
    const scaled = (ps: Params[]) => ps.map((p) => ({ x: (p['x'] as number) / 100 }));
    const equal = proposals(told(grid, {}, onGrid), 400);
    const densities = proposals(told(grid, { equalHeightKernels: false }, onGrid), 400);
    for (const p of [...equal, ...densities]) expect(checkParams(grid, p)).toBeUndefined();
    // Measured: 0 of 400 proposals away from both good trials with equal heights, 34 with densities (and 34 too if cells were scored by their mass alone).
    expect(awayFromBoth(scaled(equal))).toBeLessThan(10);
    expect(awayFromBoth(scaled(densities))).toBeGreaterThan(3 * awayFromBoth(scaled(equal)) + 20);
  });
});

describe('multivariate TPE', () => {
  const config: TpeConfig = { directions: ['minimize'], multivariate: true };
  const mixedSpace: SearchSpace = {
    lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
    layers: { type: 'int', low: 1, high: 8 },
    fixed: { type: 'int', low: 3, high: 3 },
    pattern: { type: 'choice', values: ['ring', 'star', 'mesh'] },
    cache: { type: 'boolean' },
    team: { type: 'agentSet', candidates: ['a', 'b', 'c', 'd', 'e'], minSize: 2, maxSize: 3 },
  };
  const objective = (p: Params) => (Math.log10(p['lr'] as number) + 3) ** 2 + Math.abs((p['layers'] as number) - 4) + (p['pattern'] === 'star' ? 0 : 1) + (p['cache'] ? 0 : 0.5) + (p['team'] as string[]).length;

  it('proposes values that fit the space, the same again for the same seed, and the same when replayed', () => {
    const run = runStudy(tpeSearcher, mixedSpace, config, 7, objective, { trials: 40, parallel: 4 });
    const asked = run.log.flatMap((e) => (e.type === 'ask' ? e.proposals : []));
    expect(asked).toHaveLength(40);
    for (const p of asked) expect(checkParams(mixedSpace, p.params)).toBeUndefined();
    expect(runStudy(tpeSearcher, mixedSpace, config, 7, objective, { trials: 40, parallel: 4 }).log).toEqual(run.log);
    const rebuilt = replay(tpeSearcher, mixedSpace, config, 7, run.log);
    expect(rebuilt.proposals).toEqual(asked);
    expect(rebuilt.state).toEqual(run.state);
  });

  it('draws all of a candidate from one kernel: good trials on the diagonal are not recombined into its corners', () => {
    // Good trials in two clusters on the diagonal, around (0.12, 0.12) and (0.88, 0.88); worse ones on x = 0.5.
    // nEiCandidates 1 shows the draws themselves, without the magic clip's floor on the widths.
    const trials: Array<[Params, number]> = [];
    for (let k = 0; k < 5; k++) trials.push([{ x: 0.1 + 0.01 * k, y: 0.1 + 0.01 * k }, 0], [{ x: 0.9 - 0.01 * k, y: 0.9 - 0.01 * k }, 0]);
    for (let k = 0; k < 10; k++) trials.push([{ x: 0.5, y: 0.05 + 0.1 * k }, 1]);
    const options = { gammaRatio: 0.5, considerMagicClip: false, nEiCandidates: 1 };
    const inCorners = (ps: Params[]) => ps.filter((p) => Math.abs((p['x'] as number) - (p['y'] as number)) > 0.4).length;
    const joint = inCorners(proposals(told(square, { ...options, multivariate: true }, trials), 400));
    const oneByOne = inCorners(proposals(told(square, options, trials), 400));
    // Measured: 36 of 400 jointly (draws from the clusters' wide edge kernels and the prior), 183 one parameter at a time.
    expect(joint).toBeLessThan(60);
    expect(oneByOne).toBeGreaterThan(3 * joint);
  });
});

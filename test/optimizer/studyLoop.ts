/**
 * A study run without any broker: ask and tell a searcher in a loop, with up
 * to `parallel` trials pending at a time, finished oldest first. Every call
 * is logged so the run can be replayed into a fresh fold. A proposal that
 * names a mini-batch is scored on it (the objective's second argument) and
 * told with it.
 */
import type { Params, SearchSpace } from '../../src/optimizer/space.ts';
import type { BaseSearcherConfig, PendingTrial, Proposal, Searcher, TrialResult } from '../../src/optimizer/searchers/types.ts';

export type LoggedEvent = { type: 'ask'; n: number; pending: PendingTrial[]; proposals: Proposal[] } | { type: 'tell'; trial: TrialResult };

export interface StudyRun<S> {
  state: S;
  /** Best value so far after each told trial. */
  curve: number[];
  best: { params: Params; value: number };
  log: LoggedEvent[];
}

export function runStudy<S, C extends BaseSearcherConfig>(
  searcher: Searcher<S, C>,
  space: SearchSpace,
  config: C,
  seed: number,
  objective: (params: Params, miniBatch?: number) => number,
  options: { trials: number; parallel?: number },
): StudyRun<S> {
  const parallel = options.parallel ?? 1;
  const sign = config.directions[0] === 'maximize' ? -1 : 1;
  let state = searcher.init(space, config, seed);
  const pending: PendingTrial[] = [];
  const miniBatches = new Map<string, number>();
  const log: LoggedEvent[] = [];
  const curve: number[] = [];
  let best: { params: Params; value: number } | undefined;
  let proposed = 0;
  let told = 0;
  while (told < options.trials) {
    const n = Math.min(parallel - pending.length, options.trials - proposed);
    if (n > 0) {
      const asked = [...pending];
      const r = searcher.ask(state, n, asked);
      state = r.state;
      log.push({ type: 'ask', n, pending: asked, proposals: r.proposals });
      for (const p of r.proposals) {
        const id = `t${proposed++}`;
        pending.push({ id, params: p.params });
        if (p.miniBatch !== undefined) miniBatches.set(id, p.miniBatch);
      }
    }
    const done = pending.shift()!;
    const miniBatch = miniBatches.get(done.id!);
    const value = objective(done.params, miniBatch);
    const trial: TrialResult = { id: done.id!, params: done.params, values: [value], status: 'complete', ...(miniBatch !== undefined ? { miniBatch } : {}) };
    state = searcher.tell(state, trial);
    log.push({ type: 'tell', trial });
    told++;
    if (!best || sign * value < sign * best.value) best = { params: done.params, value };
    curve.push(best.value);
  }
  return { state, curve, best: best!, log };
}

/** Replays a logged run into a fresh fold; returns the state and the proposals the replay made. */
export function replay<S, C extends BaseSearcherConfig>(searcher: Searcher<S, C>, space: SearchSpace, config: C, seed: number, log: readonly LoggedEvent[]): { state: S; proposals: Proposal[] } {
  let state = searcher.init(space, config, seed);
  const proposals: Proposal[] = [];
  for (const event of log) {
    if (event.type === 'ask') {
      const r = searcher.ask(state, event.n, event.pending);
      state = r.state;
      proposals.push(...r.proposals);
    } else state = searcher.tell(state, event.trial);
  }
  return { state, proposals };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Branin on x1 ∈ [-5, 10], x2 ∈ [0, 15]; global minimum 0.397887 (three minimisers). */
export function branin(params: Params): number {
  const x1 = params['x1'] as number;
  const x2 = params['x2'] as number;
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}
export const braninSpace: SearchSpace = { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } };
export const BRANIN_MIN = 0.397887;

/**
 * An evaluator agent: it evaluates trials of studies on known test
 * functions, for trying the optimizer out (`mabeam agent run
 * examples/agents/evaluator.ts`). Set by the environment:
 *
 * - EVALUATOR_ID — the agent id (default evaluator-<pid>), so several
 *   processes are several evaluators;
 * - EVALUATOR_FUNCTION — branin (params x1, x2; minimum 0.397887), team
 *   (param team: a synthetic team-quality function, to maximise; the best
 *   team is planner + coder + tester) or curve (params lr, width: a
 *   learning curve reported at steps 1..EVALUATOR_STEPS, to minimise —
 *   for pruning);
 * - EVALUATOR_CAPABILITY — the capability studies ask for (default evaluate);
 * - EVALUATOR_DELAY_MS — how long an evaluation (or each step) takes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineAgent } from '../../src/agents/index.ts';

const env = process.env;
const fn = env['EVALUATOR_FUNCTION'] ?? 'branin';
const delayMs = Number(env['EVALUATOR_DELAY_MS'] ?? 0);
const steps = Number(env['EVALUATOR_STEPS'] ?? 8);

export function branin(x1: number, x2: number): number {
  const a = 1;
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const r = 6;
  const s = 10;
  const t = 1 / (8 * Math.PI);
  return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * Math.cos(x1) + s;
}

/** Skills add up, pairs work well or badly together, and every member costs. */
export function teamQuality(team: readonly string[]): number {
  const skill: Record<string, number> = { planner: 0.5, coder: 0.7, tester: 0.4, designer: 0.3, critic: 0.2, scribe: 0.1 };
  const pairs: Record<string, number> = { 'coder+tester': 0.4, 'coder+planner': 0.3, 'designer+planner': -0.3, 'critic+tester': -0.2 };
  const members = [...team].sort();
  let q = members.reduce((sum, m) => sum + (skill[m] ?? 0), 0);
  for (let i = 0; i < members.length; i++) for (let j = i + 1; j < members.length; j++) q += pairs[`${members[i]}+${members[j]}`] ?? 0;
  return q - 0.15 * members.length;
}

/** A learning curve: the loss at a step; a good learning rate and width end low, a bad one stays high. */
export function curve(lr: number, width: number, step: number): number {
  const quality = Math.abs(Math.log10(lr) + 2) + Math.abs(width - 64) / 64;
  return quality + 1 / step;
}

export default defineAgent({
  id: env['EVALUATOR_ID'] ?? `evaluator-${process.pid}`,
  role: 'evaluator',
  capabilities: [env['EVALUATOR_CAPABILITY'] ?? 'evaluate'],
  async onTrial(trial, ctx) {
    const p = trial.params;
    if (fn === 'curve') {
      let loss = Number.POSITIVE_INFINITY;
      for (let step = 1; step <= steps; step++) {
        if (delayMs > 0) await sleep(delayMs);
        if (ctx.signal.aborted) return loss;
        loss = curve(p['lr'] as number, p['width'] as number, step);
        // The pruner's verdict on this step: stop when pruned.
        if (await ctx.intermediate(step, loss)) return loss;
      }
      return loss;
    }
    if (delayMs > 0) await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
    if (fn === 'team') return teamQuality(p['team'] as string[]);
    return branin(p['x1'] as number, p['x2'] as number);
  },
});

/**
 * A worker agent that runs the steps of plans (`mabeam agent run
 * examples/agents/stepWorker.ts`): each step takes a while and answers who
 * ran it, the step and the inputs it got. It bids its load in step
 * auctions (the default), so idle workers win. Set by the environment:
 *
 * - WORKER_ID — the agent id (default worker-1), so several processes are
 *   several workers;
 * - CAPABILITIES — the capabilities it offers, comma-separated (default
 *   compute);
 * - DELAY_MS — how long a step takes (default 50);
 * - COUNT_FILE — if set, a line `planId stepId attempt` is appended to it
 *   for each step it runs, so a test can count runs;
 * - FAIL_STEPS — step ids, comma-separated, that fail for good (a StepError
 *   that is not retriable).
 */
import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StepError, defineAgent } from '../../src/agents/index.ts';

const env = process.env;
const id = env['WORKER_ID'] ?? 'worker-1';
const list = (value: string | undefined): string[] => (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
const capabilities = env['CAPABILITIES'] === undefined ? ['compute'] : list(env['CAPABILITIES']);
const delayMs = Number(env['DELAY_MS'] ?? 50);
const countFile = env['COUNT_FILE'];
const failSteps = new Set(list(env['FAIL_STEPS']));

export default defineAgent({
  id,
  role: 'worker',
  capabilities,
  async onStep(step, ctx) {
    if (countFile) await appendFile(countFile, `${step.planId} ${step.stepId} ${step.attempt}\n`);
    if (delayMs > 0) await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
    if (failSteps.has(step.stepId)) throw new StepError(`${id} is set to fail step ${step.stepId}`, { retriable: false });
    return { by: id, step: step.stepId, inputs: step.inputs };
  },
});

import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { VariableChanged } from '../../src/events/types.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { agentSelection, typedVariable } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { runAgentProcess, runCli, runCliProcess, stopAgentProcess, type AgentProcess } from '../agentProcesses.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';

const evaluator = fileURLToPath(new URL('../../examples/agents/evaluator.ts', import.meta.url));

let ctx: TestContext;
let optimizer: AgentProcess;
beforeAll(async () => {
  ctx = await testContext('optimize');
  optimizer = startOptimizer(metricsPort);
  await optimizer.ready;
});
afterAll(() => ctx?.close());

/** Where the first optimizer serves its metrics. */
const metricsPort = 19_000 + Math.floor(Math.random() * 1_000);

function startOptimizer(port?: number): AgentProcess {
  const p = runCliProcess(ctx.stack, ['optimizer', 'run', '--prefix', ctx.prefix, '--session-timeout-ms', '3000', ...(port ? ['--metrics-port', String(port)] : [])]);
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

/** An evaluator agent process (examples/agents/evaluator.ts). */
function startEvaluator(id: string, env: Record<string, string>): AgentProcess {
  const p = runAgentProcess(ctx.stack, evaluator, ['--prefix', ctx.prefix, '--heartbeat-ms', '500', '--session-timeout-ms', '3000'], { EVALUATOR_ID: id, ...env });
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

async function studyFile(name: string, spec: Record<string, unknown>): Promise<string> {
  const path = join(tmpdir(), `${ctx.prefix}-${name}.json`);
  await writeFile(path, JSON.stringify(spec));
  return path;
}

// A study may run for minutes on a loaded machine: each command gets as long as the longest --timeout it is given, and more.
const optimize = (args: string[]) => runCli(ctx.stack, ['optimize', ...args, '--prefix', ctx.prefix], {}, 200_000);

interface StudyLogEvent {
  type: string;
  event: Record<string, unknown> & { studyId?: string; subjectId?: string; trialId?: string; attempt?: number; agentId?: string };
  topic: string;
}

/** Every event of one study on `studies` (and, with inputs, on `study-inputs`), in log order per topic. */
async function studyLog(studyId: string, topics = ['studies']): Promise<StudyLogEvent[]> {
  const records = await readLog(ctx.kafka, ctx.codec, topics.map((t) => ctx.topic(t)));
  return records
    .filter((r) => r.key === studyId)
    .map((r) => ({ type: r.decoded.type, event: r.decoded.event as object as StudyLogEvent['event'], topic: r.topic }));
}

const branin = {
  space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } },
  objectives: [{ name: 'value', direction: 'minimize' }],
  budget: { trials: 100 },
  parallelism: 4,
};

// These share the optimizer process and use evaluators of their own capabilities: they run side by side.
describe.concurrent('optimization studies over evaluator agent processes', () => {
  it('TPE on Branin over 4 evaluators reaches <= 0.5 in 100 trials and beats random search; a team study picks the best team; the best params land as variable changes naming the study; rerun calls no agent', { timeout: 240_000 }, async () => {
    const owner = new VariableOwner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => owner.stop());
    await owner.start();
    const variables = new VariablesClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => variables.stop());
    await variables.start();
    const roles = ['planner', 'coder', 'tester', 'designer', 'critic', 'scribe'];
    await variables.define(typedVariable('branin-x1', { kind: 'float', min: -5, max: 10 }, 0));
    await variables.define(typedVariable('branin-x2', { kind: 'float', min: 0, max: 15 }, 0));
    await variables.define(agentSelection('squad', { agents: roles, initial: ['scribe'] }));

    const evaluators = [1, 2, 3, 4].map((i) => startEvaluator(`branin-${i}`, { EVALUATOR_FUNCTION: 'branin' }));
    const teamEvaluators = [1, 2].map((i) => startEvaluator(`team-${i}`, { EVALUATOR_FUNCTION: 'team', EVALUATOR_CAPABILITY: 'evaluate-team' }));
    await Promise.all([...evaluators, ...teamEvaluators].map((p) => p.ready));

    // In batches: the same seed gives the same study however quick each evaluator is (the best team, 1.85, is only 0.05 above planner + coder + tester + scribe).
    const tpe = await studyFile('tpe', { ...branin, name: 'branin-tpe', schedule: 'batch', searcher: 'tpe', apply: { x1: 'branin-x1', x2: 'branin-x2' } });
    const random = await studyFile('random', { ...branin, name: 'branin-random', schedule: 'batch', searcher: 'random' });
    const team = await studyFile('team', {
      name: 'team', schedule: 'batch', space: { team: { type: 'agentSet', candidates: roles, minSize: 1, maxSize: 4 } }, objectives: [{ name: 'quality', direction: 'maximize' }],
      budget: { trials: 100 }, parallelism: 2, searcher: 'tpe', evaluators: { capability: 'evaluate-team' }, apply: { team: 'squad' },
    });
    const [t, r, q] = await Promise.all([
      optimize(['run', tpe, '--id', `${ctx.prefix}-tpe`, '--seed', '42', '--json', '--timeout', '180s']),
      optimize(['run', random, '--id', `${ctx.prefix}-random`, '--seed', '42', '--json', '--timeout', '180s']),
      optimize(['run', team, '--id', `${ctx.prefix}-team`, '--seed', '42', '--json', '--timeout', '180s']),
    ]);
    expect(t.code, t.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(q.code, q.stderr).toBe(0);
    const best = (run: { stdout: string }) => (JSON.parse(run.stdout) as { best: Array<{ values: number[]; params: Record<string, unknown>; trialId: string }> }).best[0]!;
    const tpeBest = best(t);
    const randomBest = best(r);
    expect(tpeBest.values[0]).toBeLessThanOrEqual(0.5);
    expect(tpeBest.values[0]).toBeLessThan(randomBest.values[0]!);
    // planner + coder + tester is the best team of the synthetic function (examples/agents/evaluator.ts).
    expect([...(best(q).params['team'] as string[])].sort()).toEqual(['coder', 'planner', 'tester']);

    // Every trial ran on one of the 4 evaluators, all of them were used, and each trial counted once.
    const log = await studyLog(`${ctx.prefix}-tpe`);
    const completed = log.filter((e) => e.type === 'TrialCompleted');
    expect(completed).toHaveLength(100);
    expect(new Set(completed.map((e) => e.event.trialId)).size).toBe(100);
    expect(new Set(completed.map((e) => e.event.agentId))).toEqual(new Set(['branin-1', 'branin-2', 'branin-3', 'branin-4']));
    expect(log.filter((e) => e.type === 'TrialProposed')).toHaveLength(100);
    expect(log.at(-1)?.type).toBe('StudyCompleted');

    // The best params land as variable changes whose trigger names the study.
    const changes = async () => (await readLog(ctx.kafka, ctx.codec, [ctx.topic('variable-changes')])).filter((e) => e.decoded.type === 'VariableChanged').map((e) => e.decoded.event as unknown as VariableChanged);
    const applied = await waitFor(async () => {
      const c = (await changes()).filter((e) => e.cause === 'optimization');
      return c.length >= 3 ? c : undefined;
    }, { timeoutMs: 20_000 });
    const byVariable = new Map(applied.map((e) => [e.variableId, e]));
    expect(JSON.parse(byVariable.get('branin-x1')!.value)).toBe(tpeBest.params['x1']);
    expect(JSON.parse(byVariable.get('branin-x2')!.value)).toBe(tpeBest.params['x2']);
    expect(JSON.parse(byVariable.get('branin-x1')!.trigger!)).toMatchObject({ study: `${ctx.prefix}-tpe`, trial: tpeBest.trialId });
    expect([...(JSON.parse(byVariable.get('squad')!.value) as string[])].sort()).toEqual(['coder', 'planner', 'tester']);
    expect(JSON.parse(byVariable.get('squad')!.trigger!)).toMatchObject({ study: `${ctx.prefix}-team` });

    // A counterfactual re-run with another searcher: nothing is produced for the study (no trial, no evaluation, no variable change), and both curves are reported.
    // (Other studies of this file run meanwhile, so what is counted is what concerns this one.)
    const concerning = async () =>
      (await readLog(ctx.kafka, ctx.codec, ['study-inputs', 'studies', 'variable-requests'].map((n) => ctx.topic(n)))).filter((r) => r.key === `${ctx.prefix}-tpe` || r.key === 'branin-x1' || r.key === 'branin-x2').length;
    const before = await concerning();
    const rerun = await optimize(['rerun', `${ctx.prefix}-tpe`, '--searcher', 'random', '--nearest', '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const report = JSON.parse(rerun.stdout) as { evaluations: number; trials: number; recorded: { curve: number[]; best: number }; rerun: { curve: number[]; misses: unknown[]; hits: number } };
    expect(report.evaluations).toBe(0);
    expect(report.trials).toBe(100);
    expect(report.recorded.curve).toHaveLength(100);
    expect(report.rerun.curve).toHaveLength(100);
    expect(report.recorded.best).toBe(tpeBest.values[0]);
    expect(report.rerun.hits + report.rerun.misses.length).toBe(100);
    expect(await concerning()).toBe(before);
    // The same searcher and seed find every one of its proposals recorded.
    const same = JSON.parse((await optimize(['rerun', `${ctx.prefix}-team`, '--searcher', 'tpe', '--json'])).stdout) as { rerun: { hits: number; misses: unknown[] } };
    expect(same.rerun.misses).toHaveLength(0);

    // The optimizer counts what it decided: at least these three studies' 260 completions and 260 proposals.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const count = (outcome: string) => Number(new RegExp(`^mabeam_trials_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(count('complete')).toBeGreaterThanOrEqual(260);
    expect(count('proposed')).toBeGreaterThanOrEqual(260);
    expect(metrics).toMatch(/^mabeam_studies_total\{status="completed-trials"\} \d+/m);

    const status = await optimize(['status', `${ctx.prefix}-tpe`]);
    expect(status.stdout).toContain('100 proposed, 100 finished of 100');
    const trials = JSON.parse((await optimize(['trials', `${ctx.prefix}-tpe`, '--json'])).stdout) as unknown[];
    expect(trials).toHaveLength(100);
  });

  it('an evaluator SIGKILLed mid-trial: the trial is retried on another evaluator and counted once', { timeout: 120_000 }, async () => {
    const env = { EVALUATOR_FUNCTION: 'branin', EVALUATOR_CAPABILITY: 'evaluate-slow', EVALUATOR_DELAY_MS: '4000' };
    const a = startEvaluator('slow-1', env);
    const b = startEvaluator('slow-2', env);
    await Promise.all([a.ready, b.ready]);
    const studyId = `${ctx.prefix}-kill-evaluator`;
    const file = await studyFile('kill-evaluator', { ...branin, budget: { trials: 6 }, parallelism: 2, searcher: 'random', evaluators: { capability: 'evaluate-slow' }, retry: { maxAttempts: 3, leaseMs: 5000 } });
    const run = optimize(['run', file, '--id', studyId, '--seed', '1', '--json', '--timeout', '90s']);
    // Once slow-1 has said it started a trial (a 4 s evaluation), it dies without a word.
    const started = await waitFor(async () => (await studyLog(studyId, ['study-inputs'])).find((e) => e.type === 'TrialStarted' && e.event.agentId === 'slow-1'), { timeoutMs: 30_000 });
    a.process.kill('SIGKILL');
    const done = await run;
    expect(done.code, done.stderr).toBe(0);
    const log = await studyLog(studyId);
    const killed = started.event.trialId!;
    const retried = log.find((e) => e.type === 'TrialRetried' && e.event.trialId === killed);
    expect(retried?.event).toMatchObject({ previousAgentId: 'slow-1', attempt: 2 });
    // Its lease ran out: with no sign of life since its start (LEASE_EXPIRED) — or, when the optimizer had not yet read that start, since its assignment (NOT_STARTED).
    expect(['LEASE_EXPIRED', 'NOT_STARTED']).toContain(retried?.event['reasonCode']);
    const completions = log.filter((e) => e.type === 'TrialCompleted');
    expect(completions.filter((e) => e.event.trialId === killed)).toHaveLength(1);
    expect(completions.find((e) => e.event.trialId === killed)?.event.agentId).toBe('slow-2');
    expect(new Set(completions.map((e) => e.event.trialId)).size).toBe(6);
    expect(completions).toHaveLength(6);
    expect((JSON.parse(done.stdout) as { finished: number }).finished).toBe(6);
  });

  it('ASHA stops trials whose intermediate values are poor, and their evaluators are told', { timeout: 120_000 }, async () => {
    const env = { EVALUATOR_FUNCTION: 'curve', EVALUATOR_CAPABILITY: 'evaluate-curve', EVALUATOR_DELAY_MS: '100', EVALUATOR_STEPS: '9' };
    await Promise.all([startEvaluator('curve-1', env), startEvaluator('curve-2', env)].map((p) => p.ready));
    const studyId = `${ctx.prefix}-asha`;
    const file = await studyFile('asha', {
      space: { lr: { type: 'float', low: 1e-5, high: 1, log: true }, width: { type: 'int', low: 8, high: 256 } }, objectives: [{ name: 'loss', direction: 'minimize' }],
      budget: { trials: 24 }, parallelism: 2, searcher: 'random', pruner: { name: 'asha', config: { minResource: 1, reductionFactor: 3 } }, evaluators: { capability: 'evaluate-curve' },
      // An evaluator waits for the verdict on each report up to a third of the lease: a long lease lets a loaded machine's optimizer answer.
      retry: { maxAttempts: 3, leaseMs: 30000 },
    });
    const done = await optimize(['run', file, '--id', studyId, '--seed', '5', '--json', '--timeout', '100s']);
    expect(done.code, done.stderr).toBe(0);
    const log = await studyLog(studyId, ['studies', 'study-inputs']);
    const pruned = log.filter((e) => e.topic === ctx.topic('studies') && e.type === 'TrialPruned');
    expect(pruned.length).toBeGreaterThan(0);
    for (const p of pruned) expect(p.event).toMatchObject({ rule: 'asha' });
    // A pruned trial's evaluator is told — the verdict on its report is what it waits for — and stops there: it reports
    // nothing past the pruned step (one more at most, had the verdict been late), not the last step (9) unless it was
    // pruned there (ASHA's third rung, 1 · 3², is step 9), and never completes.
    for (const p of pruned) {
      const reports = log.filter((e) => e.topic === ctx.topic('study-inputs') && e.type === 'TrialReported' && e.event.trialId === p.event.trialId);
      const steps = reports.map((e) => Number(e.event['step']));
      expect(Math.max(...steps)).toBeLessThanOrEqual(Number(p.event['step']) + 1);
      if (Number(p.event['step']) < 9) expect(steps).not.toContain(9);
      expect(log.some((e) => e.topic === ctx.topic('study-inputs') && e.type === 'TrialCompleted' && e.event.trialId === p.event.trialId)).toBe(false);
      expect(log.some((e) => e.topic === ctx.topic('studies') && e.type === 'TrialCompleted' && e.event.trialId === p.event.trialId)).toBe(false);
    }
    const completed = log.filter((e) => e.topic === ctx.topic('studies') && e.type === 'TrialCompleted');
    expect(completed.length + pruned.length).toBe(24);
  });

  it('bad input: an undecodable record goes to dead letters, a bad study and a report for a trial that does not exist are rejected, and studies go on', { timeout: 60_000 }, async () => {
    const producer = await ctx.producer();
    await producer.send({ topic: ctx.topic('study-inputs'), messages: [{ key: 'garbage', value: Buffer.from('not avro at all') }] });
    const bad = await studyFile('bad', { ...branin, searcher: 'annealing' });
    const refused = await optimize(['run', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('unknown searcher "annealing"');
    // A study the CLI would refuse, sent by another client: the optimizer rejects it on the log.
    const studyId = `${ctx.prefix}-foreign`;
    const created = { envelope: newEnvelope('StudyCreated', 'foreign', { correlationId: studyId }), studyId, requesterId: 'foreign', seed: 1, spec: JSON.stringify({ ...branin, objectives: [] }) };
    await producer.send({ topic: ctx.topic('study-inputs'), messages: [{ key: studyId, value: await ctx.codec.encode('StudyCreated', created) }] });
    const report = { envelope: newEnvelope('TrialCompleted', 'foreign', { correlationId: 'no-such-study' }), studyId: 'no-such-study', trialId: 'no-such-study#1', attempt: 1, agentId: 'x', values: [1], constraints: [] };
    await producer.send({ topic: ctx.topic('study-inputs'), messages: [{ key: 'no-such-study', value: await ctx.codec.encode('TrialCompleted', report) }] });
    const rejected = await waitFor(async () => {
      const log = await readLog(ctx.kafka, ctx.codec, [ctx.topic('studies')]);
      const r = log.filter((e) => e.decoded.type === 'Rejection').map((e) => e.decoded.event as object as Record<string, unknown>);
      return r.some((e) => e['subjectId'] === studyId) && r.some((e) => e['subjectId'] === 'no-such-study') ? r : undefined;
    }, { timeoutMs: 20_000 });
    expect(rejected.find((e) => e['subjectId'] === studyId)).toMatchObject({ reasonCode: 'INVALID_STUDY' });
    expect(rejected.find((e) => e['subjectId'] === 'no-such-study')).toMatchObject({ reasonCode: 'UNKNOWN_STUDY' });
    const dead = await waitFor(async () => (await readLog(ctx.kafka, ctx.codec, [ctx.topic('dead-letters')])).find((e) => (e.decoded.event as { sourceTopic?: string }).sourceTopic === ctx.topic('study-inputs')), { timeoutMs: 20_000 });
    expect(Buffer.from((dead.decoded.event as { value: Buffer }).value).toString()).toBe('not avro at all');
    expect(optimizer.process.exitCode).toBeNull();
  });
});

// It kills the optimizer the others use: after them.
describe('the optimizer process', () => {
  it('the optimizer SIGKILLed mid-study: a new one resumes from the log and proposes exactly what an uninterrupted run with the same seed proposes', { timeout: 180_000 }, async () => {
    const env = { EVALUATOR_FUNCTION: 'branin', EVALUATOR_CAPABILITY: 'evaluate-resume', EVALUATOR_DELAY_MS: '100' };
    const evaluators = [startEvaluator('resume-1', env), startEvaluator('resume-2', env)];
    await Promise.all(evaluators.map((p) => p.ready));
    const spec = { ...branin, budget: { trials: 20 }, parallelism: 1, searcher: 'tpe', evaluators: { capability: 'evaluate-resume' }, retry: { maxAttempts: 3, leaseMs: 3000 } };
    const file = await studyFile('resume', spec);
    const uninterrupted = await optimize(['run', file, '--id', `${ctx.prefix}-whole`, '--seed', '9', '--json', '--timeout', '120s']);
    expect(uninterrupted.code, uninterrupted.stderr).toBe(0);

    const studyId = `${ctx.prefix}-resumed`;
    const run = optimize(['run', file, '--id', studyId, '--seed', '9', '--json', '--timeout', '150s']);
    await waitFor(async () => (await studyLog(studyId)).filter((e) => e.type === 'TrialCompleted').length >= 8 || undefined, { timeoutMs: 60_000 });
    optimizer.process.kill('SIGKILL');
    await optimizer.exited;
    optimizer = startOptimizer();
    await optimizer.ready;
    const resumed = await run;
    expect(resumed.code, resumed.stderr).toBe(0);
    const proposals = async (id: string) => (await studyLog(id)).filter((e) => e.type === 'TrialProposed').map((e) => ({ number: e.event['number'], params: e.event['params'], seed: e.event['seed'] }));
    const whole = await proposals(`${ctx.prefix}-whole`);
    expect(whole).toHaveLength(20);
    expect(await proposals(studyId)).toEqual(whole);
    expect((JSON.parse(resumed.stdout) as { diverged: number }).diverged).toBe(0);
  });

});

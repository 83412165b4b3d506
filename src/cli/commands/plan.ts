import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { RegistryAgents } from '../../agents/capableAgents.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import { auditPlan, type PlanAudit, type StepAttemptAudit } from '../../audit/index.ts';
import { MabeamError, describeError, isMabeamError } from '../../errors.ts';
import type { PlanCreated } from '../../events/types.ts';
import type { Logger } from '../../log/logger.ts';
import { checkGoalRequest, PlanClient, type GoalRequest, type PlanResult } from '../../planner/client.ts';
import { topologicalOrder } from '../../planner/plan.ts';
import { readPlan, type ReadPlan } from '../../planner/planLog.ts';
import { Planner } from '../../planner/planner.ts';
import { isFinished } from '../../planner/progress.ts';
import type { PlanRun } from '../../planner/run.ts';
import { Templates, builtinTemplates, loadTemplates } from '../../planner/templates.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { connect, type Connections } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { out, progress, table } from '../output.ts';
import { parseDuration } from '../roundRequest.ts';
import { positiveInt } from './topics.ts';

async function endpoints(program: Command) {
  return endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerPlanCommands(program: Command, logger: () => Logger): void {
  program
    .command('planner')
    .description('the planner')
    .command('run')
    .description('run a planner (a member of the planners group: it decides the plans of its partitions) until SIGTERM / SIGINT')
    .option('--templates <module>', 'a module of goal templates (export default or templates: { type, plan(goal) } or an array); repeatable', collect, [])
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--session-timeout-ms <ms>', 'how soon a dead planner\'s plans move to the others', positiveInt)
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .option('--require-signatures', 'refuse step reports not signed by their agent\'s registered key (also MABEAM_REQUIRE_SIGNATURES=1)')
    .action(async (opts: { templates: string[]; prefix: string; sessionTimeoutMs?: number; metricsPort?: number; requireSignatures?: boolean }) => {
      const templates = new Templates(builtinTemplates);
      for (const path of opts.templates) for (const t of await loadTemplates(path)) templates.register(t);
      const c = await connect(await endpoints(program), logger(), 'mabeam-planner', { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const instanceId = `planner-${process.pid}-${randomBytes(3).toString('hex')}`;
      const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: `planner:${instanceId}`, disposable: true });
      await registry.start();
      const planner = new Planner({
        kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, metrics: c.metrics, instanceId, agents: new RegistryAgents(registry), templates,
        ...(opts.sessionTimeoutMs ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}),
        ...(opts.requireSignatures ? { requireSignatures: true } : {}),
      });
      await planner.start();
      progress(`planner ${planner.instanceId} running in group ${planner.groupId} (goal templates: ${templates.types().join(', ')})`);
      process.send?.({ type: 'ready', agents: [], pool: 'planners', instanceId: planner.instanceId, groupId: planner.groupId });
      const shutDown = async () => {
        await planner.stop();
        await registry.stop();
        await c.close();
        await closeMetrics();
      };
      await untilSignalOrStopped([planner], shutDown);
      await shutDown();
    });

  registerPlanClientCommands(program, logger);
}

/** Exit codes of the `plan` commands. */
export const planExitCodes = { completed: 0, error: 1, badInput: 2, notCompleted: 3 } as const;

const badInputCodes = new Set(['INVALID_OPTIONS', 'VALIDATION_FAILED', 'NOT_IN_LOG']);

/** A failed command says why on one line (with its code) and exits 2 for bad input (an unknown plan too), 1 for anything else. */
function failed(error: unknown): void {
  process.stderr.write(`mabeam: ${describeError(error)}${isMabeamError(error) ? ` [${error.code}]` : ''}\n`);
  process.exitCode = isMabeamError(error) && badInputCodes.has(error.code) ? planExitCodes.badInput : planExitCodes.error;
}

const planIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const iso = (ms: number | null | undefined): string => (ms === null || ms === undefined || !Number.isFinite(ms) ? '—' : new Date(ms).toISOString());

/** 850 ms, 1.2 s, 3m 05s, 2h 01m */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3_600)}h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`;
}

const jsonText = (value: unknown): string => (value === undefined ? '—' : JSON.stringify(value) ?? String(value));

/** One step for people and machines, in topological order. */
export function stepsJson(run: PlanRun): Array<Record<string, unknown>> {
  return topologicalOrder(run.plan).map((id) => {
    const st = run.steps.get(id)!;
    const step = run.plan.steps.find((s) => s.id === id)!;
    return {
      stepId: id, capability: step.capability, state: st.state, attempt: st.attempt, agentId: st.agentId, triedBy: st.triedBy, roundId: st.roundId,
      escalated: st.escalated, reason: st.reason, errors: st.errors, result: st.state === 'completed' ? (st.result ?? null) : null,
    };
  });
}

/** Steps finished, of all. */
function counts(run: PlanRun): { total: number; finished: number; byState: Record<string, number>; running: number } {
  const byState: Record<string, number> = {};
  let finished = 0;
  let running = 0;
  for (const s of run.steps.values()) {
    byState[s.state] = (byState[s.state] ?? 0) + 1;
    if (isFinished(s.state)) finished += 1;
    if (s.state === 'assigned' || s.state === 'running') running += 1;
  }
  return { total: run.steps.size, finished, byState, running };
}

const statesText = (byState: Record<string, number>): string => Object.entries(byState).map(([k, v]) => `${v} ${k}`).join(', ');

/** A plan's status for machines: its outcome and every step. */
export function planJson(run: PlanRun): Record<string, unknown> {
  const o = run.outcome;
  return {
    planId: run.planId,
    status: o ? o.status : 'running',
    ...(o?.status === 'completed' ? { result: o.result } : {}),
    ...(o && o.status !== 'completed' ? { reason: o.reason } : {}),
    ...(o?.status === 'failed' ? { failed: o.failed } : {}),
    steps: stepsJson(run),
  };
}

function statusJson(read: ReadPlan): Record<string, unknown> {
  const run = read.run;
  const created = read.events.find((x) => x.e.type === 'PlanCreated')?.e.event as PlanCreated | undefined;
  if (!run) {
    const r = read.rejected!;
    return { planId: r.planId, status: 'rejected', rejection: { reasonCode: r.reasonCode, reason: r.reason, problems: r.problems, at: iso(r.envelope.eventTime) }, steps: [] };
  }
  const c = counts(run);
  const o = run.outcome;
  return {
    ...planJson(run),
    goalType: created?.goalType ?? null,
    requesterId: created?.requesterId ?? null,
    createdAt: iso(run.createdAt),
    finishedAt: o ? iso(o.at) : null,
    durationMs: o ? o.at - run.createdAt : null,
    deadlineMs: run.plan.deadlineMs ?? null,
    assignment: run.plan.assignment,
    progress: { steps: c.total, finished: c.finished, running: c.running, states: c.byState },
  };
}

function outcomeText(run: PlanRun): string {
  const o = run.outcome;
  const c = counts(run);
  if (!o) return `running: ${c.finished}/${c.total} steps finished (${statesText(c.byState)})`;
  const took = `at ${iso(o.at)}, ${duration(o.at - run.createdAt)} after it was created`;
  if (o.status === 'completed') return `completed ${took}`;
  if (o.status === 'failed') return `failed ${took}: ${o.reason}`;
  return `cancelled ${took}: ${o.reason}`;
}

function stepsTable(run: PlanRun): string {
  return table([
    ['STEP', 'CAPABILITY', 'STATE', 'ATTEMPT', 'AGENT', 'TRIED BY', 'ROUND'],
    ...(stepsJson(run) as Array<{ stepId: string; capability: string; state: string; attempt: number; agentId: string | null; triedBy: string[]; roundId: string | null }>).map((s) => [
      s.stepId, s.capability, s.state, String(s.attempt), s.agentId ?? '—', s.triedBy.length > 0 ? s.triedBy.join(', ') : '—', s.roundId ?? '—',
    ]),
  ]);
}

function rejectionLines(planId: string, r: { reasonCode: string; reason: string; problems?: string[] }): string[] {
  return [`plan ${planId} rejected: ${r.reason} [${r.reasonCode}]`, ...(r.problems ?? []).map((p) => `  - ${p}`)];
}

function registerPlanClientCommands(program: Command, logger: () => Logger): void {
  const plan = program
    .command('plan')
    .description('plans: goals decomposed into DAGs of steps that agents run (a planner and agents with the steps\' capabilities must run)')
    .addHelpText('after', '\nExit codes: 0 done (a plan completed), 1 other errors, 2 bad input, a plan the planner rejected, or an unknown plan [NOT_IN_LOG], 3 a plan failed, cancelled or not finished (in time).');

  /** The commands' connection: Kafka and the registry (no Redis). */
  const withConnection = async (work: (c: Connections) => Promise<void>): Promise<void> => {
    let c: Connections | undefined;
    try {
      c = await connect(await endpoints(program), logger(), 'mabeam-cli', { redis: false });
      await work(c);
    } catch (error) {
      failed(error);
    } finally {
      await c?.close();
    }
  };
  const clientOf = (c: Connections, prefix: string) => new PlanClient({ kafka: c.kafka, producer: c.producer, codec: c.codec, logger: c.logger, prefix, requesterId: `cli-${process.pid}` });

  plan
    .command('run <goal.json>')
    .description('submit a goal (a file, or - for stdin: { "type": "<template>", "goal": {...} } or { "plan": {...}, "goal"?: {...} }) and follow its plan to its end; prints the joined result. Exit 0 completed, 2 bad input or rejected, 3 failed, cancelled or not finished before --timeout, 1 other errors')
    .option('--id <planId>', 'the plan id (default plan-<uuid>)')
    .option('--timeout <duration>', 'how long to follow the plan (default 1h)', '1h')
    .option('--no-wait', 'submit the goal, print the plan id and return')
    .option('--json', 'print { planId, status, result, steps } as JSON')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (file: string, opts: { id?: string; timeout: string; wait: boolean; json?: boolean; prefix: string }) => {
      let request: GoalRequest;
      let timeoutMs: number;
      try {
        const text = file === '-' ? await readStdin() : await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw new MabeamError('INVALID_OPTIONS', `Cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
        });
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (error) {
          throw new MabeamError('VALIDATION_FAILED', `${file === '-' ? 'stdin' : file} is not JSON: ${describeError(error)}`);
        }
        request = checkGoalRequest(raw);
        if (opts.id !== undefined && !planIdPattern.test(opts.id)) throw new MabeamError('INVALID_OPTIONS', `--id: a plan id is letters, digits, ".", "_" or "-", starting with a letter or digit, not "${opts.id}"`);
        timeoutMs = parseDuration(opts.timeout, '--timeout');
      } catch (error) {
        process.stderr.write(`mabeam: ${describeError(error)}${isMabeamError(error) ? ` [${error.code}]` : ''}\n`);
        process.exitCode = planExitCodes.badInput;
        return;
      }
      const planId = opts.id ?? `plan-${randomUUID()}`;
      await withConnection(async (c) => {
        process.exitCode = await runPlan(clientOf(c, opts.prefix), planId, request, { timeoutMs, timeoutText: opts.timeout, wait: opts.wait, json: opts.json === true });
      });
    });

  const reader = (name: string, description: string, show: (read: ReadPlan, json: boolean) => number | void) =>
    plan
      .command(`${name} <planId>`)
      .description(description)
      .option('--json', 'print JSON')
      .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
      .action(async (planId: string, opts: { json?: boolean; prefix: string }) => {
        await withConnection(async (c) => {
          const code = show(await readPlan(c.kafka, c.codec, c.logger, opts.prefix, planId), opts.json === true);
          if (typeof code === 'number') process.exitCode = code;
        });
      });

  reader('status', 'where a plan stands: each step (capability, state, attempt, agent, the agents tried, its auction round) and the plan\'s outcome', (read, json) => {
    if (json) return out(JSON.stringify(statusJson(read), null, 2));
    const run = read.run;
    if (!run) return out(rejectionLines(read.rejected!.planId, read.rejected!).join('\n'));
    const created = read.events.find((x) => x.e.type === 'PlanCreated')?.e.event as PlanCreated | undefined;
    out(table([
      ['plan', run.planId],
      ['goal', created?.goalType ? `template ${created.goalType}` : 'a plan given whole'],
      ['created', `${iso(run.createdAt)}${created ? ` by ${created.requesterId}` : ''}`],
      ['status', outcomeText(run)],
    ]));
    out('');
    out(stepsTable(run));
  });

  reader('result', 'a completed plan\'s joined result (JSON); exit 3 with its status when it has not completed', (read) => {
    const run = read.run;
    if (!run) {
      process.stderr.write(`mabeam: ${rejectionLines(read.rejected!.planId, read.rejected!).join('\n')}\n`);
      return planExitCodes.notCompleted;
    }
    const o = run.outcome;
    if (o?.status === 'completed') return out(JSON.stringify(o.result, null, 2));
    process.stderr.write(`mabeam: plan ${run.planId} has not completed: ${outcomeText(run)}\n`);
    return planExitCodes.notCompleted;
  });

  plan
    .command('cancel <planId>')
    .description('cancel a plan (PlanCancelled) and wait until its log shows it cancelled. Exit 0 cancelled, 3 finished already (or before the cancellation took) or not cancelled before --timeout, 2 an unknown plan')
    .option('--reason <text>', 'why (written in PlanCancelled)', 'cancelled from the command line')
    .option('--timeout <duration>', 'how long to wait for the planner (default 30s)', '30s')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (planId: string, opts: { reason: string; timeout: string; prefix: string }) => {
      let timeoutMs: number;
      try {
        timeoutMs = parseDuration(opts.timeout, '--timeout');
      } catch (error) {
        failed(error);
        return;
      }
      await withConnection(async (c) => {
        const read = await readPlan(c.kafka, c.codec, c.logger, opts.prefix, planId);
        if (!read.run) {
          process.stderr.write(`mabeam: plan ${planId} was rejected (${read.rejected!.reasonCode}): nothing to cancel\n`);
          process.exitCode = planExitCodes.notCompleted;
          return;
        }
        if (read.run.outcome) {
          process.stderr.write(`mabeam: plan ${planId} is ${read.run.outcome.status} already: nothing to cancel\n`);
          process.exitCode = planExitCodes.notCompleted;
          return;
        }
        const client = clientOf(c, opts.prefix);
        const result = await client.follow(planId, { timeoutMs, submit: () => client.cancel(planId, opts.reason) });
        if (result.status === 'cancelled') {
          out(`plan ${planId} cancelled: ${result.reason}`);
          process.exitCode = planExitCodes.completed;
        } else if (result.status === 'timeout') {
          process.stderr.write(`mabeam: plan ${planId} was not cancelled within ${opts.timeout} (is a planner running?); the cancellation stays on plan-inputs\n`);
          process.exitCode = planExitCodes.notCompleted;
        } else {
          process.stderr.write(`mabeam: plan ${planId} ${result.status === 'rejected' ? 'was rejected' : `finished as ${result.status}`} before the cancellation took: nothing to cancel\n`);
          process.exitCode = planExitCodes.notCompleted;
        }
      });
    });

  plan
    .command('audit <planId>')
    .description('a plan\'s story from its log: for each step in topological order every attempt (whom its auction asked, each bid and what became of it, who was chosen and why), start, end and durations, errors, retries and why, refused reports, the outcome')
    .option('--json', 'print the audit as one JSON object')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (planId: string, opts: { json?: boolean; prefix: string }) => {
      await withConnection(async (c) => {
        const audit = await auditPlan({ kafka: c.kafka, codec: c.codec, prefix: opts.prefix, definitions: c.definitions }, planId);
        out(opts.json ? JSON.stringify(audit, null, 2) : planStory(audit));
      });
    });
}

/** Submits a goal and follows its plan (PlanClient.run), saying how it goes on stderr; returns the exit code. */
async function runPlan(client: PlanClient, planId: string, request: GoalRequest, o: { timeoutMs: number; timeoutText: string; wait: boolean; json: boolean }): Promise<number> {
  if (!o.wait) {
    await client.submit(request, { planId });
    progress(`plan ${planId} submitted`);
    out(planId);
    return planExitCodes.completed;
  }
  let said = false;
  let lastLine = 0;
  const result: PlanResult = await client.run(request, {
    planId,
    timeoutMs: o.timeoutMs,
    onEvent: (e, run) => {
      if (!run) return;
      if (!said && e.type === 'PlanCreated') {
        said = true;
        progress(`plan ${planId} created: ${run.steps.size} step${run.steps.size === 1 ? '' : 's'}`);
        return;
      }
      if (run.outcome || !(e.type === 'StepCompleted' || e.type === 'StepSkipped' || (e.type === 'StepFailed' && e.event.final))) return;
      const now = Date.now();
      if (now - lastLine < 1_000) return;
      lastLine = now;
      const c = counts(run);
      const what = e.type === 'StepCompleted' ? `${e.event.stepId} completed by ${e.event.agentId}` : e.type === 'StepSkipped' ? `${e.event.stepId} skipped` : `${e.event.stepId} failed`;
      progress(`plan ${planId}: ${c.finished}/${c.total} steps finished (${statesText(c.byState)}); last: ${what}`);
    },
  });
  switch (result.status) {
    case 'rejected':
      process.stderr.write(`mabeam: ${rejectionLines(planId, result.rejection).join('\n')}\n`);
      return planExitCodes.badInput;
    case 'timeout':
      process.stderr.write(`mabeam: plan ${planId} did not finish within ${o.timeoutText} (is a planner running, and agents with its steps' capabilities?); it goes on — follow it with mabeam plan status ${planId}\n`);
      if (o.json && result.run) out(JSON.stringify({ ...planJson(result.run), status: 'timeout' }, null, 2));
      return planExitCodes.notCompleted;
    case 'failed':
    case 'cancelled': {
      const run = result.run;
      const errors = [...run.steps.values()].filter((s) => s.state === 'failed' && s.errors.length > 0).map((s) => `  ${s.stepId}: ${s.errors.at(-1)}`);
      process.stderr.write(`mabeam: plan ${planId} ${result.status}: ${result.reason}\n${errors.length > 0 ? `${errors.join('\n')}\n` : ''}`);
      if (o.json) out(JSON.stringify(planJson(run), null, 2));
      return planExitCodes.notCompleted;
    }
    case 'completed': {
      const run = result.run;
      progress(`plan ${planId} completed: ${run.steps.size} step${run.steps.size === 1 ? '' : 's'} in ${duration(run.outcome!.at - run.createdAt)}`);
      out(o.json ? JSON.stringify(planJson(run), null, 2) : JSON.stringify(result.result, null, 2));
      return planExitCodes.completed;
    }
  }
}

// ---- the audit's story ----

function attemptLines(a: StepAttemptAudit): string[] {
  const lines = [`  attempt ${a.attempt}${a.escalated ? ' (escalated)' : ''}${a.retryOf ? ` — a retry: ${a.retryOf.reasonCode}` : ''}`];
  const q = a.auction;
  if (q) {
    lines.push(`    auction   ${q.roundId} (${q.protocol}) at ${iso(q.eventTime)}: asked ${q.asked.join(', ') || 'no one'}${q.tiers.length > 0 ? `; then ${q.tiers.map((t, i) => `tier ${i + 1} ${t.join(', ')}`).join('; ')}` : ''}; bids until ${iso(q.deadline)}`);
    const r = q.round;
    if (!r.found) lines.push(`              ${r.note ?? 'no round in the log'}`);
    else {
      if (r.stages.length > 1) lines.push(...r.stages.map((s) => `              stage ${s.stage} asked ${s.asked.join(', ') || 'anyone'}`));
      if (r.bids.length === 0) lines.push('              no bids');
      else {
        lines.push(
          ...table([
            ['AGENT', 'BID', ...(r.stages.length > 1 ? ['STAGE'] : []), 'VERDICT', 'TIME'],
            ...r.bids.map((b) => [
              b.agentId, b.pass ? 'pass' : String(b.amount ?? b.answer), ...(r.stages.length > 1 ? [b.stage === null ? '—' : String(b.stage)] : []),
              b.verdict === 'refused' ? `refused ${b.refusal?.reasonCode ?? ''} — ${b.refusal?.reason ?? ''}` : b.verdict === 'neither' ? `neither${b.note ? ` — ${b.note}` : ''}` : 'counted',
              iso(b.eventTime),
            ]),
          ]).split('\n').map((l) => `              ${l}`),
        );
      }
      lines.push(`              round ${r.outcome ? `${r.outcome.status}: ${r.outcome.reason}` : (r.note ?? r.state ?? 'no outcome')}`);
    }
  }
  const s = a.assigned;
  if (s) lines.push(`    assigned  to ${s.agentId} at ${iso(s.eventTime)}${s.waitedMs !== null ? ` (${duration(s.waitedMs)} after it could be)` : ''}: ${s.rule}`, `              inputs ${jsonText(s.inputs)}; lease ${duration(s.leaseMs)}`);
  if (a.started) lines.push(`    started   at ${iso(a.started.eventTime)} on ${a.started.instanceId}${a.started.afterAssignedMs !== null ? `, ${duration(a.started.afterAssignedMs)} after the assignment` : ''}`);
  if (a.completed) lines.push(`    completed at ${iso(a.completed.eventTime)}${a.completed.durationMs !== null ? ` after ${duration(a.completed.durationMs)}` : ''}: ${jsonText(a.completed.result)}`);
  if (a.failed) {
    const f = a.failed;
    lines.push(`    failed    at ${iso(f.eventTime)}${f.durationMs !== null ? ` after ${duration(f.durationMs)}` : ''}${f.agentId ? ` on ${f.agentId}` : ''} (${f.retriable ? 'retriable' : 'not retriable'}${f.final ? ', final' : ''}${f.escalated ? ', handed up' : ''}): ${f.error}`);
  }
  if (a.retried) lines.push(`    retried   as attempt ${a.retried.attempt} at ${iso(a.retried.eventTime)}: ${a.retried.reasonCode} — ${a.retried.reason}; backoff ${duration(a.retried.backoffMs)}`);
  if (!q && !s && !a.failed) lines.push('    no agent chosen yet');
  return lines;
}

export function planStory(a: PlanAudit): string {
  const lines: string[] = [];
  if (!a.created) {
    const r = a.rejected!;
    lines.push(`Plan ${a.planId}: rejected at ${iso(r.eventTime)} (requested by ${r.requesterId})`, `  ${r.reasonCode}: ${r.reason}`, ...r.problems.map((p) => `  - ${p}`));
  } else {
    const c = a.created;
    const head = a.outcome ? `${a.outcome.status}${a.outcome.durationMs !== null ? ` after ${duration(a.outcome.durationMs)}` : ''}` : 'running';
    lines.push(
      `Plan ${a.planId}: ${head}`,
      `  ${a.steps.length} step${a.steps.length === 1 ? '' : 's'}; ${c.goalType ? `template ${c.goalType}` : 'a plan given whole'}; requested by ${c.requesterId}; created at ${iso(c.eventTime)}`,
      `  assignment ${c.plan.assignment.protocol} (bidding ${duration(c.plan.assignment.biddingMs)})${c.plan.deadlineMs !== undefined ? `; deadline ${duration(c.plan.deadlineMs)}` : ''}`,
    );
  }
  for (const s of a.steps) {
    lines.push('', `Step ${s.stepId} (${s.capability}; ${s.upstream.length > 0 ? `after ${s.upstream.join(', ')}, ${s.trigger}` : 'no upstream'}): ${s.state}${s.durationMs !== null ? ` in ${duration(s.durationMs)}` : ''}`);
    if (s.ready) lines.push(`  ready     at ${iso(s.ready.eventTime)}: ${s.ready.reason}`);
    if (s.skipped) lines.push(`  skipped   at ${iso(s.skipped.eventTime)}: ${s.skipped.reason}`);
    for (const x of s.attempts) lines.push(...attemptLines(x));
  }
  lines.push('', `Refused (${a.refusals.length})`);
  if (a.refusals.length > 0) {
    lines.push(
      ...table([
        ['AGENT', 'CODE', 'EVENT', 'TIME', 'REASON'],
        ...a.refusals.map((r) => [r.agentId ?? '—', r.reasonCode, r.rejectedEventType ?? '—', iso(r.eventTime), r.reason]),
      ]).split('\n').map((l) => `  ${l}`),
    );
  }
  const o = a.outcome;
  if (o) {
    lines.push('', `Outcome   ${o.status} at ${iso(o.eventTime)}`);
    if (o.status === 'completed') lines.push(`  result ${jsonText(o.result)}`);
    else if (o.status === 'failed') lines.push(`  ${o.reason}${o.failed.length > 0 ? ` (failed: ${o.failed.join(', ')})` : ''}`);
    else lines.push(`  ${o.reason}${o.requesterId ? ` (by ${o.requesterId})` : ''}`);
  } else if (a.created) lines.push('', 'Outcome   none yet');
  lines.push('', `Read partition ${a.read.partition} of ${a.read.topic} (${a.read.events} events of the plan) and ${a.read.rounds} step round${a.read.rounds === 1 ? '' : 's'}.`);
  return lines.join('\n');
}

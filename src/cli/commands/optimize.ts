import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { AgentRegistry } from '../../agents/registry.ts';
import { MabeamError, describeError, isMabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import { RegistryEvaluators } from '../../optimizer/evaluators.ts';
import { Optimizer } from '../../optimizer/optimizer.ts';
import { bestTrials, bestCurve } from '../../optimizer/study/best.ts';
import { StudyClient } from '../../optimizer/client.ts';
import { rerunStudy } from '../../optimizer/study/rerun.ts';
import type { StudyRun } from '../../optimizer/study/run.ts';
import { parseStudy } from '../../optimizer/study/spec.ts';
import { statusJson } from '../../optimizer/study/status.ts';
import { readStudy } from '../../optimizer/study/studyLog.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { connect, type Connections } from '../connect.ts';
import { parseDuration } from '../roundRequest.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { out, progress, table } from '../output.ts';
import { positiveInt } from './topics.ts';

/** Exit codes of `optimize run`. */
export const optimizeExitCodes = { completed: 0, error: 1, badInput: 2, timeout: 3 } as const;

const badInputCodes = new Set(['INVALID_OPTIONS', 'VALIDATION_FAILED', 'NOT_IN_LOG']);

/** A failed command says why on one line (with its code) and exits 2 for bad input, 1 for anything else. */
function failed(error: unknown): void {
  process.stderr.write(`mabeam: ${describeError(error)}${isMabeamError(error) ? ` [${error.code}]` : ''}\n`);
  process.exitCode = isMabeamError(error) && badInputCodes.has(error.code) ? optimizeExitCodes.badInput : optimizeExitCodes.error;
}

async function endpoints(program: Command) {
  return endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
}

/** One trial for people and machines. */
function trialJson(t: StudyRun['trials'][number]): Record<string, unknown> {
  return {
    trialId: t.trialId, number: t.number, state: t.state, attempt: t.attempt, agentId: t.agentId, params: t.params, miniBatch: t.miniBatch, values: t.values,
    constraints: t.constraints, lastStep: t.lastStep, triedBy: t.triedBy, errors: t.errors, seed: t.seed,
  };
}

function bestText(run: StudyRun): string {
  const best = bestTrials(run);
  if (best.length === 0) return 'no trial has completed yet';
  const names = run.study.spec.objectives.map((o) => o.name);
  return table([
    ['trial', ...names, 'params'],
    ...best.map((b) => [b.trialId, ...b.values.map((v) => String(Number(v.toPrecision(6)))), JSON.stringify(b.params)]),
  ]);
}

export function registerOptimizeCommands(program: Command, logger: () => Logger): void {
  program
    .command('optimizer')
    .description('the optimizer')
    .command('run')
    .description('run an optimizer (a member of the optimizers group: it decides the studies of its partitions) until SIGTERM / SIGINT')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--session-timeout-ms <ms>', 'how soon a dead optimizer\'s studies move to the others', positiveInt)
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .option('--require-signatures', 'refuse trial reports not signed by their agent\'s registered key (also MABEAM_REQUIRE_SIGNATURES=1)')
    .action(async (opts: { prefix: string; sessionTimeoutMs?: number; metricsPort?: number; requireSignatures?: boolean }) => {
      const c = await connect(await endpoints(program), logger(), 'mabeam-optimizer', { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const instanceId = `optimizer-${process.pid}-${randomBytes(3).toString('hex')}`;
      const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: `optimizer:${instanceId}`, disposable: true });
      await registry.start();
      const optimizer = new Optimizer({
        kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, metrics: c.metrics, instanceId, evaluators: new RegistryEvaluators(registry),
        ...(opts.sessionTimeoutMs ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}),
        ...(opts.requireSignatures ? { requireSignatures: true } : {}),
      });
      await optimizer.start();
      progress(`optimizer ${optimizer.instanceId} running in group ${optimizer.groupId}`);
      process.send?.({ type: 'ready', agents: [], pool: 'optimizers', instanceId: optimizer.instanceId, groupId: optimizer.groupId });
      const shutDown = async () => {
        await optimizer.stop();
        await registry.stop();
        await c.close();
        await closeMetrics();
      };
      await untilSignalOrStopped([optimizer], shutDown);
      await shutDown();
    });

  const optimize = program.command('optimize').description('studies: optimize variables and agent teams with evaluator agents');

  optimize
    .command('run <study.json>')
    .description('start a study and follow it to its end (an optimizer and agents with the evaluate capability must run). Exit 0 completed, 2 bad or rejected study, 3 not completed before --timeout, 1 other errors')
    .option('--id <studyId>', 'the study id (default study-<uuid>)')
    .option('--seed <n>', 'the seed of every random draw of the study (default: random, and printed)')
    .option('--timeout <duration>', 'how long to follow the study (default 1h)', '1h')
    .option('--no-wait', 'start the study and return at once')
    .option('--json', 'print the completed study as JSON')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (file: string, opts: { id?: string; seed?: string; timeout: string; wait: boolean; json?: boolean; prefix: string }) => {
      let spec: unknown;
      let seed: number;
      let timeoutMs: number;
      try {
        spec = JSON.parse(file === '-' ? await readStdin() : await readFile(file, 'utf8'));
        parseStudy(spec);
        seed = opts.seed === undefined ? randomBytes(4).readUInt32BE(0) : Number(opts.seed);
        if (!Number.isSafeInteger(seed) || seed < 0) throw new MabeamError('INVALID_OPTIONS', `--seed must be a whole number >= 0, not ${opts.seed}`);
        timeoutMs = parseDuration(opts.timeout, '--timeout');
      } catch (error) {
        process.stderr.write(`mabeam: ${describeError(error)}\n`);
        process.exitCode = optimizeExitCodes.badInput;
        return;
      }
      const studyId = opts.id ?? `study-${randomUUID()}`;
      const c = await connect(await endpoints(program), logger(), 'mabeam-cli', { redis: false });
      try {
        process.exitCode = await runStudy(c, opts.prefix, studyId, seed, spec, { timeoutMs, wait: opts.wait, json: opts.json === true });
      } catch (error) {
        failed(error);
      } finally {
        await c.close();
      }
    });

  const reader = (name: string, description: string, show: (run: StudyRun, json: boolean) => void) =>
    optimize
      .command(`${name} <studyId>`)
      .description(description)
      .option('--json', 'print JSON')
      .option('--verify', 'check every logged proposal by asking the searcher again (slower); those it would not make are counted as diverged')
      .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
      .action(async (studyId: string, opts: { json?: boolean; verify?: boolean; prefix: string }) => {
        const c = await connect(await endpoints(program), logger(), 'mabeam-cli', { redis: false });
        try {
          show(await readStudy(c.kafka, c.codec, c.logger, opts.prefix, studyId, { verify: opts.verify === true }), opts.json === true);
        } catch (error) {
          failed(error);
        } finally {
          await c.close();
        }
      });

  reader('status', 'where a study stands: trials proposed, running and finished, the best so far, whether it completed', (run, json) => {
    const s = statusJson(run);
    if (json) return out(JSON.stringify(s, null, 2));
    out(table([
      ['study', run.studyId],
      ['searcher', `${run.study.spec.searcher.name} (seed ${run.seed}), pruner ${run.study.spec.pruner.name}`],
      ['trials', `${run.trials.length} proposed, ${run.finished} finished of ${run.study.spec.budget.trials ?? '∞'} (${Object.entries(s['states'] as Record<string, number>).map(([k, v]) => `${v} ${k}`).join(', ')})`],
      ['completed', run.completed ? `${run.completed.reason}${run.completed.applied.length ? `; applied ${run.completed.applied.join(', ')}` : ''}` : 'no'],
      ...(run.verify ? [['proposals', run.diverged.length === 0 ? 'every one is what the searcher proposes again' : `${run.diverged.length} the searcher would not propose again (trials ${run.diverged.map((d) => d.number).join(', ')})`]] : []),
    ]));
    out(bestText(run));
  });

  reader('best', 'the best trial of a study (the Pareto front for several objectives)', (run, json) => (json ? out(JSON.stringify(bestTrials(run), null, 2)) : out(bestText(run))));

  reader('trials', 'every trial of a study: state, attempts, evaluators, params and values', (run, json) => {
    if (json) return out(JSON.stringify(run.trials.map(trialJson), null, 2));
    out(table([
      ['trial', 'state', 'attempt', 'agent', 'values', 'params'],
      ...run.trials.map((t) => [String(t.number), t.state, String(t.attempt), t.agentId ?? '-', t.values ? t.values.map((v) => String(Number(v.toPrecision(6)))).join(', ') : '-', JSON.stringify(t.params)]),
    ]));
  });

  optimize
    .command('rerun <studyId>')
    .description('replay a study\'s recorded evaluations into another searcher, calling no agent; reports best-found against trials for both, and the proposals never evaluated')
    .requiredOption('--searcher <name>', 'the searcher to re-run with (random, tpe, simba)')
    .option('--config <json>', 'the searcher\'s options as JSON')
    .option('--seed <n>', 'its seed (default: the study\'s)')
    .option('--nearest', 'let the nearest recorded evaluation stand in for a proposal never evaluated')
    .option('--json', 'print JSON')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (studyId: string, opts: { searcher: string; config?: string; seed?: string; nearest?: boolean; json?: boolean; prefix: string }) => {
      const c = await connect(await endpoints(program), logger(), 'mabeam-cli', { redis: false });
      try {
        const run = await readStudy(c.kafka, c.codec, c.logger, opts.prefix, studyId);
        const started = performance.now();
        const report = rerunStudy(run, {
          searcher: opts.searcher,
          ...(opts.config ? { config: JSON.parse(opts.config) as Record<string, unknown> } : {}),
          ...(opts.seed !== undefined ? { seed: Number(opts.seed) } : {}),
          ...(opts.nearest ? { nearest: true } : {}),
        });
        const ms = performance.now() - started;
        if (opts.json) return out(JSON.stringify({ ...report, ms: Math.round(ms) }, null, 2));
        const at = (curve: Array<number | null>, n: number) => {
          const v = curve[Math.min(n, curve.length) - 1];
          return v === null || v === undefined ? '-' : String(Number(v.toPrecision(6)));
        };
        const marks = [1, 5, 10, 25, 50, 100, 250, 500, 1000].filter((n) => n < report.trials).concat(report.trials);
        out(table([
          ['searcher', ...marks.map((n) => `best@${n}`)],
          [`${report.recorded.searcher} (recorded)`, ...marks.map((n) => at(report.recorded.curve, n))],
          [`${report.rerun.searcher} (re-run)`, ...marks.map((n) => at(report.rerun.curve, n))],
        ]));
        out(`re-run: ${report.rerun.hits} proposals found recorded, ${report.rerun.misses.length} never evaluated${opts.nearest ? ` (the nearest recorded evaluation stood in for ${report.rerun.stoodIn})` : ' (told as failed; --nearest lets the nearest recorded evaluation stand in)'}; agents called: 0; ${Math.round(ms)} ms`);
        for (const m of report.rerun.misses.slice(0, 5)) {
          out(`  never evaluated: re-run trial ${m.number} ${JSON.stringify(m.params)}${m.nearest ? ` — nearest ${m.nearest.trialId} at distance ${m.nearest.distance.toFixed(3)}` : ''}`);
        }
        if (report.rerun.misses.length > 5) out(`  … and ${report.rerun.misses.length - 5} more (--json lists them all)`);
      } catch (error) {
        failed(error);
      } finally {
        await c.close();
      }
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a study and follows its log until it completes, is rejected, or the time is up (StudyClient.run), saying how it goes. */
async function runStudy(c: Connections, prefix: string, studyId: string, seed: number, spec: unknown, o: { timeoutMs: number; wait: boolean; json: boolean }): Promise<number> {
  const client = new StudyClient({ kafka: c.kafka, producer: c.producer, codec: c.codec, logger: c.logger, prefix, requesterId: `cli-${process.pid}` });
  if (!o.wait) {
    await client.start(spec, { studyId, seed });
    progress(`study ${studyId} started (seed ${seed})`);
    out(studyId);
    return optimizeExitCodes.completed;
  }
  let lastLine = 0;
  let said = false;
  const result = await client.run(spec, {
    studyId,
    seed,
    timeoutMs: o.timeoutMs,
    onEvent: (e, run) => {
      if (!said && e.type === 'StudyCreated') {
        said = true;
        progress(`study ${studyId} started (seed ${seed})`);
      }
      if (!run || run.completed || (e.type !== 'TrialCompleted' && e.type !== 'TrialPruned' && e.type !== 'TrialFailed')) return;
      const now = Date.now();
      if (now - lastLine < 1_000) return;
      lastLine = now;
      const best = bestTrials(run)[0];
      progress(`study ${studyId}: ${run.finished}/${run.study.spec.budget.trials ?? '∞'} trials finished, ${run.trials.filter((t) => t.state === 'running' || t.state === 'assigned').length} running${best ? `, best ${best.values.map((v) => Number(v.toPrecision(6))).join(', ')} (trial ${best.number})` : ''}`);
    },
  });
  if (result.status === 'rejected') {
    process.stderr.write(`mabeam: study ${studyId} rejected: ${result.rejection.reason} [${result.rejection.reasonCode}]\n`);
    return optimizeExitCodes.badInput;
  }
  if (result.status === 'timeout') {
    process.stderr.write(`mabeam: study ${studyId} did not complete within ${o.timeoutMs} ms (is an optimizer running, and agents with the evaluate capability?); it goes on — follow it with mabeam optimize status ${studyId}\n`);
    return optimizeExitCodes.timeout;
  }
  const run = result.run;
  if (o.json) out(JSON.stringify({ ...statusJson(run), curve: bestCurve(run) }, null, 2));
  else {
    out(`study ${studyId} completed (${run.completed!.reason}): ${run.finished} trials${run.completed!.applied.length ? `; applied ${run.completed!.applied.join(', ')}` : ''}`);
    out(bestText(run));
  }
  return optimizeExitCodes.completed;
}

/**
 * What the optimizer costs per trial, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/optimizer-overhead.ts [--trials 100,1000] [--evaluators 8]
 *     [--evaluators-as inline|process] [--searcher tpe] [--seed 42] [--no-cli] [--json]
 *
 * Under a fresh topic prefix (bench-opt-<timestamp>, topics applied, schemas
 * registered) it runs an optimizer in this process (an Optimizer with the
 * agent registry as its directory of evaluators, as `mabeam optimizer run`
 * does) and `--evaluators` evaluator agents that answer Branin at once (0 ms
 * evaluations): AgentHost instances in this process (inline, default), or
 * one `mabeam agent run examples/agents/evaluator.ts` process each (EVALUATOR_ID
 * set) with `--evaluators-as process`. Then, for each trial budget, one study on
 * Branin (parallelism = the number of evaluators), and once it has completed
 * its log is read back from `studies` (with the evaluators' reports on
 * `study-inputs`) and measured from the event envelopes' times:
 *
 * - proposal → evaluation starts: TrialAssigned (eventTime, the optimizer's
 *   clock) → the evaluator's TrialStarted (its eventTime);
 * - completion → next proposal: the evaluator's TrialCompleted → the
 *   TrialProposed it caused (causation id). A decision's events carry the
 *   clock of its context, taken before the searcher is asked: the record
 *   timestamps (set when the lane's transaction writes them) include the ask;
 * - the same two on Kafka record timestamps, and completion → next evaluation
 *   starts (the whole loop as an evaluator sees it);
 * p50 / p95 / max in ms against a p95 target of 20 ms (said, not enforced),
 * wall time and trials/s. Where the time goes is measured beside, by probes
 * on the optimizer's engine and decider: each report written → fetched by the
 * optimizer's consumer → taken by its partition's lane → decided → committed,
 * and committed → the evaluation starts; the decisions' contexts, the
 * directory lookups (agent registry in Redis, a broker describeGroups), the
 * searcher's ask calls, the transactions (count and ms) and this process's
 * event-loop delay (the load average is printed too: the numbers are only as
 * good as the machine is quiet).
 *
 * Then the largest study is read back with readStudy and re-run with rerunStudy
 * for the searchers tpe and random (target ≤ 2 s each), and
 * `mabeam optimize rerun <study> --searcher tpe` is timed end to end, process
 * included (skipped with --no-cli). Progress goes to stderr; a table (or with
 * --json one JSON document) to stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { pino } from 'pino';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { AgentRegistry } from '../src/agents/registry.ts';
import { connect } from '../src/cli/connect.ts';
import { Processor } from '../src/engine/processor.ts';
import { partitionOfKey } from '../src/engine/routing.ts';
import type { InputRecord } from '../src/engine/types.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Envelope, StudyCreated } from '../src/events/types.ts';
import { createTransactionalProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { readToEnd } from '../src/kafka/readToEnd.ts';
import { createLogger, type Logger } from '../src/log/logger.ts';
import { RegistryEvaluators } from '../src/optimizer/evaluators.ts';
import { Optimizer, type EvaluatorDirectory } from '../src/optimizer/optimizer.ts';
import { randomSearcher, tpeSearcher, simbaSearcher, type Searcher } from '../src/optimizer/searchers/index.ts';
import { rerunStudy } from '../src/optimizer/study/rerun.ts';
import { registerSearcher } from '../src/optimizer/study/searchers.ts';
import { readStudy } from '../src/optimizer/study/studyLog.ts';
import { eventHeaders } from '../src/producer/eventProducer.ts';
import { createRegistryClient, registerCatalog } from '../src/schemas/registry.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { isChildMessage } from '../src/supervisor/messages.ts';
import { applyTopics, partitionCounts, topicName } from '../src/topics/index.ts';
import { branin } from '../examples/agents/evaluator.ts';
import { percentile, rawRoundTrips } from './rawTrip.ts';

silenceKafkajsTimerWarnings();

// ---- options ----------------------------------------------------------------

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const budgets = (option('trials') ?? '100,1000').split(',').map((s) => Number(s.trim()));
const evaluatorCount = Number(option('evaluators') ?? 8);
const evaluatorsAs = option('evaluators-as') === 'process' ? 'process' : 'inline';
const searcherName = option('searcher') ?? 'tpe';
const seed = Number(option('seed') ?? 42);
const json = process.argv.includes('--json');
const withCli = !process.argv.includes('--no-cli');
const targetMs = 20;
const rerunTargetMs = 2_000;
for (const n of [...budgets, evaluatorCount, seed]) if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a whole number: ${n}`);

const say = (line: string) => process.stderr.write(`${line}\n`);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const evaluatorModule = fileURLToPath(new URL('../examples/agents/evaluator.ts', import.meta.url));

// ---- stack ------------------------------------------------------------------

const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints('dev'));
const quiet = createLogger({ level: 'error' });
const c = await connect(endpoints, quiet, 'bench-optimizer');
const prefix = option('prefix') ?? `bench-opt-${Date.now()}`;
await applyTopics(c.admin, c.definitions, { prefix });
await registerCatalog(createRegistryClient(endpoints.schemaRegistryUrl), endpoints.schemaRegistryUrl, c.catalog);
say(`prefix ${prefix}: topics applied, schemas registered`);
const childEnv = { ...process.env, KAFKA_BROKERS: endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl, REDIS_URL: endpoints.redisUrl, MABEAM_LOG_LEVEL: 'error' };

// ---- yardsticks: one hop, and one transaction as a lane commits it ---------------

/** A transaction as the optimizer's lanes write one: a record, an input offset, commit (on a topic of its own). */
async function transactionTimes(count: number): Promise<number[]> {
  const topic = `${prefix}.bench-yardstick`;
  await c.admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  const producer = createTransactionalProducer(c.kafka, `${prefix}.bench-yardstick`);
  await producer.connect();
  const out: number[] = [];
  try {
    for (let i = 0; i < count + 10; i++) {
      const t = performance.now();
      const txn = await producer.transaction();
      await txn.sendBatch({ topicMessages: [{ topic, messages: [{ key: 'yardstick', value: 'x', partition: 0 }] }] });
      await txn.sendOffsets({ consumerGroupId: `${prefix}.bench-yardstick`, topics: [{ topic, partitions: [{ partition: 0, offset: String(i) }] }] });
      await txn.commit();
      if (i >= 10) out.push(performance.now() - t);
    }
  } finally {
    await producer.disconnect();
  }
  return out;
}
const hops = await rawRoundTrips(c.kafka, topicName(prefix, 'metrics'), `${prefix}.bench-raw`, 100);
const transactions = await transactionTimes(50);

// ---- what the optimizer spends its time on ----------------------------------

/** Samples in ms, cleared per study. */
class Samples {
  readonly ms: number[] = [];
  add(ms: number): void {
    this.ms.push(ms);
  }
  clear(): void {
    this.ms.length = 0;
  }
}
const lookups = new Samples();
const asks = new Samples();
const commits = new Samples();
/** The optimizer's transactions as they ended: [started, ended] wall clock ms. */
const commitSpans: Array<[number, number]> = [];
let committedRecords = 0;
/** Per input record (`partition/offset` of study-inputs): when the optimizer's consumer handed it over, and when its decision began and ended. */
const arrivals = new Map<string, number>();
const decisions = new Map<string, [number, number]>();
const contexts = new Samples();
let timingAsks = true;

/** The searcher under its own name, its ask calls timed while a study runs (the same calls, the same answers). */
function timed<S>(searcher: Searcher<S, any>): Searcher<S, any> {
  return {
    name: searcher.name,
    init: (space, config, s) => searcher.init(space, config, s),
    ask: (state, n, pending) => {
      const t = performance.now();
      const r = searcher.ask(state, n, pending);
      if (timingAsks) asks.add(performance.now() - t);
      return r;
    },
    tell: (state, trial) => searcher.tell(state, trial),
  };
}
const builtins = [tpeSearcher, randomSearcher, simbaSearcher] as Array<Searcher<unknown, any>>;
for (const s of builtins) registerSearcher(timed(s));

/** The optimizer's logger: warnings to stderr; its engine's debug line per transaction ("committed", with ms) counted. */
const optimizerLogger: Logger = pino(
  { level: 'debug', base: undefined },
  {
    write(line: string) {
      const entry = JSON.parse(line) as { level: number; time: number; msg?: string; ms?: number; records?: number };
      if (entry.msg === 'committed' && typeof entry.ms === 'number') {
        commits.add(entry.ms);
        commitSpans.push([entry.time - entry.ms, entry.time]);
        committedRecords += entry.records ?? 0;
      } else if (entry.level >= 40) process.stderr.write(line);
    },
  },
);

/** The registry's evaluators, each lookup timed. */
class TimedDirectory implements EvaluatorDirectory {
  private readonly inner: EvaluatorDirectory;
  constructor(inner: EvaluatorDirectory) {
    this.inner = inner;
  }
  async evaluators(capability: string): Promise<string[]> {
    const t = performance.now();
    try {
      return await this.inner.evaluators(capability);
    } finally {
      lookups.add(performance.now() - t);
    }
  }
}


/*
 * Probes: the optimizer's engine and decider are wrapped, as they are, to
 * say when each input reached the optimizer (its consumer's batch), when its
 * decision began and ended, and how long building each decision's context
 * took (evaluator lookups included). The wrapped methods are called as before.
 */
{
  const engine = Processor.prototype as unknown as { onBatch(payload: EachBatchPayload): Promise<void>; o: { groupId: string } };
  const onBatch = engine.onBatch;
  engine.onBatch = function (this: typeof engine, payload: EachBatchPayload) {
    if (this.o.groupId === `${prefix}.optimizers`) {
      const now = Date.now();
      for (const m of payload.batch.messages) arrivals.set(`${payload.batch.partition}/${m.offset}`, now);
    }
    return onBatch.call(this, payload);
  };
  const decider = Optimizer.prototype as unknown as { decide(record: InputRecord, ...rest: unknown[]): Promise<void>; context(): Promise<unknown> };
  const decide = decider.decide;
  decider.decide = async function (this: typeof decider, record: InputRecord, ...rest: unknown[]) {
    const began = Date.now();
    try {
      return await decide.call(this, record, ...rest);
    } finally {
      decisions.set(`${record.partition}/${record.offset}`, [began, Date.now()]);
    }
  };
  const context = decider.context;
  decider.context = async function (this: typeof decider) {
    const t = performance.now();
    try {
      return await context.call(this);
    } finally {
      contexts.add(performance.now() - t);
    }
  };
}

const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: quiet, prefix, definitions: c.definitions, viewName: `optimizer:bench-${randomBytes(3).toString('hex')}` });
await registry.start();
const directory = new TimedDirectory(new RegistryEvaluators(registry));
const optimizer = new Optimizer({ kafka: c.kafka, codec: c.codec, logger: optimizerLogger, prefix, definitions: c.definitions, evaluators: directory, instanceId: `optimizer-bench-${process.pid}` });
await optimizer.start();
say(`optimizer ${optimizer.instanceId} running`);

// ---- evaluators ---------------------------------------------------------------

const evaluatorIds = Array.from({ length: evaluatorCount }, (_, i) => `bench-evaluator-${i + 1}`);
const hosts: AgentHost[] = [];
const children: ChildProcess[] = [];
if (evaluatorsAs === 'inline') {
  for (const id of evaluatorIds) {
    hosts.push(
      new AgentHost({
        kafka: c.kafka, codec: c.codec, logger: quiet, prefix, definitions: c.definitions,
        agents: [defineAgent({ id, role: 'evaluator', capabilities: ['evaluate'], onTrial: (trial) => branin(trial.params['x1'] as number, trial.params['x2'] as number) })],
      }),
    );
  }
  await Promise.all(hosts.map((h) => h.start()));
} else {
  await Promise.all(
    evaluatorIds.map(
      (id) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [cli, 'agent', 'run', evaluatorModule, '--prefix', prefix], { cwd: root, env: { ...childEnv, EVALUATOR_ID: id, EVALUATOR_FUNCTION: 'branin' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
          children.push(child);
          child.on('message', (m) => isChildMessage(m) && resolve());
          child.once('exit', (code) => reject(new Error(`evaluator ${id} exited ${code} before it was ready`)));
        }),
    ),
  );
}
{
  const deadline = Date.now() + 60_000;
  for (;;) {
    const seen = await registry.find({ capabilities: ['evaluate'], state: 'running' }).then((ids) => ids.filter((id) => evaluatorIds.includes(id)));
    const alive = (await registry.health(seen)).filter((h) => h.health === 'alive' || h.health === 'lagging');
    if (alive.length === evaluatorCount) break;
    if (Date.now() > deadline) throw new Error(`only ${alive.length} of ${evaluatorCount} evaluators are seen by the registry after 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
say(`${evaluatorCount} evaluators running (${evaluatorsAs === 'inline' ? 'AgentHost instances in this process' : '`mabeam agent run examples/agents/evaluator.ts` processes'}), seen by the registry`);

// ---- one study ----------------------------------------------------------------

const studiesTopic = topicName(prefix, 'studies');
const inputsTopic = topicName(prefix, 'study-inputs');
const counts = await partitionCounts(c.admin, prefix, ['studies', 'study-inputs']);

interface Stats {
  n: number;
  p50: number;
  p95: number;
  max: number;
}
function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { n: 0, p50: Number.NaN, p95: Number.NaN, max: Number.NaN };
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted[sorted.length - 1]! };
}
const round1 = (v: number) => Math.round(v * 10) / 10;
const rounded = (s: Stats): Stats => ({ n: s.n, p50: round1(s.p50), p95: round1(s.p95), max: round1(s.max) });

interface Logged {
  topic: string;
  /** `partition/offset`. */
  at: string;
  type: string;
  timestamp: number;
  envelope: Envelope;
  event: { trialId?: string; attempt?: number; number?: number; agentId?: string };
}

/** Resolves once `studies` holds the study's StudyCompleted (headers only: nothing here replays the study). */
async function completion(studyId: string): Promise<{ promise: Promise<number>; consumer: Consumer }> {
  const mine = partitionOfKey(Buffer.from(studyId), counts.get(studiesTopic)!);
  const consumer = c.kafka.consumer({ groupId: `bench-opt-watch-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 });
  let done: (at: number) => void = () => {};
  const promise = new Promise<number>((resolve) => (done = resolve));
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topic: studiesTopic, fromBeginning: false });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      if (partition !== mine || message.key?.toString() !== studyId) return;
      if (message.headers?.[eventHeaders.type]?.toString() === 'StudyCompleted') done(Date.now());
    },
  });
  await joined;
  return { promise, consumer };
}

/** The study's records on its partition of `studies` and `study-inputs`, decoded. */
async function readBack(studyId: string): Promise<Logged[]> {
  const partition = partitionOfKey(Buffer.from(studyId), counts.get(studiesTopic)!);
  const out: Logged[] = [];
  await readToEnd(c.kafka, {
    topics: [studiesTopic, inputsTopic],
    partitions: [partition],
    groupPrefix: 'bench-opt-read',
    onRecord: async ({ topic, partition: p, offset, message }) => {
      if (message.key?.toString() !== studyId) return;
      const decoded = await c.codec.decode<Logged['event'] & { envelope: Envelope }>(message.value);
      out.push({ topic, at: `${p}/${offset}`, type: decoded.type, timestamp: Number(message.timestamp), envelope: decoded.event.envelope, event: decoded.event });
    },
  });
  return out;
}

interface StudyResult {
  studyId: string;
  trials: number;
  wallMs: number;
  trialsPerSecond: number;
  /** The headline: envelope times. */
  proposalToStart: Stats;
  completionToProposal: Stats;
  /** Kafka record timestamps. */
  proposalToStartRecord: Stats;
  completionToProposalRecord: Stats;
  /** As an evaluator sees it: its TrialCompleted → its next TrialStarted. */
  completionToNextStart: Stats;
  /** An evaluator's report written (record timestamp) → the optimizer decides on it (its output's eventTime). */
  inputToDecision: Stats;
  /** TrialAssigned decided (eventTime) → written (record timestamp): the rest of the decision. */
  decisionToWrite: Stats;
  /** An evaluator's report (TrialStarted, TrialCompleted) through the optimizer, stage by stage (probes). */
  stages: { fetched: Stats; laneWait: Stats; decision: Stats; toCommitted: Stats; committedToStart: Stats };
  targetMet: boolean;
  optimizer: { contexts: Stats; lookups: Stats; asks: Stats; transactions: Stats & { count: number; records: number }; eventLoopDelay: { p50: number; p99: number; max: number } };
  events: Record<string, number>;
}

function measure(studyId: string, records: Logged[], wallMs: number, trials: number): Omit<StudyResult, 'optimizer'> {
  const log = records.filter((r) => r.topic === studiesTopic);
  const inputs = records.filter((r) => r.topic === inputsTopic);
  const key = (e: Logged['event']) => `${e.trialId}\u0000${e.attempt}`;
  const startedInputs = new Map(inputs.filter((r) => r.type === 'TrialStarted').map((r) => [key(r.event), r]));
  const byCause = new Map<string, Logged[]>();
  for (const r of log) {
    const cause = r.envelope.causationId;
    if (cause) byCause.set(cause, [...(byCause.get(cause) ?? []), r]);
  }
  const proposalToStart: number[] = [];
  const proposalToStartRecord: number[] = [];
  const decisionToWrite: number[] = [];
  for (const a of log.filter((r) => r.type === 'TrialAssigned')) {
    decisionToWrite.push(a.timestamp - a.envelope.eventTime);
    const s = startedInputs.get(key(a.event));
    if (!s) continue;
    proposalToStart.push(s.envelope.eventTime - a.envelope.eventTime);
    proposalToStartRecord.push(s.timestamp - a.timestamp);
  }
  const completionToProposal: number[] = [];
  const completionToProposalRecord: number[] = [];
  const completionToNextStart: number[] = [];
  const inputToDecision: number[] = [];
  // Each evaluator's inputs in the order it wrote them.
  const byAgent = new Map<string, Logged[]>();
  for (const r of inputs) if (r.event.agentId) byAgent.set(r.event.agentId, [...(byAgent.get(r.event.agentId) ?? []), r]);
  for (const i of inputs) {
    const caused = byCause.get(i.envelope.eventId);
    if (caused?.[0]) inputToDecision.push(caused[0].envelope.eventTime - i.timestamp);
    if (i.type !== 'TrialCompleted') continue;
    const proposal = caused?.find((r) => r.type === 'TrialProposed');
    if (proposal) {
      completionToProposal.push(proposal.envelope.eventTime - i.envelope.eventTime);
      completionToProposalRecord.push(proposal.timestamp - i.timestamp);
    }
    const own = byAgent.get(i.event.agentId!)!;
    const next = own.slice(own.indexOf(i) + 1).find((r) => r.type === 'TrialStarted');
    if (next) completionToNextStart.push(next.envelope.eventTime - i.envelope.eventTime);
  }
  // Stage by stage, from the probes: written → fetched by the optimizer → its lane takes it → decided → committed.
  const fetched: number[] = [];
  const laneWait: number[] = [];
  const decision: number[] = [];
  const toCommitted: number[] = [];
  const committedAt = new Map<string, number>();
  const spans = [...commitSpans].sort((x, y) => x[0] - y[0]);
  for (const i of inputs) {
    const arrived = arrivals.get(i.at);
    const d = decisions.get(i.at);
    if (arrived === undefined || d === undefined) continue;
    fetched.push(arrived - i.timestamp);
    laneWait.push(d[0] - arrived);
    decision.push(d[1] - d[0]);
    // The lane's next transaction after the decision carries it.
    const span = spans.find(([start]) => start >= d[1]);
    if (span) {
      toCommitted.push(span[1] - d[1]);
      committedAt.set(i.envelope.eventId, span[1]);
    }
  }
  const committedToStart: number[] = [];
  for (const a of log.filter((r) => r.type === 'TrialAssigned')) {
    const committed = a.envelope.causationId ? committedAt.get(a.envelope.causationId) : undefined;
    const s = startedInputs.get(key(a.event));
    if (committed !== undefined && s) committedToStart.push(s.envelope.eventTime - committed);
  }
  const events: Record<string, number> = {};
  for (const r of records) events[`${r.topic === studiesTopic ? 'studies' : 'study-inputs'}:${r.type}`] = (events[`${r.topic === studiesTopic ? 'studies' : 'study-inputs'}:${r.type}`] ?? 0) + 1;
  const a = stats(proposalToStart);
  const b = stats(completionToProposal);
  return {
    studyId, trials, wallMs: Math.round(wallMs), trialsPerSecond: round1((trials / wallMs) * 1000),
    proposalToStart: rounded(a), completionToProposal: rounded(b),
    proposalToStartRecord: rounded(stats(proposalToStartRecord)), completionToProposalRecord: rounded(stats(completionToProposalRecord)),
    completionToNextStart: rounded(stats(completionToNextStart)), inputToDecision: rounded(stats(inputToDecision)), decisionToWrite: rounded(stats(decisionToWrite)),
    stages: { fetched: rounded(stats(fetched)), laneWait: rounded(stats(laneWait)), decision: rounded(stats(decision)), toCommitted: rounded(stats(toCommitted)), committedToStart: rounded(stats(committedToStart)) },
    targetMet: a.p95 <= targetMs && b.p95 <= targetMs,
    events,
  };
}

async function runStudy(trials: number): Promise<StudyResult> {
  const studyId = `bench-branin-${trials}-${randomBytes(3).toString('hex')}`;
  const spec = {
    name: `branin ${trials}`,
    space: { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } },
    objectives: [{ name: 'branin', direction: 'minimize' }],
    budget: { trials },
    parallelism: evaluatorCount,
    searcher: searcherName,
  };
  const watch = await completion(studyId);
  for (const s of [lookups, asks, commits, contexts]) s.clear();
  commitSpans.length = 0;
  arrivals.clear();
  decisions.clear();
  committedRecords = 0;
  timingAsks = true;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const created: StudyCreated = { envelope: newEnvelope('StudyCreated', 'bench', { correlationId: studyId }), studyId, requesterId: 'bench', seed, spec: JSON.stringify(spec) };
  const started = Date.now();
  await c.producer.send({
    topic: inputsTopic,
    messages: [{ key: studyId, value: await c.codec.encode('StudyCreated', created), headers: { [eventHeaders.type]: 'StudyCreated', [eventHeaders.id]: created.envelope.eventId } }],
  });
  say(`study ${studyId}: ${trials} trials on Branin, ${evaluatorCount} at once, searcher ${searcherName}`);
  const progress = setInterval(() => {
    const run = optimizer.studies().find((r) => r.studyId === studyId);
    if (run) say(`  ${run.finished}/${trials} trials finished after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 5_000);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`study ${studyId} did not complete in 30 min`)), 30 * 60_000).unref());
  const completedAt = await Promise.race([watch.promise, timeout]);
  clearInterval(progress);
  loop.disable();
  timingAsks = false;
  await watch.consumer.disconnect();
  const wallMs = completedAt - started;
  say(`  completed in ${(wallMs / 1000).toFixed(1)} s; reading its log back`);
  const records = await readBack(studyId);
  const ms = (ns: number) => round1(ns / 1e6);
  return {
    ...measure(studyId, records, wallMs, trials),
    optimizer: {
      contexts: rounded(stats(contexts.ms)),
      lookups: rounded(stats(lookups.ms)),
      asks: rounded(stats(asks.ms)),
      transactions: { ...rounded(stats(commits.ms)), count: commits.ms.length, records: committedRecords },
      eventLoopDelay: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
    },
  };
}

const studies: StudyResult[] = [];
for (const trials of budgets) studies.push(await runStudy(trials));

// ---- re-runs ------------------------------------------------------------------

const largest = studies.reduce((a, b) => (b.trials > a.trials ? b : a));
let t = performance.now();
const recorded = await readStudy(c.kafka, c.codec, quiet, prefix, largest.studyId);
const readStudyMs = performance.now() - t;
say(`readStudy of ${largest.studyId} (${recorded.trials.length} trials): ${readStudyMs.toFixed(0)} ms`);
const reruns: Array<{ searcher: string; ms: number; hits: number; misses: number; best: number | null; targetMet: boolean }> = [];
for (const searcher of ['tpe', 'random']) {
  t = performance.now();
  const report = rerunStudy(recorded, { searcher });
  const ms = performance.now() - t;
  reruns.push({ searcher, ms: Math.round(ms), hits: report.rerun.hits, misses: report.rerun.misses.length, best: report.rerun.best, targetMet: ms <= rerunTargetMs });
  say(`rerunStudy with ${searcher}: ${ms.toFixed(0)} ms (${report.rerun.hits} proposals found recorded, ${report.rerun.misses.length} never evaluated)`);
}

let cliRun: { ms: number; reportedMs: number | null; exitCode: number | null } | null = null;
if (withCli) {
  // Its report goes to a file, as `> report.json` would take it: a command exits 2 s after it has finished, and a
  // pipe its reader has not drained by then loses the rest of a large report (a 1,000-trial one is ~400 KB).
  const reportFile = join(tmpdir(), `${prefix}-rerun.json`);
  const fd = openSync(reportFile, 'w');
  t = performance.now();
  const child = spawn(process.execPath, [cli, 'optimize', 'rerun', largest.studyId, '--searcher', 'tpe', '--prefix', prefix, '--json'], { cwd: root, env: childEnv, stdio: ['ignore', fd, 'inherit'] });
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const ms = performance.now() - t;
  closeSync(fd);
  const output = readFileSync(reportFile, 'utf8');
  rmSync(reportFile, { force: true });
  let reportedMs: number | null = null;
  try {
    reportedMs = (JSON.parse(output) as { ms: number }).ms;
  } catch (error) {
    say(`  its output (${output.length} characters) is not the JSON report: ${String(error)}: ${output.slice(0, 200)}`);
  }
  cliRun = { ms: Math.round(ms), reportedMs, exitCode };
  say(`mabeam optimize rerun ${largest.studyId} --searcher tpe: ${ms.toFixed(0)} ms end to end (exit ${exitCode}; the re-run itself ${reportedMs ?? '?'} ms)`);
}

// ---- report -------------------------------------------------------------------

const result = {
  loadAverage: loadavg().map(round1),
  yardsticks: { rawHop: rounded(stats(hops)), transaction: rounded(stats(transactions)) },
  prefix, evaluators: evaluatorCount, evaluatorsAs, searcher: searcherName, seed, targetP95Ms: targetMs,
  studies,
  rerun: { studyId: largest.studyId, trials: recorded.trials.length, readStudyMs: Math.round(readStudyMs), targetMs: rerunTargetMs, runs: reruns, cli: cliRun },
};

if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const lines: string[][] = [];
  const row = (label: string, s: Stats, target = false) => lines.push([label, String(s.n), String(s.p50), String(s.p95), String(s.max), target ? (s.p95 <= targetMs ? `met (≤ ${targetMs})` : `NOT met (> ${targetMs})`) : '']);
  lines.push(['yardsticks', 'n', 'p50 ms', 'p95 ms', 'max ms', '']);
  row('  raw kafkajs produce → consume (1 hop)', result.yardsticks.rawHop);
  row('  one transaction (record + offsets + commit)', result.yardsticks.transaction);
  for (const s of studies) {
    lines.push([`study of ${s.trials} trials (${s.studyId})`, 'n', 'p50 ms', 'p95 ms', 'max ms', 'p95 target']);
    row('  proposal → evaluation starts (eventTime)', s.proposalToStart, true);
    row('  completion → next proposal (eventTime)', s.completionToProposal, true);
    row('  proposal → evaluation starts (record ts)', s.proposalToStartRecord);
    row('  completion → next proposal (record ts)', s.completionToProposalRecord);
    row('  completion → next evaluation starts', s.completionToNextStart);
    row('  report written → optimizer decides', s.inputToDecision);
    row('  assignment decided → written', s.decisionToWrite);
    row('  report: written → fetched by the optimizer', s.stages.fetched);
    row('  report: fetched → its lane takes it', s.stages.laneWait);
    row('  report: decision', s.stages.decision);
    row('  report: decided → committed', s.stages.toCommitted);
    row('  assignment committed → evaluation starts', s.stages.committedToStart);
    row('  optimizer: decision contexts', s.optimizer.contexts);
    row('  optimizer: evaluator lookups', s.optimizer.lookups);
    row('  optimizer: searcher asks', s.optimizer.asks);
    row(`  optimizer: transactions (${s.optimizer.transactions.records} records)`, s.optimizer.transactions);
    lines.push(['  event-loop delay of this process', '', String(s.optimizer.eventLoopDelay.p50), `p99 ${s.optimizer.eventLoopDelay.p99}`, String(s.optimizer.eventLoopDelay.max), '']);
    lines.push([`  wall ${(s.wallMs / 1000).toFixed(2)} s, ${s.trialsPerSecond} trials/s`, '', '', '', '', '']);
  }
  lines.push([`re-run of ${recorded.trials.length} recorded trials (readStudy ${Math.round(readStudyMs)} ms)`, '', 'ms', '', '', `target ≤ ${rerunTargetMs} ms`]);
  for (const r of reruns) lines.push([`  rerunStudy, searcher ${r.searcher}`, '', String(r.ms), '', '', r.targetMet ? 'met' : 'NOT met']);
  if (cliRun) lines.push(['  mabeam optimize rerun --searcher tpe (process, end to end)', '', String(cliRun.ms), '', '', `re-run itself ${cliRun.reportedMs ?? '?'} ms, exit ${cliRun.exitCode}`]);
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  process.stdout.write(`${lines.map((l) => l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`);
  process.stdout.write(`evaluators: ${evaluatorCount} (${evaluatorsAs}); prefix ${prefix}; load average ${result.loadAverage.join(' ')}\n`);
}

// ---- shut down ------------------------------------------------------------------

await optimizer.stop();
await Promise.all(hosts.map((h) => h.stop()));
await Promise.all(children.map((child) => new Promise((r) => (child.exitCode !== null ? r(undefined) : (child.once('exit', r), child.kill('SIGTERM'))))));
await registry.stop();
await c.close();
process.exit(0);

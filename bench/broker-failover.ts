/**
 * A replicated cluster under load, and a broker killed (scale-out fault run):
 *
 *   node_modules/.bin/node bench/broker-failover.ts [--seconds 45] [--in-flight 16] [--no-single]
 *
 * Two phases, each on an ephemeral local stack of its own, stopped at the end:
 *
 * 1. **one broker** (skipped with --no-single): continuous sealed-bid
 *    auctions among three agent processes, decided by two coordinator
 *    processes, with a variable changed every 100 ms through its owner;
 *    auction p50/p95/p99 and rounds/s.
 * 2. **three brokers** (`dev up --brokers 3`: replication factor 3,
 *    min.insync.replicas 2): the same load; after a third of the time the
 *    broker that leads most round partitions is killed with SIGKILL, after
 *    two thirds it is started again. Measured: the longest pause in
 *    outcomes after the kill, and how long until a round requested after
 *    the kill is decided; the same latencies before the kill.
 *
 * Then the log of the three-broker phase is read back (read_committed) and
 * checked: every requested round has exactly one outcome and is decided,
 * every decided auction has its award directive, and every variable version
 * the owner acknowledged is in the log, contiguous. Exits 1 if any check
 * fails. The last line is one JSON object for machines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type Connections } from '../src/cli/connect.ts';
import { RoundClient } from '../src/coordinator/roundClient.ts';
import { describeError } from '../src/errors.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { readLog } from '../src/replay/readLog.ts';
import { registerCatalog } from '../src/schemas/registry.ts';
import { environmentFor } from '../src/stack/endpoints.ts';
import { startStack, stopStack, type StackState } from '../src/stack/index.ts';
import { isKafkaService } from '../src/stack/types.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { VariablesClient } from '../src/variables/client.ts';
import { typedVariable } from '../src/variables/model.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '45' },
    'in-flight': { type: 'string', default: '16' },
    'no-single': { type: 'boolean', default: false },
  },
});
const seconds = Number(args.seconds);
const inFlight = Number(args['in-flight']);
const prefix = 'scale';
const bidders = ['b1', 'b2', 'b3'];
const say = (line: string) => process.stderr.write(`${line}\n`);
silenceKafkajsTimerWarnings();
const logger = createLogger({ level: 'error' });

interface Round {
  roundId: string;
  requestedAt: number;
  decidedAt?: number;
  failed?: string;
}

interface Phase {
  brokers: number;
  rounds: Round[];
  versions: number[];
  changeFailures: number;
  killedAt?: number;
  restartedAt?: number;
  killed?: { node: string; pid: number; ledPartitions: number };
}

function start(c: Connections, cliArgs: string[], env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'src/cli/main.ts'), ...cliArgs, '--prefix', prefix], {
    env: { ...process.env, ...environmentFor(c.endpoints), MABEAM_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`mabeam ${cliArgs.slice(0, 2).join(' ')} exited (${code}) before it was ready`)));
  });
}

const stopChild = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once('exit', () => resolve());
  child.kill('SIGTERM');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the load for `seconds` on the stack; `during(elapsedMs)` is called every 250 ms (the fault schedule). */
async function runLoad(state: StackState, phase: Phase, during: (elapsed: number) => Promise<void>): Promise<Connections> {
  const c = await connect(state.endpoints, logger, `bench-scale-${phase.brokers}`);
  await applyTopics(c.admin, c.definitions, { prefix });
  await registerCatalog(c.registry, c.registryTarget, c.catalog);
  const children = await Promise.all([
    start(c, ['coordinator', 'run', '--session-timeout-ms', '6000']),
    start(c, ['coordinator', 'run', '--session-timeout-ms', '6000']),
    start(c, ['orchestrator', 'run']),
    ...bidders.map((id) => start(c, ['agent', 'run', join(root, 'examples/agents/gpu-bidder.ts')], { AGENT_ID: id })),
  ]);
  await sleep(8_000); // both coordinators hold partitions
  const rounds = new RoundClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger, prefix, clientId: `scale-${phase.brokers}` });
  const variables = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger, prefix, redis: c.redis, definitions: c.definitions, clientId: `scale-${phase.brokers}` });
  await Promise.all([rounds.start(), variables.start()]);
  await variables.define(typedVariable('scale.counter', { kind: 'integer', min: 0 }, 0));
  const began = performance.now();
  const until = began + seconds * 1_000;
  let n = 0;
  const lane = async () => {
    while (performance.now() < until) {
      const roundId = `scale-${phase.brokers}-${n++}`;
      const round: Round = { roundId, requestedAt: performance.now() };
      phase.rounds.push(round);
      try {
        const timeout = sleep(60_000).then(() => {
          throw new Error('no outcome read within 60 s');
        });
        await Promise.race([rounds.auction({ roundId, protocol: 'first-price', item: { gpuHours: 1 }, bidders, deadlineMs: 30_000 }), timeout]);
        round.decidedAt = performance.now();
      } catch (error) {
        round.failed = describeError(error);
      }
    }
  };
  const changes = async () => {
    let value = 0;
    while (performance.now() < until) {
      try {
        const record = await variables.set('scale.counter', ++value, { timeoutMs: 30_000 });
        phase.versions.push(record.version);
      } catch {
        phase.changeFailures += 1;
      }
      await sleep(100);
    }
  };
  const schedule = async () => {
    while (performance.now() < until) {
      await during(performance.now() - began);
      await sleep(250);
    }
  };
  await Promise.all([...Array.from({ length: inFlight }, lane), changes(), schedule()]);
  phase.rounds.forEach((r) => {
    r.requestedAt -= began;
    if (r.decidedAt !== undefined) r.decidedAt -= began;
  });
  if (phase.killedAt !== undefined) phase.killedAt -= began;
  if (phase.restartedAt !== undefined) phase.restartedAt -= began;
  await Promise.allSettled([rounds.stop(), variables.stop()]);
  await Promise.all(children.map(stopChild));
  return c;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

function latencies(rounds: Round[], from: number, to: number) {
  const done = rounds.filter((r) => r.decidedAt !== undefined && r.requestedAt >= from && r.decidedAt <= to);
  const ms = done.map((r) => r.decidedAt! - r.requestedAt);
  const round = (x: number) => Math.round(x * 10) / 10;
  return { rounds: done.length, perSecond: round(done.length / ((to - from) / 1000)), p50: round(quantile(ms, 0.5)), p95: round(quantile(ms, 0.95)), p99: round(quantile(ms, 0.99)) };
}

/** The log's word on the phase: one decided outcome per requested round, its award, every acknowledged version. */
async function verify(c: Connections, phase: Phase) {
  const t = (name: string) => topicName(prefix, name);
  const log = await readLog(c.kafka, c.codec, [t('bid-requests'), t('bids'), t('outcomes'), t('directives'), t('variable-changes')], { timeoutMs: 120_000 });
  const requested = new Set<string>();
  // Why a round took long: when it was requested, when its bids were made, whether it closed complete or at its deadline.
  const requestedAt = new Map<string, number>();
  const bidsOf = new Map<string, { agentId: string; at: number }[]>();
  const closedAt = new Map<string, { cause: string; at: number }>();
  const decidedAtInLog = new Map<string, number>();
  const outcomes = new Map<string, { status: string; winners: string[]; at: string }[]>();
  const awards = new Set<string>();
  const versions: number[] = [];
  for (const r of log) {
    const d = r.decoded;
    if (d.type === 'BidRequest') {
      requested.add(d.event.roundId);
      requestedAt.set(d.event.roundId, d.event.envelope.eventTime);
    } else if (d.type === 'Bid') bidsOf.set(d.event.roundId, [...(bidsOf.get(d.event.roundId) ?? []), { agentId: d.event.agentId, at: d.event.envelope.eventTime }]);
    else if (d.type === 'RoundClosed') closedAt.set(d.event.roundId, { cause: d.event.cause, at: d.event.envelope.eventTime });
    else if (d.type === 'RoundOutcome') {
      const at = `${r.topic}/${r.partition}@${r.offset} event ${d.event.envelope.eventId} by ${d.event.envelope.producerId} (producer ${r.producer?.id} epoch ${r.producer?.epoch}${r.producer?.transactional ? ', transactional' : ''}${r.forwardedFrom ? `, forwarded from ${r.forwardedFrom.topic}/${r.forwardedFrom.partition}@${r.forwardedFrom.offset}` : ''})`;
      outcomes.set(d.event.roundId, [...(outcomes.get(d.event.roundId) ?? []), { status: d.event.status, winners: d.event.winners, at }]);
      decidedAtInLog.set(d.event.roundId, d.event.envelope.eventTime);
    }
    else if (d.type === 'Directive' && d.event.action === 'award' && d.event.roundId) awards.add(d.event.roundId);
    else if (d.type === 'VariableChanged' && d.event.variableId === 'scale.counter') versions.push(d.event.version);
  }
  const problems: string[] = [];
  for (const id of requested) {
    const list = outcomes.get(id) ?? [];
    if (list.length !== 1) problems.push(`${id}: ${list.length} outcomes${list.length > 1 ? ` (${list.map((o) => o.at).join('; ')})` : ''}`);
    else if (list[0]!.status !== 'decided') problems.push(`${id}: ${list[0]!.status}`);
    else if (!awards.has(id)) problems.push(`${id}: decided without its award directive`);
  }
  const clientDecided = phase.rounds.filter((r) => r.decidedAt !== undefined).map((r) => r.roundId);
  for (const id of clientDecided) if (!requested.has(id)) problems.push(`${id}: the client read its outcome but its request is not in the log`);
  const sorted = [...new Set(versions)].sort((a, b) => a - b);
  if (sorted.length !== versions.length) problems.push(`scale.counter: ${versions.length - sorted.length} versions written twice`);
  sorted.forEach((v, i) => void (i > 0 && v !== sorted[i - 1]! + 1 && problems.push(`scale.counter: versions ${sorted[i - 1]! + 1}–${v - 1} missing`)));
  for (const v of phase.versions) if (!sorted.includes(v)) problems.push(`scale.counter: acknowledged version ${v} is not in the log`);
  const atDeadline = [...closedAt].filter(([, c]) => c.cause === 'deadline').map(([id, c]) => {
    const asked = requestedAt.get(id) ?? NaN;
    const bids = (bidsOf.get(id) ?? []).map((b) => `${b.agentId} +${b.at - asked} ms`);
    return `${id} closed +${c.at - asked} ms, bids: ${bids.join(', ') || 'none'}`;
  });
  // A round the client waited long for: was it decided late (the log's times) or read late?
  const slow = phase.rounds
    .filter((r) => r.decidedAt !== undefined && r.decidedAt - r.requestedAt > 10_000)
    .map((r) => {
      const asked = requestedAt.get(r.roundId) ?? NaN;
      const bids = (bidsOf.get(r.roundId) ?? []).map((b) => b.at - asked);
      return { roundId: r.roundId, clientMs: Math.round(r.decidedAt! - r.requestedAt), lastBidMs: bids.length ? Math.max(...bids) : null, decidedMs: (decidedAtInLog.get(r.roundId) ?? NaN) - asked };
    });
  const slowSummary = slow.length === 0 ? 'none' : `${slow.length}; in the log, last bid +${Math.min(...slow.map((x) => x.lastBidMs ?? Infinity))}–${Math.max(...slow.map((x) => x.lastBidMs ?? -Infinity))} ms and decided +${Math.min(...slow.map((x) => x.decidedMs))}–${Math.max(...slow.map((x) => x.decidedMs))} ms after the request, read by the client after ${Math.min(...slow.map((x) => x.clientMs))}–${Math.max(...slow.map((x) => x.clientMs))} ms`;
  return { slowRounds: slowSummary, closedAtDeadline: atDeadline.length, lateRounds: atDeadline.slice(0, 8), requested: requested.size, outcomes: [...outcomes.values()].reduce((s, l) => s + l.length, 0), awards: awards.size, versions: sorted.length, problems: problems.slice(0, 20), problemCount: problems.length };
}

const report: Record<string, unknown> = { seconds, inFlight };

if (!args['no-single']) {
  say(`one broker: ${seconds} s of auctions, ${inFlight} in flight…`);
  const started = await startStack({ name: 'scale-1', ephemeral: true }, logger);
  const phase: Phase = { brokers: 1, rounds: [], versions: [], changeFailures: 0 };
  const c = await runLoad(started.state, phase, async () => undefined);
  report['single'] = { ...latencies(phase.rounds, 5_000, seconds * 1_000), failed: phase.rounds.filter((r) => r.failed).length, changes: phase.versions.length };
  say(`  ${JSON.stringify(report['single'])}`);
  await c.close();
  await stopStack(started.state, { timeoutMs: 10_000 });
}

say(`three brokers: ${seconds} s of auctions, ${inFlight} in flight; a broker killed at ${Math.round(seconds / 3)} s, started again at ${Math.round((2 * seconds) / 3)} s…`);
const stateDir = await mkdtemp(join(tmpdir(), 'mabeam-scale-3-'));
const options = { name: 'scale-3', ephemeral: true, brokers: 3 as const, stateDir };
const cluster = await startStack(options, logger);
const phase: Phase = { brokers: 3, rounds: [], versions: [], changeFailures: 0 };
let killed: { name: string; pid: number } | undefined;
const c = await runLoad(cluster.state, phase, async (elapsed) => {
  if (!killed && elapsed >= (seconds * 1_000) / 3) {
    // The broker that leads most partitions of the round topics.
    const conn = await connect(cluster.state.endpoints, logger, 'bench-scale-admin', { redis: false });
    const metadata = await conn.admin.fetchTopicMetadata({ topics: ['bid-requests', 'bids', 'outcomes'].map((n) => topicName(prefix, n)) }).finally(() => conn.close());
    const led = new Map<number, number>();
    for (const topic of metadata.topics) for (const p of topic.partitions) led.set(p.leader, (led.get(p.leader) ?? 0) + 1);
    const [nodeId, count] = [...led].sort((a, b) => b[1] - a[1])[0]!;
    const service = cluster.state.services.filter((s) => isKafkaService(s.name))[nodeId - 1]!;
    killed = { name: service.name, pid: service.pid! };
    process.kill(service.pid!, 'SIGKILL');
    phase.killedAt = performance.now();
    phase.killed = { node: service.name, pid: service.pid!, ledPartitions: count };
    say(`  killed ${service.name} (node ${nodeId}, pid ${service.pid}), leader of ${count} round partitions`);
  } else if (killed && phase.restartedAt === undefined && elapsed >= (2 * seconds * 1_000) / 3) {
    phase.restartedAt = performance.now();
    const again = await startStack(options, logger);
    say(`  ${killed.name} started again (${again.report.started.join(', ')}) in ${((performance.now() - phase.restartedAt) / 1000).toFixed(1)} s`);
  }
});
const kill = phase.killedAt!;
const decidedTimes = phase.rounds.map((r) => r.decidedAt).filter((t): t is number => t !== undefined).sort((a, b) => a - b);
const afterKill = decidedTimes.filter((t) => t >= kill);
const longestPause = Math.max(afterKill[0]! - kill, ...afterKill.slice(1).map((t, i) => t - afterKill[i]!).filter((_, i) => afterKill[i]! < kill + 30_000));
const firstNew = phase.rounds.filter((r) => r.requestedAt >= kill && r.decidedAt !== undefined).sort((a, b) => a.decidedAt! - b.decidedAt!)[0];
report['cluster'] = {
  beforeKill: latencies(phase.rounds, 5_000, kill),
  whole: latencies(phase.rounds, 0, seconds * 1_000 + 60_000),
  failed: phase.rounds.filter((r) => r.failed).length,
  failures: [...new Set(phase.rounds.filter((r) => r.failed).map((r) => r.failed))].slice(0, 5),
  changes: phase.versions.length,
  changeFailures: phase.changeFailures,
  killed: phase.killed,
  longestPauseAfterKillMs: Math.round(longestPause),
  firstRoundRequestedAfterKillDecidedInMs: firstNew ? Math.round(firstNew.decidedAt! - kill) : null,
};
say(`  ${JSON.stringify(report['cluster'])}`);
say('reading the log back…');
const verdict = await verify(c, phase);
report['log'] = verdict;
say(`  ${verdict.requested} rounds requested, ${verdict.outcomes} outcomes, ${verdict.awards} awards, ${verdict.versions} versions, ${verdict.closedAtDeadline} closed at their deadline; rounds the client waited over 10 s for: ${verdict.slowRounds}${verdict.lateRounds.map((l) => `\n    ${l}`).join('')}\n  ${verdict.problemCount === 0 ? 'no problem' : `${verdict.problemCount} problems: ${verdict.problems.join('; ')}`}`);
await c.close();
if (verdict.problemCount > 0 && process.env['MABEAM_KEEP_FAILED'] === '1') {
  // For a look at the brokers' logs (kafka-dump-log): the stack is left running, its data in its folder.
  say(`the stack is left running for inspection (MABEAM_KEEP_FAILED=1): ${stateDir}; KAFKA_BROKERS=${cluster.state.endpoints.kafkaBrokers.join(',')}`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  await new Promise(() => undefined);
}
await stopStack((await startStack(options, logger)).state, { timeoutMs: 10_000 });
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(verdict.problemCount === 0 ? 0 : 1);

/**
 * Sustained coordination load, and the raw kafkajs pipe ceiling on the same
 * broker, in one run (local stack from `mabeam dev up`, or the services in
 * KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL):
 *
 *   node_modules/.bin/node bench/sustained.ts [--seconds 30] [--in-flight 100]
 *       [--rate R] [--warm-up S] [--agents process|inline]
 *       [--coordinator process|inline] [--profile DIR] [--keep-topics]
 *       [--round-partitions N] [--concurrent-partitions N]
 *
 * - **Sustained load**: `in-flight` sealed-bid auctions among 50 agents are
 *   kept open at all times for `seconds` (each round that ends starts
 *   another). With `--rate R` the load is open instead: R auctions started
 *   per second, whenever the others end (to measure round latency under a
 *   given share of the load the closed loop sustains). `--warm-up S` runs
 *   the same load for S seconds before the measured window (the first
 *   seconds of a fresh coordinator and agent host are slower). Reported:
 *   coordination events/s (request, 50 bids, closing, outcome per round)
 *   over the window and second by second, round latency (request produced
 *   → outcome consumed) p50 / p95 / p99, the coordinator
 *   group's lag on its inputs, and the RSS of each process over time.
 * - **Raw pipe ceiling**: the same number of small records (100 bytes, keyed)
 *   produced and consumed by plain kafkajs, no decoding, no transactions:
 *   what kafkajs itself moves here, and every figure's ratio to it.
 *
 * By default the coordinator and the agents (one pool) run in processes of
 * their own, as deployed; `--profile DIR` runs them with `--cpu-prof` into
 * DIR. `--round-partitions N` makes the round topics (the co-partition
 * group `rounds`) with N partitions instead of their definitions' count:
 * fewer partitions mean fewer coordinator lanes, so more of a round's steps
 * share a transaction. `--concurrent-partitions N` is the agent host's
 * (how many partitions it works on at once; its default when not given).
 * The broker's own request counters (bench/brokerRequests.ts) give its
 * requests per round by type. The run's topics and groups are dropped at the end
 * (bench/dropPrefix.ts) unless `--keep-topics` is given. The last line is
 * one JSON object for machines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Kafka } from 'kafkajs';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { BidRequest, RoundOutcome } from '../src/events/types.ts';
import { createProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { endpointsFromEnvironment, environmentFor, resolveEndpoints } from '../src/stack/index.ts';
import { freePort } from '../src/stack/ports.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { fiftyAgentIds } from './fiftyAgents.ts';
import { percentile } from './rawTrip.ts';
import { dropPrefix } from './dropPrefix.ts';
import { describeMachine, machineShares, machineTimes } from './machine.ts';
import { BrokerRequests, brokerWindow, describePer } from './brokerRequests.ts';
import { cpuOf, rssOf, stackJvms } from './processes.ts';
import { roundIdsOnEveryPartition, roundPartitionCount } from './warmUp.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    'in-flight': { type: 'string', default: '100' },
    rate: { type: 'string' },
    'warm-up': { type: 'string', default: '0' },
    agents: { type: 'string', default: 'process' },
    coordinator: { type: 'string', default: 'process' },
    profile: { type: 'string' },
    'keep-topics': { type: 'boolean', default: false },
    'round-partitions': { type: 'string' },
    'concurrent-partitions': { type: 'string' },
  },
});
const seconds = Number(args.seconds);
const inFlight = Number(args['in-flight']);
const rate = args.rate === undefined ? undefined : Number(args.rate);
const warmUpSeconds = Number(args['warm-up']);
if (!(seconds > 0) || !(inFlight > 0) || (rate !== undefined && !(rate > 0))) throw new Error('--seconds, --in-flight and --rate are positive numbers');

silenceKafkajsTimerWarnings();
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-sustained', { redis: false });
const prefix = `bench-sus-${randomBytes(3).toString('hex')}`;
const roundPartitions = args['round-partitions'] === undefined ? undefined : Number(args['round-partitions']);
if (roundPartitions !== undefined && !(Number.isInteger(roundPartitions) && roundPartitions > 0)) throw new Error('--round-partitions is a positive whole number');
await applyTopics(c.admin, roundPartitions === undefined ? c.definitions : c.definitions.map((d) => (d.coPartitionGroup === 'rounds' ? { ...d, partitions: roundPartitions } : d)), { prefix });
const topic = (name: string) => topicName(prefix, name);
const say = (line: string) => process.stderr.write(`${line}\n`);
const eventsPerRound = 1 + 50 + 2;

// --- the members -----------------------------------------------------------
const children: Array<{ name: string; child: ChildProcess }> = [];
async function startChild(name: string, cliArgs: string[]): Promise<ChildProcess> {
  const nodeArgs = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile, '--cpu-prof-name', `${name}.cpuprofile`] : [];
  const child = spawn(join(root, 'node_modules/.bin/node'), [...nodeArgs, join(root, 'src/cli/main.ts'), ...cliArgs], {
    env: { ...process.env, ...environmentFor(c.endpoints), MABEAM_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)));
  });
  children.push({ name, child });
  return child;
}

const ids = fiftyAgentIds;
const host = args.agents === 'inline'
  ? new AgentHost({
    kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, pool: 'bench', heartbeatIntervalMs: 60_000,
    ...(args['concurrent-partitions'] ? { concurrentPartitions: Number(args['concurrent-partitions']) } : {}),
    agents: ids.map((id, i) => defineAgent({ id, role: 'worker', capabilities: ['bench'], onBidRequest: () => ({ amount: 10 + ((i * 37) % 50) }) })),
  })
  : undefined;
const coordinatorMetricsPort = await freePort();
const coordinator = args.coordinator === 'inline' ? new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions }) : undefined;
await Promise.all([
  host ? host.start() : startChild('agents', ['agent', 'run', join(root, 'bench/fiftyAgents.ts'), '--prefix', prefix, ...(args['concurrent-partitions'] ? ['--concurrent-partitions', args['concurrent-partitions']] : [])]),
  coordinator ? coordinator.start() : startChild('coordinator', ['coordinator', 'run', '--prefix', prefix, '--metrics-port', String(coordinatorMetricsPort)]),
]);

/** The transactions the coordinator process has committed (its Prometheus counter); undefined for an inline coordinator or when unreadable. */
async function coordinatorTransactions(): Promise<number | undefined> {
  if (coordinator) return undefined;
  try {
    const text = await (await fetch(`http://127.0.0.1:${coordinatorMetricsPort}/metrics`)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith('mabeam_transactions_total'))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  } catch {
    return undefined;
  }
}

// --- the reader of outcomes, and the load ------------------------------------
const waiters = new Map<string, (decidedAt: number) => void>();
const outcomes = c.kafka.consumer({ groupId: `${prefix}.read.outcomes`, maxWaitTimeInMs: 50 });
await outcomes.connect();
await outcomes.subscribe({ topic: topic('outcomes'), fromBeginning: true });
const readerJoined = new Promise<void>((r) => outcomes.on(outcomes.events.GROUP_JOIN, () => r()));
await outcomes.run({
  partitionsConsumedConcurrently: 4,
  eachBatch: async ({ batch }) => {
    for (const message of batch.messages) {
      if (message.headers?.['mabeam-event-type']?.toString() !== 'RoundOutcome') continue;
      const o = (await c.codec.decode<RoundOutcome>(message.value)).event;
      waiters.get(o.roundId)?.(o.envelope.eventTime);
    }
  },
});
await readerJoined;
const events = new EventProducer(c.producer, c.codec);

/** Where a round's time went (wall clock, ms): request sent → outcome made (its event time) → the reader has it. */
interface RoundTimes { ms: number; toDecided: number; toReader: number }

async function auction(roundId = `a-${randomBytes(6).toString('hex')}`): Promise<RoundTimes> {
  const request: BidRequest = { envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"', requiredCapabilities: ['bench'], eligibleAgents: ids, reservePrice: null, deadline: Date.now() + 60_000, parameters: null };
  const done = new Promise<number>((r) => waiters.set(roundId, r));
  const t = performance.now();
  const sentAt = Date.now();
  await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
  const decidedAt = await done;
  const readAt = Date.now();
  waiters.delete(roundId);
  return { ms: performance.now() - t, toDecided: decidedAt - sentAt, toReader: readAt - decidedAt };
}

const jvms = (): Record<string, number> => stackJvms(c.endpoints);
const processes = (): Record<string, number> => ({ bench: process.pid, ...Object.fromEntries(children.map(({ name, child }) => [name, child.pid!])), ...jvms() });
const coordinatorGroup = `${prefix}.coordinators`;
/** What a group has yet to read of its topics (records, over all partitions). */
async function lag(groupId = coordinatorGroup, inputs = [topic('bid-requests'), topic('bids')]): Promise<number> {
  const committed = await c.admin.fetchOffsets({ groupId, topics: inputs });
  let total = 0;
  for (const t of committed) {
    const ends = new Map((await c.admin.fetchTopicOffsets(t.topic)).map((p) => [p.partition, Number(p.high)]));
    for (const p of t.partitions) total += Math.max(0, (ends.get(p.partition) ?? 0) - Math.max(0, Number(p.offset)));
  }
  return total;
}

say(`sustained: ${rate === undefined ? `${inFlight} auctions among 50 agents in flight` : `${rate} auctions among 50 agents started per second`} for ${seconds} s (agents ${args.agents}, coordinator ${args.coordinator}; prefix ${prefix})`);
// Warm up: ten rounds on every partition, ten at a time (see roundIdsOnEveryPartition).
{
  const warmUp = roundIdsOnEveryPartition('w', await roundPartitionCount(c.admin, prefix));
  for (let i = 0; i < warmUp.length; i += 10) await Promise.all(warmUp.slice(i, i + 10).map((id) => auction(id)));
}
/** Runs the load for `forSeconds`; `record` takes each round's latency. */
async function load(forSeconds: number, record: (times: RoundTimes) => void): Promise<void> {
  const from = performance.now();
  const until = from + forSeconds * 1000;
  const measured = async () => record(await auction());
  if (rate === undefined) {
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < until) await measured();
      }),
    );
    return;
  }
  // Open loop: rounds start on the clock, however long the others take.
  const running: Promise<void>[] = [];
  let started = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, until) - from) / 1000) * rate);
      for (; started < due; started++) running.push(measured());
      if (now >= until) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  await Promise.all(running);
}
if (warmUpSeconds > 0) await load(warmUpSeconds, () => undefined);
const latencies: number[] = [];
const perSecond: number[] = [];
const samples: Array<{ t: number; eventsPerSecond: number; lag: number; agentsLag: number; rss: Record<string, number> }> = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const brokerRequests = await BrokerRequests.start(jvms()['broker']);
const brokerBefore = await brokerRequests?.read();
const machineBefore = machineTimes();
const transactionsBefore = await coordinatorTransactions();
const cpuBefore = Object.fromEntries(Object.entries(processes()).map(([name, pid]) => [name, cpuOf(pid)]));
const start = performance.now();
let finished = 0;
let lastFinished = 0;
const sampler = setInterval(() => {
  const done = finished - lastFinished;
  lastFinished = finished;
  perSecond.push(done * eventsPerRound);
  const rss: Record<string, number> = { bench: process.memoryUsage().rss / 1024 / 1024 };
  for (const { name, child } of children) if (child.pid) rss[name] = rssOf(child.pid);
  const t = Math.round((performance.now() - start) / 1000);
  void Promise.all([lag().catch(() => NaN), lag(`${prefix}.agents.bench`, [topic('bid-requests')]).catch(() => NaN)]).then(([l, a]) =>
    samples.push({ t, eventsPerSecond: done * eventsPerRound, lag: l, agentsLag: a, rss }),
  );
}, 1_000);
const toDecided: number[] = [];
const toReader: number[] = [];
await load(seconds, (times) => {
  latencies.push(times.ms);
  toDecided.push(times.toDecided);
  toReader.push(times.toReader);
  finished++;
});
const elapsed = (performance.now() - start) / 1000;
const cpu = Object.fromEntries(Object.entries(processes()).map(([name, pid]) => [name, Number(((cpuOf(pid) - (cpuBefore[name] ?? 0)) / elapsed).toFixed(2))]));
const machine = machineShares(machineBefore, machineTimes());
const transactionsAfter = await coordinatorTransactions();
const brokerAfter = await brokerRequests?.read();
brokerRequests?.stop();
const broker = brokerBefore && brokerAfter ? brokerWindow(brokerBefore, brokerAfter) : undefined;
clearInterval(sampler);
loop.disable();
const sorted = [...latencies].sort((a, b) => a - b);
const sustained = {
  seconds: Number(elapsed.toFixed(2)),
  rounds: finished,
  eventsPerSecond: Math.round((finished * eventsPerRound) / elapsed),
  p50: Number(percentile(sorted, 50).toFixed(1)),
  p95: Number(percentile(sorted, 95).toFixed(1)),
  p99: Number(percentile(sorted, 99).toFixed(1)),
  maxLag: Math.max(...samples.map((s) => s.lag).filter(Number.isFinite)),
  maxAgentsLag: Math.max(...samples.map((s) => s.agentsLag).filter(Number.isFinite)),
  benchLoopDelayP99Ms: Number((loop.percentile(99) / 1e6).toFixed(1)),
  // p50 / p95 / p99 of the two legs: request sent → outcome made, outcome made → the reader has it
  toDecided: legPercentiles(toDecided),
  toReader: legPercentiles(toReader),
  // What a round costs, less bound to the machine's speed than events/s: the coordinator's transactions, and the CPU of every process (bench, coordinator, agents, broker, registry).
  transactionsPerRound: transactionsBefore === undefined || transactionsAfter === undefined || finished === 0 ? null : Number(((transactionsAfter - transactionsBefore) / finished).toFixed(2)),
  cpuMsPerRound: finished === 0 ? null : Number(((1000 * Object.values(cpu).reduce((a, b) => a + b, 0) * elapsed) / finished).toFixed(1)),
  // The requests the broker served (its own counters), per round, and the time its handler threads spent on them.
  brokerRequestsPerRound: broker && finished > 0 ? Number((broker.requests / finished).toFixed(2)) : null,
  brokerHandlerMsPerRound: broker && finished > 0 ? Number((Object.values(broker.byType).reduce((sum, t) => sum + t.localMs, 0) / finished).toFixed(2)) : null,
};
say(`  ${sustained.rounds} rounds in ${sustained.seconds} s: ${sustained.eventsPerSecond} coordination events/s; round p50 ${sustained.p50} / p95 ${sustained.p95} / p99 ${sustained.p99} ms`);
say(`  where a round's time goes (p50 / p95 / p99 ms): request → outcome made ${sustained.toDecided.join(' / ')}, outcome → reader ${sustained.toReader.join(' / ')}`);
say(`  per round: ${sustained.transactionsPerRound ?? '?'} coordinator transactions, ${sustained.cpuMsPerRound ?? '?'} ms of CPU (all processes)`);
if (broker) say(`  broker requests per round: ${sustained.brokerRequestsPerRound} (${describePer(broker, finished)}); ${sustained.brokerHandlerMsPerRound} ms on its handler threads`);
say(`  CPU (cores used on average, of ${(await import('node:os')).availableParallelism()}): ${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ')}; the machine ${describeMachine(machine)}`);
say(`  events/s second by second: ${perSecond.join(' ')}`);
say(`  coordinator lag on its inputs (records), every second: ${samples.map((s) => s.lag).join(' ')}`);
say(`  agents' lag on bid requests (records), every second: ${samples.map((s) => s.agentsLag).join(' ')}`);
const names = Object.keys(samples[0]?.rss ?? {});
for (const name of names) say(`  RSS ${name} (MB), every second: ${samples.map((s) => Math.round(s.rss[name]!)).join(' ')}`);

// --- stop the members, then the raw pipe on the same broker ------------------
for (const { child } of children) child.kill('SIGTERM');
await Promise.all(children.map(({ child }) => new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)))));
await Promise.all([host?.stop(), coordinator?.stop(), outcomes.disconnect()]);

const rawCount = Math.max(100_000, finished * eventsPerRound);
const raw = await rawPipe(c.kafka, topic('metrics'), `${prefix}.read.raw`, rawCount);
say(`raw kafkajs pipe (produce → consume, ${rawCount} records of 100 bytes, no decoding, no transactions): ${raw.recordsPerSecond} records/s (produce alone ${raw.produceRecordsPerSecond}/s)`);
const ratio = sustained.eventsPerSecond / raw.recordsPerSecond;
say(`  sustained coordination events/s ÷ raw pipe records/s: ${(ratio * 100).toFixed(1)} %`);
if (!args['keep-topics']) await dropPrefix(c.admin, prefix);
await c.close();
process.stdout.write(`${JSON.stringify({ bench: 'sustained', prefix, roundPartitions: roundPartitions ?? null, concurrentPartitions: args['concurrent-partitions'] ? Number(args['concurrent-partitions']) : null, inFlight: rate === undefined ? inFlight : null, rate: rate ?? null, warmUpSeconds, agents: args.agents, coordinator: args.coordinator, sustained, cpu, machine, broker: broker ?? null, perSecond, samples, raw: { records: rawCount, ...raw }, ratioToRaw: Number(ratio.toFixed(3)) })}\n`);
process.exit(0);

function legPercentiles(ms: number[]): [number, number, number] {
  const sortedMs = [...ms].sort((a, b) => a - b);
  return [percentile(sortedMs, 50), percentile(sortedMs, 95), percentile(sortedMs, 99)];
}

/**
 * Produces `count` keyed 100-byte records in batches of 500, at most 8 sends
 * in flight, while a consumer of its own group reads them (eachBatch, no
 * decoding): records/s from the first send to the last record read.
 */
async function rawPipe(kafka: Kafka, t: string, groupId: string, count: number): Promise<{ recordsPerSecond: number; produceRecordsPerSecond: number }> {
  const producer = createProducer(kafka);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50, maxBytes: 10 * 1024 * 1024 });
  await Promise.all([producer.connect(), consumer.connect()]);
  await consumer.subscribe({ topic: t, fromBeginning: false });
  let read = 0;
  let allRead: () => void = () => undefined;
  const done = new Promise<void>((r) => (allRead = r));
  const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      read += batch.messages.length;
      if (read >= count) allRead();
    },
  });
  await joined;
  await new Promise((r) => setTimeout(r, 1_000));
  const value = Buffer.alloc(100, 1);
  const started = performance.now();
  let sent = 0;
  const sender = async () => {
    while (sent < count) {
      const n = Math.min(500, count - sent);
      sent += n;
      await producer.send({ topic: t, messages: Array.from({ length: n }, (_, i) => ({ key: `k${(sent + i) % 997}`, value })) });
    }
  };
  await Promise.all(Array.from({ length: 8 }, sender));
  const produced = performance.now();
  await done;
  const finishedAt = performance.now();
  await Promise.all([producer.disconnect(), consumer.disconnect()]);
  return {
    recordsPerSecond: Math.round(count / ((finishedAt - started) / 1000)),
    produceRecordsPerSecond: Math.round(count / ((produced - started) / 1000)),
  };
}

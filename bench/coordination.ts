/**
 * Coordination latency and throughput, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/coordination.ts [rounds] [inline|process] [--keep-topics]
 *
 * In one run:
 * - raw kafkajs produce → consume on the same broker (1 hop), sequential
 * - sealed-bid first-price auction among 50 agents: request produced → outcome
 *   consumed (request → 50 bids → coordinator → outcome: 3 hops)
 * - majority consensus among 50 voters, the same way
 * - coordination events processed per second: many rounds at once
 * The coordinator runs in this process; the 50 agents (one pool) too, or with
 * `process` in a process of their own. Its topics and groups are dropped
 * at the end (bench/dropPrefix.ts) unless `--keep-topics` is given.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { BidRequest, Proposal, RoundOutcome } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { fiftyAgentIds } from './fiftyAgents.ts';
import { percentile, rawRoundTrips, summary } from './rawTrip.ts';
import { dropPrefix } from './dropPrefix.ts';
import { describeMachine, machineShares, machineTimes } from './machine.ts';
import { roundIdsOnEveryPartition, roundPartitionCount } from './warmUp.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

silenceKafkajsTimerWarnings();
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const keepTopics = process.argv.includes('--keep-topics');
const rounds = Number(positional[0] ?? 60);
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-coordination');
const prefix = `bench-coord-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const roundPartitions = await roundPartitionCount(c.admin, prefix);
const topic = (name: string) => topicName(prefix, name);
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  process.stderr.write(`${line}\n`);
};

const machineBefore = machineTimes();

// 1. raw round trip
{
  const samples = await rawRoundTrips(c.kafka, topic('metrics'), `${prefix}.raw`);
  say(summary('raw kafkajs produce → consume (1 hop)', samples));
  const p95 = percentile([...samples].sort((a, b) => a - b), 95);
  say(`  3 × the 1-hop p95 (the comparison for a 3-hop round): ${(3 * p95).toFixed(1)} ms`);
}

// 50 agents in one pool, a coordinator, and a reader of outcomes.
// Where the time of a round goes (wall clock, ms): sent → the first agent handler runs → the
// outcome is made (its event time) → the reader has it.
const timeline = new Map<string, { sent: number; handled?: number; decided?: number; received?: number }>();
const answered = (roundId: string) => {
  const t = timeline.get(roundId);
  if (t && t.handled === undefined) t.handled = Date.now();
};
// `inline` (default): the agents run in this process, and the breakdown says when their handlers ran.
// `process`: they run in a process of their own (`mabeam agent run bench/fiftyAgents.ts`), as deployed.
const agentsMode = positional[1] === 'process' ? 'process' : 'inline';
const ids = fiftyAgentIds;
const host = agentsMode === 'inline'
  ? new AgentHost({
    kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, pool: 'bench', heartbeatIntervalMs: 60_000,
    agents: ids.map((id, i) => defineAgent({
      id, role: 'worker', capabilities: ['bench'],
      onBidRequest: (r: BidRequest) => (answered(r.roundId), { amount: 10 + ((i * 37) % 50) }),
      onProposal: (p: Proposal) => (answered(p.roundId), { choice: i % 3 === 0 ? 'no' : 'yes' }),
    })),
  })
  : undefined;
const agentProcess = agentsMode === 'process' ? await startAgentProcess() : undefined;

/** The 50 agents as a child process; resolves once it says it is ready. */
async function startAgentProcess(): Promise<ChildProcess> {
  const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'src/cli/main.ts'), 'agent', 'run', join(root, 'bench/fiftyAgents.ts'), '--prefix', prefix], {
    env: { ...process.env, KAFKA_BROKERS: c.endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: c.endpoints.schemaRegistryUrl, REDIS_URL: c.endpoints.redisUrl },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the agent process exited (${code}) before it was ready`)));
  });
  return child;
}
const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions });
const waiters = new Map<string, (o: RoundOutcome) => void>();
const outcomes = c.kafka.consumer({ groupId: `${prefix}.outcomes-reader`, maxWaitTimeInMs: 100 });
await outcomes.connect();
await outcomes.subscribe({ topic: topic('outcomes'), fromBeginning: true });
await outcomes.run({
  eachMessage: async ({ message }) => {
    if (message.headers?.['mabeam-event-type']?.toString() !== 'RoundOutcome') return;
    const o = (await c.codec.decode<RoundOutcome>(message.value)).event;
    const t = timeline.get(o.roundId);
    if (t) Object.assign(t, { decided: o.envelope.eventTime, received: Date.now() });
    waiters.get(o.roundId)?.(o);
  },
});
await Promise.all([host?.start(), coordinator.start()]);
const events = new EventProducer(c.producer, c.codec);
const outcomeOf = (roundId: string) => new Promise<RoundOutcome>((r) => waiters.set(roundId, r));

async function auction(roundId = `a-${randomBytes(6).toString('hex')}`): Promise<number> {
  const request: BidRequest = { envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"', requiredCapabilities: ['bench'], eligibleAgents: ids, reservePrice: null, deadline: Date.now() + 30_000, parameters: null };
  const done = outcomeOf(roundId);
  const t = performance.now();
  timeline.set(roundId, { sent: Date.now() });
  await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
  await done;
  return performance.now() - t;
}

async function consensus(roundId = `c-${randomBytes(6).toString('hex')}`): Promise<number> {
  const proposal: Proposal = { envelope: newEnvelope('Proposal', 'bench', { correlationId: roundId }), roundId, protocol: 'majority', subject: '"x"', options: [], eligibleVoters: ids, weights: {}, quorum: null, deadline: Date.now() + 30_000, parameters: null };
  const done = outcomeOf(roundId);
  const t = performance.now();
  timeline.set(roundId, { sent: Date.now() });
  await events.send(topic('proposals'), roundId, 'Proposal', proposal);
  await done;
  return performance.now() - t;
}

const breakdown = (label: string) => {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const done = [...timeline.values()].filter((t) => t.decided !== undefined && t.received !== undefined);
  const p95 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 95);
  const parts: Record<string, number[]> = host
    ? { 'request → agents': done.map((t) => t.handled! - t.sent), 'agents → outcome made': done.map((t) => t.decided! - t.handled!) }
    : { 'request → outcome made (agents in their own process)': done.map((t) => t.decided! - t.sent) };
  parts['outcome → reader'] = done.map((t) => t.received! - t.decided!);
  say(`  ${label}, where the time goes (p50 / p95 ms): ${Object.entries(parts).map(([k, xs]) => `${k} ${median(xs)} / ${p95(xs)}`).join(', ')}`);
  timeline.clear();
};

// Warm up: ten rounds on every partition (see roundIdsOnEveryPartition).
for (const id of roundIdsOnEveryPartition('a', roundPartitions)) await auction(id);
timeline.clear();
const auctions: number[] = [];
for (let i = 0; i < rounds; i++) auctions.push(await auction());
say(summary('sealed-bid auction among 50 agents (request → outcome)', auctions));
breakdown('auction');
for (const id of roundIdsOnEveryPartition('c', roundPartitions)) await consensus(id);
timeline.clear();
const votes: number[] = [];
for (let i = 0; i < rounds; i++) votes.push(await consensus());
say(summary('majority consensus among 50 voters (proposal → outcome)', votes));
breakdown('consensus');

// throughput: many rounds in flight; each round is 1 request + 50 answers + closing + outcome (+ award)
{
  const inFlight = 100;
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, () => auction()));
  const seconds = (performance.now() - t) / 1000;
  const eventsPerRound = 1 + 50 + 2;
  say(`throughput: ${inFlight} auctions of 50 bids at once in ${seconds.toFixed(2)} s = ${Math.round((inFlight * eventsPerRound) / seconds)} coordination events/s (request, bids, closing, outcome)`);
}

const machine = machineShares(machineBefore, machineTimes());
say(`the machine over the run: ${describeMachine(machine)}`);

agentProcess?.kill('SIGTERM');
await Promise.all([host?.stop(), coordinator.stop(), outcomes.disconnect()]);
if (!keepTopics) await dropPrefix(c.admin, prefix);
await c.close();
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);

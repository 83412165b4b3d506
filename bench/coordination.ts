/**
 * Coordination latency and throughput, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/coordination.ts [rounds]
 *
 * In one run:
 * - raw kafkajs produce → consume on the same broker (1 hop), sequential
 * - sealed-bid first-price auction among 50 agents: request produced → outcome
 *   consumed (request → 50 bids → coordinator → outcome: 3 hops)
 * - majority consensus among 50 voters, the same way
 * - coordination events processed per second: many rounds at once
 * The 50 agents run in one host process (one pool), the coordinator in this process.
 */
import { randomBytes } from 'node:crypto';
import type { KafkaMessage } from 'kafkajs';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { BidRequest, Proposal, RoundOutcome } from '../src/events/types.ts';
import { createProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';

silenceKafkajsTimerWarnings();
const rounds = Number(process.argv[2] ?? 60);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const summary = (label: string, ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return `${label}: p50 ${pct(s, 50).toFixed(1)} ms, p95 ${pct(s, 95).toFixed(1)} ms, p99 ${pct(s, 99).toFixed(1)} ms (${s.length} samples)`;
};

const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-coordination');
const prefix = `bench-coord-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const topic = (name: string) => topicName(prefix, name);
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  process.stderr.write(`${line}\n`);
};

// 1. raw round trip
{
  const consumer = c.kafka.consumer({ groupId: `${prefix}.raw`, maxWaitTimeInMs: 100 });
  const producer = createProducer(c.kafka);
  await Promise.all([consumer.connect(), producer.connect()]);
  await consumer.subscribe({ topic: topic('metrics'), fromBeginning: false });
  let waiting: ((m: KafkaMessage) => void) | undefined;
  const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
  await consumer.run({ eachMessage: async ({ message }) => waiting?.(message) });
  await joined;
  await new Promise((r) => setTimeout(r, 1_000));
  const samples: number[] = [];
  for (let i = 0; i < 220; i++) {
    const got = new Promise<KafkaMessage>((r) => (waiting = r));
    const t = performance.now();
    await producer.send({ topic: topic('metrics'), messages: [{ key: 'k', value: Buffer.from(String(i)) }] });
    await got;
    if (i >= 20) samples.push(performance.now() - t);
  }
  say(summary('raw kafkajs produce → consume (1 hop)', samples));
  const p95 = [...samples].sort((a, b) => a - b)[Math.ceil(0.95 * samples.length) - 1]!;
  say(`  3 × the 1-hop p95 (the comparison for a 3-hop round): ${(3 * p95).toFixed(1)} ms`);
  await Promise.all([consumer.disconnect(), producer.disconnect()]);
}

// 50 agents in one pool, a coordinator, and a reader of outcomes
const ids = Array.from({ length: 50 }, (_, i) => `agent-${i}`);
const host = new AgentHost({
  kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, pool: 'bench', heartbeatIntervalMs: 60_000,
  agents: ids.map((id, i) => defineAgent({ id, role: 'worker', capabilities: ['bench'], onBidRequest: () => ({ amount: 10 + ((i * 37) % 50) }), onProposal: () => ({ choice: i % 3 === 0 ? 'no' : 'yes' }) })),
});
const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions });
const waiters = new Map<string, (o: RoundOutcome) => void>();
const outcomes = c.kafka.consumer({ groupId: `${prefix}.outcomes-reader`, maxWaitTimeInMs: 100 });
await outcomes.connect();
await outcomes.subscribe({ topic: topic('outcomes'), fromBeginning: true });
await outcomes.run({
  eachMessage: async ({ message }) => {
    if (message.headers?.['mabeam-event-type']?.toString() !== 'RoundOutcome') return;
    const o = (await c.codec.decode<RoundOutcome>(message.value)).event;
    waiters.get(o.roundId)?.(o);
  },
});
await Promise.all([host.start(), coordinator.start()]);
const events = new EventProducer(c.producer, c.codec);
const outcomeOf = (roundId: string) => new Promise<RoundOutcome>((r) => waiters.set(roundId, r));

async function auction(): Promise<number> {
  const roundId = `a-${randomBytes(6).toString('hex')}`;
  const request: BidRequest = { envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"', requiredCapabilities: ['bench'], eligibleAgents: ids, reservePrice: null, deadline: Date.now() + 30_000, parameters: null };
  const done = outcomeOf(roundId);
  const t = performance.now();
  await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
  await done;
  return performance.now() - t;
}

async function consensus(): Promise<number> {
  const roundId = `c-${randomBytes(6).toString('hex')}`;
  const proposal: Proposal = { envelope: newEnvelope('Proposal', 'bench', { correlationId: roundId }), roundId, protocol: 'majority', subject: '"x"', options: [], eligibleVoters: ids, weights: {}, quorum: null, deadline: Date.now() + 30_000, parameters: null };
  const done = outcomeOf(roundId);
  const t = performance.now();
  await events.send(topic('proposals'), roundId, 'Proposal', proposal);
  await done;
  return performance.now() - t;
}

for (let i = 0; i < 5; i++) await auction(); // warm up
const auctions: number[] = [];
for (let i = 0; i < rounds; i++) auctions.push(await auction());
say(summary('sealed-bid auction among 50 agents (request → outcome)', auctions));
for (let i = 0; i < 5; i++) await consensus();
const votes: number[] = [];
for (let i = 0; i < rounds; i++) votes.push(await consensus());
say(summary('majority consensus among 50 voters (proposal → outcome)', votes));

// throughput: many rounds in flight; each round is 1 request + 50 answers + closing + outcome (+ award)
{
  const inFlight = 100;
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, () => auction()));
  const seconds = (performance.now() - t) / 1000;
  const eventsPerRound = 1 + 50 + 2;
  say(`throughput: ${inFlight} auctions of 50 bids at once in ${seconds.toFixed(2)} s = ${Math.round((inFlight * eventsPerRound) / seconds)} coordination events/s (request, bids, closing, outcome)`);
}

await Promise.all([host.stop(), coordinator.stop(), outcomes.disconnect()]);
await c.close();
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);

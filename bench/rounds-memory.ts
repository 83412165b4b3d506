/**
 * Memory of a coordinator over many rounds, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/rounds-memory.ts [rounds=100000] [graceMs=5000]
 *
 * Produces `rounds` sealed-bid rounds (a request and one bid each, so each is
 * decided at once) in waves, and prints after every 10,000 decided rounds the
 * coordinator's RSS and heap and the rounds it still holds (open, or closed
 * within the grace period). Closed rounds leave memory `graceMs` of log time
 * after they close, with a tombstone in round-state. At the end a second
 * coordinator takes the partitions over and says how much of the changelog it
 * read to restore them (only from the oldest live round on).
 */
import { randomBytes } from 'node:crypto';
import type { Message } from 'kafkajs';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';

silenceKafkajsTimerWarnings();
const total = Number(process.argv[2] ?? 100_000);
const graceMs = Number(process.argv[3] ?? 5_000);
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-rounds-memory');
const prefix = `bench-mem-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const topic = (name: string) => topicName(prefix, name);
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, closedRoundGraceMs: graceMs });
await coordinator.start();

let decided = 0;
const outcomes = c.kafka.consumer({ groupId: `${prefix}.reader`, maxWaitTimeInMs: 100 });
await outcomes.connect();
await outcomes.subscribe({ topic: topic('outcomes'), fromBeginning: true });
await outcomes.run({
  eachBatch: async ({ batch }) => {
    for (const m of batch.messages) if (m.headers?.['mabeam-event-type']?.toString() === 'RoundOutcome') decided++;
  },
});

const producer = c.producer;
const wave = 2_000;
const started = Date.now();
const rows: string[] = [];
let nextReport = 10_000;
const report = () => {
  const m = process.memoryUsage();
  const held = coordinator.held;
  const row = `${String(decided).padStart(7)} rounds decided: RSS ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} MB, held ${held.rounds} rounds, ${held.pending} waiting answers, ${held.timers} deadline timers (${((Date.now() - started) / 1000).toFixed(0)} s)`;
  rows.push(row);
  process.stderr.write(`${row}\n`);
};
for (let sent = 0; sent < total; sent += wave) {
  const requests: Message[] = [];
  const bids: Message[] = [];
  for (let i = sent; i < Math.min(total, sent + wave); i++) {
    const roundId = `${prefix}-r${i}`;
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [], eligibleAgents: ['a'], reservePrice: null, deadline: Date.now() + 60_000, parameters: null,
    };
    const bid: Bid = { envelope: newEnvelope('Bid', 'a', { correlationId: roundId }), roundId, agentId: 'a', amount: i % 100, bundle: [], attributes: null };
    requests.push({ key: roundId, value: await c.codec.encode('BidRequest', request) });
    bids.push({ key: roundId, value: await c.codec.encode('Bid', bid) });
  }
  await producer.sendBatch({ topicMessages: [{ topic: topic('bid-requests'), messages: requests }, { topic: topic('bids'), messages: bids }] });
  // Keep at most two waves in flight, so the numbers are taken while the coordinator works, not after.
  while (decided < sent - wave) await new Promise((resolve) => setTimeout(resolve, 20));
  while (decided >= nextReport) {
    report();
    nextReport += 10_000;
  }
}
while (decided < total) await new Promise((resolve) => setTimeout(resolve, 50));
while (nextReport <= total) {
  report();
  nextReport += 10_000;
}
// Let the grace period pass (and the sweep run) so closed rounds leave, then look again.
await new Promise((resolve) => setTimeout(resolve, graceMs + 2_500));
report();

// A takeover: how much of the changelog does a new owner read?
await coordinator.stop();
const admin = c.kafka.admin();
await admin.connect();
const ends = await admin.fetchTopicOffsets(topic('round-state'));
const [committed] = await admin.fetchOffsets({ groupId: `${prefix}.coordinators`, topics: [topic('round-state')] });
await admin.disconnect();
const written = ends.reduce((n, p) => n + Number(p.high), 0);
const toRead = ends.reduce((n, p) => {
  const from = Number(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? 0);
  return n + Math.max(0, Number(p.high) - Math.max(0, from));
}, 0);
const second = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, closedRoundGraceMs: graceMs });
const t0 = Date.now();
await second.start();
const takeover = Date.now() - t0;
const summary = `takeover: round-state holds ${written} records (before compaction); a new owner reads ${toRead} of them (from the oldest live round on), started in ${takeover} ms, holds ${second.held.rounds} rounds`;
rows.push(summary);
process.stderr.write(`${summary}\n`);
await second.stop();
await outcomes.disconnect();
await c.close();
process.stdout.write(`${rows.join('\n')}\n`);

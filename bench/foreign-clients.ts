/**
 * Rounds triggered by a client that is not this project's: Confluent's
 * Python client (librdkafka, default partitioner `consistent_random` =
 * CRC32 of the key, so most records land on another partition than murmur2
 * would put them), against two coordinator processes, on the running local
 * stack (`mabeam dev up`) or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL:
 *
 *   node_modules/.bin/node bench/foreign-clients.ts [auctions=30] [consensus=30]
 *
 * Needs /usr/bin/python3 with confluent_kafka (Debian: `apt-get install
 * python3-confluent-kafka`). The events are Avro in the Confluent wire format,
 * encoded here with the registry; librdkafka only produces the bytes, keyed by
 * round id. Prints, and checks, that every round has exactly one outcome with
 * the right winner; exits non-zero otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/cli/connect.ts';
import { partitionOfKey } from '../src/engine/routing.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest, Proposal, RoundOutcome, Vote } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { readToEnd } from '../src/kafka/readToEnd.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';

silenceKafkajsTimerWarnings();
const auctions = Number(process.argv[2] ?? 30);
const consensus = Number(process.argv[3] ?? 30);
const python = '/usr/bin/python3';
if (spawnSync(python, ['-c', 'import confluent_kafka'], { stdio: 'ignore' }).status !== 0) {
  process.stderr.write('bench/foreign-clients.ts needs /usr/bin/python3 with confluent_kafka (apt-get install python3-confluent-kafka)\n');
  process.exit(2);
}
const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints('dev'));
const c = await connect(endpoints, createLogger({ level: 'error' }), 'bench-foreign');
const prefix = `bench-foreign-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const topic = (name: string) => topicName(prefix, name);

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const coordinators = [0, 1].map(() =>
  spawn(process.execPath, [cli, 'coordinator', 'run', '--prefix', prefix, '--session-timeout-ms', '3000'], {
    env: { ...process.env, KAFKA_BROKERS: endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl, REDIS_URL: endpoints.redisUrl },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  }),
);
await Promise.all(coordinators.map((p) => new Promise((resolve) => p.once('message', resolve))));

// The records, encoded here, produced by librdkafka.
const records: Array<{ topic: string; key: string; value: string }> = [];
const expected = new Map<string, { winners: string[] }>();
const push = async (name: string, key: string, type: string, event: object) => records.push({ topic: topic(name), key, value: (await c.codec.encode(type, event)).toString('hex') });
for (let i = 0; i < auctions; i++) {
  const roundId = `${prefix}-a${i}`;
  const request: BidRequest = {
    envelope: newEnvelope('BidRequest', 'python', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [],
    eligibleAgents: ['a', 'b', 'c'], reservePrice: null, deadline: Date.now() + 60_000, parameters: null,
  };
  await push('bid-requests', roundId, 'BidRequest', request);
  for (const [agentId, amount] of [['a', 10 + i], ['b', 30 + i], ['c', 20 + i]] as const) {
    const bid: Bid = { envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null };
    await push('bids', roundId, 'Bid', bid);
  }
  expected.set(roundId, { winners: ['b'] });
}
for (let i = 0; i < consensus; i++) {
  const roundId = `${prefix}-c${i}`;
  const proposal: Proposal = {
    envelope: newEnvelope('Proposal', 'python', { correlationId: roundId }), roundId, protocol: 'majority', subject: '"upgrade"', options: ['yes', 'no'],
    eligibleVoters: ['a', 'b', 'c'], weights: {}, quorum: null, deadline: Date.now() + 60_000, parameters: null,
  };
  await push('proposals', roundId, 'Proposal', proposal);
  for (const [agentId, choice] of [['a', 'yes'], ['b', i % 2 === 0 ? 'yes' : 'no'], ['c', 'no']] as const) {
    const vote: Vote = { envelope: newEnvelope('Vote', agentId, { correlationId: roundId }), roundId, agentId, choice, weight: null, reason: null };
    await push('votes', roundId, 'Vote', vote);
  }
  expected.set(roundId, { winners: [] });
}

const script = `
import json, sys
from confluent_kafka import Producer
p = Producer({'bootstrap.servers': sys.argv[1], 'enable.idempotence': True})
placed = {}
def report(err, msg):
    if err: raise SystemExit(str(err))
    placed[msg.topic() + '/' + msg.key().decode()] = msg.partition()
for line in sys.stdin:
    r = json.loads(line)
    p.produce(r['topic'], key=r['key'].encode(), value=bytes.fromhex(r['value']), on_delivery=report)
    p.poll(0)
p.flush(30)
print(json.dumps(placed))
`;
const started = Date.now();
const produced = spawnSync(python, ['-c', script, endpoints.kafkaBrokers.join(',')], { input: records.map((r) => JSON.stringify(r)).join('\n'), encoding: 'utf8' });
if (produced.status !== 0) throw new Error(`the Python producer failed: ${produced.stderr}`);
const placed = JSON.parse(produced.stdout) as Record<string, number>;
const misplaced = records.filter((r) => placed[`${r.topic}/${r.key}`] !== partitionOfKey(Buffer.from(r.key), 12)).length;

// Wait for every outcome, then read the outcomes topic to its end.
const outcomes = new Map<string, RoundOutcome[]>();
for (;;) {
  outcomes.clear();
  await readToEnd(c.kafka, {
    topics: [topic('outcomes')],
    onRecord: async ({ message }) => {
      const d = await c.codec.decode(message.value);
      if (d.type !== 'RoundOutcome') return;
      const id = d.event.roundId;
      outcomes.set(id, [...(outcomes.get(id) ?? []), d.event]);
    },
  });
  if ([...expected.keys()].every((id) => outcomes.has(id)) || Date.now() - started > 60_000) break;
  await new Promise((resolve) => setTimeout(resolve, 500));
}
const problems: string[] = [];
for (const [roundId, want] of expected) {
  const got = outcomes.get(roundId) ?? [];
  if (got.length !== 1) problems.push(`${roundId}: ${got.length} outcomes`);
  else if (roundId.includes('-a') && JSON.stringify(got[0]!['winners']) !== JSON.stringify(want.winners)) problems.push(`${roundId}: winners ${JSON.stringify(got[0]!['winners'])}`);
}
const decidedConsensus = [...outcomes.entries()].filter(([id, list]) => id.includes('-c') && list[0]?.['status'] === 'decided').length;
process.stdout.write(
  `${records.length} records produced by librdkafka ${JSON.stringify(spawnSync(python, ['-c', 'import confluent_kafka; print(confluent_kafka.libversion()[0])'], { encoding: 'utf8' }).stdout.trim())} ` +
    `(default partitioner), ${misplaced} of them on another partition than murmur2 would choose; ` +
    `${expected.size} rounds (${auctions} first-price, ${consensus} majority), ${[...outcomes.values()].filter((l) => l.length === 1).length} with exactly one outcome, ` +
    `${decidedConsensus} consensus rounds decided, ${problems.length} problems, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
for (const p of problems.slice(0, 10)) process.stdout.write(`  ${p}\n`);
for (const p of coordinators) p.kill('SIGTERM');
await Promise.all(coordinators.map((p) => new Promise((resolve) => p.once('exit', resolve))));
await c.close();
process.exit(problems.length === 0 ? 0 : 1);

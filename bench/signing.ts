/**
 * What signed events cost, on the running local stack (`mabeam dev up`) or
 * the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/signing.ts [rounds]
 *
 * In one run, each under a prefix of its own, sealed-bid first-price
 * auctions among 50 agents (one pool, in this process, as in
 * bench/coordination.ts) with a coordinator:
 * - plain: agents that do not sign, a coordinator that verifies nothing;
 * - signed: agents that sign everything they write, a coordinator that
 *   requires signatures (every bid checked against the agents' pinned keys).
 * Each: request → outcome p50 / p95 (sequential rounds), and rounds/s with
 * 100 rounds in flight. Then raw Ed25519 sign and verify per second of one
 * bid record on this machine. A table on stderr, one JSON line on stdout.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest, RoundOutcome } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { KeyDirectory } from '../src/security/directory.ts';
import { createKey } from '../src/security/keys.ts';
import { signingHeaders, signRecord, verifyRecord } from '../src/security/signing.ts';
import { checkSignature } from '../src/security/verify.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { fiftyAgentIds } from './fiftyAgents.ts';
import { percentile } from './rawTrip.ts';

silenceKafkajsTimerWarnings();
const rounds = Number(process.argv[2] ?? 100);
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-signing');
const keysDir = mkdtempSync(join(tmpdir(), 'mabeam-bench-keys-'));
const ids = fiftyAgentIds;

interface Measured {
  p50: number;
  p95: number;
  roundsPerSecond: number;
}

async function measure(signed: boolean): Promise<Measured> {
  const prefix = `bench-sign-${signed ? 'on' : 'off'}-${randomBytes(3).toString('hex')}`;
  await applyTopics(c.admin, c.definitions, { prefix });
  const topic = (name: string) => topicName(prefix, name);
  const host = new AgentHost({
    kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, pool: 'bench', heartbeatIntervalMs: 60_000, sign: signed, keysDir,
    agents: ids.map((id, i) => defineAgent({ id, role: 'worker', capabilities: ['bench'], onBidRequest: () => ({ amount: 10 + ((i * 37) % 50) }) })),
  });
  const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, requireSignatures: signed });
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
  const auction = async (): Promise<number> => {
    const roundId = `a-${randomBytes(6).toString('hex')}`;
    const request: BidRequest = { envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"', requiredCapabilities: ['bench'], eligibleAgents: ids, reservePrice: null, deadline: Date.now() + 30_000, parameters: null };
    const done = new Promise<RoundOutcome>((r) => waiters.set(roundId, r));
    const t = performance.now();
    await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
    const outcome = await done;
    waiters.delete(roundId);
    // Every bid must have counted: a refused one would make the comparison meaningless.
    const counted = (JSON.parse(outcome.details ?? '{}') as { bids?: unknown[] }).bids?.length;
    if (outcome.status !== 'decided' || counted !== ids.length) {
      throw new Error(`round ${roundId} did not count every bid: ${outcome.status} ${outcome.reason}`);
    }
    return performance.now() - t;
  };
  for (let i = 0; i < 5; i++) await auction(); // warm up
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) samples.push(await auction());
  const inFlight = 100;
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, () => auction()));
  const roundsPerSecond = inFlight / ((performance.now() - t) / 1000);
  await Promise.all([host.stop(), coordinator.stop(), outcomes.disconnect()]);
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), roundsPerSecond };
}

/** Operations per second of `op`, over about a second after a warm-up. */
function perSecond(op: () => unknown): number {
  for (let i = 0; i < 500; i++) op();
  let n = 0;
  const t = performance.now();
  while (performance.now() - t < 1_000) {
    for (let i = 0; i < 100; i++) op();
    n += 100;
  }
  return n / ((performance.now() - t) / 1000);
}

function rawCrypto(): { signPerSecond: number; verifyPerSecond: number; checkPerSecond: number; valueBytes: number } {
  const key = createKey('bench-raw', { dir: mkdtempSync(join(tmpdir(), 'mabeam-bench-raw-')) });
  const roundId = `a-${randomBytes(6).toString('hex')}`;
  const bid: Bid = { envelope: newEnvelope('Bid', 'bench-raw', { correlationId: roundId }), roundId, agentId: 'bench-raw', amount: 42, bundle: [], attributes: null };
  // About the size of a framed Avro bid.
  const value = Buffer.concat([Buffer.from([0, 0, 0, 0, 9]), Buffer.from(JSON.stringify(bid))]);
  const sig = signRecord(roundId, value, key.privateKey);
  const directory = new KeyDirectory();
  const registration = Buffer.from('registration');
  directory.apply(
    { envelope: newEnvelope('AgentRecord', 'bench'), agentId: 'bench-raw', role: 'w', capabilities: [], resources: {}, consumerGroup: 'g', metadata: {}, publicKey: key.publicKeyBase64, keyId: key.keyId, keyNotAfter: null },
    { key: 'bench-raw', value: registration, headers: signingHeaders('bench-raw', registration, key), timestamp: 0 },
  );
  const record = { key: roundId, value, headers: signingHeaders(roundId, value, key), timestamp: Date.now() };
  return {
    signPerSecond: perSecond(() => signRecord(roundId, value, key.privateKey)),
    verifyPerSecond: perSecond(() => verifyRecord(roundId, value, sig, key.publicKey)),
    // What the coordinator does per bid: headers, directory lookup, verify, expiry.
    checkPerSecond: perSecond(() => checkSignature(record, 'bench-raw', directory)),
    valueBytes: value.length,
  };
}

const plain = await measure(false);
const signed = await measure(true);
const raw = rawCrypto();
await c.close();

const f = (n: number) => n.toFixed(1);
const rows = [
  ['', 'auction p50 ms', 'auction p95 ms', 'rounds/s (100 in flight)'],
  ['plain (no signing, no verification)', f(plain.p50), f(plain.p95), f(plain.roundsPerSecond)],
  ['signed (agents sign, coordinator verifies)', f(signed.p50), f(signed.p95), f(signed.roundsPerSecond)],
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stderr.write(`sealed-bid first-price auctions among ${ids.length} agents, ${rounds} sequential rounds each\n`);
for (const r of rows) process.stderr.write(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
process.stderr.write(`raw Ed25519 on a ${raw.valueBytes}-byte bid: sign ${Math.round(raw.signPerSecond)}/s, verify ${Math.round(raw.verifyPerSecond)}/s, full check (headers, directory, verify) ${Math.round(raw.checkPerSecond)}/s\n`);
process.stdout.write(`${JSON.stringify({ bench: 'signing', agents: ids.length, rounds, plain, signed, p95Ratio: signed.p95 / plain.p95, throughputRatio: signed.roundsPerSecond / plain.roundsPerSecond, ...raw })}\n`);
process.exit(0);

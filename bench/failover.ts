/**
 * Failover time: a member killed with SIGKILL, and how long until its
 * pending work is answered by another member (local stack from `mabeam dev
 * up`, or the services in the environment):
 *
 *   node_modules/.bin/node bench/failover.ts [--session-timeout-ms default,6000,3000] [--rounds 24] [--runs 2]
 *
 * For each session timeout, two scenarios, each in a fresh prefix:
 * - **coordinator**: two coordinator processes share the rounds; `rounds`
 *   auctions are opened and get one bid each; one coordinator is killed and
 *   the remaining bids are sent at once. Measured: kill → the last outcome
 *   read (the rounds of the dead one wait for the group to move them).
 * - **agent replica**: two replicas of the 50-agent pool share the requests;
 *   one is killed and `rounds` auctions are started at once. Measured: kill
 *   → the last outcome read (requests on the dead replica's partitions wait
 *   for them to move).
 * The scenarios' topics and groups are dropped at the end (bench/dropPrefix.ts).
 * The last line is one JSON object for machines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type Connections } from '../src/cli/connect.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest, RoundOutcome } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { defaultSessionTimeoutMs } from '../src/kafka/sessionTimeout.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { endpointsFromEnvironment, environmentFor, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { dropPrefix } from './dropPrefix.ts';
import { fiftyAgentIds } from './fiftyAgents.ts';
import { describeMachine, machineShares, machineTimes } from './machine.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    'session-timeout-ms': { type: 'string', default: 'default,6000,3000' },
    rounds: { type: 'string', default: '24' },
    runs: { type: 'string', default: '2' },
  },
});
// 'default': no --session-timeout-ms, what `coordinator run` and `agent run` choose (src/kafka/sessionTimeout.ts).
type Timeout = number | 'default';
const timeouts = args['session-timeout-ms'].split(',').map((t): Timeout => (t === 'default' ? 'default' : Number(t)));
const sessionArgs = (t: Timeout) => (t === 'default' ? [] : ['--session-timeout-ms', String(t)]);
const settleMs = (t: Timeout) => (t === 'default' ? defaultSessionTimeoutMs : t) + 2_000;
const rounds = Number(args.rounds);
const runs = Number(args.runs);

silenceKafkajsTimerWarnings();
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-failover', { redis: false });
const say = (line: string) => process.stderr.write(`${line}\n`);

function start(cliArgs: string[]): Promise<ChildProcess> {
  const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'src/cli/main.ts'), ...cliArgs], {
    env: { ...process.env, ...environmentFor(c.endpoints), MABEAM_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`mabeam ${cliArgs.slice(0, 2).join(' ')} exited (${code}) before it was ready`)));
  });
}

const stop = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once('exit', () => resolve());
  child.kill('SIGTERM');
});

/** A reader of the prefix's outcomes: resolves each round's waiter with the time its outcome was read. */
async function outcomeReader(conn: Connections, prefix: string) {
  const waiters = new Map<string, (at: number) => void>();
  const consumer = conn.kafka.consumer({ groupId: `${prefix}.read.failover`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic: topicName(prefix, 'outcomes'), fromBeginning: true });
  const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.headers?.['mabeam-event-type']?.toString() !== 'RoundOutcome') return;
      const o = (await conn.codec.decode<RoundOutcome>(message.value)).event;
      waiters.get(o.roundId)?.(performance.now());
    },
  });
  await joined;
  return {
    outcome: (roundId: string) => new Promise<number>((r) => waiters.set(roundId, r)),
    stop: () => consumer.disconnect(),
  };
}

const request = (roundId: string, eligible: string[]): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'bench', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"',
  requiredCapabilities: [], eligibleAgents: eligible, reservePrice: null, deadline: Date.now() + 120_000, parameters: null,
});
const bid = (roundId: string, agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });

/**
 * The prefixes of the scenarios run, dropped at the end, not between
 * scenarios: the shared producer keeps the topics it wrote in its metadata,
 * and once one is deleted, kafkajs's next metadata refresh fails.
 */
const made: string[] = [];

/** Two coordinators; rounds half-answered; one killed; the rest answered at once: kill → last outcome, ms. */
async function coordinatorFailover(sessionTimeoutMs: Timeout): Promise<number> {
  const prefix = `bench-fo-${randomBytes(3).toString('hex')}`;
  await applyTopics(c.admin, c.definitions, { prefix });
  const t = (name: string) => topicName(prefix, name);
  const members = await Promise.all([1, 2].map(() => start(['coordinator', 'run', '--prefix', prefix, ...sessionArgs(sessionTimeoutMs)])));
  // Let the second member's join settle (both hold partitions).
  await new Promise((r) => setTimeout(r, settleMs(sessionTimeoutMs)));
  const reader = await outcomeReader(c, prefix);
  const events = new EventProducer(c.producer, c.codec);
  const ids = Array.from({ length: rounds }, (_, i) => `fo-${i}-${randomBytes(3).toString('hex')}`);
  for (const id of ids) {
    await events.send(t('bid-requests'), id, 'BidRequest', request(id, ['a', 'b']));
    await events.send(t('bids'), id, 'Bid', bid(id, 'a', 10));
  }
  await new Promise((r) => setTimeout(r, 1_000));
  const outcomes = ids.map((id) => reader.outcome(id));
  const killedAt = performance.now();
  members[0]!.kill('SIGKILL');
  await Promise.all(ids.map((id) => events.send(t('bids'), id, 'Bid', bid(id, 'b', 20))));
  const last = Math.max(...(await Promise.all(outcomes)));
  await Promise.all([reader.stop(), ...members.map(stop)]);
  made.push(prefix);
  return last - killedAt;
}

/** Two replicas of one pool; one killed; rounds started at once: kill → last outcome, ms. */
async function replicaFailover(sessionTimeoutMs: Timeout): Promise<number> {
  const prefix = `bench-fo-${randomBytes(3).toString('hex')}`;
  await applyTopics(c.admin, c.definitions, { prefix });
  const t = (name: string) => topicName(prefix, name);
  const coordinator = await start(['coordinator', 'run', '--prefix', prefix]);
  const replicas = await Promise.all(
    [1, 2].map(() => start(['agent', 'run', join(root, 'bench/fiftyAgents.ts'), '--prefix', prefix, ...sessionArgs(sessionTimeoutMs)])),
  );
  await new Promise((r) => setTimeout(r, settleMs(sessionTimeoutMs)));
  const reader = await outcomeReader(c, prefix);
  const events = new EventProducer(c.producer, c.codec);
  const ids = Array.from({ length: rounds }, (_, i) => `fo-${i}-${randomBytes(3).toString('hex')}`);
  const outcomes = ids.map((id) => reader.outcome(id));
  const killedAt = performance.now();
  replicas[0]!.kill('SIGKILL');
  await Promise.all(ids.map((id) => events.send(t('bid-requests'), id, 'BidRequest', request(id, fiftyAgentIds))));
  const last = Math.max(...(await Promise.all(outcomes)));
  await Promise.all([reader.stop(), stop(coordinator), ...replicas.map(stop)]);
  made.push(prefix);
  return last - killedAt;
}

const results: Array<{ sessionTimeoutMs: Timeout; coordinatorMs: number[]; replicaMs: number[] }> = [];
const machineBefore = machineTimes();
for (const sessionTimeoutMs of timeouts) {
  const row = { sessionTimeoutMs, coordinatorMs: [] as number[], replicaMs: [] as number[] };
  for (let i = 0; i < runs; i++) {
    row.coordinatorMs.push(Math.round(await coordinatorFailover(sessionTimeoutMs)));
    row.replicaMs.push(Math.round(await replicaFailover(sessionTimeoutMs)));
  }
  say(`session timeout ${sessionTimeoutMs === 'default' ? 'default' : `${sessionTimeoutMs} ms`}: coordinator killed → last outcome ${row.coordinatorMs.join(', ')} ms; agent replica killed → last outcome ${row.replicaMs.join(', ')} ms`);
  results.push(row);
}
const machine = machineShares(machineBefore, machineTimes());
for (const prefix of made) await dropPrefix(c.admin, prefix);
say(`the machine over the run: ${describeMachine(machine)}`);
await c.close();
process.stdout.write(`${JSON.stringify({ bench: 'failover', rounds, results, machine })}\n`);
process.exit(0);

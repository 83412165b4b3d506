/**
 * The floor a round's transaction stands on: what one kafkajs transaction
 * costs on this broker when it carries almost nothing (local stack from
 * `mabeam dev up`, or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL):
 *
 *   node_modules/.bin/node bench/transactions.ts [--count 1000] [--pause-ms 0] [--keep-topics]
 *
 * One record at a time is read (read_committed) and answered in a
 * transaction of its own: one 100-byte record produced and the consumed
 * offset committed, with the producer and the CONCURRENT_TRANSACTIONS retry
 * the engine uses (src/kafka/client.ts, src/engine/transactions.ts), one
 * after another, or `--pause-ms` apart. Back to back, most transactions
 * begin while the broker still writes the previous one's markers: their
 * first AddPartitionsToTxn meets CONCURRENT_TRANSACTIONS and is retried
 * (the engine's lanes are rarely that close); a pause of 20 ms avoids it.
 * Reported: transactions/s, p50 / p95 / p99 of one
 * transaction (begin → commit), CPU per transaction of this process and of
 * the broker, and the broker's requests per transaction by type
 * (bench/brokerRequests.ts). A round at low load costs about one such
 * transaction (docs/benchmarks.md). The last line is one JSON object.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect } from '../src/cli/connect.ts';
import { retryConcurrentTransactions } from '../src/engine/transactions.ts';
import { createProducer, createTransactionalProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { BrokerRequests, brokerWindow, describePer } from './brokerRequests.ts';
import { dropPrefix } from './dropPrefix.ts';
import { describeMachine, machineShares, machineTimes } from './machine.ts';
import { cpuOf, stackJvms } from './processes.ts';
import { percentile } from './rawTrip.ts';

const { values: args } = parseArgs({ options: { count: { type: 'string', default: '1000' }, 'pause-ms': { type: 'string', default: '0' }, 'keep-topics': { type: 'boolean', default: false } } });
const count = Number(args.count);
const pauseMs = Number(args['pause-ms']);
if (!Number.isInteger(count) || count < 10) throw new Error('--count is a whole number of at least 10');
if (!(pauseMs >= 0)) throw new Error('--pause-ms is a number of milliseconds, 0 or more');
silenceKafkajsTimerWarnings();
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-transactions', { redis: false });
const say = (line: string) => process.stderr.write(`${line}\n`);
const prefix = `bench-txn-${randomBytes(3).toString('hex')}`;
const input = `${prefix}.in`;
const output = `${prefix}.out`;
await c.admin.createTopics({ waitForLeaders: true, topics: [{ topic: input, numPartitions: 1 }, { topic: output, numPartitions: 1 }] });

const loader = createProducer(c.kafka);
await loader.connect();
for (let i = 0; i < count; i += 500) {
  await loader.send({ topic: input, messages: Array.from({ length: Math.min(500, count - i) }, (_, j) => ({ key: `k-${i + j}`, value: Buffer.alloc(100, 'x') })) });
}
await loader.disconnect();

const groupId = `${prefix}.answer`;
const producer = createTransactionalProducer(c.kafka, `${prefix}.p0`);
await producer.connect();
const consumer = c.kafka.consumer({ groupId, maxWaitTimeInMs: 100, readUncommitted: false });
await consumer.connect();
await consumer.subscribe({ topic: input, fromBeginning: true });

const broker = stackJvms(c.endpoints)['broker'];
const brokerRequests = await BrokerRequests.start(broker);
const warmUp = Math.min(100, Math.floor(count / 10));
const latencies: number[] = [];
let handled = 0;
let window: { at: number; cpu: NodeJS.CpuUsage; broker: number; machine: ReturnType<typeof machineTimes>; requests: Awaited<ReturnType<BrokerRequests['read']>> | undefined } | undefined;
let done!: () => void;
const finished = new Promise<void>((resolve) => (done = resolve));
await consumer.run({
  autoCommit: false,
  eachMessage: async ({ topic, partition, message }) => {
    // The first tenth (at most 100) warms the path up and is not counted.
    if (handled === warmUp) {
      window = { at: performance.now(), cpu: process.cpuUsage(), broker: broker === undefined ? 0 : cpuOf(broker), machine: machineTimes(), requests: await brokerRequests?.read() };
    }
    const started = performance.now();
    const txn = await producer.transaction();
    try {
      await txn.send({ topic: output, messages: [{ key: message.key, value: message.value }] });
      await retryConcurrentTransactions(() => txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition, offset: String(Number(message.offset) + 1) }] }] }));
      await txn.commit();
    } catch (error) {
      await txn.abort().catch(() => undefined);
      throw error;
    }
    if (handled >= warmUp) latencies.push(performance.now() - started);
    if (++handled === count) done();
    else if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  },
});
await finished;
const measured = count - warmUp;
const start = window!;
const seconds = (performance.now() - start.at) / 1000;
const cpu = process.cpuUsage(start.cpu);
const brokerCpu = broker === undefined ? undefined : cpuOf(broker) - start.broker;
const machine = machineShares(start.machine, machineTimes());
const after = await brokerRequests?.read();
brokerRequests?.stop();
const requests = start.requests && after ? brokerWindow(start.requests, after) : undefined;
await consumer.disconnect();
await producer.disconnect();

const sorted = [...latencies].sort((a, b) => a - b);
const result = {
  bench: 'transactions',
  pauseMs,
  transactions: measured,
  perSecond: Math.round(measured / seconds),
  p50: Number(percentile(sorted, 50).toFixed(2)),
  p95: Number(percentile(sorted, 95).toFixed(2)),
  p99: Number(percentile(sorted, 99).toFixed(2)),
  clientCpuMsPerTransaction: Number(((cpu.user + cpu.system) / 1000 / measured).toFixed(3)),
  brokerCpuMsPerTransaction: brokerCpu === undefined ? null : Number(((brokerCpu * 1000) / measured).toFixed(3)),
  brokerRequestsPerTransaction: requests ? Number((requests.requests / measured).toFixed(2)) : null,
  brokerRequests: requests ?? null,
  machine,
};
say(`${measured} transactions of one record and its offset, ${pauseMs > 0 ? `${pauseMs} ms apart` : 'one after another'}: ${result.perSecond}/s; p50 ${result.p50} / p95 ${result.p95} / p99 ${result.p99} ms`);
say(`  CPU per transaction: this process ${result.clientCpuMsPerTransaction} ms, the broker ${result.brokerCpuMsPerTransaction ?? '?'} ms`);
if (requests) say(`  broker requests per transaction: ${result.brokerRequestsPerTransaction} (${describePer(requests, measured)})`);
say(`  the machine over the run: ${describeMachine(machine)}`);
if (!args['keep-topics']) await dropPrefix(c.admin, prefix);
await c.close();
process.stdout.write(`${JSON.stringify(result)}\n`);

/**
 * Agent runtime numbers, on the running local stack (`mabeam dev up`) or the
 * services named by KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/agents.ts
 *
 * - start → ready: AgentHost.start() in this process, and `mabeam agent run`
 *   as a new OS process until it reports ready
 * - capability lookup latency from the Redis read model, 1,000 agents registered
 * - memory per logical agent with 100, 1,000 and 10,000 agents in one host
 *   process (one pool, one consumer), and with 100 agents as 100 consumer
 *   groups; then each pool at work: an auction naming a tenth of its agents,
 *   then one naming all of them (a coordinator joins the process for it,
 *   after the memory is taken)
 *
 * Memory is measured in a fresh child process per case (`--memory N pool|groups`),
 * after a forced GC, as the growth over the same process before the agents.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { AgentRegistry } from '../src/agents/registry.ts';
import { connect, type Connections } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import { RoundClient } from '../src/coordinator/roundClient.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { AgentRecord } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { isChildMessage } from '../src/supervisor/messages.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';

silenceKafkajsTimerWarnings();
const self = fileURLToPath(import.meta.url);
const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const mb = (bytes: number): string => (bytes / 1048576).toFixed(2);
const agent = (id: string) => defineAgent({ id, role: 'worker', capabilities: [`skill-${Number(id.split('-').pop()) % 10}`, 'common'], onBidRequest: () => ({ amount: 1 }) });

async function setup(): Promise<{ c: Connections; prefix: string }> {
  const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints('dev'));
  const c = await connect(endpoints, createLogger({ level: 'error' }), 'bench-agents');
  const prefix = process.env['BENCH_PREFIX'] ?? `bench-agents-${randomBytes(3).toString('hex')}`;
  await applyTopics(c.admin, c.definitions, { prefix });
  return { c, prefix };
}

function gcNow(): void {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
}

/** Child mode: start N agents as one pool or as N groups, print the memory growth as JSON. */
async function memoryCase(count: number, mode: 'pool' | 'groups'): Promise<void> {
  const { c, prefix } = await setup();
  gcNow();
  const before = process.memoryUsage();
  const agents = Array.from({ length: count }, (_, i) => agent(`mem-${mode}-${i}`));
  const hosts =
    mode === 'pool'
      ? [new AgentHost({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, agents, pool: `mem-${count}`, heartbeatIntervalMs: 60_000 })]
      : agents.map((a) => new AgentHost({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, agents: [a], heartbeatIntervalMs: 60_000 }));
  const started = performance.now();
  for (let i = 0; i < hosts.length; i += 10) await Promise.all(hosts.slice(i, i + 10).map((h) => h.start()));
  const startMs = performance.now() - started;
  await new Promise((r) => setTimeout(r, 2_000));
  gcNow();
  const after = process.memoryUsage();
  // Then the pool at work (after the memory is taken): sealed-bid auctions naming a tenth of its agents, then all of them.
  const rounds: { bidders: number; ms: number; status: string; winners: number }[] = [];
  if (mode === 'pool' && process.argv.includes('--rounds')) {
    const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions });
    const client = new RoundClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix });
    await Promise.all([coordinator.start(), client.start()]);
    for (const bidders of [agents.filter((_, i) => i % 10 === 3), agents]) {
      const t = performance.now();
      const outcome = await client.auction({ item: 'x', bidders: bidders.map((a) => a.id), deadlineMs: 120_000 });
      rounds.push({ bidders: bidders.length, ms: Math.round(performance.now() - t), status: `${outcome.status}: ${outcome.reason}`, winners: outcome.winners.length });
    }
    await Promise.all([coordinator.stop(), client.stop()]);
  }
  process.stdout.write(
    `${JSON.stringify({ count, mode, startMs: Math.round(startMs), rssPerAgent: (after.rss - before.rss) / count, heapPerAgent: (after.heapUsed - before.heapUsed) / count, rssBase: before.rss, rounds })}\n`,
  );
  await Promise.all(hosts.map((h) => h.stop()));
  await c.close();
  process.exit(0);
}

function runMemoryCase(count: number, mode: 'pool' | 'groups', prefix: string): Promise<{ count: number; mode: string; startMs: number; rssPerAgent: number; heapPerAgent: number; rssBase: number; rounds: { bidders: number; ms: number; status: string }[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', self, '--memory', String(count), mode, '--rounds'], { env: { ...process.env, BENCH_PREFIX: prefix }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`memory case ${count} ${mode} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const { c, prefix } = await setup();
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    process.stderr.write(`${line}\n`);
  };

  // start → ready, in process
  const inProcess: number[] = [];
  for (let i = 0; i < 7; i++) {
    const host = new AgentHost({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, agents: [agent(`ready-${i}`)] });
    const t = performance.now();
    await host.start();
    inProcess.push(performance.now() - t);
    await host.stop();
  }
  inProcess.sort((a, b) => a - b);
  say(`start → ready, AgentHost.start() (7 runs): p50 ${inProcess[3]!.toFixed(0)} ms, min ${inProcess[0]!.toFixed(0)}, max ${inProcess[6]!.toFixed(0)}`);

  // start → ready, as an OS process
  const asProcess: number[] = [];
  const env = { ...process.env, KAFKA_BROKERS: c.endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: c.endpoints.schemaRegistryUrl, REDIS_URL: c.endpoints.redisUrl };
  const fixture = fileURLToPath(new URL('../test/fixtures/agents/counter.ts', import.meta.url));
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const child = spawn(process.execPath, [cli, 'agent', 'run', fixture, '--prefix', prefix], { env: { ...env, FIXTURE_AGENT_ID: `proc-${i}` }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    await new Promise<void>((resolve) => child.on('message', (m) => isChildMessage(m) && resolve()));
    asProcess.push(performance.now() - t);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  asProcess.sort((a, b) => a - b);
  say(`start → ready, \`mabeam agent run\` as a new process (3 runs): p50 ${asProcess[1]!.toFixed(0)} ms, min ${asProcess[0]!.toFixed(0)}, max ${asProcess[2]!.toFixed(0)}`);

  // capability lookups from the read model, 1,000 agents
  const events = new EventProducer(c.producer, c.codec);
  for (let i = 0; i < 1_000; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) => {
        const id = `lookup-${i + j}`;
        const record: AgentRecord = {
          envelope: newEnvelope('AgentRecord', 'bench', { correlationId: id }),
          agentId: id, role: 'worker', capabilities: [`skill-${(i + j) % 10}`, 'common'], resources: {}, consumerGroup: `${prefix}.agents.${id}`, metadata: {},
        };
        return events.send(topicName(prefix, 'agents'), id, 'AgentRecord', record);
      }),
    );
  }
  const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix, definitions: c.definitions, viewName: `bench-${randomBytes(2).toString('hex')}` });
  await registry.start();
  const built = performance.now();
  await registry.caughtUp(120_000);
  say(`registry view of ${(await registry.list()).length} agents built in Redis in ${(performance.now() - built).toFixed(0)} ms`);
  for (let i = 0; i < 200; i++) await registry.byCapability(`skill-${i % 10}`); // warm up
  const lookups: number[] = [];
  let found = 0;
  for (let i = 0; i < 2_000; i++) {
    const t = performance.now();
    found += (await registry.byCapability(`skill-${i % 10}`)).length;
    lookups.push((performance.now() - t) * 1000);
  }
  lookups.sort((a, b) => a - b);
  say(`capability lookup (2,000 lookups, ~${Math.round(found / 2_000)} agents each): p50 ${percentile(lookups, 50).toFixed(0)} µs, p99 ${percentile(lookups, 99).toFixed(0)} µs`);
  await registry.stop();
  await c.close();

  // memory per logical agent
  for (const [count, mode] of [[100, 'pool'], [1_000, 'pool'], [10_000, 'pool'], [100, 'groups']] as const) {
    const r = await runMemoryCase(count, mode, prefix);
    say(
      `${count} agents as ${mode === 'pool' ? 'one pool (one consumer group)' : `${count} consumer groups`}: +${mb(r.rssPerAgent)} MB RSS and +${mb(r.heapPerAgent)} MB heap per agent over a ${mb(r.rssBase)} MB base; all started in ${r.startMs} ms`,
    );
    for (const round of r.rounds) say(`  a sealed-bid auction naming ${round.bidders} of them: request → outcome ${round.ms} ms (${round.status})`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}

const memoryAt = process.argv.indexOf('--memory');
if (memoryAt >= 0) await memoryCase(Number(process.argv[memoryAt + 1]), process.argv[memoryAt + 2] as 'pool' | 'groups');
else await main();

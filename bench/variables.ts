/**
 * Variable change → visible to many watching agents (100 by default), on the running local
 * stack (`mabeam dev up`) or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL
 * / REDIS_URL:
 *
 *   node_modules/.bin/node bench/variables.ts [changes] [--watchers 100] [--hosts 4] [--keep-topics]
 *
 * In one run: the raw kafkajs produce → consume round trip (1 hop), then
 * `changes` sequential changes of one variable, each watched by `watchers`
 * agents spread over `hosts` hosts' copies of the variables (as agents of
 * one pool share their host's copy). Two measures per change:
 * - committed → seen by all: from the owner's commit of the new state
 *   to the last watcher having it (the 1-hop part, read_committed);
 * - set() → seen by all: the whole path, request → owner → watchers.
 * The owner, the writer and the 4 copies run in this process. The raw trip
 * takes as many samples as there are changes (at least 200). The run's
 * topics and groups are dropped at the end unless `--keep-topics` is given.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '../src/cli/connect.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { VariablesClient } from '../src/variables/client.ts';
import { typedVariable } from '../src/variables/model.ts';
import { VariableOwner } from '../src/variables/owner.ts';
import { VariableLog } from '../src/variables/variableLog.ts';
import { dropPrefix } from './dropPrefix.ts';
import { describeMachine, machineShares, machineTimes } from './machine.ts';
import { percentile, rawRoundTrips, summary } from './rawTrip.ts';

silenceKafkajsTimerWarnings();
const option = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const changes = Number(process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 100);
const watchers = option('--watchers', 100);
const hostCount = option('--hosts', 4);
const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-variables');
const prefix = `bench-vars-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  process.stderr.write(`${line}\n`);
};

const machineBefore = machineTimes();
const raw = await rawRoundTrips(c.kafka, topicName(prefix, 'metrics'), `${prefix}.raw`, Math.max(200, changes));
say(summary('raw kafkajs produce → consume (1 hop)', raw));
const rawP99 = percentile([...raw].sort((a, b) => a - b), 99);
say(`  1.5 × the 1-hop p99 (the target for committed → seen by all): ${(1.5 * rawP99).toFixed(1)} ms`);

const owner = new VariableOwner({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions });
const writer = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix });
const hosts = Array.from({ length: hostCount }, () => new VariableLog({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix }));
await Promise.all([owner.start(), writer.start(), ...hosts.map((h) => h.start())]);
await writer.define(typedVariable('bench-knob', { kind: 'integer', min: 0 }, 0));

// When the owner committed each version (its own copy takes the record right after the commit).
const committedAt = new Map<number, number>();
owner.variables.changes.subscribe((r) => committedAt.set(r.version, performance.now()));

// Each watcher subscribes once, as an agent watching a variable does, and notes when it sees each value.
const seenBy = new Map<number, { count: number; last: number; all: () => void }>();
const seenAll = (value: number) => new Promise<number>((resolve) => {
  const entry = { count: 0, last: 0, all: () => resolve(entry.last) };
  seenBy.set(value, entry);
});
const subscriptions = Array.from({ length: watchers }, (_, agent) =>
  hosts[agent % hosts.length]!.watch('bench-knob').subscribe((r) => {
    const entry = seenBy.get(r.value as number);
    if (!entry) return;
    entry.last = performance.now();
    if (++entry.count === watchers) entry.all();
  }),
);

const fromCommit: number[] = [];
const endToEnd: number[] = [];
for (let i = 1; i <= changes + 10; i++) {
  const seen = seenAll(i);
  const t = performance.now();
  const record = await writer.set('bench-knob', i);
  const last = await seen;
  seenBy.delete(i);
  if (i > 10) {
    endToEnd.push(last - t);
    fromCommit.push(last - committedAt.get(record.version)!);
  }
}
for (const s of subscriptions) s.unsubscribe();
say(summary(`variable committed → seen by all ${watchers} agents (${hostCount} hosts)`, fromCommit));
say(summary(`set() → seen by all ${watchers} agents (request → owner → watchers)`, endToEnd));
const p99 = percentile([...fromCommit].sort((a, b) => a - b), 99);
say(`  committed → seen p99 is ${(p99 / rawP99).toFixed(2)} × the raw 1-hop p99`);

const machine = machineShares(machineBefore, machineTimes());
say(`the machine over the run: ${describeMachine(machine)}`);

await Promise.all([owner.stop(), writer.stop(), ...hosts.map((h) => h.stop())]);
if (!process.argv.includes('--keep-topics')) await dropPrefix(c.admin, prefix);
await c.close();
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);

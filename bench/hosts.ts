/**
 * Agents on other hosts (network namespaces), and one cut off (needs root
 * and `ip netns`):
 *
 *   node_modules/.bin/node bench/hosts.ts [--rounds 6]
 *
 * A bridge (10.77.0.1/24) and three namespaces joined to it by veth pairs:
 * `mb-a` (agents a1, a2), `mb-b` (agents b1, b2) and `mb-c` (a coordinator),
 * each its own host as far as the network goes. An ephemeral local stack
 * listens on the bridge's address, the client runs here. Then:
 *
 * 1. auctions and a consensus among all four agents;
 * 2. mb-a's link cut (`ip link set … down`): rounds among the four close at
 *    their deadline with b1's and b2's answers only, and go on;
 * 3. the link restored: a1 and a2 answer again.
 *
 * Everything it made (processes, namespaces, links, the stack) is removed at
 * the end, also on failure. Exits 1 if a phase does not go as said. The last
 * line is one JSON object for machines.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { connect } from '../src/cli/connect.ts';
import { RoundClient } from '../src/coordinator/roundClient.ts';
import type { RoundOutcome } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { registerCatalog } from '../src/schemas/registry.ts';
import { environmentFor } from '../src/stack/endpoints.ts';
import { startStack, stopStack } from '../src/stack/index.ts';
import { applyTopics } from '../src/topics/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '6' } } });
const rounds = Number(args.rounds);
const run = promisify(execFile);
const say = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
silenceKafkajsTimerWarnings();
const logger = createLogger({ level: 'error' });
const prefix = 'hosts';
const bridge = 'mb-br0';
const hostIp = '10.77.0.1';
const hosts = { a: '10.77.0.11', b: '10.77.0.12', c: '10.77.0.13' } as const;
type Host = keyof typeof hosts;

const ip = (...a: string[]) => run('ip', a);

async function makeNetwork(): Promise<void> {
  await ip('link', 'add', bridge, 'type', 'bridge');
  await ip('addr', 'add', `${hostIp}/24`, 'dev', bridge);
  await ip('link', 'set', bridge, 'up');
  for (const [h, addr] of Object.entries(hosts)) {
    const ns = `mb-${h}`;
    await ip('netns', 'add', ns);
    await ip('link', 'add', `${ns}-out`, 'type', 'veth', 'peer', 'name', `${ns}-in`);
    await ip('link', 'set', `${ns}-out`, 'master', bridge);
    await ip('link', 'set', `${ns}-out`, 'up');
    await ip('link', 'set', `${ns}-in`, 'netns', ns);
    await ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${addr}/24`, 'dev', `${ns}-in`);
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', `${ns}-in`, 'up');
    await ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
  }
}

async function removeNetwork(): Promise<void> {
  for (const h of Object.keys(hosts)) {
    await ip('link', 'del', `mb-${h}-out`).catch(() => undefined);
    await ip('netns', 'del', `mb-${h}`).catch(() => undefined);
  }
  await ip('link', 'del', bridge).catch(() => undefined);
}

const children: ChildProcess[] = [];

/** `mabeam …` inside a namespace, as a process of that host; resolves once it reports ready. */
function onHost(h: Host, env: Record<string, string>, cliArgs: string[], extra: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', `mb-${h}`, join(root, 'node_modules/.bin/node'), join(root, 'src/cli/main.ts'), ...cliArgs, '--prefix', prefix], {
    env: { ...process.env, ...env, ...extra, MABEAM_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mabeam ${cliArgs.join(' ')} on ${h} was not ready in 90 s`)), 90_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`mabeam ${cliArgs.slice(0, 2).join(' ')} on ${h} exited (${code}) before it was ready`)));
  });
}

const report: Record<string, unknown> = {};
const problems: string[] = [];
await removeNetwork();
let stack: Awaited<ReturnType<typeof startStack>> | undefined;
try {
  await makeNetwork();
  say(`network: bridge ${bridge} ${hostIp}, namespaces mb-a ${hosts.a}, mb-b ${hosts.b}, mb-c ${hosts.c}`);
  stack = await startStack({ name: 'hosts', ephemeral: true, host: hostIp }, logger);
  const env = environmentFor(stack.state.endpoints);
  say(`stack on ${hostIp}: ${env['KAFKA_BROKERS']}`);
  const c = await connect(stack.state.endpoints, logger, 'bench-hosts');
  await applyTopics(c.admin, c.definitions, { prefix });
  await registerCatalog(c.registry, c.registryTarget, c.catalog);
  const agent = (h: Host, id: string) => onHost(h, env, ['agent', 'run', join(root, 'examples/agents/gpu-bidder.ts'), '--session-timeout-ms', '6000'], { AGENT_ID: id });
  await Promise.all([onHost('c', env, ['coordinator', 'run']), agent('a', 'a1'), agent('a', 'a2'), agent('b', 'b1'), agent('b', 'b2')]);
  say('coordinator on mb-c, agents a1 a2 on mb-a, b1 b2 on mb-b: running');
  await sleep(3_000);
  const client = new RoundClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger, prefix, clientId: 'hosts' });
  await client.start();
  const everyone = ['a1', 'a2', 'b1', 'b2'];
  const phase = async (label: string, expected: string[]) => {
    const outcomes: RoundOutcome[] = [];
    const started = performance.now();
    for (let i = 0; i < rounds; i++) outcomes.push(await client.auction({ protocol: 'first-price', item: { gpuHours: 1 }, bidders: everyone, deadlineMs: 4_000 }));
    const vote = await client.consensus({ protocol: 'majority', subject: `${label}?`, voters: everyone, deadlineMs: 4_000 });
    const answered = outcomes.map((o) => ((JSON.parse(o.details ?? '{}') as { bids?: Array<{ agentId: string }> }).bids ?? []).map((b) => b.agentId).sort());
    const ms = Math.round((performance.now() - started) / (rounds + 1));
    const wrong = answered.filter((a) => a.join(',') !== expected.join(','));
    const totals = (JSON.parse(vote.details ?? '{}') as { totals?: Record<string, number> }).totals;
    say(`${label}: ${rounds} auctions ${outcomes.map((o) => o.status).join(' ')}; bids from ${[...new Set(answered.map((a) => a.join(',')))].join(' | ')}; vote ${vote.status} ${JSON.stringify(totals)}; ${ms} ms per round`);
    if (wrong.length > 0 || outcomes.some((o) => o.status !== 'decided')) problems.push(`${label}: rounds answered by ${JSON.stringify(answered)}, expected ${expected.join(',')}`);
    report[label] = { statuses: outcomes.map((o) => o.status), answered, vote: { status: vote.status, totals }, msPerRound: ms };
  };
  await phase('all hosts', everyone);
  await ip('link', 'set', 'mb-a-out', 'down');
  say('mb-a cut off (its link down)');
  await phase('mb-a cut off', ['b1', 'b2']);
  await ip('link', 'set', 'mb-a-out', 'up');
  say('mb-a back');
  // Its agents' consumers reconnect and resume from what they committed.
  const back = performance.now();
  for (;;) {
    const o = await client.auction({ protocol: 'first-price', item: { gpuHours: 1 }, bidders: everyone, deadlineMs: 4_000 });
    const bids = ((JSON.parse(o.details ?? '{}') as { bids?: unknown[] }).bids ?? []).length;
    if (bids === 4) break;
    if (performance.now() - back > 90_000) {
      problems.push('mb-a back: a1 and a2 did not answer again within 90 s');
      break;
    }
  }
  report['rejoinedInMs'] = Math.round(performance.now() - back);
  say(`a1 and a2 answer again ${report['rejoinedInMs']} ms after the link came back`);
  await phase('mb-a back', everyone);
  await client.stop();
  await c.close();
} catch (error) {
  problems.push(error instanceof Error ? error.message : String(error));
} finally {
  for (const child of children) child.kill('SIGTERM');
  await sleep(2_000);
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (stack) await stopStack(stack.state, { timeoutMs: 10_000 });
  await removeNetwork();
}
report['problems'] = problems;
say(problems.length === 0 ? 'every phase as expected' : `problems: ${problems.join('; ')}`);
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(problems.length === 0 ? 0 : 1);

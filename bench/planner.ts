/**
 * What the planner costs per step, and how many plans it completes per
 * second, on the running local stack (`mabeam dev up`) or the services in
 * KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/planner.ts [--steps 100] [--agents 10] [--plans 1000] [--json]
 *
 * Under a fresh topic prefix (bench-plan-<timestamp>, topics applied, schemas
 * registered) it runs, in this process, a planner (the agent registry as its
 * directory, as `mabeam planner run` does), a coordinator for the step
 * auctions and `--agents` agents (one AgentHost) whose steps take no time.
 * Then, one after another:
 *
 * - chain: a plan of `--steps` steps, each after the one before;
 * - fan-out: one root, `--steps − 2` steps after it, one join after them all;
 * both with every agent able to take every step (so each step is auctioned
 * among all of them: delegation, lowest cost wins), and both again with each
 * step's capability offered by one agent only (assigned directly, no
 * auction) — the auction's share of the overhead;
 * - throughput: `--plans` plans of two steps each, submitted at once.
 *
 * A consumer of `plans` (committed data only) notes when each plan event
 * becomes readable; the agents' reports on `plan-inputs` carry their own send
 * times. Per step, in ms (p50 / p95 / max, against a p95 target of 25 ms,
 * said, not enforced):
 *
 * - ready → started: a step's StepReady readable → its StepStarted readable
 *   (the auction or direct assignment, the agent picking the assignment up
 *   and its report decided);
 * - ready → assigned: the assignment alone;
 * - completed → dependants ready: the agent's StepCompleted sent → the
 *   StepReady of a step waiting for it readable.
 *
 * Plans per second: from the first submission to the last PlanCompleted
 * readable. The raw kafkajs one-hop time on the same broker is printed as a
 * yardstick, and the load average (numbers are only as good as the machine
 * is quiet). Progress goes to stderr; a table (or with --json one JSON
 * document) to stdout.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { RegistryAgents } from '../src/agents/capableAgents.ts';
import { defineAgent } from '../src/agents/defineAgent.ts';
import { AgentHost } from '../src/agents/host.ts';
import { AgentRegistry } from '../src/agents/registry.ts';
import { connect } from '../src/cli/connect.ts';
import { Coordinator } from '../src/coordinator/coordinator.ts';
import type { Envelope } from '../src/events/types.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { PlanClient } from '../src/planner/client.ts';
import { Planner } from '../src/planner/planner.ts';
import { createRegistryClient, registerCatalog } from '../src/schemas/registry.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { percentile, rawRoundTrips } from './rawTrip.ts';

silenceKafkajsTimerWarnings();

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const stepCount = Number(option('steps') ?? 100);
const agentCount = Number(option('agents') ?? 10);
const planCount = Number(option('plans') ?? 1000);
const json = process.argv.includes('--json');
const targetMs = 25;
for (const n of [stepCount, agentCount, planCount]) if (!Number.isSafeInteger(n) || n < 3) throw new Error(`not a whole number >= 3: ${n}`);

const say = (line: string) => process.stderr.write(`${line}\n`);

// ---- stack and members ------------------------------------------------------

const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints('dev'));
const quiet = createLogger({ level: 'error' });
const c = await connect(endpoints, quiet, 'bench-planner');
const prefix = option('prefix') ?? `bench-plan-${Date.now()}`;
await applyTopics(c.admin, c.definitions, { prefix });
await registerCatalog(createRegistryClient(endpoints.schemaRegistryUrl), endpoints.schemaRegistryUrl, c.catalog);
say(`prefix ${prefix}: topics applied, schemas registered`);
const hops = await rawRoundTrips(c.kafka, topicName(prefix, 'metrics'), `${prefix}.bench-raw`, 100);

const conn = { kafka: c.kafka, codec: c.codec, logger: quiet, prefix, definitions: c.definitions };
const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: quiet, prefix, definitions: c.definitions, viewName: `bench-planner:${randomBytes(3).toString('hex')}`, disposable: true });
await registry.start();
const coordinator = new Coordinator(conn);
const planner = new Planner({ ...conn, agents: new RegistryAgents(registry), instanceId: 'bench-planner' });
// Every agent offers `work` (auctioned steps) and a capability of its own (steps assigned directly).
const agents = Array.from({ length: agentCount }, (_, i) =>
  defineAgent({ id: `w${i}`, role: 'worker', capabilities: ['work', `only-w${i}`], onStep: (step) => ({ step: step.stepId }) }),
);
const host = new AgentHost({ ...conn, pool: 'bench-workers', agents });
await Promise.all([coordinator.start(), planner.start(), host.start()]);
await waitUntil(async () => (await new RegistryAgents(registry).agents('work')).length === agentCount, 'every agent running in the registry');
say(`planner, coordinator and ${agentCount} agents running`);

// ---- what becomes readable when ---------------------------------------------

interface Seen {
  type: string;
  stepId: string | undefined;
  agentId: string | undefined;
  at: number;
  envelope: Envelope;
}
const seen = new Map<string, Seen[]>();
const reports = new Map<string, number>();
const reader = c.kafka.consumer({ groupId: `${prefix}.bench-reader`, maxWaitTimeInMs: 20 });
await reader.connect();
await reader.subscribe({ topics: [topicName(prefix, 'plans'), topicName(prefix, 'plan-inputs')], fromBeginning: true });
await reader.run({
  partitionsConsumedConcurrently: 12,
  eachMessage: async ({ topic, message }) => {
    const at = Date.now();
    const d = await c.codec.decode<{ envelope: Envelope; planId: string; stepId?: string; agentId?: string }>(message.value);
    if (topic.endsWith('.plan-inputs')) {
      if (d.type === 'StepCompleted') reports.set(`${d.event.planId}/${d.event.stepId}`, d.event.envelope.eventTime);
      return;
    }
    let list = seen.get(d.event.planId);
    if (!list) seen.set(d.event.planId, (list = []));
    list.push({ type: d.type, stepId: d.event.stepId, agentId: d.event.agentId, at, envelope: d.event.envelope });
  },
});

const client = new PlanClient({ kafka: c.kafka, producer: c.producer, codec: c.codec, logger: quiet, prefix, requesterId: 'bench' });

async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const finished = (planId: string) => (seen.get(planId) ?? []).some((e) => e.type === 'PlanCompleted' || e.type === 'PlanFailed');

// ---- one plan, measured ---------------------------------------------------

interface StepSpec {
  id: string;
  capability: string;
  after?: string[];
}

interface Measured {
  name: string;
  steps: number;
  wallMs: number;
  readyToStarted: number[];
  readyToAssigned: number[];
  completedToReady: number[];
  /** Steps per agent that ran them. */
  spread: Record<string, number>;
}

async function measure(name: string, steps: StepSpec[]): Promise<Measured> {
  const planId = `${prefix}-${name}`;
  const started = Date.now();
  await client.submit({ plan: { steps, assignment: { protocol: 'delegation', biddingMs: 2_000 } } }, { planId });
  await waitUntil(() => finished(planId), `plan ${name}`);
  const wallMs = Date.now() - started;
  const events = seen.get(planId)!;
  const outcome = events.find((e) => e.type === 'PlanCompleted' || e.type === 'PlanFailed')!;
  if (outcome.type !== 'PlanCompleted') throw new Error(`plan ${name} failed`);
  const first = (type: string, stepId: string) => events.find((e) => e.type === type && e.stepId === stepId)?.at;
  const readyToStarted: number[] = [];
  const readyToAssigned: number[] = [];
  const completedToReady: number[] = [];
  for (const s of steps) {
    const ready = first('StepReady', s.id)!;
    readyToStarted.push(first('StepStarted', s.id)! - ready);
    readyToAssigned.push(first('StepAssigned', s.id)! - ready);
    // The last of its upstream steps to complete made it ready.
    const upstream = s.after ?? [];
    if (upstream.length > 0) completedToReady.push(ready - Math.max(...upstream.map((u) => reports.get(`${planId}/${u}`)!)));
  }
  const spread: Record<string, number> = {};
  for (const e of events) if (e.type === 'StepAssigned' && e.agentId) spread[e.agentId] = (spread[e.agentId] ?? 0) + 1;
  return { name, steps: steps.length, wallMs, readyToStarted, readyToAssigned, completedToReady, spread };
}

const chain = (capability: (i: number) => string): StepSpec[] => Array.from({ length: stepCount }, (_, i) => ({ id: `s${i}`, capability: capability(i), ...(i > 0 ? { after: [`s${i - 1}`] } : {}) }));
const fanOut = (capability: (i: number) => string): StepSpec[] => {
  const middle = Array.from({ length: stepCount - 2 }, (_, i) => ({ id: `m${i}`, capability: capability(i + 1), after: ['root'] }));
  return [{ id: 'root', capability: capability(0) }, ...middle, { id: 'join', capability: capability(stepCount - 1), after: middle.map((m) => m.id) }];
};
const auctioned = () => 'work';
const direct = (i: number) => `only-w${i % agentCount}`;

const runs: Measured[] = [];
for (const [name, steps] of [
  ['chain-auctioned', chain(auctioned)],
  ['fan-out-auctioned', fanOut(auctioned)],
  ['chain-direct', chain(direct)],
  ['fan-out-direct', fanOut(direct)],
] as const) {
  say(`running ${name} (${steps.length} steps)…`);
  runs.push(await measure(name, [...steps]));
}

// ---- throughput -------------------------------------------------------------

say(`submitting ${planCount} plans of two steps…`);
const small = (i: number) => ({ plan: { steps: [{ id: 'a', capability: direct(i) }, { id: 'b', capability: direct(i + 1), after: ['a'] }] } });
const t0 = Date.now();
const ids = Array.from({ length: planCount }, (_, i) => `${prefix}-small-${i}`);
await Promise.all(ids.map((planId, i) => client.submit(small(i), { planId })));
const submittedMs = Date.now() - t0;
let lastSaid = 0;
await waitUntil(() => {
  const done = ids.filter(finished).length;
  if (Date.now() - lastSaid > 2_000) {
    lastSaid = Date.now();
    say(`  ${done}/${planCount} plans finished`);
  }
  return done === planCount;
}, `${planCount} plans`);
const throughputMs = Math.max(...ids.map((id) => seen.get(id)!.find((e) => e.type === 'PlanCompleted' || e.type === 'PlanFailed')!.at)) - t0;
const failedSmall = ids.filter((id) => seen.get(id)!.some((e) => e.type === 'PlanFailed')).length;

// ---- report -----------------------------------------------------------------

const stats = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted.at(-1)! };
};
const report = {
  prefix,
  agents: agentCount,
  loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  rawHopMs: stats(hops),
  targetP95Ms: targetMs,
  plans: runs.map((r) => ({ name: r.name, steps: r.steps, wallMs: r.wallMs, readyToStarted: stats(r.readyToStarted), readyToAssigned: stats(r.readyToAssigned), completedToDependantsReady: stats(r.completedToReady), stepsPerAgent: r.spread })),
  throughput: { plans: planCount, stepsEach: 2, submittedMs, wallMs: throughputMs, plansPerSecond: Number(((planCount * 1000) / throughputMs).toFixed(1)), failed: failedSmall },
};

function spreadText(spread: Record<string, number>): string {
  const counts = Array.from({ length: agentCount }, (_, i) => spread[`w${i}`] ?? 0);
  return `${Math.min(...counts)}–${Math.max(...counts)}`;
}

if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else {
  const f = (s: { p50: number; p95: number; max: number }) => `${Math.round(s.p50)} / ${Math.round(s.p95)} / ${Math.round(s.max)}`;
  const rows = [
    ['plan', 'steps', 'wall ms', 'ready→started p50/p95/max', 'ready→assigned', 'completed→dependants ready', 'steps per agent (min–max)'],
    ...report.plans.map((p) => [p.name, String(p.steps), String(p.wallMs), f(p.readyToStarted), f(p.readyToAssigned), f(p.completedToDependantsReady), spreadText(p.stepsPerAgent)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(`target p95 ≤ ${targetMs} ms per step (said, not enforced); raw kafkajs one hop p50/p95 ${f(report.rawHopMs)} ms; load average ${report.loadAverage.join(' ')}\n`);
  process.stdout.write(`throughput: ${planCount} plans of 2 steps (assigned directly) in ${throughputMs} ms = ${report.throughput.plansPerSecond} plans/s (submitted in ${submittedMs} ms; ${failedSmall} failed)\n`);
}

await reader.disconnect();
await Promise.all([host.stop(), planner.stop(), coordinator.stop()]);
await registry.stop();
await c.close();

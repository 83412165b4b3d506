/**
 * The fault run: many sealed-bid auctions while a coordinator, an agent
 * replica and the broker die hard, then a count of what the log says.
 *
 *   node_modules/.bin/node bench/fault-run.ts [rounds] [--rate N] [--deadline-ms N] [--json]
 *
 * Everything runs on a local stack of its own (ephemeral, a unique name),
 * with real OS processes: two `mabeam coordinator run` and two
 * `mabeam agent run bench/faultAgents.ts` (two replicas of one pool of five
 * bidders). This process only produces the BidRequests (first-price, five
 * named bidders, a deadline of a few seconds, so a lost answer still ends
 * the round) at a steady rate, and meanwhile:
 *
 * - SIGKILLs a coordinator and starts a replacement,
 * - SIGKILLs an agent process and starts a replacement,
 * - kill -9s the Kafka broker and starts it again on the same port.
 *
 * A child that exits by itself (a kafkajs client that stopped for good exits
 * the process non-zero) is started again, as a supervisor would, and
 * counted. At the end `<P>.outcomes` and `<P>.directives` are read to their
 * end (read_committed) and the run reports rounds with exactly one
 * RoundOutcome, none (lost) and more than one (duplicates), duplicate award
 * Directives, duplicate event ids, and the outcomes' status mix. It exits 1
 * on any lost round, duplicate or wrong winner, and cleans up every process
 * and the stack, also on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { connect, type Connections } from '../src/cli/connect.ts';
import type { DecodedEvent } from '../src/codec/codec.ts';
import { describeError } from '../src/errors.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest, Directive, RoundClosed, RoundOutcome, Rejection } from '../src/events/types.ts';
import { createProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { readToEnd } from '../src/kafka/readToEnd.ts';
import { createLogger } from '../src/log/logger.ts';
import { EventProducer } from '../src/producer/eventProducer.ts';
import { loadCatalog } from '../src/schemas/catalog.ts';
import { createRegistryClient, registerCatalog } from '../src/schemas/registry.ts';
import { startStack, stopStack, type StackState } from '../src/stack/index.ts';
import { isAlive } from '../src/stack/processes.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { faultAgentIds, faultBid } from './faultAgents.ts';

silenceKafkajsTimerWarnings();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeBin = join(root, 'node_modules/.bin/node');
const cli = join(root, 'src/cli/main.ts');
const agentModule = join(root, 'bench/faultAgents.ts');

// ---- arguments -------------------------------------------------------------

interface Args {
  rounds: number;
  rate: number;
  deadlineMs: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 1000, rate: 20, deadlineMs: 5_000, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) usage(`${a} needs a positive number`);
      return v;
    };
    if (a === '--json') args.json = true;
    else if (a === '--rate') args.rate = value();
    else if (a === '--deadline-ms') args.deadlineMs = Math.round(value());
    else if (/^\d+$/.test(a) && Number(a) > 0) args.rounds = Number(a);
    else usage(`unknown argument ${a}`);
  }
  return args;
}

function usage(problem: string): never {
  process.stderr.write(`fault-run: ${problem}\nusage: node_modules/.bin/node bench/fault-run.ts [rounds=1000] [--rate auctions/s=20] [--deadline-ms 5000] [--json]\n`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const started = performance.now();
const since = () => Number(((performance.now() - started) / 1000).toFixed(1));
const say = (line: string) => process.stderr.write(`[${since().toFixed(1).padStart(6)} s] ${line}\n`);

// ---- child processes, restarted as a supervisor would ------------------------

interface ExitRecord {
  member: string;
  pid: number;
  code: number | null;
  signal: string | null;
  /** Killed by this run on purpose (SIGKILL), or ended by itself. */
  deliberate: boolean;
  atS: number;
  /** Its last lines at warning level or above, and its plain output. */
  lastWords: string[];
  log: string;
}

interface Member {
  name: string;
  args: string[];
  generation: number;
  child?: ChildProcess;
  ready?: Promise<void>;
  deliberate: boolean;
  restarts: number;
}

/** A structured log line below warning level (pino: 30 info, 20 debug). */
const isBelowWarning = (line: string) => {
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return level !== undefined && Number(level) < 40;
};

class Fleet {
  readonly exits: ExitRecord[] = [];
  readonly problems: string[] = [];
  private readonly members = new Map<string, Member>();
  private readonly logs: WriteStream[] = [];
  private stopping = false;
  private readonly env: Record<string, string>;
  private readonly logDir: string;
  private readonly maxRestarts: number;

  constructor(logDir: string, endpoints: StackState['endpoints'], maxRestarts = 10) {
    this.logDir = logDir;
    this.maxRestarts = maxRestarts;
    this.env = { KAFKA_BROKERS: endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl, REDIS_URL: endpoints.redisUrl };
  }

  /** Starts a member; resolves once it said it is ready. */
  add(name: string, cliArgs: string[]): Promise<void> {
    const member: Member = { name, args: cliArgs, generation: 0, deliberate: false, restarts: 0 };
    this.members.set(name, member);
    return this.spawn(member);
  }

  ready(name: string): Promise<void> {
    return this.members.get(name)?.ready ?? Promise.reject(new Error(`no member ${name}`));
  }

  pid(name: string): number | undefined {
    return this.members.get(name)?.child?.pid;
  }

  /** SIGKILL, as a crash would; the member is started again at once. */
  kill(name: string): number {
    const member = this.members.get(name);
    const pid = member?.child?.pid;
    if (!member || pid === undefined) throw new Error(`${name} is not running`);
    member.deliberate = true;
    process.kill(pid, 'SIGKILL');
    return pid;
  }

  private spawn(member: Member): Promise<void> {
    member.generation += 1;
    const label = `${member.name}.${member.generation}`;
    const logPath = join(this.logDir, `${label}.log`);
    const log = createWriteStream(logPath);
    this.logs.push(log);
    const child = spawn(nodeBin, [cli, ...member.args], { env: { ...process.env, MABEAM_LOG_LEVEL: 'info', ...this.env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    member.child = child;
    member.deliberate = false;
    const lastWords: string[] = [];
    createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
      log.write(`${line}\n`);
      if (isBelowWarning(line)) return;
      lastWords.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
      if (lastWords.length > 8) lastWords.shift();
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${label} (pid ${child.pid}) was not ready after 60 s; log ${logPath}`));
        child.kill('SIGKILL');
      }, 60_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`${label} exited before it was ready; log ${logPath}`));
      });
    });
    ready.catch(() => undefined);
    member.ready = ready;
    child.once('close', (code, signal) => {
      log.end();
      if (this.stopping || member.child !== child) return;
      const record: ExitRecord = { member: member.name, pid: child.pid!, code, signal, deliberate: member.deliberate, atS: since(), lastWords, log: logPath };
      this.exits.push(record);
      say(`${label} (pid ${child.pid}) ${record.deliberate ? 'killed' : 'exited by itself'}: code ${code}, signal ${signal}${record.deliberate ? '' : `; last words: ${lastWords.slice(-2).join(' | ')}`}`);
      if (member.restarts >= this.maxRestarts) {
        this.problems.push(`${member.name} exited ${member.restarts + 1} times; not restarted again`);
        return;
      }
      member.restarts += 1;
      // A crash we caused is replaced at once; one that happened by itself after a short backoff.
      const backoff = record.deliberate ? 0 : Math.min(500 * 2 ** (member.restarts - 1), 8_000);
      setTimeout(() => {
        if (this.stopping) return;
        const t = performance.now();
        this.spawn(member).then(
          () => say(`${member.name}.${member.generation} (pid ${member.child?.pid}) ready in ${Math.round(performance.now() - t)} ms`),
          (error: unknown) => say(`restart of ${member.name} failed: ${describeError(error)}`),
        );
      }, backoff);
    });
    return ready;
  }

  /** SIGTERM to every child, SIGKILL after 10 s. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.members.values()].map(async (m) => {
        const child = m.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(timer);
      }),
    );
    for (const log of this.logs) log.end();
  }
}

// ---- the run -----------------------------------------------------------------

const stackName = `fault-${randomBytes(4).toString('hex')}`;
const prefix = `fault-${randomBytes(3).toString('hex')}`;
const topic = (name: string) => topicName(prefix, name);
const logger = createLogger({ level: 'error', name: 'fault-run' });
let stack: StackState | undefined;
let c: Connections | undefined;
let fleet: Fleet | undefined;
let cleaning: Promise<void> | undefined;

async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    await fleet?.stopAll().catch((e: unknown) => say(`stopping the processes: ${describeError(e)}`));
    await c?.close().catch(() => undefined);
    if (stack) await stopStack(stack, { timeoutMs: 15_000 }).catch((e: unknown) => say(`stopping the stack: ${describeError(e)}`));
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: cleaning up`);
    void cleanUp().finally(() => process.exit(130));
  });
}

interface FaultRecord {
  what: string;
  atS: number;
  afterRequests: number;
  detail: string;
  recoveredInMs?: number;
}

interface Sent {
  roundId: string;
  requestId: string;
  attempts: number;
  sent: boolean;
  /** From the first attempt to the broker's ack (long while the broker is away: kafkajs retries inside). */
  sendMs: number;
  deadline: number;
}

async function main(): Promise<number> {
  const logDir = await mkdtemp(join(tmpdir(), 'mabeam-fault-run-'));
  say(`starting stack ${stackName} (logs of the processes in ${logDir})`);
  const up = await startStack({ name: stackName, ephemeral: true }, logger);
  stack = up.state;
  say(`stack up in ${up.report.timings['total']} ms: ${JSON.stringify(stack.endpoints)}`);
  c = await connect(stack.endpoints, logger, 'fault-run');
  const catalog = await loadCatalog();
  await registerCatalog(createRegistryClient(stack.endpoints.schemaRegistryUrl), stack.endpoints.schemaRegistryUrl, catalog);
  await applyTopics(c.admin, c.definitions, { prefix });
  say(`topics under ${prefix} applied, schemas registered`);

  fleet = new Fleet(logDir, stack.endpoints);
  const coordinatorArgs = ['coordinator', 'run', '--prefix', prefix, '--session-timeout-ms', '3000'];
  const agentArgs = ['agent', 'run', agentModule, '--prefix', prefix, '--session-timeout-ms', '3000'];
  await Promise.all([
    fleet.add('coordinator-1', coordinatorArgs),
    fleet.add('coordinator-2', coordinatorArgs),
    fleet.add('agents-1', agentArgs),
    fleet.add('agents-2', agentArgs),
  ]);
  say('2 coordinators and 2 agent replicas (5 bidders each) ready');

  // ---- drive the auctions, with the faults on the side ----
  const producer = createProducer(c.kafka);
  await producer.connect();
  const events = new EventProducer(producer, c.codec);
  const sent: Sent[] = [];
  const faults: FaultRecord[] = [];
  let retriedSends = 0;
  const intervalMs = 1000 / args.rate;

  const faultPlan: Array<{ at: number; run: () => Promise<void> }> = [
    {
      at: Math.floor(args.rounds * 0.2),
      run: async () => {
        const pid = fleet!.kill('coordinator-1');
        const f: FaultRecord = { what: 'SIGKILL coordinator', atS: since(), afterRequests: sent.length, detail: `coordinator-1 pid ${pid}` };
        faults.push(f);
        say(`fault: SIGKILL coordinator-1 (pid ${pid}) after ${sent.length} requests`);
        const t = performance.now();
        await waitForRestart('coordinator-1', pid);
        f.recoveredInMs = Math.round(performance.now() - t);
      },
    },
    {
      at: Math.floor(args.rounds * 0.45),
      run: async () => {
        const pid = fleet!.kill('agents-1');
        const f: FaultRecord = { what: 'SIGKILL agent process', atS: since(), afterRequests: sent.length, detail: `agents-1 pid ${pid}` };
        faults.push(f);
        say(`fault: SIGKILL agents-1 (pid ${pid}) after ${sent.length} requests`);
        const t = performance.now();
        await waitForRestart('agents-1', pid);
        f.recoveredInMs = Math.round(performance.now() - t);
      },
    },
    {
      at: Math.floor(args.rounds * 0.7),
      run: async () => {
        const kafka = stack!.services.find((s) => s.name === 'kafka');
        if (kafka?.pid === undefined) throw new Error('the stack record names no Kafka pid');
        const pid = kafka.pid;
        const address = kafka.address;
        process.kill(pid, 'SIGKILL');
        const f: FaultRecord = { what: 'kill -9 broker, restart on the same port', atS: since(), afterRequests: sent.length, detail: `kafka pid ${pid} at ${address}` };
        faults.push(f);
        say(`fault: kill -9 Kafka (pid ${pid}, ${address}) after ${sent.length} requests`);
        const t = performance.now();
        while (isAlive(pid)) await sleep(50);
        await sleep(2_000); // down for a while: clients see it gone, not a blip
        f.detail += ', left down 2 s';
        const again = await startStack({ name: stackName, ephemeral: true, stateDir: stack!.dir }, logger);
        stack = again.state;
        const now = stack.services.find((s) => s.name === 'kafka');
        f.recoveredInMs = Math.round(performance.now() - t);
        f.detail += `; restarted as pid ${now?.pid} at ${now?.address} (started: ${again.report.started.join(', ')}${again.report.portChanges.length ? `; ports moved: ${JSON.stringify(again.report.portChanges)}` : ''})`;
        say(`broker back as pid ${now?.pid} at ${now?.address} after ${f.recoveredInMs} ms`);
        if (now?.address !== address) fleet!.problems.push(`the broker came back at ${now?.address}, not ${address}`);
      },
    },
  ];

  async function waitForRestart(name: string, oldPid: number): Promise<void> {
    while (fleet!.pid(name) === oldPid) await sleep(20);
    await fleet!.ready(name);
  }

  // Faults run one at a time, each once the one before has recovered, never blocking the requests.
  const faultsDone = (async () => {
    for (const fault of faultPlan) {
      while (sent.length < fault.at) await sleep(10);
      try {
        await fault.run();
      } catch (error) {
        fleet!.problems.push(`a fault failed: ${describeError(error)}`);
        say(`fault failed: ${describeError(error)}`);
      }
    }
  })();

  let next = performance.now();
  for (let i = 0; i < args.rounds; i++) {
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    next = Math.max(next + intervalMs, performance.now() - intervalMs);
    const roundId = `fault-${i}-${randomBytes(4).toString('hex')}`;
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'fault-run', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: JSON.stringify({ lot: i }), requiredCapabilities: ['fault'], eligibleAgents: faultAgentIds, reservePrice: null,
      deadline: Date.now() + args.deadlineMs, parameters: null,
    };
    const record: Sent = { roundId, requestId: request.envelope.eventId, attempts: 0, sent: false, sendMs: 0, deadline: request.deadline };
    const sendStart = performance.now();
    sent.push(record);
    // A client keeps trying while the broker is away; the same event (same id) each time, so a
    // request that did land the first time is recognisably the same request.
    const giveUp = Date.now() + 120_000;
    while (!record.sent) {
      record.attempts += 1;
      try {
        await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
        record.sent = true;
        record.sendMs = Math.round(performance.now() - sendStart);
      } catch (error) {
        retriedSends += 1;
        if (Date.now() > giveUp) {
          say(`request ${i} not sent after ${record.attempts} attempts: ${describeError(error)}`);
          break;
        }
        await sleep(250);
      }
    }
    if ((i + 1) % 100 === 0) say(`${i + 1} requests sent`);
  }
  const lastDeadline = Date.now() + args.deadlineMs;
  say(`all ${sent.length} requests sent (${retriedSends} sends retried)`);
  await faultsDone;

  // ---- wait until every round has an outcome, or give up ----
  const requested = new Set(sent.filter((s) => s.sent).map((s) => s.roundId));
  const waitUntil = lastDeadline + 120_000;
  for (;;) {
    const have = await outcomeRounds(c, topic('outcomes'));
    const missing = [...requested].filter((r) => !have.has(r)).length;
    if (missing === 0) {
      say('every round has an outcome');
      break;
    }
    if (Date.now() > waitUntil) {
      say(`${missing} rounds still without an outcome 120 s after the last deadline; giving up waiting`);
      break;
    }
    say(`${missing} rounds without an outcome yet`);
    await sleep(3_000);
  }
  // A short quiet time: anything decided twice late would show now.
  await sleep(5_000);
  await fleet.stopAll();
  await producer.disconnect().catch(() => undefined);
  say('processes stopped; reading outcomes and directives to their end');

  const report = await analyse(c, sent, faults, fleet, retriedSends);
  report.seconds = since();
  print(report);
  return report.ok ? 0 : 1;
}

/** The round ids that have at least one RoundOutcome in the committed log. */
async function outcomeRounds(c: Connections, outcomesTopic: string): Promise<Set<string>> {
  const rounds = new Set<string>();
  await readToEnd(c.kafka, {
    topics: [outcomesTopic],
    groupPrefix: `${prefix}.fault-poll`,
    timeoutMs: 60_000,
    onRecord: ({ message }) => {
      if (message.headers?.['mabeam-event-type']?.toString() === 'RoundOutcome' && message.key) rounds.add(message.key.toString());
    },
  });
  return rounds;
}

interface Report {
  ok: boolean;
  command: string;
  seconds: number;
  roundsRequested: number;
  requestsNotSent: number;
  requestSendsRetried: number;
  slowestSendMs: number;
  exactlyOneOutcome: number;
  lost: number;
  duplicateOutcomeRounds: number;
  duplicateFinalClosings: number;
  awardDirectives: number;
  duplicateAwardDirectives: number;
  duplicateEventIds: { outcomes: number; directives: number };
  outcomeStatus: Record<string, number>;
  noDecisionReasons: Record<string, number>;
  closingCauses: Record<string, number>;
  /** Which requests (by their place in the run, from 0) ended without a decision: shows which fault they met. */
  notDecidedRequests: string;
  rejections: Record<string, number>;
  /** Refusals by reason: how many of the refused bids were made (event time) before their round's deadline, and which requests' rounds. */
  refusedBids: Record<string, { total: number; madeBeforeDeadline: number; requests: string }>;
  winners: { checked: number; wrong: number; priceMismatch: number };
  records: { outcomes: number; directives: number; undecodable: number };
  faults: FaultRecord[];
  exits: { deliberate: number; byThemselves: number; list: ExitRecord[] };
  problems: string[];
  lostRounds: string[];
  duplicateRounds: string[];
}

async function analyse(c: Connections, sent: Sent[], faults: FaultRecord[], fleet: Fleet, retriedSends: number): Promise<Report> {
  const outcomes = new Map<string, RoundOutcome[]>();
  const finalClosings = new Map<string, RoundClosed[]>();
  const eventIds = { outcomes: new Map<string, number>(), directives: new Map<string, number>() };
  const awards = new Map<string, number>();
  const rejections: Record<string, number> = {};
  const rejected: Rejection[] = [];
  const closingCauses: Record<string, number> = {};
  const records = { outcomes: 0, directives: 0, undecodable: 0 };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

  await readToEnd(c.kafka, {
    topics: [topic('outcomes'), topic('directives')],
    groupPrefix: `${prefix}.fault-read`,
    timeoutMs: 120_000,
    onRecord: async ({ topic: t, message }) => {
      const which = t === topic('outcomes') ? 'outcomes' : 'directives';
      records[which] += 1;
      let decoded: DecodedEvent;
      try {
        decoded = await c.codec.decode(message.value);
      } catch (error) {
        records.undecodable += 1;
        say(`an undecodable record on ${t}: ${describeError(error)}`);
        return;
      }
      bump(eventIds[which], decoded.event.envelope.eventId);
      if (decoded.type === 'RoundOutcome') {
        const o = decoded.event as RoundOutcome;
        outcomes.set(o.roundId, [...(outcomes.get(o.roundId) ?? []), o]);
      } else if (decoded.type === 'RoundClosed') {
        const closed = decoded.event as RoundClosed;
        closingCauses[closed.cause] = (closingCauses[closed.cause] ?? 0) + 1;
        if (closed.final !== false) finalClosings.set(closed.roundId, [...(finalClosings.get(closed.roundId) ?? []), closed]);
      } else if (decoded.type === 'Rejection') {
        const r = decoded.event as Rejection;
        rejections[r.reasonCode] = (rejections[r.reasonCode] ?? 0) + 1;
        rejected.push(r);
      } else if (decoded.type === 'Directive') {
        const d = decoded.event as Directive;
        if (d.action === 'award') bump(awards, `${d.roundId}\u0000${d.agentId}`);
      }
    },
  });

  // When each bid was made (its event time), to tell a refused bid made before its round's deadline from a late one.
  const bidTimes = new Map<string, number>();
  const refusedIds = new Set(rejected.map((r) => r.rejectedEventId));
  await readToEnd(c.kafka, {
    topics: [topic('bids')],
    groupPrefix: `${prefix}.fault-bids`,
    timeoutMs: 120_000,
    onRecord: async ({ message }) => {
      const bid = (await c.codec.decode<Bid>(message.value)).event;
      if (refusedIds.has(bid.envelope.eventId)) bidTimes.set(bid.envelope.eventId, bid.envelope.eventTime);
    },
  });
  const placeOf = new Map(sent.map((s, i) => [s.roundId, i]));
  const refusedBids: Report['refusedBids'] = {};
  const placesByReason = new Map<string, Set<number>>();
  for (const r of rejected) {
    const place = placeOf.get(r.subjectId);
    const made = r.rejectedEventId === null ? undefined : bidTimes.get(r.rejectedEventId);
    const entry = (refusedBids[r.reasonCode] ??= { total: 0, madeBeforeDeadline: 0, requests: '' });
    entry.total += 1;
    if (place !== undefined && made !== undefined && made <= sent[place]!.deadline) entry.madeBeforeDeadline += 1;
    if (place !== undefined) placesByReason.set(r.reasonCode, (placesByReason.get(r.reasonCode) ?? new Set()).add(place));
  }
  for (const [code, entry] of Object.entries(refusedBids)) entry.requests = ranges([...(placesByReason.get(code) ?? [])].sort((a, b) => a - b));

  const requested = sent.filter((s) => s.sent);
  const lostRounds = requested.filter((s) => !outcomes.has(s.roundId)).map((s) => s.roundId);
  const duplicateRounds = requested.filter((s) => (outcomes.get(s.roundId)?.length ?? 0) > 1).map((s) => s.roundId);
  const outcomeStatus: Record<string, number> = {};
  const noDecisionReasons: Record<string, number> = {};
  const winners = { checked: 0, wrong: 0, priceMismatch: 0 };
  const notDecided: number[] = [];
  for (const [place, s] of sent.entries()) {
    if (!s.sent) continue;
    const first = outcomes.get(s.roundId)?.[0];
    if (!first) continue;
    outcomeStatus[first.status] = (outcomeStatus[first.status] ?? 0) + 1;
    if (first.status !== 'decided') {
      notDecided.push(place);
      const reason = first.reason.replace(/[0-9a-f-]{8,}/g, '…');
      noDecisionReasons[reason] = (noDecisionReasons[reason] ?? 0) + 1;
      continue;
    }
    const winner = first.winners[0];
    const index = winner === undefined ? -1 : faultAgentIds.indexOf(winner);
    if (index < 0 || first.price !== faultBid(s.roundId, index)) winners.priceMismatch += 1;
    // Where every bidder was counted, the winner is the one with the highest of five different bids.
    const counted = finalClosings.get(s.roundId)?.[0]?.countedEventIds.length ?? 0;
    if (counted === faultAgentIds.length) {
      winners.checked += 1;
      const best = faultAgentIds.reduce((b, _, i) => (faultBid(s.roundId, i) > faultBid(s.roundId, b) ? i : b), 0);
      if (winner !== faultAgentIds[best]) winners.wrong += 1;
    }
  }
  const duplicates = (m: Map<string, number>) => [...m.values()].filter((n) => n > 1).length;
  const duplicateAwardDirectives = duplicates(awards);
  const duplicateFinalClosings = requested.filter((s) => (finalClosings.get(s.roundId)?.length ?? 0) > 1).length;
  const duplicateEventIds = { outcomes: duplicates(eventIds.outcomes), directives: duplicates(eventIds.directives) };
  const exits = fleet.exits;
  const problems = [...fleet.problems];
  const ok =
    lostRounds.length === 0 && duplicateRounds.length === 0 && duplicateAwardDirectives === 0 && duplicateFinalClosings === 0 &&
    duplicateEventIds.outcomes === 0 && duplicateEventIds.directives === 0 && winners.wrong === 0 && winners.priceMismatch === 0 &&
    records.undecodable === 0 && requested.length === sent.length && faults.length === 3 && problems.length === 0;
  return {
    ok,
    command: `node_modules/.bin/node bench/fault-run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    seconds: 0,
    roundsRequested: requested.length,
    requestsNotSent: sent.length - requested.length,
    requestSendsRetried: retriedSends,
    slowestSendMs: Math.max(0, ...requested.map((s) => s.sendMs)),
    exactlyOneOutcome: requested.filter((s) => outcomes.get(s.roundId)?.length === 1).length,
    lost: lostRounds.length,
    duplicateOutcomeRounds: duplicateRounds.length,
    duplicateFinalClosings,
    awardDirectives: [...awards.values()].reduce((a, b) => a + b, 0),
    duplicateAwardDirectives,
    duplicateEventIds,
    outcomeStatus,
    noDecisionReasons,
    closingCauses,
    notDecidedRequests: ranges(notDecided),
    rejections,
    refusedBids,
    winners,
    records,
    faults,
    exits: { deliberate: exits.filter((e) => e.deliberate).length, byThemselves: exits.filter((e) => !e.deliberate).length, list: exits },
    problems,
    lostRounds: lostRounds.slice(0, 20),
    duplicateRounds: duplicateRounds.slice(0, 20),
  };
}

/** 3, 4, 5, 9 → "3–5, 9". */
function ranges(sorted: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(', ') || 'none';
}

function print(r: Report): void {
  if (args.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const mix = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const lines = [
    `fault run: ${r.roundsRequested} sealed-bid auctions in ${r.seconds} s (${r.command})`,
    `  rounds requested            ${r.roundsRequested}${r.requestsNotSent ? ` (${r.requestsNotSent} requests could not be sent)` : ''}; request sends retried: ${r.requestSendsRetried}, slowest send ${r.slowestSendMs} ms`,
    `  exactly one RoundOutcome    ${r.exactlyOneOutcome}`,
    `  no outcome (lost)           ${r.lost}${r.lostRounds.length ? ` e.g. ${r.lostRounds.slice(0, 3).join(', ')}` : ''}`,
    `  more than one (duplicates)  ${r.duplicateOutcomeRounds}${r.duplicateRounds.length ? ` e.g. ${r.duplicateRounds.slice(0, 3).join(', ')}` : ''}`,
    `  final RoundClosed twice     ${r.duplicateFinalClosings}`,
    `  award directives            ${r.awardDirectives}, duplicated (same round and agent) ${r.duplicateAwardDirectives}`,
    `  repeated event ids          outcomes ${r.duplicateEventIds.outcomes}, directives ${r.duplicateEventIds.directives}`,
    `  outcome status              ${mix(r.outcomeStatus)}`,
    ...(Object.keys(r.noDecisionReasons).length ? [`  not decided, why            ${mix(r.noDecisionReasons)}`, `  not decided, which         requests ${r.notDecidedRequests}`] : []),
    `  closings by cause           ${mix(r.closingCauses)}`,
    `  rejections                  ${mix(r.rejections)}`,
    ...Object.entries(r.refusedBids).map(([code, e]) => `    ${code}: ${e.total}, of which ${e.madeBeforeDeadline} made before the round's deadline; rounds of requests ${e.requests}`),
    `  winners                     ${r.winners.checked} checked against the known highest bid, ${r.winners.wrong} wrong; ${r.winners.priceMismatch} prices not the winner's bid`,
    `  records read                outcomes ${r.records.outcomes}, directives ${r.records.directives}, undecodable ${r.records.undecodable}`,
    '  faults:',
    ...r.faults.map((f) => `    at ${f.atS} s, after ${f.afterRequests} requests: ${f.what} (${f.detail}); back in ${f.recoveredInMs ?? '?'} ms`),
    `  process exits: ${r.exits.deliberate} killed by the run, ${r.exits.byThemselves} by themselves (restarted as a supervisor would)`,
    ...r.exits.list.filter((e) => !e.deliberate).map((e) => `    ${e.member} pid ${e.pid} at ${e.atS} s: code ${e.code}, signal ${e.signal}; ${e.lastWords.slice(-1)[0] ?? ''} (log ${e.log})`),
    ...r.problems.map((p) => `  problem: ${p}`),
    r.ok ? 'OK: no lost round, no duplicate' : 'FAILED',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

let code = 1;
try {
  code = await main();
} catch (error) {
  say(`the fault run failed: ${describeError(error)}`);
  if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
} finally {
  await cleanUp();
}
process.exit(code);

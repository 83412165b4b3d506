/**
 * Replay and audit on a long log, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL:
 *
 *   node_modules/.bin/node bench/replay.ts [events=1000000] [audits=30] [runs=3]
 *
 * Writes a coordination history of at least `events` records under the prefix
 * bench-history-<events> with bench/history.ts (every protocol family,
 * deadlines, refusals, aborted transactions, garbage, misplaced records) —
 * or reuses it when the prefix already holds it — then measures, `runs`
 * times each, alternating:
 * - the raw kafkajs ceiling: the round topics read to their end (readToEnd,
 *   no decode) on the same broker;
 * - replay end to end (read + decode + decide again + compare), as
 *   `mabeam replay` runs it (split among worker threads, the report listing
 *   the rounds that fail), and in one thread listing every round (what
 *   `replayHistory()` returns by default);
 * then the audit of `audits` rounds picked at random (auditRound: the round's
 * partition of the round topics, then the winners' partitions of
 * directives), p50 / p95 / max. A one-line JSON summary ends the output.
 */
import { connect } from '../src/cli/connect.ts';
import { auditRound } from '../src/audit/index.ts';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { readToEnd } from '../src/kafka/readToEnd.ts';
import { createLogger } from '../src/log/logger.ts';
import { sharedProtocols } from '../src/protocols/builtins.ts';
import { defaultReplayWorkers, parallelReplay } from '../src/replay/parallelReplay.ts';
import { readHistory, roundTopics } from '../src/replay/readHistory.ts';
import { replayHistory, roundsJudged, settleAsRead, type ReplayReport } from '../src/replay/replayRounds.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { topicName } from '../src/topics/index.ts';
import { writeHistory } from './history.ts';

silenceKafkajsTimerWarnings();
const events = Number(process.argv[2] ?? 1_000_000);
const audits = Number(process.argv[3] ?? 30);
const runs = Number(process.argv[4] ?? 3);
const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints('dev'));
const c = await connect(endpoints, createLogger({ level: 'error' }), 'bench-replay');
const prefix = `bench-history-${events}`;
const say = (line: string) => process.stderr.write(`${line}\n`);

const history = await writeHistory({ events, prefix, connections: c, say });
say(`history: ${prefix}, ${history.reused ? 'reused' : `written in ${history.seconds.toFixed(1)} s`}`);

const topics = roundTopics.map((t) => topicName(prefix, t));
const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

async function raw(): Promise<{ records: number; ms: number }> {
  const started = Date.now();
  let records = 0;
  await readToEnd(c.kafka, { topics, timeoutMs: 600_000, onRecord: () => void records++ });
  return { records, ms: Date.now() - started };
}

async function replay(workers: number): Promise<{ report: ReplayReport; ms: number; rssMb: number }> {
  const started = Date.now();
  const report =
    workers > 1
      ? await parallelReplay({ kafka: c.kafka, endpoints, prefix, workers, timeoutMs: 600_000, keep: 'faults' })
      : replayHistory(await readHistory({ kafka: c.kafka, codec: c.codec, prefix, timeoutMs: 600_000, onComplete: settleAsRead(sharedProtocols()) }), sharedProtocols());
  return { report, ms: Date.now() - started, rssMb: Math.round(process.memoryUsage().rss / 1024 / 1024) };
}

const workers = defaultReplayWorkers();
const results: Array<{ what: string; records: number; ms: number; perSecond: number; rssMb?: number }> = [];
let last: ReplayReport | undefined;
/** The one-thread run's report: every round, to pick audits from. */
let every: ReplayReport | undefined;
for (let run = 1; run <= runs; run++) {
  const r = await raw();
  results.push({ what: 'raw kafkajs read', records: r.records, ms: r.ms, perSecond: rate(r.records, r.ms) });
  say(`run ${run}: raw kafkajs read of ${r.records} records in ${r.ms} ms (${rate(r.records, r.ms)}/s)`);
  for (const w of [workers, 1]) {
    const { report, ms, rssMb } = await replay(w);
    last = report;
    if (w === 1) every = report;
    const what = w > 1 ? `replay, ${w} worker threads` : 'replay, one thread';
    results.push({ what, records: report.events, ms, perSecond: rate(report.events, ms), rssMb });
    const rounds = roundsJudged(report);
    say(`run ${run}: ${what}: ${report.events} events, ${rounds} rounds (${report.identical} identical, ${report.refused} refused, ${report.undecodable.length} undecodable records) in ${ms} ms (${rate(report.events, ms)}/s), RSS ${rssMb} MB`);
  }
}

// Audit: rounds picked at random among those the replay judged.
const judged = every!.rounds.filter((r) => r.outcomes > 0);
const picked = Array.from({ length: Math.min(audits, judged.length) }, () => judged[Math.floor(Math.random() * judged.length)]!);
const latencies: number[] = [];
let read = 0;
let whole = 0;
for (const round of picked) {
  const started = Date.now();
  const audit = await auditRound({ kafka: c.kafka, codec: c.codec, prefix, definitions: c.definitions }, round.roundId);
  latencies.push(Date.now() - started);
  read += audit.read.records;
  if (audit.read.whole) whole++;
  if (audit.outcomes.length === 0) throw new Error(`the audit of ${round.roundId} found no outcome`);
}
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
say(`audit of ${picked.length} rounds: p50 ${pct(50)} ms, p95 ${pct(95)} ms, max ${latencies[latencies.length - 1]} ms (${Math.round(read / picked.length)} records decoded per audit; ${whole} read their partition whole)`);

const best = (what: string) => Math.max(...results.filter((r) => r.what === what).map((r) => r.perSecond));
const all = (what: string) => results.filter((r) => r.what === what).map((r) => r.perSecond);
process.stdout.write(
  `${JSON.stringify({
    prefix,
    events: last!.events,
    rounds: every!.rounds.length,
    identical: last!.identical,
    // Nothing different, contradictory, duplicate or incomplete; the undecodable records are the garbage the history holds on purpose.
    notIdentical: last!.different + last!.contradictory + last!.duplicate + last!.incomplete,
    undecodable: last!.undecodable.length,
    workers,
    rawPerSecond: all('raw kafkajs read'),
    replayPerSecond: all(`replay, ${workers} worker threads`),
    replayOneThreadPerSecond: all('replay, one thread'),
    bestReplayPerSecond: best(`replay, ${workers} worker threads`),
    auditP50Ms: pct(50),
    auditP95Ms: pct(95),
    auditMaxMs: latencies[latencies.length - 1],
    auditsReadWhole: whole,
  })}\n`,
);
await c.close();
process.exit(0);

/**
 * A hostile flood over the round topics, with a coordinator restart in the
 * middle, on the running local stack (`mabeam dev up`) or the services in
 * KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/hostile-flood.ts [records=100000] [--json] [--seed N] [--honest-clocks] [--grace-ms N]
 *
 * Records (bench/floodRecords.ts): garbage, wrong magic byte, unknown schema
 * id, too short, no value, truncated and bit-flipped Avro, NaN / infinite /
 * negative / huge amounts, answers to rounds that never open, keys that are
 * not the round id, empty ids, forged event ids, stages and clocks, event
 * types a topic does not carry (`--honest-clocks` leaves out the answers
 * dated a year ahead), around honest rounds (auctions and
 * consensus) whose answers the refusals need; a tenth of the keyed records
 * on a partition their key does not hash to. Coordinators run as OS
 * processes (`mabeam coordinator run`); the first is killed with SIGKILL
 * when 40 % of the records are accounted for, and another takes over.
 *
 * Each record is classified by what the system wrote about it: a dead letter
 * (found by the record's `flood-seq` header, which dead letters keep; its
 * source position must be where the record was written, or — for a moved
 * record — the copy's, whose `mabeam-forwarded-from` names the original), a
 * Rejection (rejectedEventId and agent), an answer counted (a RoundClosed's
 * countedEventIds; the round-state changelog says which agent's when two
 * records share an event id), or a request that opened its round (named in
 * round-state, or the only request of a round that closed). Exactly one of
 * those per record passes; none or more than one fails, and the run exits 1.
 * A valid record on `outcomes` (a coordinator's own kind of output, forged)
 * gets no verdict by design: it is reported apart. RSS of the coordinator
 * and of this process is printed every 10,000 records accounted for.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { KafkaMessage, Producer } from 'kafkajs';
import { connect } from '../src/cli/connect.ts';
import { forwardedFromHeader } from '../src/engine/routing.ts';
import type { DeadLetter, Rejection, RoundClosed, RoundState } from '../src/events/types.ts';
import { createProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { fetchEnds, ReadPositions, readToEnd } from '../src/kafka/readToEnd.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { encoderFor, FloodGenerator, type FloodRecord, seqHeader } from './floodRecords.ts';

silenceKafkajsTimerWarnings();
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const honestClocks = args.includes('--honest-clocks');
const seedAt = args.indexOf('--seed');
const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : Number.parseInt(randomBytes(4).toString('hex'), 16);
const graceAt = args.indexOf('--grace-ms');
/** The coordinators' closed-round grace period (`--closed-round-grace-ms`), when given. */
const graceMs = graceAt >= 0 ? Number(args[graceAt + 1]) : undefined;
const total = Number(args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--seed' && args[i - 1] !== '--grace-ms') ?? 100_000);
const say = (line: string) => process.stderr.write(`${line}\n`);

const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-hostile-flood');
const prefix = `bench-flood-${randomBytes(3).toString('hex')}`;
await applyTopics(c.admin, c.definitions, { prefix });
const topic = (name: string) => topicName(prefix, name);
const allowed = new Map(c.definitions.map((d) => [topic(d.name), d.eventTypes]));
say(`hostile flood: ${total} records, prefix ${prefix}, seed ${seed}`);

// ---- what was written, and what the system wrote about it ----

interface Written extends FloodRecord {
  offset: number;
  /** `${eventId}|${agentId}` of a record that decodes (agent '' for requests): how a Rejection or the changelog names it. */
  eventKey?: string;
  decodedType?: string;
  roundId?: string;
  /** A body the decoder could not finish within 5 s and 256 MB (a flipped array length). */
  bomb?: boolean;
}
const written: Written[] = [];
const byEventKey = new Map<string, number[]>();
/** Answers by event id alone (a RoundClosed names only ids). */
const answersById = new Map<string, number[]>();
/** Counted ids of a RoundClosed that two records of its round share: settled at the end, with round-state's word. */
let ambiguousCounts: number[][] = [];
let closedRounds = new Set<string>();
let redelivered = 0;
let deadLetters = new Map<number, string[]>();
let rejections = new Map<number, string[]>();
let counted = new Set<number>();
let opened = new Set<number>();
/** The latest round-state of each round: who waits for it (to say why a record has no verdict yet). */
let pendingNow = new Map<string, Set<string>>();
let foreign = { deadLetters: 0, rejections: 0, examples: [] as string[] };
let misplacedDeadLetters: string[] = [];
let accountedRecords = 0;

const accounted = (seq: number) => (deadLetters.get(seq)?.length ?? 0) + (rejections.get(seq)?.length ?? 0) + (counted.has(seq) ? 1 : 0) + (opened.has(seq) ? 1 : 0);
const touch = (seq: number, before: number) => {
  if (before === 0 && accounted(seq) > 0) accountedRecords++;
};

function seqsOf(key: string): number[] {
  return byEventKey.get(key) ?? [];
}

function onDeadLetter(dl: DeadLetter): void {
  const seqText = dl.headers.find((h) => h.key === seqHeader)?.value?.toString();
  const seq = seqText === undefined ? undefined : Number(seqText);
  const w = seq === undefined ? undefined : written[seq];
  if (!w || seq === undefined) {
    foreign.deadLetters++;
    if (foreign.examples.length < 5) foreign.examples.push(`dead letter ${dl.reasonCode} of ${dl.sourceTopic}/${dl.sourcePartition}/${dl.sourceOffset}`);
    return;
  }
  // Where the system says the record was: its own position, or (moved) the original's in the copy's header.
  const from = dl.headers.find((h) => h.key === forwardedFromHeader)?.value?.toString() ?? `${dl.sourceTopic}/${dl.sourcePartition}/${dl.sourceOffset}`;
  const expected = `${topic(w.topic)}/${w.partition}/${w.offset}`;
  if (from !== expected && misplacedDeadLetters.length < 1_000) misplacedDeadLetters.push(`#${seq} (${w.kind}): dead letter says ${from}, written at ${expected}`);
  const before = accounted(seq);
  deadLetters.set(seq, [...(deadLetters.get(seq) ?? []), dl.reasonCode]);
  touch(seq, before);
}

function onRejection(r: Rejection): void {
  const seqs = seqsOf(`${r.rejectedEventId ?? ''}|${r.agentId ?? ''}`);
  if (seqs.length === 0) {
    foreign.rejections++;
    if (foreign.examples.length < 5) foreign.examples.push(`rejection ${r.reasonCode} of ${r.rejectedEventId} (agent ${r.agentId}) in round ${r.subjectId}`);
    return;
  }
  // Two records with one event id and agent (a forged id): the first without a verdict takes it.
  const seq = seqs.find((s) => accounted(s) === 0) ?? seqs[0]!;
  const before = accounted(seq);
  rejections.set(seq, [...(rejections.get(seq) ?? []), r.reasonCode]);
  touch(seq, before);
}

function onRoundClosed(roundId: string, countedEventIds: string[]): void {
  closedRounds.add(roundId);
  for (const id of countedEventIds) {
    const seqs = (answersById.get(id) ?? []).filter((q) => written[q]?.roundId === roundId);
    if (seqs.length === 0 || seqs.some((q) => counted.has(q))) continue;
    if (seqs.length > 1) {
      ambiguousCounts.push(seqs);
      continue;
    }
    const before = accounted(seqs[0]!);
    counted.add(seqs[0]!);
    touch(seqs[0]!, before);
  }
}

function onRoundState(roundId: string, s: RoundState | null): void {
  if (s === null) {
    pendingNow.delete(roundId);
    return;
  }
  const mark = (set: Set<number>, key: string) => {
    const seqs = seqsOf(key);
    if (seqs.length === 0 || seqs.some((q) => set.has(q))) return;
    const seq = seqs.find((q) => accounted(q) === 0) ?? seqs[0]!;
    const before = accounted(seq);
    set.add(seq);
    touch(seq, before);
  };
  for (const a of JSON.parse(s.counted) as Array<{ eventId: string; agentId: string }>) mark(counted, `${a.eventId}|${a.agentId}`);
  if (s.request) {
    const open = JSON.parse(s.request) as { eventId: string; stage: number; earlierStages: string[] };
    mark(opened, `${open.stage === 0 ? open.eventId : (open.earlierStages[0] ?? open.eventId)}|`);
  }
  const pending = JSON.parse(s.pending) as Array<{ eventId: string; agentId: string }>;
  if (pending.length > 0) pendingNow.set(roundId, new Set(pending.map((a) => `${a.eventId}|${a.agentId}`)));
  else pendingNow.delete(roundId);
}

// ---- the reader of what the system wrote ----

const positions = new ReadPositions();
let lastProgress = Date.now();
const reader = c.kafka.consumer({ groupId: `${prefix}.flood-reader`, maxWaitTimeInMs: 200, maxBytes: 20 * 1024 * 1024 });
await reader.connect();
await reader.subscribe({ topics: [topic('dead-letters'), topic('outcomes'), topic('round-state')], fromBeginning: true });
positions.followAllBatches(reader);
const readFailures: string[] = [];
await reader.run({
  eachBatch: async ({ batch }) => {
    for (const message of batch.messages) {
      try {
        await readOne(batch.topic, batch.partition, message);
      } catch (error) {
        if (readFailures.length < 20) readFailures.push(`${batch.topic}/${batch.partition}/${message.offset}: ${String(error)}`);
      }
    }
    lastProgress = Date.now();
    sampleIfDue();
  },
});

let readUpTo = new Map<string, number>();
async function readOne(t: string, partition: number, message: KafkaMessage): Promise<void> {
  // A batch delivered again to this reader (its own rebalance or restart) is not a second record.
  const at = `${t}/${partition}`;
  if (Number(message.offset) <= (readUpTo.get(at) ?? -1)) {
    redelivered++;
    return;
  }
  readUpTo.set(at, Number(message.offset));
  if (t === topic('round-state')) {
    const roundId = message.key?.toString() ?? '';
    onRoundState(roundId, message.value === null ? null : (await c.codec.decode<RoundState>(message.value)).event);
    return;
  }
  if (message.value === null) return;
  if (t === topic('dead-letters')) return onDeadLetter((await c.codec.decode<DeadLetter>(message.value)).event);
  // outcomes: the coordinators' own Rejections are what counts here (flood records on outcomes carry the header).
  if (message.headers?.[seqHeader] !== undefined) return;
  const type = message.headers?.['mabeam-event-type']?.toString();
  if (type === 'Rejection') onRejection((await c.codec.decode<Rejection>(message.value)).event);
  if (type === 'RoundClosed') {
    const closed = (await c.codec.decode<RoundClosed>(message.value)).event;
    onRoundClosed(closed.roundId, closed.countedEventIds);
  }
}

// ---- coordinators as OS processes ----

interface Coordinator {
  n: number;
  child: ChildProcess;
  killedByUs: boolean;
  exit?: { code: number | null; signal: string | null };
  stderr: string[];
}
const coordinators: Coordinator[] = [];
// Coordinators never outlive the bench, however it ends.
const killChildren = () => {
  for (const co of coordinators) if (!co.exit) co.child.kill('SIGKILL');
};
process.on('exit', killChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildren();
    process.exit(130);
  });
}

async function startCoordinator(): Promise<Coordinator> {
  const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'src/cli/main.ts'), 'coordinator', 'run', '--prefix', prefix, '--session-timeout-ms', '3000', ...(graceMs ? ['--closed-round-grace-ms', String(graceMs)] : [])], {
    env: { ...process.env, KAFKA_BROKERS: c.endpoints.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: c.endpoints.schemaRegistryUrl, REDIS_URL: c.endpoints.redisUrl },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const co: Coordinator = { n: coordinators.length + 1, child, killedByUs: false, stderr: [] };
  coordinators.push(co);
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) if (co.stderr.length < 2_000) co.stderr.push(line);
  });
  child.on('exit', (code, signal) => {
    co.exit = { code, signal };
    if (co.killedByUs || stopping || !ready) return;
    say(`coordinator ${co.n} (pid ${child.pid}) exited on its own: code ${code}, signal ${signal}; last stderr: ${co.stderr.slice(-3).join(' | ').slice(0, 400)}`);
    // As a supervisor would: start another, a few times at most.
    if (coordinators.filter((x) => !x.killedByUs && x.exit).length <= 5) void startCoordinator().catch((error: unknown) => say(String(error)));
  });
  let ready = false;
  const t = Date.now();
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`coordinator ${co.n} exited (${code}) before it was ready: ${co.stderr.slice(-5).join(' | ')}`)));
  });
  ready = true;
  say(`coordinator ${co.n} ready (pid ${child.pid}) in ${Date.now() - t} ms`);
  return co;
}

function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const started = Date.now();
const rssSeries: Array<{ accounted: number; seconds: number; coordinator: number; coordinatorRssMb: number | undefined; benchRssMb: number }> = [];
// Every 10,000 records (a small run: every tenth of it).
const sampleEvery = Math.min(10_000, Math.max(500, Math.round(total / 10)));
let nextSample = sampleEvery;
function sampleIfDue(): void {
  while (accountedRecords >= nextSample) {
    const co = coordinators.at(-1);
    const s = {
      accounted: nextSample,
      seconds: (Date.now() - started) / 1000,
      coordinator: co?.n ?? 0,
      coordinatorRssMb: co && !co.exit ? rssOf(co.child.pid) : undefined,
      benchRssMb: process.memoryUsage().rss / 1048576,
    };
    rssSeries.push(s);
    say(`${String(s.accounted).padStart(7)} accounted  ${s.seconds.toFixed(1).padStart(6)} s  coordinator ${s.coordinator} RSS ${s.coordinatorRssMb?.toFixed(1) ?? '-'} MB  bench RSS ${s.benchRssMb.toFixed(1)} MB`);
    nextSample += sampleEvery;
  }
}

let stopping = false;
await startCoordinator();
if (process.env['FLOOD_DEBUG']) setInterval(() => { const m = process.memoryUsage(); say(`debug: heap ${(m.heapUsed / 1048576).toFixed(0)} MB, external ${(m.external / 1048576).toFixed(0)} MB, arrayBuffers ${(m.arrayBuffers / 1048576).toFixed(0)} MB, generated ${generated}, produced ${produced}, accounted ${accountedRecords}`); }, 5_000).unref();

// ---- the flood ----

const generator = new FloodGenerator(await encoderFor(c.codec), { seed, ...(honestClocks ? { forgedClockRate: 0 } : {}) });
let produced = 0;
const sendChunk = async (producer: Producer, chunk: FloodRecord[]): Promise<void> => {
  const byTopic = new Map<string, FloodRecord[]>();
  for (const r of chunk) {
    const list = byTopic.get(r.topic);
    if (list) list.push(r);
    else byTopic.set(r.topic, [r]);
  }
  const results = await producer.sendBatch({
    acks: -1,
    topicMessages: [...byTopic].map(([t, records]) => ({
      topic: topic(t),
      messages: records.map((r) => ({ key: r.key, value: r.value, partition: r.partition, headers: { [seqHeader]: String(r.seq) } })),
    })),
  });
  // Within one produce request a partition's records take consecutive offsets, in the order given.
  const base = new Map(results.map((m) => [`${m.topicName}/${m.partition}`, Number(m.baseOffset ?? m.offset)]));
  const next = new Map<string, number>();
  for (const [t, records] of byTopic) {
    for (const r of records) {
      const k = `${topic(t)}/${r.partition}`;
      const i = next.get(k) ?? 0;
      next.set(k, i + 1);
      const w = written[r.seq];
      if (w) w.offset = (base.get(k) ?? Number.NaN) + i;
    }
  }
  produced += chunk.length;
};

type Decoded = { type: string; event: { envelope: { eventId: string }; agentId?: string; roundId?: string } };

/**
 * Bit-flipped bodies are decoded in a worker thread with a memory limit and a
 * time limit: a flipped array length can make the Avro decoder spin and
 * allocate until the process dies, and this process must outlive that.
 */
class GuardedDecoder {
  private worker: Worker | undefined;
  private next = 0;
  private readonly waiting = new Map<number, (d: Decoded | undefined | 'bomb') => void>();
  bombs = 0;

  private start(): Worker {
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       (async () => {
         const { EventCodec } = await import(workerData.root + '/src/codec/codec.ts');
         const { loadCatalog } = await import(workerData.root + '/src/schemas/catalog.ts');
         const { createRegistryClient } = await import(workerData.root + '/src/schemas/registry.ts');
         const codec = new EventCodec({ registry: createRegistryClient(workerData.url), registryUrl: workerData.url, catalog: await loadCatalog() });
         parentPort.on('message', async ({ id, value, allowedTypes }) => {
           try {
             const d = await codec.decode(Buffer.from(value), { allowedTypes });
             parentPort.postMessage({ id, decoded: { type: d.type, event: { envelope: { eventId: d.event.envelope.eventId }, agentId: d.event.agentId, roundId: d.event.roundId } } });
           } catch {
             parentPort.postMessage({ id });
           }
         });
       })();`,
      { eval: true, workerData: { root, url: c.endpoints.schemaRegistryUrl }, resourceLimits: { maxOldGenerationSizeMb: 256 } },
    );
    worker.on('message', ({ id, decoded }: { id: number; decoded?: Decoded }) => {
      this.waiting.get(id)?.(decoded);
      this.waiting.delete(id);
    });
    const gone = () => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, done] of this.waiting) {
        this.waiting.delete(id);
        done('bomb');
      }
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    return worker;
  }

  async decode(value: Buffer, allowedTypes: readonly string[]): Promise<Decoded | undefined | 'bomb'> {
    const worker = (this.worker ??= this.start());
    const id = this.next++;
    const result = await new Promise<Decoded | undefined | 'bomb'>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve('bomb');
        void worker.terminate();
      }, 5_000);
      this.waiting.set(id, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
      worker.postMessage({ id, value, allowedTypes });
    });
    if (result === 'bomb') this.bombs++;
    return result;
  }

  close(): Promise<unknown> {
    return this.worker?.terminate() ?? Promise.resolve();
  }
}
const guarded = new GuardedDecoder();

/** What the coordinator's codec will make of a record (the event ids a Rejection names). */
async function expect(r: FloodRecord): Promise<Written> {
  const w: Written = { ...r, offset: Number.NaN };
  const allowedTypes = allowed.get(topic(r.topic)) ?? [];
  try {
    const d = r.kind === 'bit-flipped Avro' ? await guarded.decode(r.value!, allowedTypes) : await c.codec.decode<Decoded['event']>(r.value, { allowedTypes });
    if (d === 'bomb') w.bomb = true;
    if (d === undefined || d === 'bomb') return w;
    w.decodedType = d.type;
    w.roundId = d.event.roundId;
    if (d.type === 'Bid' || d.type === 'Vote') answersById.set(d.event.envelope.eventId, [...(answersById.get(d.event.envelope.eventId) ?? []), r.seq]);
    w.eventKey = `${d.event.envelope.eventId}|${d.type === 'Bid' || d.type === 'Vote' ? (d.event.agentId ?? '') : ''}`;
    byEventKey.set(w.eventKey, [...seqsOf(w.eventKey), r.seq]);
  } catch {
    // Not decodable here: only a dead letter can account for it.
  }
  return w;
}

const producers = await Promise.all(
  Array.from({ length: 3 }, async () => {
    const p = createProducer(c.kafka, { idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    return p;
  }),
);
const chunkSize = 500;
let generated = 0;
const floodStarted = Date.now();
let killed = false;
const killer = (async () => {
  // SIGKILL in the middle: with 40 % accounted for, the rest in flight or not yet written
  // (or, when the coordinator makes no progress for 30 s with half of the flood written, then).
  while (accountedRecords < total * 0.4 && !(produced >= total / 2 && Date.now() - lastProgress > 30_000) && !stopping) await sleep(100);
  if (stopping) return;
  const first = coordinators.at(-1)!;
  say(`SIGKILL coordinator ${first.n} (pid ${first.child.pid}) with ${accountedRecords} accounted for, ${produced} written`);
  first.killedByUs = true;
  first.child.kill('SIGKILL');
  killed = true;
  await startCoordinator();
})();
await Promise.all(
  producers.map(async (producer) => {
    while (generated < total) {
      const chunk = generator.next(Math.min(chunkSize, total - generated));
      generated += chunk.length;
      for (const r of chunk) written[r.seq] = await expect(r);
      await sendChunk(producer, chunk);
    }
  }),
);
const floodSeconds = (Date.now() - floodStarted) / 1000;
say(`written: ${produced} records in ${floodSeconds.toFixed(1)} s (${Math.round(produced / floodSeconds)}/s)`);

// ---- settle: every record has its verdict, or nothing moves any more ----

const floodEnd = Date.now();
const outputTopics = [topic('dead-letters'), topic('outcomes'), topic('round-state')];
let caughtUp = false;
for (;;) {
  await sleep(1_000);
  const unaccounted = written.filter((w) => accounted(w.seq) === 0 && !(w.topic === 'outcomes' && w.decodedType)).length;
  const ends = await fetchEnds(c.kafka, outputTopics);
  caughtUp = positions.behind(ends).length === 0;
  const quiet = Date.now() - lastProgress;
  // Late repeats (a verdict written again after the restart) would come soon after: wait a little beyond the last.
  if (unaccounted === 0 && caughtUp && killed && quiet > 5_000) break;
  // Answers to rounds that never open are refused 10 s (log time) after them.
  if (Date.now() - floodEnd > 20_000 && quiet > 20_000 && caughtUp && killed) break;
  // A coordinator stuck on a record (or a transaction left open) writes nothing: give up after 2 minutes of silence.
  if (killed && quiet > 120_000) break;
  if (Date.now() - floodEnd > 1_800_000) break;
}
const handledSeconds = (Date.now() - floodStarted) / 1000;
await killer;

// ---- verdicts, from the committed log read afresh ----

// The live reader drives progress and the restart; the verdicts come from one read of the settled log.
// (A live kafkajs read_committed consumer was seen to deliver records of the transaction the killed
// coordinator left open, which the next owner aborted; read afterwards, they are filtered.)
const liveAccounted = accountedRecords;
const liveTwice = written.filter((w) => accounted(w.seq) > 1).length;
deadLetters = new Map();
rejections = new Map();
counted = new Set();
opened = new Set();
ambiguousCounts = [];
closedRounds = new Set();
pendingNow = new Map();
foreign = { deadLetters: 0, rejections: 0, examples: [] };
misplacedDeadLetters = [];
readUpTo = new Map();
accountedRecords = 0;
await readToEnd(c.kafka, {
  topics: outputTopics,
  timeoutMs: 300_000,
  groupPrefix: `${prefix}.flood-verdicts`,
  onRecord: async ({ topic: t, partition, message }) => {
    try {
      await readOne(t, partition, message);
    } catch (error) {
      if (readFailures.length < 20) readFailures.push(`${t}/${partition}/${message.offset}: ${String(error)}`);
    }
  },
});

// A counted id two records share: the one round-state named, else the one written first.
for (const seqs of ambiguousCounts) {
  if (seqs.some((q) => counted.has(q))) continue;
  const seq = seqs.find((q) => accounted(q) === 0) ?? seqs[0]!;
  counted.add(seq);
}
// A round that closed opened once: by its only request without another verdict (when round-state never named it,
// e.g. a round that opened, completed and left memory in one transaction).
const requestsByRound = new Map<string, Written[]>();
for (const w of written) {
  if ((w.decodedType === 'BidRequest' || w.decodedType === 'Proposal') && w.roundId !== undefined) requestsByRound.set(w.roundId, [...(requestsByRound.get(w.roundId) ?? []), w]);
}
for (const [roundId, requests] of requestsByRound) {
  if (!closedRounds.has(roundId) || requests.some((w) => opened.has(w.seq))) continue;
  const candidates = requests.filter((w) => accounted(w.seq) === 0);
  if (candidates.length === 1) opened.add(candidates[0]!.seq);
}

stopping = true;
const last = coordinators.at(-1)!;
const lastRss = rssOf(last.child.pid);
last.child.kill('SIGTERM');
await new Promise<void>((resolve) => (last.exit ? resolve() : last.child.once('exit', () => resolve())));
await reader.disconnect();
await guarded.close();
await Promise.all(producers.map((p) => p.disconnect()));

const verdict = (w: Written): string => {
  const parts = [
    ...(deadLetters.get(w.seq) ?? []).map((r) => `dead letter ${r}`),
    ...(rejections.get(w.seq) ?? []).map((r) => `rejection ${r}`),
    ...(counted.has(w.seq) ? ['counted'] : []),
    ...(opened.has(w.seq) ? ['opened its round'] : []),
  ];
  if (parts.length === 0 && w.topic === 'outcomes' && w.decodedType) return `no verdict: a valid ${w.decodedType} on outcomes`;
  if (parts.length === 0 && w.eventKey && [...pendingNow.values()].some((s) => s.has(w.eventKey!))) return 'none: still waiting for its round';
  return parts.length === 0 ? 'none' : parts.join(' + ');
};
const byKind = new Map<string, Map<string, number>>();
const unaccounted: string[] = [];
const twice: string[] = [];
const silentByDesign: string[] = [];
const deadLetterReasons = new Map<string, number>();
const rejectionReasons = new Map<string, number>();
const bump = (m: Map<string, number>, k: string, n = 1) => m.set(k, (m.get(k) ?? 0) + n);
for (const w of written) {
  const v = verdict(w);
  const kind = byKind.get(w.kind) ?? new Map<string, number>();
  byKind.set(w.kind, bump(kind, v));
  for (const r of deadLetters.get(w.seq) ?? []) bump(deadLetterReasons, r);
  for (const r of rejections.get(w.seq) ?? []) bump(rejectionReasons, r);
  const n = accounted(w.seq);
  const line = `#${w.seq} ${w.kind}${w.bomb ? ' (its body made a decoder run out of time or memory)' : ''} on ${w.topic}/${w.partition}/${w.offset}${w.misplaced ? ' (misplaced)' : ''}${w.eventKey ? ` event ${w.eventKey}` : ''}: ${v}`;
  if (n === 0 && v.startsWith('no verdict')) silentByDesign.push(line);
  else if (n === 0) unaccounted.push(line);
  else if (n > 1) twice.push(line);
}
const crashes = coordinators.filter((co) => !co.killedByUs && co !== last && co.exit);
const lastExit = last.exit;
const stoppedForGood = coordinators.flatMap((co) => co.stderr.filter((l) => l.includes('stopped for good')).map((l) => `coordinator ${co.n}: ${l}`));
const errorLines = coordinators.flatMap((co) => co.stderr.filter((l) => l.trim() !== '').map((l) => `coordinator ${co.n}: ${l.slice(0, 300)}`));
const misplacedCount = written.filter((w) => w.misplaced).length;
const pass = unaccounted.length === 0 && twice.length === 0 && misplacedDeadLetters.length === 0 && crashes.length === 0 && stoppedForGood.length === 0 && lastExit?.code === 0 && killed;

const report = {
  records: written.length,
  seed,
  prefix,
  writtenPerSecond: Math.round(produced / floodSeconds),
  writeSeconds: floodSeconds,
  allAccountedSeconds: handledSeconds,
  misplacedRecords: misplacedCount,
  coordinators: coordinators.map((co) => ({ n: co.n, pid: co.child.pid, killedByUs: co.killedByUs, exit: co.exit })),
  restart: killed,
  crashes: crashes.length,
  stoppedForGood,
  lastCoordinatorExitCode: lastExit?.code ?? null,
  producedByKind: Object.fromEntries([...byKind].sort().map(([k, m]) => [k, Object.fromEntries(m)])),
  deadLettersByReason: Object.fromEntries(deadLetterReasons),
  rejectionsByReason: Object.fromEntries(rejectionReasons),
  counted: counted.size,
  opened: opened.size,
  unaccounted: unaccounted.length,
  accountedTwice: twice.length,
  noVerdictByDesign: silentByDesign.length,
  deadLettersAtWrongPosition: misplacedDeadLetters.length,
  honestClocks,
  foreign,
  redeliveredToThisReader: redelivered,
  readFailures,
  decoderBombs: guarded.bombs,
  liveReader: { accounted: liveAccounted, accountedTwice: liveTwice },
  coordinatorCrashes: crashes.map((co) => ({ n: co.n, exit: co.exit, stderr: co.stderr.slice(-3) })),
  coordinatorStderrLines: errorLines.length,
  examples: { unaccounted: unaccounted.slice(0, 10), accountedTwice: twice.slice(0, 10), noVerdictByDesign: silentByDesign.slice(0, 5), deadLettersAtWrongPosition: misplacedDeadLetters.slice(0, 5), coordinatorStderr: errorLines.slice(0, 10) },
  rss: { series: rssSeries, lastCoordinatorAtEndMb: lastRss },
  pass,
};

if (json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} else {
  const out: string[] = [];
  const row = (...cells: Array<string | number>) => out.push(`| ${cells.join(' | ')} |`);
  out.push(`hostile flood of ${written.length} records (seed ${seed}, prefix ${prefix}${honestClocks ? ', honest clocks' : ''}); ${misplacedCount} on a partition their key does not hash to`);
  out.push(`written in ${floodSeconds.toFixed(1)} s (${report.writtenPerSecond}/s); every verdict in by ${handledSeconds.toFixed(1)} s`);
  out.push(`coordinators: ${coordinators.map((co) => `${co.n} (pid ${co.child.pid}) ${co.killedByUs ? 'SIGKILLed by the bench' : `exit ${co.exit?.code ?? '?'}${co.exit?.signal ? ` ${co.exit.signal}` : ''}`}`).join(', ')}`);
  out.push('', '| records by kind | written | what the system wrote |', '|---|---|---|');
  for (const [k, m] of [...byKind].sort()) row(k, [...m.values()].reduce((a, b) => a + b, 0), [...m].sort((a, b) => b[1] - a[1]).map(([v, n]) => `${v} ×${n}`).join(', '));
  out.push('', '| dead letters by reason | count |', '|---|---|');
  for (const [r, n] of [...deadLetterReasons].sort((a, b) => b[1] - a[1])) row(r, n);
  out.push('', '| rejections by reason | count |', '|---|---|');
  for (const [r, n] of [...rejectionReasons].sort((a, b) => b[1] - a[1])) row(r, n);
  out.push('', `answers counted: ${counted.size}; requests that opened their round: ${opened.size}`);
  out.push(`no verdict by design (a valid coordinator output forged on outcomes): ${silentByDesign.length}`);
  out.push(`unaccounted: ${unaccounted.length}`, ...unaccounted.slice(0, 10).map((l) => `  ${l}`));
  out.push(`accounted twice or more: ${twice.length}`, ...twice.slice(0, 10).map((l) => `  ${l}`));
  out.push(`dead letters naming a wrong source position: ${misplacedDeadLetters.length}`, ...misplacedDeadLetters.slice(0, 5).map((l) => `  ${l}`));
  out.push(`dead letters / rejections of no flood record: ${foreign.deadLetters} / ${foreign.rejections}`, ...foreign.examples.map((l) => `  ${l}`));
  out.push(`live reader (progress only): ${liveAccounted} records accounted, ${liveTwice} of them twice or more`);
  if (redelivered > 0) out.push(`outputs delivered to this reader again (same offset, not counted): ${redelivered}`);
  if (readFailures.length > 0) out.push(`outputs this bench could not read: ${readFailures.length}`, ...readFailures.slice(0, 5).map((l) => `  ${l}`));
  out.push(`bit-flipped bodies that made this bench's decoder (a worker: 256 MB, 5 s) give up: ${guarded.bombs}`);
  for (const co of crashes) out.push(`  coordinator ${co.n} exited on its own (code ${co.exit?.code}, signal ${co.exit?.signal}): ${co.stderr.slice(-2).join(' | ').slice(0, 300)}`);
  out.push(`crashes (a coordinator that exited on its own): ${crashes.length}; "stopped for good": ${stoppedForGood.length}; last coordinator's exit on SIGTERM: ${lastExit?.code ?? '?'}`);
  out.push(`coordinator stderr lines: ${errorLines.length}`, ...errorLines.slice(0, 5).map((l) => `  ${l}`));
  out.push('', '| accounted | s | coordinator | its RSS MB | bench RSS MB |', '|---|---|---|---|---|');
  for (const s of rssSeries) row(s.accounted, s.seconds.toFixed(1), s.coordinator, s.coordinatorRssMb?.toFixed(1) ?? '-', s.benchRssMb.toFixed(1));
  out.push(`coordinator ${last.n} RSS at the end: ${lastRss?.toFixed(1) ?? '-'} MB`);
  out.push('', pass ? 'PASS: every record accounted for exactly once, no crash' : 'FAIL');
  process.stdout.write(`${out.join('\n')}\n`);
}
await c.close();
process.exit(pass ? 0 : 1);

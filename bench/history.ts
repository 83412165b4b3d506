/**
 * A large, realistic coordination history under a topic prefix, for the
 * replay and audit benchmarks, on the running local stack (`mabeam dev up`)
 * or the services in KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL:
 *
 *   node_modules/.bin/node bench/history.ts [--events 1000000] [--prefix P] [--seed N] [--workers N] [--verify]
 *
 * (default prefix `bench-history-<events>`, e.g. bench-history-1m). From
 * TypeScript: `writeHistory({ events, prefix })` and `verifyHistory(c, prefix)`.
 *
 * Writes at least `--events` records to bid-requests, bids, proposals, votes,
 * outcomes and directives — what clients, agents and coordinators write:
 *
 * - Rounds of every family in a mix: first-price and Vickrey auctions (some
 *   open to anyone, some with a reserve price, some closing at the deadline
 *   with bidders missing), now and then an English auction (iterative: the
 *   operator opens the later stages, agents answer each stage or pass), double
 *   auctions (buy and sell orders), majority, weighted, unanimous and quorum
 *   consensus. Bidders and voters come from a pool of 50 agents, 3–20 answers
 *   a round.
 * - Answers the coordinator refuses: a second answer of an agent
 *   (DUPLICATE_ANSWER), a redelivered copy (DUPLICATE_EVENT), answers from
 *   agents not named (NOT_ELIGIBLE), under the reserve or the asking price,
 *   choices that are no option, orders without a side, answers after the
 *   round closed (ROUND_CLOSED), answers to rounds that never open and
 *   requests naming an unknown protocol (UNKNOWN_ROUND, UNKNOWN_PROTOCOL).
 * - Every round is decided here by the real `coordinate()` operator (the
 *   request, the answers in log order, and for a round that is not complete
 *   by its deadline a close with cause "deadline"), and what it decides is
 *   written as exactly the events `toOutputs()` makes of it, with the
 *   causation ids a coordinator gives them — so replaying the log gives the
 *   recorded outcomes. Outputs are stamped with the log time of the decision
 *   (the coordinator stamps them with its clock when it decides; here that
 *   is the time of the event that led to the decision, a few ms on); stage
 *   requests keep the time the operator gives them. Log time runs about 1 ms
 *   per record and ends about now (a million records span some 17 minutes),
 *   and every record's Kafka timestamp is its event time, so windows by time
 *   select whole stretches of rounds.
 * - Requests and answers are written by a plain producer (clients and
 *   agents), keyed by round id on partitionOfKey's partition (murmur2, what
 *   createProducer's partitioner does); the coordinator's outputs by one
 *   transactional producer per round partition, as coordinator lanes do,
 *   directives keyed by agent id.
 * - What a real log also holds: aborted transactions (RoundClosed +
 *   RoundOutcome records of real rounds naming another winner, as a zombie
 *   coordinator's transaction holds when it is fenced, written by a
 *   transactional producer of their own and aborted: replay must not see them), a few records on `bids` that are not the wire
 *   format (a foreign client's JSON, a 3-byte record, an unknown schema id),
 *   and a few answers a foreign partitioner put on the wrong partition, each
 *   with the copy a coordinator makes on its key's partition (header
 *   `mabeam-forwarded-from: topic/partition/offset`, in the lane's
 *   transaction).
 *
 * Fast: events are encoded without a promise each (schema ids looked up
 * once, then codec.check and the Avro body written into large shared
 * buffers; requests and answers are checked one in 16 after the first
 * 50,000, the coordinator's outputs all), written in chunks of about 16,000
 * records (one send of requests and answers, one transaction per round
 * partition), three chunks in flight while the next is generated. About
 * 20,000 records/s on a 2-core machine that also runs the broker.
 * `--workers N` splits the round partitions among N writer threads.
 *
 * A prefix that already holds at least that many records (end offsets of the
 * six topics) is reused, not written again; one that holds fewer (an
 * interrupted run) is written on. `--verify` then reads the five round
 * topics (readLog) and replays them (replayRounds): every round identical
 * (or refused: the requests naming an unknown protocol), none different,
 * contradictory, duplicate, incomplete or open, and nothing undecodable but
 * the garbage on bids; it exits 1 otherwise.
 *
 * Prints progress on stderr and a one-line JSON summary on stdout: records
 * per topic, rounds per protocol, how they closed and what was refused,
 * seconds, records/s and sample round ids (per protocol, and rounds closed
 * at their deadline, with a reserve, with late or duplicate answers, …).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { IHeaders, Message, Producer, TopicMessages } from 'kafkajs';
import { Subject } from 'rxjs';
import { connect, type Connections } from '../src/cli/connect.ts';
import type { DecodedEvent } from '../src/codec/codec.ts';
import { headerLength, magicByte } from '../src/codec/wireFormat.ts';
import { toOutputs, toRoundEvent, type Output } from '../src/coordinator/events.ts';
import { forwardedFromHeader } from '../src/engine/routing.ts';
import { partitionOfKey } from '../src/engine/routing.ts';
import { deterministicEventId } from '../src/events/envelope.ts';
import type { Bid, BidRequest, Envelope, EventTypeName, Proposal, RoundClosed, RoundOutcome, Vote } from '../src/events/types.ts';
import { createProducer, createTransactionalProducer, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { eventHeaders } from '../src/producer/eventProducer.ts';
import { defaultProtocols, sharedProtocols } from '../src/protocols/builtins.ts';
import { coordinate } from '../src/protocols/coordinate.ts';
import { dropRound, emptyRounds } from '../src/protocols/roundsInternals.ts';
import type { RoundDecision, RoundEvent, RoundOpen } from '../src/protocols/types.ts';
import { readLog } from '../src/replay/readLog.ts';
import { replayRounds } from '../src/replay/replayRounds.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../src/stack/index.ts';
import { applyTopics, topicName } from '../src/topics/index.ts';
import { prng } from './floodRecords.ts';

/** The topics a history is written to (the five round topics and directives). */
export const historyTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes', 'directives'] as const;
export type HistoryTopic = (typeof historyTopics)[number];
/** The topics replay reads. */
export const roundTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'] as const;

export const historyProtocols = ['first-price', 'vickrey', 'english', 'double-auction', 'majority', 'weighted', 'unanimous', 'quorum'] as const;
type HistoryProtocol = (typeof historyProtocols)[number];

/** Share of rounds per protocol. */
const mix: ReadonlyArray<readonly [HistoryProtocol, number]> = [
  ['first-price', 0.24],
  ['vickrey', 0.18],
  ['english', 0.03],
  ['double-auction', 0.06],
  ['majority', 0.17],
  ['weighted', 0.11],
  ['unanimous', 0.08],
  ['quorum', 0.13],
];

/** 50 agents: five roles, ten of each. */
export const historyAgents: readonly string[] = ['planner', 'coder', 'tester', 'gpu', 'reviewer'].flatMap((role) => Array.from({ length: 10 }, (_, i) => `${role}-${String(i).padStart(2, '0')}`));
const clients = ['scheduler-1', 'scheduler-2', 'orchestrator', 'market-maker'];

export interface HistoryOptions {
  /** At least this many records in all on the six topics. */
  events: number;
  prefix: string;
  /** Seed of the mix (default random): the same seed on an empty prefix writes the same rounds. */
  seed?: number;
  /** Clients to use (from connect()); default: connects to the environment's or the dev stack's services, and closes them after. */
  connections?: Connections;
  /** Records per chunk: generated, then written in one send of inputs and one transaction per lane (default 16,000). */
  chunkEvents?: number;
  /** Progress lines (default: stderr). */
  say?: (line: string) => void;
  /**
   * Writer threads (default 1, 2 with four cores or more): each generates and
   * writes the rounds of its share of the round partitions, with producers of
   * its own.
   */
  workers?: number;
}

export interface HistorySummary {
  prefix: string;
  /** The prefix already held at least `events` records: nothing was written. */
  reused: boolean;
  seed: number | null;
  /** Writer threads used. */
  workers: number;
  /** Records the prefix held before (a history that did not reach `events`, e.g. from an interrupted run: written on). */
  before: number;
  /** Records written per topic, committed ones only; when reused, the topics' end offsets (which also count transaction markers and aborted records). */
  perTopic: Record<HistoryTopic, number>;
  events: number;
  /** Rounds opened per protocol (not counting requests the coordinator refused). */
  rounds: Record<string, number>;
  /** How the rounds closed, their outcome statuses, the refusals by reason, English stages opened. */
  closings: Record<string, number>;
  statuses: Record<string, number>;
  rejections: Record<string, number>;
  stages: number;
  /** Records in aborted transactions (not in perTopic), garbage records and forwarded copies (in perTopic). */
  aborted: { transactions: number; records: number };
  garbage: number;
  misplaced: number;
  /** Seconds in all: from the call to every transaction readable. */
  seconds: number;
  /** Of which: topics, schemas and producers (setup); generating and sending (write); until read_committed readers see the last transactions (settle). */
  timings: { setup: number; write: number; settle: number };
  /** Records per second in all, and over write + settle. */
  eventsPerSecond: number;
  writeEventsPerSecond: number;
  /** A few round ids per protocol (first, middle, last written), and some with something to look at. */
  samples: Record<string, string[]>;
}

type Stamped = { ts: number; m: Message };
/** Encoders by event type: the wire format of an event, checked first (codec.check) unless `check` is false. */
type Encoders = Map<EventTypeName, (event: object, check?: boolean) => Buffer>;
/** A record key and the partition it hashes to. */
type Keyed = { buf: Buffer; partition: number };
type Topics = Map<string, Stamped[]>;

interface Chunk {
  index: number;
  inputs: Topics;
  /** Outputs per round partition: one transaction each. */
  lanes: Topics[];
  /** Answers put on a partition their key does not hash to: written alone first, then copied by their lane. */
  misplaced: Array<{ topic: string; m: Message; ts: number; right: number; lane: number }>;
  /** Rounds decided in this chunk, for a fenced coordinator to contradict. */
  outcomes: Array<{ roundId: string; protocol: string; kind: 'auction' | 'consensus' | undefined; at: number }>;
  events: number;
}

/** A fast, seeded, version-4-shaped UUID. */
function uuidFrom(r: () => number): string {
  const h = () => Math.floor(r() * 0x100000000).toString(16).padStart(8, '0');
  const a = h();
  const b = h();
  const c = h();
  const d = h();
  return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-${'89ab'[Math.floor(r() * 4)]}${c.slice(1, 4)}-${c.slice(4)}${d}`;
}

const inc = (counts: Record<string, number>, key: string, n = 1) => {
  counts[key] = (counts[key] ?? 0) + n;
};

/** Planned answer of a round: its record and when it comes. */
interface Planned {
  time: number;
  type: 'Bid' | 'Vote';
  event: Bid | Vote;
}

/**
 * Generates rounds chunk by chunk: every record encoded and placed, every
 * round decided by coordinate() as it is built. Holds one round at a time
 * (a round leaves the operator's state as soon as its last record is written).
 */
class HistoryGenerator {
  readonly chunkEvents: number;
  private readonly r: () => number;
  private readonly encoders: Encoders;
  private readonly partitions: Record<HistoryTopic, number>;
  private readonly names: Record<HistoryTopic, string>;
  /** The operator's rounds (the seed it decides from), as a coordinator lane holds them. */
  private readonly rounds = emptyRounds();
  private readonly input = new Subject<RoundEvent>();
  private readonly decided: RoundDecision[] = [];
  private coordinatorId: string;
  private clock: number;
  private readonly msPerEvent: number;
  private readonly lanes: ReadonlySet<number> | undefined;
  private chunk: Chunk;
  private chunkIndex = 0;
  readonly perTopic = Object.fromEntries(historyTopics.map((t) => [t, 0])) as Record<HistoryTopic, number>;
  readonly roundsBy: Record<string, number> = {};
  readonly closings: Record<string, number> = {};
  readonly statuses: Record<string, number> = {};
  readonly rejections: Record<string, number> = {};
  stages = 0;
  private inputsChecked = 0;
  misplacedCount = 0;
  garbageCount = 0;
  /** Garbage and misplaced answers still to place, spread over the run. */
  private garbageLeft: number;
  private misplacedLeft: number;
  private readonly garbageEvery: number;
  private readonly misplacedEvery: number;
  private roundsMade = 0;
  readonly samplesBy = new Map<string, string[]>();
  readonly notable: Record<string, string[]> = {};

  constructor(o: {
    seed: number;
    prefix: string;
    encoders: Encoders;
    partitions: Record<HistoryTopic, number>;
    events: number;
    chunkEvents: number;
    /** Log time of the first round. */
    start: number;
    /** Log time per record (ms): the history spans about events × msPerEvent. */
    msPerEvent: number;
    /** The round partitions this generator writes (default all): rounds are drawn until their id hashes to one. */
    lanes?: ReadonlySet<number>;
  }) {
    this.r = prng(o.seed);
    this.lanes = o.lanes;
    this.encoders = o.encoders;
    this.partitions = o.partitions;
    this.chunkEvents = o.chunkEvents;
    if (roundTopics.some((t) => o.partitions[t] !== o.partitions.outcomes)) throw new Error(`the round topics are not co-partitioned: ${JSON.stringify(o.partitions)}`);
    this.names = Object.fromEntries(historyTopics.map((t) => [t, topicName(o.prefix, t)])) as Record<HistoryTopic, string>;
    this.input.pipe(coordinate((name) => sharedProtocols().get(name), () => this.rounds)).subscribe((d) => this.decided.push(d));
    this.msPerEvent = o.msPerEvent;
    this.clock = o.start;
    this.coordinatorId = this.newCoordinatorId();
    this.chunk = this.newChunk();
    const rounds = Math.max(1, o.events / 16); // about 16 records a round
    this.garbageLeft = Math.min(40, Math.max(4, Math.round(o.events / 50_000)));
    this.misplacedLeft = Math.min(30, Math.max(3, Math.round(o.events / 50_000)));
    this.garbageEvery = Math.max(1, Math.floor(rounds / (this.garbageLeft + 1)));
    this.misplacedEvery = Math.max(1, Math.floor(rounds / (this.misplacedLeft + 1)));
  }

  private newCoordinatorId(): string {
    return `coordinator-${1 + this.int(3)}-${1000 + this.int(60_000)}-${Math.floor(this.r() * 0xffffff).toString(16).padStart(6, '0')}`;
  }

  private newChunk(): Chunk {
    const topics = () => new Map<string, Stamped[]>();
    return { index: this.chunkIndex++, inputs: topics(), lanes: Array.from({ length: this.partitions.outcomes }, topics), misplaced: [], outcomes: [], events: 0 };
  }

  /** The chunk built so far, and a new one to build into. */
  take(): Chunk {
    const done = this.chunk;
    this.chunk = this.newChunk();
    return done;
  }

  get pending(): number {
    return this.chunk.events;
  }

  // ---- randomness ----

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  private between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  private chance(p: number): boolean {
    return this.r() < p;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** k distinct agents of the pool. */
  private agents(k: number, pool: readonly string[] = historyAgents): string[] {
    const copy = [...pool];
    for (let i = 0; i < k; i++) {
      const j = i + this.int(copy.length - i);
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy.slice(0, k);
  }

  private price(lo: number, hi: number): number {
    return Math.round((lo + this.r() * (hi - lo)) * 100) / 100;
  }

  // ---- records ----

  /** A new round id (as RoundClient makes them) whose partition is one of this generator's. */
  private roundId(kind: 'auction' | 'consensus'): string {
    for (;;) {
      const id = `${kind}-${uuidFrom(this.r)}`;
      if (!this.lanes || this.lanes.has(partitionOfKey(Buffer.from(id), this.partitions.outcomes))) return id;
    }
  }

  /** A round id as a key, and its partition (the round topics are co-partitioned: one partition number for all). */
  private roundKey(roundId: string): Keyed {
    const buf = Buffer.from(roundId);
    return { buf, partition: partitionOfKey(buf, this.partitions.outcomes) };
  }

  private readonly agentKeys = new Map<string, Keyed>();

  /** An agent id as a key of directives, and its partition. */
  private agentKey(agentId: string): Keyed {
    let k = this.agentKeys.get(agentId);
    if (!k) {
      const buf = Buffer.from(agentId);
      this.agentKeys.set(agentId, (k = { buf, partition: partitionOfKey(buf, this.partitions.directives) }));
    }
    return k;
  }

  /** A record of an event, timestamped when it was written (`at`: its event time, or later for a redelivered copy). */
  private message(key: Buffer, partition: number, type: EventTypeName, event: { envelope: Envelope }, check = true, at = event.envelope.eventTime): Message {
    return {
      key,
      value: this.encoders.get(type)!(event, check),
      partition,
      timestamp: String(at),
      headers: { [eventHeaders.type]: typeHeader(type), [eventHeaders.id]: event.envelope.eventId },
    };
  }

  /** A client's request or an agent's answer, on its key's partition (or, misplaced, on another one). */
  private emitInput(topic: 'bid-requests' | 'bids' | 'proposals' | 'votes', k: Keyed, type: EventTypeName, event: { envelope: Envelope }, misplace = false, at = event.envelope.eventTime): void {
    const key = k.buf;
    const right = k.partition;
    // Requests and answers are checked as their writers check them, every one in the first chunks and one in 16 after:
    // they are built by the same code every time, and a replay (--verify) decodes and checks every record.
    const check = this.inputsChecked++ < 50_000 || this.inputsChecked % 16 === 0;
    this.perTopic[topic]++;
    this.chunk.events++;
    if (misplace) {
      // As a client with another partitioner (librdkafka's CRC32) would; the coordinator copies it to `right`.
      const wrong = (right + 1 + this.int(this.partitions[topic] - 1)) % this.partitions[topic];
      this.chunk.misplaced.push({ topic: this.names[topic], m: this.message(key, wrong, type, event, check, at), ts: at, right, lane: k.partition });
      this.misplacedCount++;
      this.perTopic[topic]++; // the copy
      this.chunk.events++;
      return;
    }
    put(this.chunk.inputs, this.names[topic], this.message(key, right, type, event, check, at), at);
  }

  private emitOutput(round: Keyed, output: Output): void {
    const topic = output.topic as HistoryTopic;
    // Round topics are keyed by round id (co-partitioned: the round's partition), directives by agent id.
    const k = topic === 'directives' ? this.agentKey(output.key) : round;
    const m = this.message(k.buf, k.partition, output.type, output.event);
    put(this.chunk.lanes[round.partition]!, this.names[topic], m, output.event.envelope.eventTime);
    this.perTopic[topic]++;
    this.chunk.events++;
  }

  /**
   * One event through the operator, and its decisions written as the
   * coordinator writes them: a refusal caused by what it refuses, everything
   * else by the event (or deadline) that led to it.
   */
  private step(event: RoundEvent, causation: string, at: number, lane: Keyed): RoundDecision[] {
    this.input.next(event);
    const decisions = this.decided.splice(0);
    const time = at + 1 + this.int(15);
    for (const d of decisions) {
      const cause = d.type === 'rejected' ? d.eventId : causation || d.roundId;
      for (const output of toOutputs(d, this.coordinatorId, cause)) {
        // Stage requests keep their log time (the operator's); the rest is stamped when decided.
        if (output.type !== 'BidRequest' && output.type !== 'Proposal') output.event.envelope.eventTime = time;
        this.emitOutput(lane, output);
      }
      switch (d.type) {
        case 'rejected':
          inc(this.rejections, d.reasonCode);
          break;
        case 'closed':
          if (d.final) inc(this.closings, d.cause);
          break;
        case 'stage':
          this.stages++;
          break;
        case 'outcome':
          inc(this.statuses, d.status);
          this.chunk.outcomes.push({ roundId: d.roundId, protocol: d.protocol, kind: d.kind, at: time });
          break;
      }
    }
    return decisions;
  }

  private decoded<T extends { envelope: Envelope }>(type: 'BidRequest' | 'Proposal' | 'Bid' | 'Vote', event: T): RoundEvent {
    return toRoundEvent({ schemaId: 0, fullName: `io.mabeam.events.${type}`, type, event } as unknown as DecodedEvent)!;
  }

  private envelope(type: EventTypeName, producerId: string, roundId: string, time: number, eventId: string, causationId: string | null = null): Envelope {
    return { eventId, eventType: type, correlationId: roundId, causationId, producerId, eventTime: time };
  }

  private bid(roundId: string, agentId: string, request: string, time: number, amount: number, attributes: Record<string, unknown> | null = null, eventId?: string): Planned {
    const event: Bid = {
      envelope: this.envelope('Bid', agentId, roundId, time, eventId ?? deterministicEventId('bid', agentId, request), request),
      roundId, agentId, amount, bundle: [], attributes: attributes === null ? null : JSON.stringify(attributes),
    };
    return { time, type: 'Bid', event };
  }

  private vote(roundId: string, agentId: string, request: string, time: number, choice: string, eventId?: string): Planned {
    const event: Vote = {
      envelope: this.envelope('Vote', agentId, roundId, time, eventId ?? deterministicEventId('vote', agentId, request), request),
      roundId, agentId, choice, weight: null, reason: this.chance(0.1) ? 'as configured' : null,
    };
    return { time, type: 'Vote', event };
  }

  private sample(protocol: string, roundId: string): void {
    let list = this.samplesBy.get(protocol);
    if (!list) this.samplesBy.set(protocol, (list = []));
    list.push(roundId);
  }

  private note(what: string, roundId: string): void {
    const list = (this.notable[what] ??= []);
    if (list.length < 3) list.push(roundId);
  }

  // ---- rounds ----

  /** The next round of the mix (or, now and then, something that never becomes one). */
  next(): void {
    const before = this.chunk.events;
    const t0 = this.clock;
    this.roundsMade++;
    if (this.chance(0.004)) this.orphanAnswers(t0);
    else if (this.chance(0.002)) this.unknownProtocol(t0);
    else {
      let x = this.r();
      let protocol: HistoryProtocol = 'first-price';
      for (const [p, share] of mix) {
        if ((x -= share) < 0) {
          protocol = p;
          break;
        }
      }
      if (protocol === 'english') this.english(t0);
      else if (protocol === 'majority' || protocol === 'weighted' || protocol === 'unanimous' || protocol === 'quorum') this.consensus(protocol, t0);
      else this.sealed(protocol, t0);
    }
    if (this.garbageLeft > 0 && this.roundsMade % this.garbageEvery === 0) this.garbage();
    // A coordinator is replaced now and then (a failover): later outputs carry the new instance's id.
    if (this.chance(0.00005)) this.coordinatorId = this.newCoordinatorId();
    this.clock += Math.max(1, Math.round((this.chunk.events - before) * this.msPerEvent * (0.5 + this.r())));
  }

  /** Whether this round carries one of the few answers on a wrong partition. */
  private misplaceOne(): boolean {
    if (this.misplacedLeft > 0 && this.roundsMade % this.misplacedEvery === 0) {
      this.misplacedLeft--;
      return true;
    }
    return false;
  }

  /**
   * Feeds a request and its planned answers (sorted by time) through the
   * operator; a round still open after them closes at its deadline, and
   * late answers (after the deadline) are refused as closed.
   */
  private run(open: { type: 'BidRequest' | 'Proposal'; event: BidRequest | Proposal }, planned: Planned[], late: Planned[], protocol: string): void {
    const request = open.event;
    const roundId = request.roundId;
    const key = this.roundKey(roundId);
    this.emitInput(open.type === 'BidRequest' ? 'bid-requests' : 'proposals', key, open.type, request);
    let closed = this.step(this.decoded(open.type, request), request.envelope.eventId, request.envelope.eventTime, key).some((d) => d.type === 'outcome');
    const opened = this.rounds.byId.has(roundId);
    if (opened) {
      inc(this.roundsBy, protocol);
      this.sample(protocol, roundId);
    }
    planned.sort((a, b) => a.time - b.time);
    const misplace = planned.length > 0 && this.misplaceOne() ? this.int(planned.length) : -1;
    planned.forEach((p, i) => {
      this.emitInput(p.type === 'Bid' ? 'bids' : 'votes', key, p.type, p.event, i === misplace, p.time);
      const ds = this.step(this.decoded(p.type, p.event), p.event.envelope.eventId, p.time, key);
      if (ds.some((d) => d.type === 'outcome')) closed = true;
    });
    if (opened && !closed) {
      const close: RoundEvent = { type: 'close', roundId, cause: 'deadline', eventId: deterministicEventId('deadline', roundId), stage: 0 };
      this.step(close, close.eventId, request.deadline, key);
      this.note('deadline', roundId);
    }
    for (const p of late.sort((a, b) => a.time - b.time)) {
      this.emitInput(p.type === 'Bid' ? 'bids' : 'votes', key, p.type, p.event, false, p.time);
      this.step(this.decoded(p.type, p.event), p.event.envelope.eventId, p.time, key);
    }
    dropRound(this.rounds, roundId);
  }

  /** Refusals any round can have: a second answer, a redelivered copy, a non-member's answer. */
  private extras(roundId: string, planned: Planned[], eligible: string[], make: (agentId: string, time: number, eventId?: string) => Planned, deadline: number): string[] {
    const what: string[] = [];
    const answered = planned.filter((p) => eligible.length === 0 || eligible.includes(p.event.agentId));
    if (answered.length > 0 && this.chance(0.06)) {
      // The same agent answers again from another client: a new event id, refused DUPLICATE_ANSWER (or ROUND_CLOSED).
      const first = this.pick(answered);
      planned.push(make(first.event.agentId, Math.min(deadline - 1, first.time + this.between(5, 400)), uuidFrom(this.r)));
      what.push('duplicate-answer');
    }
    if (answered.length > 0 && this.chance(0.03)) {
      // A redelivered record: the same event id again, refused DUPLICATE_EVENT.
      const first = this.pick(answered);
      planned.push({ ...first, time: Math.min(deadline - 1, first.time + this.between(20, 900)) });
      what.push('redelivered');
    }
    if (eligible.length > 0 && this.chance(0.08)) {
      const outsider = this.pick(historyAgents.filter((a) => !eligible.includes(a)));
      planned.push(make(outsider, this.between(planned[0]?.time ?? deadline - 500, deadline - 1)));
      what.push('not-eligible');
    }
    for (const w of what) this.note(w, roundId);
    return what;
  }

  /** first-price, vickrey, double-auction: one sealed stage. */
  private sealed(protocol: 'first-price' | 'vickrey' | 'double-auction', t0: number): void {
    const roundId = this.roundId('auction');
    const requestId = uuidFrom(this.r);
    const openToAll = protocol !== 'double-auction' && this.chance(0.15);
    const bidders = this.agents(this.between(3, 20));
    const deadline = t0 + this.pick([2_000, 5_000, 10_000]);
    const reserve = protocol !== 'double-auction' && this.chance(0.3) ? this.price(20, 60) : null;
    const request: BidRequest = {
      envelope: this.envelope('BidRequest', this.pick(clients), roundId, t0, requestId),
      roundId,
      protocol,
      item: protocol === 'double-auction' ? JSON.stringify({ commodity: this.pick(['gpu-hours', 'cpu-hours', 'storage-tb']), period: this.int(1000) }) : JSON.stringify({ task: `task-${this.int(100_000)}`, gpuHours: this.between(1, 16) }),
      requiredCapabilities: this.chance(0.3) ? [this.pick(['gpu', 'python', 'review'])] : [],
      eligibleAgents: openToAll ? [] : bidders,
      reservePrice: reserve,
      deadline,
      parameters: this.chance(0.1) ? JSON.stringify({ maxAmount: 1_000 }) : null,
    };
    // Named bidders that stay silent: the round closes at its deadline without them.
    const silent = !openToAll && this.chance(0.2) ? this.between(1, Math.min(3, bidders.length - 1)) : 0;
    const planned: Planned[] = [];
    const answerBy = deadline - 50;
    const time = () => this.between(t0 + 3, Math.min(answerBy, t0 + 1_500));
    bidders.slice(silent).forEach((agentId) => {
      if (protocol === 'double-auction') {
        const side = this.chance(0.5) ? 'buy' : 'sell';
        // Now and then an order without a side: refused INVALID_ANSWER (and the agent counts as silent).
        const attributes = this.chance(0.02) ? { quantity: 1 } : { side, quantity: this.between(1, 4) };
        planned.push(this.bid(roundId, agentId, requestId, time(), side === 'buy' ? this.price(40, 80) : this.price(30, 70), attributes));
      } else {
        // Under a reserve, some bids are below it: refused BELOW_RESERVE.
        const amount = reserve !== null && this.chance(0.15) ? this.price(1, reserve - 0.01) : this.price(reserve ?? 5, 150);
        planned.push(this.bid(roundId, agentId, requestId, time(), amount));
      }
    });
    const make = (agentId: string, t: number, eventId?: string) =>
      protocol === 'double-auction'
        ? this.bid(roundId, agentId, requestId, t, this.price(30, 80), { side: this.chance(0.5) ? 'buy' : 'sell', quantity: 1 }, eventId)
        : this.bid(roundId, agentId, requestId, t, this.price(reserve ?? 5, 150), null, eventId);
    this.extras(roundId, planned, request.eligibleAgents, make, deadline);
    // A silent bidder's answer after the deadline: refused ROUND_CLOSED.
    const late = silent > 0 && this.chance(0.3) ? [make(bidders[0]!, deadline + this.between(10, 800))] : [];
    if (late.length) this.note('late', roundId);
    if (reserve !== null) this.note('reserve', roundId);
    if (openToAll) this.note('open-to-all', roundId);
    this.run({ type: 'BidRequest', event: request }, planned, late, protocol);
  }

  private consensus(protocol: 'majority' | 'weighted' | 'unanimous' | 'quorum', t0: number): void {
    const roundId = this.roundId('consensus');
    const requestId = uuidFrom(this.r);
    const voters = this.agents(this.between(3, 20));
    const deadline = t0 + this.pick([2_000, 5_000, 10_000]);
    const options = protocol !== 'weighted' && this.chance(0.3) ? ['plan-a', 'plan-b', 'plan-c'] : [];
    const choices = options.length > 0 ? options : ['yes', 'no'];
    const weights = protocol === 'weighted' ? Object.fromEntries(voters.map((v) => [v, this.between(1, 5)])) : {};
    const request: Proposal = {
      envelope: this.envelope('Proposal', this.pick(clients), roundId, t0, requestId),
      roundId,
      protocol,
      subject: JSON.stringify(this.chance(0.5) ? { variableId: this.pick(['team-size', 'learning-rate', 'gpu-share']), value: this.between(1, 10), version: this.int(50) } : { question: `adopt plan ${this.int(10_000)}?` }),
      options,
      eligibleVoters: voters,
      weights,
      quorum: protocol === 'quorum' ? this.pick([0.5, 0.6, 0.75]) : null,
      deadline,
      parameters: null,
    };
    const silentShare = protocol === 'quorum' ? 0.35 : protocol === 'unanimous' ? 0.1 : 0.15;
    const silent = this.chance(silentShare) ? this.between(1, Math.max(1, Math.floor(voters.length * (protocol === 'quorum' ? 0.6 : 0.3)))) : 0;
    // Most rounds lean one way; unanimous ones mostly agree.
    const lean = this.pick(choices);
    const agree = protocol === 'unanimous' ? 0.93 : 0.65;
    const planned: Planned[] = [];
    const answerBy = deadline - 50;
    const time = () => this.between(t0 + 3, Math.min(answerBy, t0 + 1_500));
    voters.slice(silent).forEach((agentId) => {
      // Now and then a choice that is no option: refused INVALID_CHOICE.
      const choice = this.chance(0.01) ? 'maybe' : this.chance(agree) ? lean : this.pick(choices);
      planned.push(this.vote(roundId, agentId, requestId, time(), choice));
    });
    const make = (agentId: string, t: number, eventId?: string) => this.vote(roundId, agentId, requestId, t, this.pick(choices), eventId);
    this.extras(roundId, planned, voters, make, deadline);
    const late = silent > 0 && this.chance(0.3) ? [make(voters[0]!, deadline + this.between(10, 800))] : [];
    if (late.length) this.note('late', roundId);
    this.run({ type: 'Proposal', event: request }, planned, late, protocol);
  }

  /**
   * An English auction: each stage's request comes from the operator (the
   * coordinator's stage decision), named bidders answer it — a bid at the
   * asking price or above while it is under their value, else a pass, now
   * and then nothing (the stage then closes at its deadline).
   */
  private english(t0: number): void {
    const roundId = this.roundId('auction');
    const requestId = uuidFrom(this.r);
    const key = this.roundKey(roundId);
    const bidders = this.agents(this.between(3, 8));
    const increment = this.pick([1, 2, 5]);
    const startPrice = this.between(10, 50);
    const values = new Map(bidders.map((b) => [b, startPrice + this.price(0, 25 * increment)]));
    const stageMs = this.pick([1_000, 2_000]);
    const request: BidRequest = {
      envelope: this.envelope('BidRequest', this.pick(clients), roundId, t0, requestId),
      roundId,
      protocol: 'english',
      item: JSON.stringify({ task: `task-${this.int(100_000)}`, exclusive: true }),
      requiredCapabilities: [],
      eligibleAgents: bidders,
      reservePrice: null,
      deadline: t0 + stageMs,
      parameters: JSON.stringify({ increment, startPrice, maxStages: 30 }),
    };
    this.emitInput('bid-requests', key, 'BidRequest', request);
    this.step(this.decoded('BidRequest', request), requestId, t0, key);
    if (!this.rounds.byId.has(roundId)) return;
    inc(this.roundsBy, 'english');
    this.sample('english', roundId);
    let open: RoundOpen | undefined = this.rounds.byId.get(roundId)!.open;
    while (open) {
      const stage: RoundOpen = open;
      const asking = Number(stage.parameters['asking'] ?? startPrice);
      const leader = typeof stage.parameters['leader'] === 'string' ? stage.parameters['leader'] : null;
      const planned: Planned[] = [];
      const time = () => this.between(stage.eventTime + 3, Math.min(stage.deadline - 50, stage.eventTime + 700));
      for (const agentId of stage.eligible) {
        if (agentId === leader) {
          // The leader bidding against itself: refused NOT_ELIGIBLE.
          if (this.chance(0.03)) planned.push(this.bid(roundId, agentId, stage.eventId, time(), asking));
          continue;
        }
        if (this.chance(0.03)) continue; // silent this stage: it closes at the deadline
        const value = values.get(agentId)!;
        if (value >= asking) {
          const jump = this.chance(0.2) ? increment * this.between(1, 3) : 0;
          // Now and then a bid under the asking price: refused BELOW_ASKING (the bidder then counts as silent).
          const amount = this.chance(0.02) ? asking - increment / 2 : Math.min(value, asking + jump);
          planned.push(this.bid(roundId, agentId, stage.eventId, time(), amount));
        } else {
          planned.push(this.bid(roundId, agentId, stage.eventId, time(), 0, { pass: true }));
        }
      }
      planned.sort((a, b) => a.time - b.time);
      let ended: RoundDecision[] = [];
      for (const p of planned) {
        this.emitInput('bids', key, 'Bid', p.event);
        const ds = this.step(this.decoded('Bid', p.event), p.event.envelope.eventId, p.time, key);
        if (ds.some((d) => d.type === 'closed')) ended = ds;
      }
      if (ended.length === 0) {
        const eventId = stage.stage === 0 ? deterministicEventId('deadline', roundId) : deterministicEventId('deadline', roundId, String(stage.stage));
        ended = this.step({ type: 'close', roundId, cause: 'deadline', eventId, stage: stage.stage }, eventId, stage.deadline, key);
        this.note('english-stage-deadline', roundId);
      }
      const next = ended.find((d) => d.type === 'stage');
      open = next?.type === 'stage' ? next.open : undefined;
      if (!ended.some((d) => d.type === 'closed')) break; // cannot happen: a stage that does not end
    }
    const stages = this.rounds.byId.get(roundId)?.open.stage ?? 0;
    if (stages >= 3) this.note('english-3+-stages', roundId);
    dropRound(this.rounds, roundId);
  }

  /** Answers to a round that never opens: refused UNKNOWN_ROUND once log time is 10 s past them. */
  private orphanAnswers(t0: number): void {
    const bid = this.chance(0.5);
    const roundId = this.roundId(bid ? 'auction' : 'consensus');
    const key = this.roundKey(roundId);
    const request = uuidFrom(this.r);
    const agents = this.agents(this.between(1, 3));
    for (const agentId of agents) {
      const p = bid ? this.bid(roundId, agentId, request, t0 + this.between(1, 50), this.price(5, 100)) : this.vote(roundId, agentId, request, t0 + this.between(1, 50), 'yes');
      this.emitInput(bid ? 'bids' : 'votes', key, p.type, p.event);
      this.step(this.decoded(p.type, p.event), p.event.envelope.eventId, p.time, key);
    }
    this.tick(t0 + 10_000 + this.between(1_000, 3_000), key);
    this.note('unknown-round', roundId);
  }

  /** A request naming a protocol no coordinator has (UNKNOWN_PROTOCOL), and its bids (then UNKNOWN_ROUND). */
  private unknownProtocol(t0: number): void {
    const roundId = this.roundId('auction');
    const requestId = uuidFrom(this.r);
    const key = this.roundKey(roundId);
    const bidders = this.agents(this.between(2, 4));
    const request: BidRequest = {
      envelope: this.envelope('BidRequest', this.pick(clients), roundId, t0, requestId),
      roundId, protocol: 'sealed-bid', item: '{"task":"legacy"}', requiredCapabilities: [], eligibleAgents: bidders, reservePrice: null, deadline: t0 + 2_000, parameters: null,
    };
    this.emitInput('bid-requests', key, 'BidRequest', request);
    this.step(this.decoded('BidRequest', request), requestId, t0, key);
    for (const agentId of bidders) {
      const p = this.bid(roundId, agentId, requestId, t0 + this.between(3, 500), this.price(5, 100));
      this.emitInput('bids', key, 'Bid', p.event);
      this.step(this.decoded('Bid', p.event), p.event.envelope.eventId, p.time, key);
    }
    this.tick(t0 + 10_000 + this.between(1_000, 3_000), key);
    this.note('unknown-protocol', roundId);
  }

  private tick(now: number, key: Keyed): void {
    this.step({ type: 'tick', now, requestsAt: { auction: now, consensus: now } }, '', now, key);
    for (const roundId of [...this.rounds.pending.keys()]) dropRound(this.rounds, roundId);
  }

  /** A record on bids that is not the wire format, as a foreign client could write (keyed by a real round id). */
  private garbage(): void {
    this.garbageLeft--;
    this.garbageCount++;
    const roundId = this.samplesBy.get('first-price')?.at(-1) ?? this.roundId('auction');
    const key = this.roundKey(roundId);
    const kinds = [
      () => Buffer.from(JSON.stringify({ roundId, agentId: this.pick(historyAgents), amount: this.price(5, 100) })), // BAD_MAGIC_BYTE
      () => Buffer.from([0, 0, 1]), // TRUNCATED_MESSAGE
      () => Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0x00]), randomBytes(24)]), // UNKNOWN_SCHEMA_ID
    ];
    const value = kinds[this.garbageCount % kinds.length]!();
    put(this.chunk.inputs, this.names.bids, { key: key.buf, value, partition: key.partition, timestamp: String(this.clock) }, this.clock);
    this.perTopic.bids++;
    this.chunk.events++;
  }

}

/**
 * A fenced coordinator's transaction: closings and outcomes of rounds of the
 * chunk that name another winner (as a zombie that decided from a stale
 * state would), to be aborted.
 */
function contradictions(chunk: Chunk, partitions: number, encode: Encoders, r: () => number): Message[] {
  const out: Message[] = [];
  const zombie = 'coordinator-zombie';
  for (const { roundId, protocol, kind, at } of chunk.outcomes.slice(0, 2 + Math.floor(r() * 3))) {
    const key = Buffer.from(roundId);
    const partition = partitionOfKey(key, partitions);
    const other = historyAgents[Math.floor(r() * historyAgents.length)]!;
    const env = (type: 'RoundClosed' | 'RoundOutcome'): Envelope => ({ eventId: deterministicEventId(type, roundId), eventType: type, correlationId: roundId, causationId: roundId, producerId: zombie, eventTime: at });
    const closed: RoundClosed = { envelope: env('RoundClosed'), roundId, protocol, cause: 'deadline', countedEventIds: [], stage: 0, final: true };
    const outcome: RoundOutcome = {
      envelope: env('RoundOutcome'), roundId, protocol, status: 'decided', winners: kind === 'auction' ? [other] : [], price: kind === 'auction' ? 1 : null,
      value: kind === 'auction' ? null : '"no"', reason: 'decided by a fenced coordinator', details: '{}', subject: null, kind: kind ?? null, eligible: [],
    };
    for (const [type, event] of [['RoundClosed', closed], ['RoundOutcome', outcome]] as const) {
      out.push({ key, value: encode.get(type)!(event), partition, timestamp: String(at), headers: { [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId } });
    }
  }
  return out;
}

const typeHeaders = new Map<string, Buffer>();
/** The event type header's value, one buffer per type. */
function typeHeader(type: string): Buffer {
  let b = typeHeaders.get(type);
  if (!b) typeHeaders.set(type, (b = Buffer.from(type)));
  return b;
}

function put(topics: Topics, topic: string, m: Message, ts: number): void {
  let list = topics.get(topic);
  if (!list) topics.set(topic, (list = []));
  list.push({ ts, m });
}

function sorted(topics: Topics): TopicMessages[] {
  return [...topics].map(([topic, list]) => ({ topic, messages: list.sort((a, b) => a.ts - b.ts).map((s) => s.m) }));
}

/**
 * Encoders that need no promise: each type's schema id fetched (registered)
 * once, then what EventCodec.encode does — codec.check, the Avro body in the
 * wire format (frame) — written into large shared buffers instead of two
 * allocations per event.
 */
async function encodersFor(c: Connections): Promise<Encoders> {
  const types: EventTypeName[] = ['BidRequest', 'Bid', 'Proposal', 'Vote', 'RoundClosed', 'RoundOutcome', 'Rejection', 'Directive'];
  const encoders = new Map() as Encoders;
  const slabSize = 4 * 2 ** 20;
  let slab = Buffer.allocUnsafe(slabSize);
  let pos = 0;
  for (const type of types) {
    const schema = c.codec.catalog.get(type);
    if (!schema) throw new Error(`no schema for ${type}`);
    const id = await c.codec.schemaId(type);
    encoders.set(type, (event, check = true) => {
      if (check) c.codec.check(type, event);
      let need = 0;
      for (;;) {
        if (slab.length - pos > headerLength + need) {
          slab.writeUInt8(magicByte, pos);
          slab.writeInt32BE(id, pos + 1);
          const end = schema.type.encode(event, slab, pos + headerLength);
          if (end > 0) {
            const value = slab.subarray(pos, end);
            pos = end;
            return value;
          }
          need = -end;
        }
        slab = Buffer.allocUnsafe(Math.max(slabSize, 2 * (headerLength + need)));
        pos = 0;
      }
    });
  }
  return encoders;
}

/** Records on the six topics of a prefix (end offsets), per topic; undefined when a topic is missing. */
async function recordsOnTopics(c: Connections, prefix: string): Promise<Record<HistoryTopic, number> | undefined> {
  const existing = new Set(await c.admin.listTopics());
  if (!historyTopics.every((t) => existing.has(topicName(prefix, t)))) return undefined;
  const counts = {} as Record<HistoryTopic, number>;
  for (const t of historyTopics) {
    const offsets = await c.admin.fetchTopicOffsets(topicName(prefix, t));
    counts[t] = offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  }
  return counts;
}

/** Sample round ids of a reused history: the RoundOutcomes at the end of each outcomes partition. */
async function samplesFromLog(c: Connections, prefix: string): Promise<Record<string, string[]>> {
  const log = await readLog(c.kafka, c.codec, [topicName(prefix, 'outcomes')], { lastPerPartition: 40, timeoutMs: 60_000 });
  const samples: Record<string, string[]> = {};
  for (const { decoded } of log) {
    if (decoded.type !== 'RoundOutcome') continue;
    const o = decoded.event as unknown as RoundOutcome;
    const list = (samples[o.protocol] ??= []);
    if (list.length < 3) list.push(o.roundId);
  }
  return samples;
}

/**
 * Waits until read_committed readers see every transaction written: a
 * commit returns before the broker has written its markers, and until then
 * the partition's last stable offset stays before the transaction.
 */
async function untilReadable(c: Connections, ends: ReadonlyMap<string, number>, timeoutMs = 60_000): Promise<void> {
  const byTopic = new Map<string, Map<number, number>>();
  for (const [key, end] of ends) {
    const at = key.lastIndexOf('/');
    const topic = key.slice(0, at);
    let partitions = byTopic.get(topic);
    if (!partitions) byTopic.set(topic, (partitions = new Map()));
    partitions.set(Number(key.slice(at + 1)), end);
  }
  const deadline = Date.now() + timeoutMs;
  for (const [topic, partitions] of byTopic) {
    for (;;) {
      const offsets = await c.admin.fetchTopicOffsets(topic);
      if ([...partitions].every(([p, end]) => Number(offsets.find((o) => o.partition === p)?.high ?? 0) >= end)) break;
      if (Date.now() > deadline) throw new Error(`${topic}: transactions not readable within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

async function defaultConnections(): Promise<Connections> {
  return connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-history');
}

/** One writer's share of a history: its round partitions, seed and clock. */
interface PartOptions {
  prefix: string;
  /** Records this part writes (at least). */
  events: number;
  seed: number;
  part: number;
  parts: number;
  /** Log time of the first round, and per record of the whole history (each part is as long, parts × sparser). */
  start: number;
  msPerEvent: number;
  chunkEvents: number;
}

/** What one part wrote: the counts of a history summary, its samples, and its timings. */
interface PartSummary extends Pick<HistorySummary, 'perTopic' | 'rounds' | 'closings' | 'statuses' | 'rejections' | 'stages' | 'aborted' | 'garbage' | 'misplaced' | 'samples'> {
  notable: Record<string, string[]>;
  /** Seconds spent starting producers, and generating + writing until every transaction is readable. */
  setup: number;
  write: number;
  settle: number;
}

/**
 * Generates and writes one part: the rounds whose ids hash to its round
 * partitions (p % parts === part), with a plain producer for requests and
 * answers, one transactional producer per owned round partition for the
 * coordinator's outputs, and one for a fenced coordinator's aborted
 * transactions. Returns once read_committed readers see all of it.
 */
async function writePart(c: Connections, o: PartOptions, progress: (records: number) => void): Promise<PartSummary> {
  const started = Date.now();
  const { prefix } = o;
  const encoders = await encodersFor(c);
  const meta = await c.admin.fetchTopicMetadata({ topics: historyTopics.map((t) => topicName(prefix, t)) });
  const partitions = Object.fromEntries(historyTopics.map((t) => [t, meta.topics.find((m) => m.name === topicName(prefix, t))!.partitions.length])) as Record<HistoryTopic, number>;
  const lanes = new Set(Array.from({ length: partitions.outcomes }, (_, p) => p).filter((p) => p % o.parts === o.part));
  const gen = new HistoryGenerator({ seed: o.seed, prefix, encoders, partitions, events: o.events, chunkEvents: o.chunkEvents, start: o.start, msPerEvent: o.msPerEvent * o.parts, lanes });

  // Writers: clients and agents (one plain producer), a coordinator lane per round partition (transactional), and a fenced one.
  const plain = createProducer(c.kafka);
  const laneProducers = new Map([...lanes].map((p) => [p, createTransactionalProducer(c.kafka, `${prefix}.history.p${p}`, 60_000)]));
  const zombie = createTransactionalProducer(c.kafka, `${prefix}.history.fenced.${o.part}`, 60_000);
  const producers = [plain, zombie, ...laneProducers.values()];
  await Promise.all(producers.map((p) => p.connect()));
  const setupDone = Date.now();
  // A transactional producer has one transaction at a time: each one's transactions are chained.
  const laneChains = new Map<number, Promise<unknown>>([...lanes].map((p) => [p, Promise.resolve()]));
  let zombieChain: Promise<unknown> = Promise.resolve();
  const zr = prng(o.seed ^ 0x5eed);
  const abortedChunks = new Set<number>();
  const chunksExpected = Math.max(1, Math.ceil(o.events / gen.chunkEvents));
  const abortCount = Math.min(4, Math.max(1, Math.round(o.events / 125_000)));
  for (let i = 1; i <= abortCount; i++) abortedChunks.add(Math.floor((i * chunksExpected) / (abortCount + 1)));
  const aborted = { transactions: 0, records: 0 };

  /** The next offset after what each committed transaction wrote, per `${topic}/${partition}`. */
  const committedEnds = new Map<string, number>();
  const inTransaction = async (producer: Producer, topicMessages: TopicMessages[], commit: boolean) => {
    const txn = await producer.transaction();
    let sent;
    try {
      sent = await txn.sendBatch({ topicMessages });
    } catch (error) {
      await txn.abort().catch(() => undefined);
      throw error;
    }
    await (commit ? txn.commit() : txn.abort());
    const counts = new Map<string, number>();
    for (const { topic, messages } of topicMessages) for (const m of messages) counts.set(`${topic}/${m.partition}`, (counts.get(`${topic}/${m.partition}`) ?? 0) + 1);
    for (const meta of sent) {
      const key = `${meta.topicName}/${meta.partition}`;
      const end = Number(meta.baseOffset) + (counts.get(key) ?? 0);
      if (end > (committedEnds.get(key) ?? 0)) committedEnds.set(key, end);
    }
  };

  /** One chunk: its inputs, then its misplaced answers alone, then each lane's outputs in a transaction of that lane. */
  const write = async (chunk: Chunk): Promise<void> => {
    await plain.sendBatch({ topicMessages: sorted(chunk.inputs) });
    for (const x of chunk.misplaced) {
      const [meta] = await plain.send({ topic: x.topic, messages: [x.m] });
      const from = x.m.partition!;
      const headers: IHeaders = { ...(x.m.headers ?? {}), [forwardedFromHeader]: `${x.topic}/${from}/${meta!.baseOffset}` };
      // The coordinator's copy on the key's partition, in its lane's next transaction.
      put(chunk.lanes[x.lane]!, x.topic, { ...x.m, partition: x.right, headers }, x.ts);
    }
    if (abortedChunks.has(chunk.index)) {
      const bogus = contradictions(chunk, partitions.outcomes, encoders, zr);
      if (bogus.length > 0) {
        zombieChain = zombieChain.then(() => inTransaction(zombie, [{ topic: topicName(prefix, 'outcomes'), messages: bogus }], false));
        await zombieChain;
        aborted.transactions++;
        aborted.records += bogus.length;
      }
    }
    await Promise.all(chunk.lanes.map((lane, p) => {
      if (lane.size === 0) return laneChains.get(p);
      const producer = laneProducers.get(p);
      if (!producer) throw new Error(`outputs for round partition ${p}, which part ${o.part} does not write`);
      const messages = sorted(lane);
      const next = laneChains.get(p)!.then(() => inTransaction(producer, messages, true));
      laneChains.set(p, next);
      return next;
    }));
  };

  const inFlight: Promise<void>[] = [];
  let written = 0;
  let failure: unknown;
  const flush = async () => {
    const chunk = gen.take();
    written += chunk.events;
    inFlight.push(write(chunk).catch((error: unknown) => {
      failure ??= error;
    }));
    // At most three chunks on their way: generating the next one overlaps the network and the broker.
    while (inFlight.length > 3) await inFlight.shift();
    if (failure) throw failure;
    progress(chunk.events);
  };
  try {
    while (written + gen.pending < o.events) {
      gen.next();
      if (gen.pending >= gen.chunkEvents) await flush();
    }
    if (gen.pending > 0) await flush();
    await Promise.all(inFlight);
    await Promise.all(laneChains.values());
    if (failure) throw failure;
  } finally {
    await Promise.allSettled(producers.map((p) => p.disconnect()));
  }
  const sentAt = Date.now();
  await untilReadable(c, committedEnds);
  const samples: Record<string, string[]> = {};
  for (const [protocol, ids] of gen.samplesBy) samples[protocol] = [...new Set([ids[0]!, ids[Math.floor(ids.length / 2)]!, ids.at(-1)!])];
  return {
    perTopic: gen.perTopic, rounds: gen.roundsBy, closings: gen.closings, statuses: gen.statuses, rejections: gen.rejections, stages: gen.stages, aborted,
    garbage: gen.garbageCount, misplaced: gen.misplacedCount, samples, notable: gen.notable,
    setup: (setupDone - started) / 1000, write: (sentAt - setupDone) / 1000, settle: (Date.now() - sentAt) / 1000,
  };
}

/** Runs a part in a worker thread of its own (this module), with connections of its own. */
function partInWorker(o: PartOptions, progress: (records: number) => void): Promise<PartSummary> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { historyPart: o } });
    let result: PartSummary | undefined;
    worker.on('message', (m: { progress?: number; done?: PartSummary; failed?: string }) => {
      if (m.progress !== undefined) progress(m.progress);
      if (m.done) result = m.done;
      if (m.failed) reject(new Error(`history part ${o.part}: ${m.failed}`));
    });
    worker.on('error', reject);
    worker.on('exit', (code) => (result ? resolve(result) : reject(new Error(`history part ${o.part} exited with code ${code} before it was done`))));
  });
}

if (!isMainThread && (workerData as { historyPart?: PartOptions } | null)?.historyPart) {
  const o = (workerData as { historyPart: PartOptions }).historyPart;
  silenceKafkajsTimerWarnings();
  const c = await defaultConnections();
  try {
    const done = await writePart(c, o, (records) => parentPort!.postMessage({ progress: records }));
    parentPort!.postMessage({ done });
  } catch (error) {
    parentPort!.postMessage({ failed: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    await c.close();
  }
}

/**
 * Writes a history of at least `options.events` records under the prefix
 * (or finds one there already) and says what it holds.
 */
export async function writeHistory(options: HistoryOptions): Promise<HistorySummary> {
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const c = options.connections ?? (await defaultConnections());
  const started = Date.now();
  const { prefix, events } = options;
  try {
    const found = await recordsOnTopics(c, prefix);
    const total = found ? Object.values(found).reduce((a, b) => a + b, 0) : 0;
    if (found && total >= events) {
      say(`history: prefix ${prefix} already holds ${total} records (at least ${events}): reused, nothing written`);
      await commitAsCoordinators(c, prefix);
      const seconds = (Date.now() - started) / 1000;
      return {
        prefix, reused: true, seed: null, workers: 0, before: total, perTopic: found, events: total, rounds: {}, closings: {}, statuses: {}, rejections: {}, stages: 0,
        aborted: { transactions: 0, records: 0 }, garbage: 0, misplaced: 0, seconds, timings: { setup: seconds, write: 0, settle: 0 }, eventsPerSecond: 0, writeEventsPerSecond: 0,
        samples: await samplesFromLog(c, prefix),
      };
    }
    if (!found) await applyTopics(c.admin, c.definitions, { prefix });
    // Registers what is new once, here, so the parts only look schema ids up.
    await encodersFor(c);
    const seed = options.seed ?? Number.parseInt(randomBytes(4).toString('hex'), 16);
    const toWrite = events - total;
    // On a 2-core machine that also runs the broker one writer does as well as two with less CPU; more cores, two.
    const workers = Math.max(1, Math.min(options.workers ?? (availableParallelism() >= 4 ? 2 : 1), 12));
    say(`history: writing at least ${toWrite} records under ${prefix} (seed ${seed}, ${workers} writer${workers === 1 ? '' : 's'})${total > 0 ? `, on top of ${total}` : ''}`);
    // Log time: about 1 ms per record, the last rounds about now.
    const msPerEvent = 1;
    const start = Date.now() - toWrite * msPerEvent - 60_000;
    const setupDone = Date.now();
    let written = 0;
    let nextReport = 100_000;
    const progress = (records: number) => {
      written += records;
      while (written >= nextReport) {
        const s = (Date.now() - setupDone) / 1000;
        say(`  ${written} records generated in ${s.toFixed(1)} s (${Math.round(written / s)}/s; ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB RSS)`);
        nextReport += 100_000;
      }
    };
    const partOptions = (part: number): PartOptions => ({
      prefix, events: Math.ceil(toWrite / workers), seed: (seed + part * 0x9e3779b1) >>> 0, part, parts: workers, start, msPerEvent, chunkEvents: options.chunkEvents ?? 16_000,
    });
    const parts = workers === 1
      ? [await writePart(c, partOptions(0), progress)]
      : await Promise.all(Array.from({ length: workers }, (_, k) => partInWorker(partOptions(k), progress)));
    await commitAsCoordinators(c, prefix);
    const seconds = (Date.now() - started) / 1000;
    const sum = (pick: (p: PartSummary) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const p of parts) for (const [k, v] of Object.entries(pick(p))) inc(out, k, v);
      return out;
    };
    const perTopic = sum((p) => p.perTopic) as Record<HistoryTopic, number>;
    const count = Object.values(perTopic).reduce((a, b) => a + b, 0);
    // A few ids per protocol, taken from every part in turn; then the notable ones.
    const samples: Record<string, string[]> = {};
    for (const kind of ['samples', 'notable'] as const) {
      const keys = new Set(parts.flatMap((p) => Object.keys(p[kind])));
      for (const k of keys) {
        const lists = parts.map((p) => p[kind][k] ?? []);
        const picked: string[] = [];
        for (let i = 0; picked.length < 3 && lists.some((l) => l.length > i); i++) for (const l of lists) if (l[i] && picked.length < 3 && !picked.includes(l[i]!)) picked.push(l[i]!);
        samples[k] = picked;
      }
    }
    const slowest = (pick: (p: PartSummary) => number) => Math.max(...parts.map(pick));
    const timings = { setup: (setupDone - started) / 1000 + slowest((p) => p.setup), write: slowest((p) => p.write), settle: slowest((p) => p.settle) };
    return {
      prefix, reused: false, seed, workers, before: total, perTopic, events: count, rounds: sum((p) => p.rounds), closings: sum((p) => p.closings), statuses: sum((p) => p.statuses),
      rejections: sum((p) => p.rejections), stages: parts.reduce((n, p) => n + p.stages, 0),
      aborted: { transactions: parts.reduce((n, p) => n + p.aborted.transactions, 0), records: parts.reduce((n, p) => n + p.aborted.records, 0) },
      garbage: parts.reduce((n, p) => n + p.garbage, 0), misplaced: parts.reduce((n, p) => n + p.misplaced, 0), seconds, timings,
      eventsPerSecond: Math.round(count / seconds), writeEventsPerSecond: Math.round(count / Math.max(0.001, timings.write + timings.settle)), samples,
    };
  } finally {
    if (!options.connections) await c.close();
  }
}

/**
 * The writer plays the coordinators: its outputs are their decisions. So the
 * coordinators group's committed offsets are where theirs would be after
 * deciding the whole history: at the end of every request and answer
 * partition (what an audit checks before it reads a round's partition only
 * from just before the round).
 */
async function commitAsCoordinators(c: Connections, prefix: string): Promise<void> {
  const groupId = `${prefix}.coordinators`;
  for (const name of ['bid-requests', 'bids', 'proposals', 'votes']) {
    const topic = topicName(prefix, name);
    const ends = await c.admin.fetchTopicOffsets(topic);
    await c.admin.setOffsets({ groupId, topic, partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })) });
  }
}

export interface HistoryVerdict {
  pass: boolean;
  /** Events read from the five round topics. */
  events: number;
  /** Rounds replay judged, and its verdicts. */
  rounds: number;
  verdicts: Record<string, number>;
  /** Rounds with more than one RoundOutcome. */
  repeated: number;
  /** Undecodable records by reason code. */
  undecodable: Record<string, number>;
  /** Undecodable records on another topic than bids (the garbage is only written there). */
  undecodableElsewhere: number;
  /** Records read that a coordinator copied from a wrong partition (mabeam-forwarded-from). */
  forwardedCopies: number;
  seconds: number;
  problems: string[];
}

/**
 * Reads the round topics of a prefix (readLog) and replays them
 * (replayRounds): every round identical (or refused, a request naming an
 * unknown protocol), none different, contradictory, duplicate, incomplete
 * or open, and nothing undecodable but the garbage written to bids.
 */
export async function verifyHistory(c: Connections, prefix: string, expected: { garbage?: number; refused?: number } = {}): Promise<HistoryVerdict> {
  const started = Date.now();
  const log = await readLog(c.kafka, c.codec, roundTopics.map((t) => topicName(prefix, t)), { timeoutMs: 900_000 });
  const report = await replayRounds(log, defaultProtocols());
  const verdicts: Record<string, number> = {};
  for (const r of report.rounds) inc(verdicts, r.verdict);
  const undecodable: Record<string, number> = {};
  for (const u of report.undecodable) inc(undecodable, u.code);
  const elsewhere = report.undecodable.filter((u) => u.topic !== topicName(prefix, 'bids')).length;
  const problems: string[] = [];
  for (const verdict of ['different', 'contradictory', 'duplicate', 'incomplete', 'open']) {
    const n = verdicts[verdict] ?? 0;
    if (n > 0) problems.push(`${n} rounds ${verdict} (first: ${report.rounds.find((r) => r.verdict === verdict)?.roundId})`);
  }
  if (report.repeated.length > 0) problems.push(`${report.repeated.length} rounds with more than one outcome (first: ${report.repeated[0]!.roundId}, ${report.repeated[0]!.kind})`);
  if (elsewhere > 0) problems.push(`${elsewhere} undecodable records outside bids`);
  if (expected.garbage !== undefined && report.undecodable.length !== expected.garbage) problems.push(`${report.undecodable.length} undecodable records, ${expected.garbage} garbage records written`);
  if (expected.refused !== undefined && (verdicts['refused'] ?? 0) !== expected.refused) problems.push(`${verdicts['refused'] ?? 0} rounds refused, ${expected.refused} requests with an unknown protocol written`);
  if ((verdicts['identical'] ?? 0) === 0) problems.push('no round replayed identical');
  return {
    pass: problems.length === 0,
    events: log.length,
    rounds: report.rounds.length,
    verdicts,
    repeated: report.repeated.length,
    undecodable,
    undecodableElsewhere: elsewhere,
    forwardedCopies: log.filter((r) => r.forwardedFrom !== undefined).length,
    seconds: (Date.now() - started) / 1000,
    problems,
  };
}

if (import.meta.main && isMainThread) {
  silenceKafkajsTimerWarnings();
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const events = Number(value('--events') ?? 1_000_000);
  const prefix = value('--prefix') ?? `bench-history-${events >= 1_000_000 && events % 1_000_000 === 0 ? `${events / 1_000_000}m` : events}`;
  const seedArg = value('--seed');
  const workersArg = value('--workers');
  if (!Number.isSafeInteger(events) || events <= 0) {
    process.stderr.write('usage: bench/history.ts [--events N] [--prefix P] [--seed N] [--workers N] [--verify]\n');
    process.exit(2);
  }
  const c = await defaultConnections();
  let code = 0;
  try {
    const summary = await writeHistory({ events, prefix, connections: c, ...(seedArg !== undefined ? { seed: Number(seedArg) } : {}), ...(workersArg !== undefined ? { workers: Number(workersArg) } : {}) });
    const s = summary;
    process.stderr.write(
      s.reused
        ? `history ${prefix}: reused, ${s.events} records\n`
        : `history ${prefix}: ${s.events} records in ${s.seconds.toFixed(1)} s (${s.eventsPerSecond} records/s; setup ${s.timings.setup.toFixed(1)} s, ` +
            `writing ${s.timings.write.toFixed(1)} s, last transactions readable ${s.timings.settle.toFixed(1)} s later: ${s.writeEventsPerSecond} records/s); rounds ${JSON.stringify(s.rounds)}\n`,
    );
    let verdict: HistoryVerdict | undefined;
    if (args.includes('--verify')) {
      process.stderr.write(`verify: reading ${roundTopics.length} round topics of ${prefix} and replaying every round…\n`);
      verdict = await verifyHistory(c, prefix, s.before > 0 ? {} : { garbage: s.garbage, refused: s.rejections['UNKNOWN_PROTOCOL'] ?? 0 });
      process.stderr.write(
        `verify: ${verdict.pass ? 'PASS' : 'FAIL'} — ${verdict.rounds} rounds judged: ${JSON.stringify(verdict.verdicts)}; ${verdict.repeated} with repeated outcomes; ` +
          `undecodable ${JSON.stringify(verdict.undecodable)}; ${verdict.forwardedCopies} forwarded copies; ${verdict.events} events read and replayed in ${verdict.seconds.toFixed(1)} s` +
          `${verdict.problems.length ? `\n  ${verdict.problems.join('\n  ')}` : ''}\n`,
      );
      if (!verdict.pass) code = 1;
    }
    process.stdout.write(`${JSON.stringify({ ...summary, ...(verdict ? { verify: verdict } : {}) })}\n`);
  } finally {
    await c.close();
  }
  process.exit(code);
}

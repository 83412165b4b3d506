/**
 * The hostile records of bench/hostile-flood.ts: what a careless or hostile
 * producer can put on the round topics, mixed with the honest rounds the
 * refusals need (a bid can only be a duplicate, late or ineligible in a
 * round that opened). Every record carries a `flood-seq` header so the
 * bench can find it again in a dead letter (which keeps the headers byte for
 * byte); an event that decodes is also found by its event id and agent in a
 * Rejection, or in the round-state changelog when it was counted or opened
 * a round.
 */
import type { EventCodec } from '../src/codec/codec.ts';
import { frame } from '../src/codec/wireFormat.ts';
import { partitionOfKey } from '../src/engine/routing.ts';
import { newEnvelope } from '../src/events/envelope.ts';
import type { Bid, BidRequest, EventTypeName, Proposal, RoundClosed, Vote } from '../src/events/types.ts';

export const seqHeader = 'flood-seq';
export const partitions = 12;

export type RoundTopic = 'bid-requests' | 'bids' | 'proposals' | 'votes' | 'outcomes';
export const roundTopics: readonly RoundTopic[] = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'];

export interface FloodRecord {
  seq: number;
  kind: string;
  topic: RoundTopic;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Set when the record was put on a partition its key does not hash to. */
  misplaced: boolean;
}

/** Small, seeded PRNG (mulberry32): a run's mix is reproducible from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Encoder {
  /** Avro body in the wire format, without the codec's validation (hostile events are invalid on purpose). */
  raw(type: EventTypeName, event: object): Buffer;
}

/** Schema ids are fetched once; after that every encoding is synchronous. */
export async function encoderFor(codec: EventCodec): Promise<Encoder> {
  const types: EventTypeName[] = ['BidRequest', 'Bid', 'Proposal', 'Vote', 'RoundClosed', 'Rejection', 'RoundOutcome'];
  const ids = new Map(await Promise.all(types.map(async (t) => [t, await codec.schemaId(t)] as const)));
  return {
    raw: (type, event) => {
      const schema = codec.catalog.get(type);
      const id = ids.get(type);
      if (!schema || id === undefined) throw new Error(`no schema for ${type}`);
      return frame(id, schema.type.toBuffer(event));
    },
  };
}

/** Generates the flood in chunks; the caller sends each chunk and records where each record landed. */
export class FloodGenerator {
  private seq = 0;
  private readonly r: () => number;
  private readonly enc: Encoder;
  private readonly misplaceRate: number;
  private readonly roundMs: number;
  private readonly forgedClockRate: number;

  /** forgedClockRate: of the answers to rounds that never open, how many are dated a year ahead (default 0.05). */
  constructor(enc: Encoder, options: { seed: number; misplaceRate?: number; roundMs?: number; forgedClockRate?: number }) {
    this.enc = enc;
    this.r = prng(options.seed);
    this.misplaceRate = options.misplaceRate ?? 0.1;
    this.roundMs = options.roundMs ?? 5_000;
    this.forgedClockRate = options.forgedClockRate ?? 0.05;
  }

  private int(n: number): number {
    return Math.floor(this.r() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  private id(): string {
    const hex = Array.from({ length: 4 }, () => this.int(0x100000000).toString(16).padStart(8, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }

  private bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A record on its key's partition, or (misplaceRate of keyed records) on another one. */
  private record(kind: string, topic: RoundTopic, key: string | Buffer | null, value: Buffer | null, out: FloodRecord[]): void {
    const k = key === null ? null : Buffer.isBuffer(key) ? key : Buffer.from(key);
    let partition = k === null ? this.int(partitions) : partitionOfKey(k, partitions);
    const misplaced = k !== null && this.r() < this.misplaceRate;
    if (misplaced) partition = (partition + 1 + this.int(partitions - 1)) % partitions;
    out.push({ seq: this.seq++, kind, topic, partition, key: k, value, misplaced });
  }

  private env(type: EventTypeName, roundId: string, time = Date.now()) {
    return { ...newEnvelope(type, 'flood', { correlationId: roundId, eventTime: time }), eventId: this.id() };
  }

  private request(roundId: string, agents: string[], protocol = 'first-price'): BidRequest {
    return {
      envelope: this.env('BidRequest', roundId), roundId, protocol, item: '{"gpuHours":1}', requiredCapabilities: [], eligibleAgents: agents,
      reservePrice: 5, deadline: Date.now() + this.roundMs, parameters: null,
    };
  }

  private proposal(roundId: string, voters: string[]): Proposal {
    return {
      envelope: this.env('Proposal', roundId), roundId, protocol: 'majority', subject: '"upgrade?"', options: ['yes', 'no'], eligibleVoters: voters,
      weights: {}, quorum: null, deadline: Date.now() + this.roundMs, parameters: null,
    };
  }

  private bid(roundId: string, agentId: string, amount: number): Bid {
    return { envelope: this.env('Bid', roundId), roundId, agentId, amount, bundle: [], attributes: null };
  }

  private vote(roundId: string, agentId: string, choice: string): Vote {
    return { envelope: this.env('Vote', roundId), roundId, agentId, choice, weight: null, reason: null };
  }

  /** A valid round-topic event of a random kind, for the corruptions below (never sent as it is). */
  private anyEvent(): { topic: RoundTopic; type: EventTypeName; event: Bid | Vote | BidRequest | Proposal | RoundClosed; roundId: string } {
    const roundId = `r-${this.id()}`;
    switch (this.int(5)) {
      case 0:
        return { topic: 'bid-requests', type: 'BidRequest', event: this.request(roundId, ['a0', 'a1', 'a2']), roundId };
      case 1:
        return { topic: 'proposals', type: 'Proposal', event: this.proposal(roundId, ['v0', 'v1', 'v2']), roundId };
      case 2:
        return { topic: 'votes', type: 'Vote', event: this.vote(roundId, 'v0', 'yes'), roundId };
      case 3:
        return {
          topic: 'outcomes', type: 'RoundClosed', roundId,
          event: { envelope: this.env('RoundClosed', roundId), roundId, protocol: 'first-price', cause: 'deadline', countedEventIds: [], stage: 0, final: true },
        };
      default:
        return { topic: 'bids', type: 'Bid', event: this.bid(roundId, 'a0', 10 + this.int(90)), roundId };
    }
  }

  /** An auction with honest bids around the hostile ones that only an open round can refuse. */
  private auction(out: FloodRecord[]): void {
    const roundId = `r-${this.id()}`;
    const agents = ['a0', 'a1', 'a2', 'a3'];
    const raw = this.enc.raw;
    this.record('round: bid request', 'bid-requests', roundId, raw('BidRequest', this.request(roundId, agents)), out);
    // Some rounds complete (every bidder bid), the others close at their deadline.
    const honest = this.r() < 0.5 ? agents : agents.slice(0, 1 + this.int(3));
    const bids = honest.map((a) => this.bid(roundId, a, 10 + this.int(90)));
    for (const b of bids) this.record('round: honest bid', 'bids', roundId, raw('Bid', b), out);
    const hostile: Array<() => void> = [
      () => this.record('bid: second bid of an agent', 'bids', roundId, raw('Bid', this.bid(roundId, honest[0]!, 50)), out),
      () => this.record('bid: not eligible', 'bids', roundId, raw('Bid', this.bid(roundId, `x${this.int(1000)}`, 50)), out),
      () => this.record('bid: negative amount', 'bids', roundId, raw('Bid', this.bid(roundId, 'a3', -1 - this.int(1000))), out),
      () => this.record('bid: huge amount', 'bids', roundId, raw('Bid', this.bid(roundId, 'a3', 1e15 * (1 + this.int(1000)))), out),
      () => this.record('bid: NaN amount', 'bids', roundId, raw('Bid', this.bid(roundId, 'a3', Number.NaN)), out),
      () => this.record('bid: infinite amount', 'bids', roundId, raw('Bid', this.bid(roundId, 'a3', Number.POSITIVE_INFINITY)), out),
      () => this.record('bid: under the reserve', 'bids', roundId, raw('Bid', this.bid(roundId, 'a3', 1)), out),
      () => this.record('vote: on an auction', 'votes', roundId, raw('Vote', this.vote(roundId, 'a3', 'yes')), out),
      () => this.record('request: round id used again', 'bid-requests', roundId, raw('BidRequest', this.request(roundId, agents)), out),
      () => {
        // A forged id: another agent's bid under the event id of an honest bid of this round.
        const forged = this.bid(roundId, honest.length < 4 ? 'a3' : `x${this.int(1000)}`, 77);
        forged.envelope.eventId = bids[0]!.envelope.eventId;
        this.record('bid: forged event id (an honest bid\'s)', 'bids', roundId, raw('Bid', forged), out);
      },
    ];
    for (let i = 0, n = 1 + this.int(4); i < n; i++) this.pick(hostile)();
  }

  private consensus(out: FloodRecord[]): void {
    const roundId = `r-${this.id()}`;
    const voters = ['v0', 'v1', 'v2'];
    const raw = this.enc.raw;
    this.record('round: proposal', 'proposals', roundId, raw('Proposal', this.proposal(roundId, voters)), out);
    const honest = this.r() < 0.5 ? voters : voters.slice(0, 1 + this.int(2));
    for (const v of honest) this.record('round: honest vote', 'votes', roundId, raw('Vote', this.vote(roundId, v, this.pick(['yes', 'no']))), out);
    const hostile: Array<() => void> = [
      () => this.record('vote: not an option', 'votes', roundId, raw('Vote', this.vote(roundId, 'v2', 'maybe')), out),
      () => this.record('vote: second vote of a voter', 'votes', roundId, raw('Vote', this.vote(roundId, honest[0]!, 'no')), out),
      () => this.record('vote: negative weight', 'votes', roundId, raw('Vote', { ...this.vote(roundId, 'v2', 'yes'), weight: -2 }), out),
      () => this.record('bid: on a consensus', 'bids', roundId, raw('Bid', this.bid(roundId, 'v2', 10)), out),
    ];
    for (let i = 0, n = 1 + this.int(2); i < n; i++) this.pick(hostile)();
  }

  /** One record that needs no round around it. */
  private single(out: FloodRecord[]): void {
    const raw = this.enc.raw;
    const topic = this.pick(roundTopics);
    const key = `r-${this.id()}`;
    switch (this.int(16)) {
      case 0: {
        const b = this.bytes(1 + this.int(200));
        if (b[0] === 0) b[0] = 1 + this.int(255);
        return this.record('garbage bytes', topic, this.r() < 0.8 ? key : null, b, out);
      }
      case 1: {
        const e = this.anyEvent();
        const v = raw(e.type, e.event);
        v[0] = 1 + this.int(255);
        return this.record('wrong magic byte', e.topic, e.roundId, v, out);
      }
      case 2: {
        const e = this.anyEvent();
        const v = raw(e.type, e.event);
        v.writeInt32BE(100_000_000 + this.int(2_000_000_000), 1);
        return this.record('unknown schema id', e.topic, e.roundId, v, out);
      }
      case 3:
        return this.record('shorter than the header', topic, key, Buffer.concat([Buffer.from([0]), this.bytes(this.int(4))]), out);
      case 4:
        return this.record('no value', topic, key, null, out);
      case 5: {
        const e = this.anyEvent();
        const v = raw(e.type, e.event);
        return this.record('truncated Avro', e.topic, e.roundId, v.subarray(0, 5 + this.int(v.length - 5)), out);
      }
      case 6:
      case 7: {
        const e = this.anyEvent();
        const v = Buffer.from(raw(e.type, e.event));
        for (let i = 0, n = 1 + this.int(3); i < n; i++) {
          const at = 5 + this.int(v.length - 5);
          v[at] = v[at]! ^ (1 << this.int(8));
        }
        return this.record('bit-flipped Avro', e.topic, e.roundId, v, out);
      }
      case 8:
      case 9:
        return this.r() < 0.5
          ? this.record('bid: round never opened', 'bids', key, raw('Bid', this.bid(key, 'a0', 10)), out)
          : this.record('vote: round never opened', 'votes', key, raw('Vote', this.vote(key, 'v0', 'yes')), out);
      case 10: {
        const e = this.anyEvent();
        return this.record('key is not the round id', e.topic, this.r() < 0.5 ? `r-${this.id()}` : null, raw(e.type, e.event), out);
      }
      case 11: {
        const b = this.bid(key, 'a0', 10);
        const which = this.int(3);
        if (which === 0) b.envelope.eventId = '';
        if (which === 1) b.agentId = '';
        if (which === 2) b.roundId = '';
        return this.record(`empty ${['event id', 'agent id', 'round id'][which]}`, 'bids', which === 2 ? '' : key, raw('Bid', b), out);
      }
      case 12: {
        // An event type the topic does not carry.
        const e = this.anyEvent();
        const wrong = roundTopics.filter((t) => t !== e.topic);
        return this.record('wrong event type for the topic', this.pick(wrong), e.roundId, raw(e.type, e.event), out);
      }
      case 13: {
        const r = this.request(key, ['a0'], this.pick(['no-such-protocol', 'majority', '']));
        return this.record(`request: protocol "${r.protocol}"`, 'bid-requests', key, raw('BidRequest', r), out);
      }
      case 14: {
        // A forged stage: a request for stage 3 that no coordinator opened.
        const r = { ...this.request(key, ['a0']), stage: 3 };
        return this.record('request: forged stage', 'bid-requests', key, raw('BidRequest', r), out);
      }
      default: {
        if (this.r() >= this.forgedClockRate) return this.record('bid: round never opened', 'bids', key, raw('Bid', this.bid(key, 'a1', 10)), out);
        // Dated far in the future (a forged clock).
        const b = this.bid(key, 'a0', 10);
        b.envelope.eventTime = Date.now() + 365 * 86_400_000 + this.int(86_400_000);
        return this.record('bid: dated a year ahead, round never opened', 'bids', key, raw('Bid', b), out);
      }
    }
  }

  /** The next `n` records or a few more (a round is never split). */
  next(n: number): FloodRecord[] {
    const out: FloodRecord[] = [];
    while (out.length < n) {
      const x = this.r();
      if (x < 0.25) this.auction(out);
      else if (x < 0.35) this.consensus(out);
      else this.single(out);
    }
    return out;
  }
}

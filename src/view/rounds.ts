/**
 * The latest rounds as summaries, folded from the round topics as the view
 * reads them: a BidRequest or Proposal of stage 0 opens a round, its
 * RoundOutcome decides it, a Rejection of its opening request fails it,
 * and its bids or votes are counted. The topics are read side by side, so
 * an answer or an outcome can come before its request: each is kept until
 * the request comes (a few rounds' worth) and the summary is completed then.
 */
import type { DecodedEvent } from '../codec/codec.ts';
import type { Bid, BidRequest, Proposal, Rejection, RoundOutcome, Vote } from '../events/types.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { RoundKind, RoundStatus, RoundSummary } from './types.ts';

export type RoundInput =
  | { type: 'BidRequest'; event: BidRequest }
  | { type: 'Proposal'; event: Proposal }
  | { type: 'Bid'; event: Bid }
  | { type: 'Vote'; event: Vote }
  | { type: 'RoundOutcome'; event: RoundOutcome }
  | { type: 'Rejection'; event: Rejection };

export const roundInputTypes: ReadonlySet<string> = new Set(['BidRequest', 'Proposal', 'Bid', 'Vote', 'RoundOutcome', 'Rejection']);

/** Whether a decoded event is one the board folds in (narrows it to those types). */
export function isRoundInput(decoded: DecodedEvent): decoded is DecodedEvent<RoundInput['type']> {
  return roundInputTypes.has(decoded.type);
}

interface Round {
  summary: RoundSummary;
  /** The opening request's event id, once seen. */
  requestId: string | null;
  /** What the request type says the round is, when the protocol is not known here. */
  requestKind: RoundKind | null;
  answerIds: Set<string>;
}

/** What came for a round not (yet) seen: its answers, and refusals of requests. */
interface Early {
  answerIds: Set<string>;
  refusals: Map<string, { reason: string; at: number }>;
}

export interface RoundBoardOptions {
  /** The protocols whose kind the view knows (the process-wide registry). */
  protocols: ProtocolRegistry;
  /** How many rounds are kept (the newest). */
  maxRounds: number;
}

const byRecency = (a: RoundSummary, b: RoundSummary): number => (b.openedAt ?? b.decidedAt ?? 0) - (a.openedAt ?? a.decidedAt ?? 0);

export class RoundBoard {
  private readonly rounds = new Map<string, Round>();
  private readonly early = new Map<string, Early>();
  private readonly o: RoundBoardOptions;

  constructor(options: RoundBoardOptions) {
    this.o = options;
  }

  get size(): number {
    return Math.min(this.rounds.size, this.o.maxRounds);
  }

  /** Folds one event in; the round's new summary when what it shows changed (opened, decided, failed). */
  apply(input: RoundInput): RoundSummary | undefined {
    switch (input.type) {
      case 'BidRequest':
      case 'Proposal': {
        const e = input.event;
        if ((e.stage ?? 0) !== 0) return undefined;
        const round = this.round(e.roundId, true)!;
        if (round.requestId !== null) return undefined;
        round.requestId = e.envelope.eventId;
        round.requestKind = input.type === 'BidRequest' ? 'auction' : 'consensus';
        const s = round.summary;
        s.openedAt = e.envelope.eventTime;
        if (!s.protocol) s.protocol = e.protocol;
        s.kind = this.kindOf(s.protocol, null, round.requestKind);
        this.settleLatency(s);
        const refusal = this.early.get(e.roundId)?.refusals.get(round.requestId);
        if (refusal && s.status === 'open') this.fail(s, refusal.reason, refusal.at);
        this.early.delete(e.roundId);
        this.trim();
        return { ...s };
      }
      case 'Bid':
      case 'Vote': {
        const e = input.event;
        const round = this.round(e.roundId, false);
        if (round) {
          round.answerIds.add(e.envelope.eventId);
          round.summary.answers = round.answerIds.size;
        } else {
          this.earlyOf(e.roundId).answerIds.add(e.envelope.eventId);
        }
        return undefined;
      }
      case 'RoundOutcome': {
        const e = input.event;
        const round = this.round(e.roundId, true)!;
        const s = round.summary;
        if (s.decidedAt !== null && s.status !== 'failed') return undefined;
        s.status = e.status;
        s.winners = [...e.winners];
        s.price = e.price;
        s.reason = e.reason === '' ? null : e.reason;
        s.decidedAt = e.envelope.eventTime;
        if (!s.protocol) s.protocol = e.protocol;
        s.kind = this.kindOf(s.protocol, e.kind ?? null, round.requestKind);
        this.settleLatency(s);
        this.trim();
        return { ...s };
      }
      case 'Rejection': {
        // A refused request (UNKNOWN_PROTOCOL, INVALID_REQUEST): no outcome follows, the round failed.
        const e = input.event;
        if (e.agentId !== null || e.rejectedEventId === null) return undefined;
        const reason = `${e.reason} [${e.reasonCode}]`;
        const round = this.round(e.subjectId, false);
        if (!round) {
          this.earlyOf(e.subjectId).refusals.set(e.rejectedEventId, { reason, at: e.envelope.eventTime });
          return undefined;
        }
        if (round.requestId !== e.rejectedEventId || round.summary.status !== 'open') return undefined;
        this.fail(round.summary, reason, e.envelope.eventTime);
        return { ...round.summary };
      }
    }
  }

  /** Newest first (by opening time, else decision time). */
  list(filter: { protocol?: string; status?: RoundStatus; limit?: number } = {}): RoundSummary[] {
    return [...this.rounds.values()]
      .map((r) => r.summary)
      .sort(byRecency)
      .slice(0, this.o.maxRounds)
      .filter((s) => (filter.protocol === undefined || s.protocol === filter.protocol) && (filter.status === undefined || s.status === filter.status))
      .slice(0, filter.limit ?? Infinity)
      .map((s) => ({ ...s }));
  }

  get(roundId: string): RoundSummary | undefined {
    const s = this.rounds.get(roundId)?.summary;
    return s ? { ...s } : undefined;
  }

  private round(roundId: string, create: boolean): Round | undefined {
    const existing = this.rounds.get(roundId);
    if (existing || !create) return existing;
    const early = this.early.get(roundId);
    const round: Round = {
      summary: { roundId, protocol: '', kind: 'other', status: 'open', winners: [], price: null, reason: null, openedAt: null, decidedAt: null, latencyMs: null, answers: early?.answerIds.size ?? 0 },
      requestId: null,
      requestKind: null,
      answerIds: early?.answerIds ?? new Set(),
    };
    if (early) early.answerIds = new Set();
    this.rounds.set(roundId, round);
    return round;
  }

  private earlyOf(roundId: string): Early {
    let early = this.early.get(roundId);
    if (!early) {
      early = { answerIds: new Set(), refusals: new Map() };
      this.early.set(roundId, early);
      // Answers to rounds long gone (or never opened) are not kept for ever.
      if (this.early.size > this.o.maxRounds * 4) this.early.delete(this.early.keys().next().value!);
    }
    return early;
  }

  private kindOf(protocol: string, outcomeKind: string | null, requestKind: RoundKind | null): RoundKind {
    const known = this.o.protocols.get(protocol)?.kind ?? outcomeKind ?? requestKind;
    return known === 'auction' || known === 'consensus' ? known : 'other';
  }

  private fail(s: RoundSummary, reason: string, at: number): void {
    s.status = 'failed';
    s.reason = reason;
    s.decidedAt = at;
    this.settleLatency(s);
  }

  private settleLatency(s: RoundSummary): void {
    s.latencyMs = s.openedAt !== null && s.decidedAt !== null ? Math.max(0, s.decidedAt - s.openedAt) : null;
  }

  /** Keeps the newest `maxRounds`; trims a tenth more at a time so it does not sort on every event. */
  private trim(): void {
    if (this.rounds.size <= this.o.maxRounds + Math.ceil(this.o.maxRounds / 10)) return;
    const keep = new Set([...this.rounds.values()].map((r) => r.summary).sort(byRecency).slice(0, this.o.maxRounds).map((s) => s.roundId));
    for (const id of this.rounds.keys()) if (!keep.has(id)) this.rounds.delete(id);
  }
}

/**
 * The vocabulary of coordination rounds, independent of Kafka. A binding
 * turns decoded events (BidRequest, Proposal, Bid, Vote, RoundClosed) into
 * RoundEvents and writes RoundDecisions back as events.
 */
export type ProtocolKind = 'auction' | 'consensus';

/** A round opens: from a BidRequest (auction) or a Proposal (consensus). */
export interface RoundOpen {
  type: 'open';
  roundId: string;
  protocol: string;
  kind: ProtocolKind;
  eventId: string;
  eventTime: number;
  deadline: number;
  /** Named bidders or voters; empty means anyone may bid (auctions). */
  eligible: string[];
  reservePrice: number | null;
  options: string[];
  weights: Record<string, number>;
  quorum: number | null;
  parameters: Record<string, unknown>;
}

/** A bid or a vote. */
export interface RoundAnswer {
  type: 'answer';
  roundId: string;
  kind: 'bid' | 'vote';
  agentId: string;
  eventId: string;
  eventTime: number;
  amount?: number;
  bundle?: string[];
  choice?: string;
}

/**
 * A round stops taking answers for a reason that came from outside the
 * answers (its deadline passed, it was cancelled). In a binding this comes
 * from the log — the coordinator writes it before acting on it.
 */
export interface RoundClose {
  type: 'close';
  roundId: string;
  cause: 'deadline' | 'cancelled';
  eventId: string;
}

/**
 * Log time advanced to `now` (the event time of what was just read). Answers
 * that arrived before their round's request wait; once log time is past
 * their own time plus the grace period they are refused as UNKNOWN_ROUND.
 * Being log time, not a clock, replay gives the same refusals.
 */
export interface RoundTick {
  type: 'tick';
  now: number;
}

export type RoundEvent = RoundOpen | RoundAnswer | RoundClose | RoundTick;

export const rejectionCodes = [
  'UNKNOWN_ROUND',
  'ROUND_CLOSED',
  'DUPLICATE_ROUND',
  'UNKNOWN_PROTOCOL',
  'INVALID_REQUEST',
  'WRONG_ANSWER_KIND',
  'NOT_ELIGIBLE',
  'DUPLICATE_ANSWER',
  'INVALID_AMOUNT',
  'BELOW_RESERVE',
  'INVALID_CHOICE',
] as const;

export type RejectionCode = (typeof rejectionCodes)[number];

export interface Rejected {
  type: 'rejected';
  roundId: string;
  /** The refused event: a request or an answer. */
  eventId: string;
  agentId: string | null;
  reasonCode: RejectionCode;
  reason: string;
}

export interface Closed {
  type: 'closed';
  roundId: string;
  protocol: string;
  cause: 'complete' | 'deadline' | 'cancelled';
  /** Event ids of the answers counted, in the order they were accepted. */
  counted: string[];
}

export interface Verdict {
  status: 'decided' | 'no-decision' | 'failed';
  winners: string[];
  price: number | null;
  /** The decided value (e.g. the winning choice), as JSON. */
  value: string | null;
  reason: string;
  details: Record<string, unknown>;
}

export interface Outcome extends Verdict {
  type: 'outcome';
  roundId: string;
  protocol: string;
}

export type RoundDecision = Rejected | Closed | Outcome;

/**
 * A coordination protocol: pure functions of the request and the answers
 * counted so far. Generic rules (unknown or closed round, eligibility, one
 * answer per agent, finite amounts, reserve price) are applied before
 * `check`; `decide` sees only answers that passed.
 */
export interface Protocol {
  name: string;
  kind: ProtocolKind;
  /** Why a request cannot run under this protocol, if it cannot. */
  validate?(open: RoundOpen): string | undefined;
  /** Protocol-specific refusal of one answer, if any. */
  check?(open: RoundOpen, answer: RoundAnswer): { reasonCode: RejectionCode; reason: string } | undefined;
  /** True when the round can be decided now, before its deadline. */
  complete(open: RoundOpen, counted: readonly RoundAnswer[]): boolean;
  decide(open: RoundOpen, counted: readonly RoundAnswer[], cause: Closed['cause']): Verdict;
}

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
  /**
   * Iterative protocols run a round in stages (English: each higher asking
   * price; Dutch: each lower price). Stage 0 is the request that opened the
   * round; each later stage is a request the coordinator writes, with the
   * same round id, and answers count toward the stage they reply to.
   */
  stage: number;
  /** Event ids of the requests of the round's earlier stages. */
  earlierStages: string[];  /** What the round is about (the request's item or subject, JSON); carried, never read, by protocols. */
  subject?: string;
  /** Capabilities an auction's bidders need; carried to later stages. */
  requiredCapabilities?: string[];
  /** Event time of the request that opened the round (stage 0); later stages keep it. */
  openedAt?: number;
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
  /** A vote's own weight, if it states one (Vote.weight). */
  weight?: number;
  /** Anything else the answer says (Bid.attributes), e.g. { side: "sell", quantity: 3 }. */
  attributes?: Record<string, unknown>;
  /** The request (stage) this answers: the answer's causation id. */
  inReplyTo?: string;
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
  /** The stage it closes (a deadline of an earlier stage closes nothing). Default 0. */
  stage?: number;
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
  /**
   * How far the request topics have been read (their latest event time), by
   * protocol kind: an answer waiting for its round is refused only once the
   * topic its request would come on has moved past it, not because answers
   * were read ahead of requests. Default `now`.
   */
  requestsAt?: Partial<Record<ProtocolKind, number>>;
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
  /** A bid under the asking price of an iterative auction's stage. */
  'BELOW_ASKING',
  /** The answer replies to an earlier stage of an iterative round. */
  'STALE_STAGE',
  /** The answer is malformed for this protocol (e.g. a bundle naming unknown items). */
  'INVALID_ANSWER',
  /** Taking the answer would pass a stated size limit (e.g. bundles in a combinatorial auction). */
  'LIMIT_EXCEEDED',
  /** Another answer with the same event id was already taken or refused: event ids are used once. */
  'DUPLICATE_EVENT',
  /** Signatures required: the answer is unsigned, its signature does not verify, or it is signed with another agent's key. */
  'FORGED',
  /** Signatures required: the key id it names is not registered for its agent. */
  'UNKNOWN_KEY',
  /** Signatures required: its key was past its notAfter (or replaced) at the record's log time. */
  'KEY_EXPIRED',
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
  /** The stage that closed. */
  stage: number;
  /** False when another stage follows (an iterative round goes on); true when an outcome follows. */
  final: boolean;
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
  /** What the round was about, carried from its request (JSON). */
  subject?: string;
  /** The kind of protocol that decided, and who could answer its last stage (empty: anyone), so a gate can check who decided. */
  kind?: ProtocolKind;
  eligible?: string[];
}

/** What an iterative protocol says when a stage ends and the round goes on. */
export interface NextStage {
  status: 'continue';
  /** The next stage's parameters: the protocol's whole state (asking price, standing bid, …). */
  parameters: Record<string, unknown>;
  /** Who may answer the next stage; the same as this stage when left out. */
  eligible?: string[];
  /** How long the next stage runs, in ms; as long as this stage when left out. */
  durationMs?: number;
  reason: string;
}

/** The coordinator opens a round's next stage: written as a request with the same round id. */
export interface Staged {
  type: 'stage';
  roundId: string;
  protocol: string;
  open: RoundOpen;
  reason: string;
}

export type RoundDecision = Rejected | Closed | Outcome | Staged;

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
  /** Protocol-specific refusal of one answer (given the answers this stage counted so far), if any. */
  check?(open: RoundOpen, answer: RoundAnswer, counted: readonly RoundAnswer[]): { reasonCode: RejectionCode; reason: string } | undefined;
  /** True when the round can be decided now, before its deadline. */
  complete(open: RoundOpen, counted: readonly RoundAnswer[]): boolean;
  /**
   * The outcome of the round, or (iterative protocols) of the stage: a
   * NextStage goes on with another stage, whose request carries the
   * parameters returned. `open` is the current stage's request.
   */
  decide(open: RoundOpen, counted: readonly RoundAnswer[], cause: Closed['cause']): Verdict | NextStage;
  /**
   * Whether a bidder may decline with a pass (a Bid with attributes.pass
   * true; its amount is ignored). A pass counts as an answer, so the round
   * need not wait for that bidder, and never wins. Protocols without it
   * refuse passes (INVALID_ANSWER).
   */
  acceptsPasses?: boolean;
}

import { deterministicEventId } from '../events/envelope.ts';
import type { Closed, Outcome, Protocol, Rejected, RoundAnswer, RoundClose, RoundDecision, RoundEvent, RoundOpen, RoundTick, Staged } from './types.ts';
import { answeredBy, countAnswer, nameSet } from './answered.ts';
import { packEventIds, type EventIds } from './eventIds.ts';

/** Bids above this are absurd unless a request says otherwise (parameters.maxAmount). */
export const defaultMaxAmount = 1e12;

/**
 * The most answers a round counts, and the most agents a request may name.
 * A round's whole state is one changelog record and its closing lists every
 * answer counted: this keeps both within what their topics take (round-state
 * 16 MB, outcomes 1 MB), so no round can grow into a record the broker
 * refuses, which would stop its partition.
 */
export const maxAnswersPerRound = 20_000;

/** How long (in log time) an answer may wait for its round's request. */
export const pendingGraceMs = 10_000;

export interface RoundState {
  open: RoundOpen;
  protocol: Protocol;
  counted: RoundAnswer[];
  closed: boolean;
  /** Event ids of every answer this round has taken or refused (so none is handled twice); packed once it closes (eventIds.ts). */
  handled: EventIds;
}

/** Every round a coordinator holds, and what happened to it. */
export interface Rounds {
  readonly byId: Map<string, RoundState>;
  /** Answers that came before their round's request (another topic, read earlier). */
  readonly pending: Map<string, RoundAnswer[]>;
}

export function emptyRounds(): Rounds {
  return { byId: new Map(), pending: new Map() };
}

/** A bid that declines (attributes.pass true): see Protocol.acceptsPasses. */
export const isPass = (answer: RoundAnswer): boolean => answer.kind === 'bid' && answer.attributes?.['pass'] === true;

const rejected = (roundId: string, eventId: string, agentId: string | null, reasonCode: Rejected['reasonCode'], reason: string): Rejected => ({
  type: 'rejected',
  roundId,
  eventId,
  agentId,
  reasonCode,
  reason,
});

/** The event id of the request of a round's stage (stage > 0); the same wherever it is computed. */
export function stageEventId(roundId: string, stage: number): string {
  return deterministicEventId('stage', roundId, String(stage));
}

/**
 * Log time at which a stage ends: its deadline when that closed it, else
 * the latest answer counted (or its request). Never a clock.
 */
function stageEndTime(round: RoundState, cause: Closed['cause']): number {
  if (cause === 'deadline') return round.open.deadline;
  return round.counted.reduce((t, a) => Math.max(t, a.eventTime), round.open.eventTime);
}

/*
 * Protocols are user code (registerProtocol). One that throws on some input
 * must not stop the join: a request it cannot check is refused, an answer it
 * cannot check is refused, a round it cannot decide ends as failed.
 */
function attempt<T>(work: () => T, onError: (message: string) => T): T {
  try {
    return work();
  } catch (error) {
    return onError(error instanceof Error ? error.message : String(error));
  }
}

function safeComplete(protocol: Protocol, open: RoundOpen, counted: readonly RoundAnswer[]): boolean {
  return attempt(() => protocol.complete(open, counted) === true, () => false);
}

function safeDecide(protocol: Protocol, open: RoundOpen, counted: readonly RoundAnswer[], cause: Closed['cause']): ReturnType<Protocol['decide']> {
  return attempt(
    () => protocol.decide(open, counted, cause),
    (error) => ({ status: 'failed', winners: [], price: null, value: null, reason: `Protocol "${protocol.name}" failed to decide: ${error}`, details: {} }),
  );
}

function finish(round: RoundState, cause: Closed['cause']): RoundDecision[] {
  const { open, protocol } = round;
  const verdict = safeDecide(protocol, open, round.counted, cause);
  const closed: Closed = {
    type: 'closed', roundId: open.roundId, protocol: protocol.name, cause, counted: round.counted.map((a) => a.eventId), stage: open.stage, final: verdict.status !== 'continue',
  };
  if (verdict.status !== 'continue') {
    round.closed = true;
    // A closed round is final (no stage reopens it): what it still decides — a copy refused as a
    // duplicate, anything else as ROUND_CLOSED — needs only its handled ids, packed. Its counted
    // answers, the bulk of its state, are let go: neither kept through its grace period nor
    // written to the changelog again.
    round.counted = [];
    round.handled = packEventIds(round.handled);
    const outcome: Outcome = { type: 'outcome', roundId: open.roundId, protocol: protocol.name, ...verdict, ...(open.subject !== undefined ? { subject: open.subject } : {}), kind: open.kind, eligible: open.eligible };
    return [closed, outcome];
  }
  // An iterative protocol goes on: the next stage is a request of its own, with a deterministic id and
  // times taken from the log, so a replay opens exactly the same stage.
  const start = stageEndTime(round, cause);
  const stage = open.stage + 1;
  const next: RoundOpen = {
    ...open,
    eventId: stageEventId(open.roundId, stage),
    eventTime: start,
    deadline: start + (verdict.durationMs ?? Math.max(0, open.deadline - open.eventTime)),
    eligible: verdict.eligible ?? open.eligible,
    parameters: verdict.parameters,
    stage,
    earlierStages: [...open.earlierStages, open.eventId],
    openedAt: open.openedAt ?? open.eventTime,
  };
  round.open = next;
  round.counted = [];
  const staged: Staged = { type: 'stage', roundId: open.roundId, protocol: protocol.name, open: next, reason: verdict.reason };
  return [closed, staged];
}

function openRound(rounds: Rounds, open: RoundOpen, lookup: (name: string) => Protocol | undefined): RoundDecision[] {
  const existing = rounds.byId.get(open.roundId);
  if (existing) {
    // A stage this round opened itself (read back, or from the log on replay) changes nothing.
    if (open.eventId === existing.open.eventId || existing.open.earlierStages.includes(open.eventId)) return [];
    // A later stage that another coordinator opened (its changelog record not read yet): go on from it.
    if (open.stage > existing.open.stage && open.eventId === stageEventId(open.roundId, open.stage) && !existing.closed) {
      existing.open = open;
      existing.counted = [];
      return [];
    }
    return [rejected(open.roundId, open.eventId, null, 'DUPLICATE_ROUND', `Round ${open.roundId} is already open or decided; a round id is used once.`)];
  }
  if (open.stage > 0 && open.eventId !== stageEventId(open.roundId, open.stage)) {
    return [rejected(open.roundId, open.eventId, null, 'INVALID_REQUEST', `A request opens stage 0; stage ${open.stage} of round ${open.roundId} is opened by its coordinator.`)];
  }
  const protocol = lookup(open.protocol);
  if (!protocol) return [rejected(open.roundId, open.eventId, null, 'UNKNOWN_PROTOCOL', `No protocol "${open.protocol}" is registered.`)];
  if (protocol.kind !== open.kind) {
    return [rejected(open.roundId, open.eventId, null, 'INVALID_REQUEST', `Protocol "${open.protocol}" is ${protocol.kind === 'auction' ? 'an auction (send a bid request)' : 'a consensus (send a proposal)'}.`)];
  }
  const named = nameSet(open.eligible).size;
  if (named > maxAnswersPerRound) {
    return [rejected(open.roundId, open.eventId, null, 'INVALID_REQUEST', `A round names at most ${maxAnswersPerRound} ${open.kind === 'auction' ? 'bidders' : 'voters'}; this one names ${named}.`)];
  }
  const invalid = attempt(() => protocol.validate?.(open), (error) => `Protocol "${protocol.name}" could not check the request: ${error}`);
  if (invalid) return [rejected(open.roundId, open.eventId, null, 'INVALID_REQUEST', invalid)];
  rounds.byId.set(open.roundId, { open, protocol, counted: [], closed: false, handled: new Set() });
  const waiting = rounds.pending.get(open.roundId) ?? [];
  rounds.pending.delete(open.roundId);
  return waiting.flatMap((answer) => answerRound(rounds, answer));
}

function answerRound(rounds: Rounds, answer: RoundAnswer): RoundDecision[] {
  const round = rounds.byId.get(answer.roundId);
  const no = (code: Rejected['reasonCode'], reason: string) => [rejected(answer.roundId, answer.eventId, answer.agentId, code, reason)];
  const again = () => no('DUPLICATE_EVENT', `An answer with event id ${answer.eventId} was already taken or refused in round ${answer.roundId}; event ids are used once.`);
  if (!round) {
    const waiting = rounds.pending.get(answer.roundId) ?? [];
    if (waiting.some((a) => a.eventId === answer.eventId)) return again();
    rounds.pending.set(answer.roundId, [...waiting, answer]);
    return [];
  }
  // A second record with an event id already handled (a copy, or a forgery) is refused, never silently dropped.
  if (round.handled.has(answer.eventId)) return again();
  round.handled.add(answer.eventId);
  if (round.closed) return no('ROUND_CLOSED', `Round ${answer.roundId} is closed.`);
  const { open, protocol } = round;
  if (answer.inReplyTo !== undefined && open.earlierStages.includes(answer.inReplyTo)) {
    return no('STALE_STAGE', `The answer replies to an earlier stage of round ${answer.roundId}, which is at stage ${open.stage} now.`);
  }
  const expected = open.kind === 'auction' ? 'bid' : 'vote';
  if (answer.kind !== expected) return no('WRONG_ANSWER_KIND', `Round ${answer.roundId} is ${open.kind === 'auction' ? 'an auction' : 'a consensus'}: it takes ${expected}s, not ${answer.kind}s.`);
  if (open.eligible.length > 0 && !nameSet(open.eligible).has(answer.agentId)) {
    return no('NOT_ELIGIBLE', `${answer.agentId} is not one of the ${open.kind === 'auction' ? 'bidders' : 'voters'} of round ${answer.roundId}.`);
  }
  if (answeredBy(round.counted).has(answer.agentId)) {
    return no('DUPLICATE_ANSWER', `${answer.agentId} already answered round ${answer.roundId}; the first answer counts.`);
  }
  if (round.counted.length >= maxAnswersPerRound) return no('LIMIT_EXCEEDED', `Round ${answer.roundId} has counted ${maxAnswersPerRound} answers, the most a round takes.`);
  const pass = isPass(answer);
  if (pass && !protocol.acceptsPasses) return no('INVALID_ANSWER', `${protocol.name} takes no passes: a bidder that does not bid stays out.`);
  if (answer.kind === 'bid' && !pass) {
    const max = typeof open.parameters['maxAmount'] === 'number' ? open.parameters['maxAmount'] : defaultMaxAmount;
    const amount = answer.amount;
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0 || amount > max) {
      return no('INVALID_AMOUNT', `A bid must be a finite amount between 0 and ${max}, not ${String(amount)}.`);
    }
    if (open.reservePrice !== null && amount < open.reservePrice) return no('BELOW_RESERVE', `${amount} is under the reserve price ${open.reservePrice}.`);
  }
  const refusal = attempt(
    () => protocol.check?.(open, answer, round.counted),
    (error) => ({ reasonCode: 'INVALID_ANSWER' as const, reason: `Protocol "${protocol.name}" could not check the answer: ${error}` }),
  );
  if (refusal) return no(refusal.reasonCode, refusal.reason);
  countAnswer(round.counted, answer);
  return safeComplete(protocol, open, round.counted) ? finish(round, 'complete') : [];
}

/**
 * Whether an answer has waited too long for its round: the topic its request
 * would come on has moved `pendingGraceMs` past it — or it is dated ahead of
 * everything read (a forged or broken clock), so no request could ever
 * catch up with it.
 */
export function waitedTooLong(answer: RoundAnswer, t: Pick<RoundTick, 'now' | 'requestsAt'>): boolean {
  const requests = t.requestsAt?.[answer.kind === 'bid' ? 'auction' : 'consensus'] ?? t.now;
  return answer.eventTime + pendingGraceMs < requests || answer.eventTime > t.now + pendingGraceMs;
}

function tick(rounds: Rounds, t: RoundTick): RoundDecision[] {
  const out: RoundDecision[] = [];
  for (const [roundId, answers] of rounds.pending) {
    const expired = answers.filter((a) => waitedTooLong(a, t));
    if (expired.length === 0) continue;
    const left = answers.filter((a) => !expired.includes(a));
    if (left.length > 0) rounds.pending.set(roundId, left);
    else rounds.pending.delete(roundId);
    for (const a of expired) {
      const reason = a.eventTime > t.now + pendingGraceMs
        ? `The answer is dated ${a.eventTime - t.now} ms ahead of the log; no round ${roundId} can be matched to it.`
        : `No round ${roundId} was opened within ${pendingGraceMs} ms of this answer.`;
      out.push(rejected(roundId, a.eventId, a.agentId, 'UNKNOWN_ROUND', reason));
    }
  }
  return out;
}

function closeRound(rounds: Rounds, close: RoundClose): RoundDecision[] {
  const round = rounds.byId.get(close.roundId);
  // Closing a round that is unknown or already decided, or a stage that is over, changes nothing
  // (a deadline can race completion).
  if (!round || round.closed || (close.stage ?? 0) !== round.open.stage) return [];
  return finish(round, close.cause);
}

/**
 * Applies one event to the rounds and returns the decisions it causes, in
 * order. Deterministic: the same events in the same order give the same
 * decisions; nothing here reads a clock or draws a random number.
 */
export function applyRoundEvent(rounds: Rounds, event: RoundEvent, lookup: (name: string) => Protocol | undefined): RoundDecision[] {
  switch (event.type) {
    case 'open':
      return openRound(rounds, event, lookup);
    case 'answer':
      return answerRound(rounds, event);
    case 'close':
      return closeRound(rounds, event);
    case 'tick':
      return tick(rounds, event);
  }
}

/** Forgets a round (its partition went to another coordinator). */
export function dropRound(rounds: Rounds, roundId: string): void {
  rounds.byId.delete(roundId);
  rounds.pending.delete(roundId);
}

import type { RoundClosed } from '../events/types.ts';
import { toRoundEvent } from '../coordinator/events.ts';
import type { RoundAnswer, RoundEvent, RoundOpen } from '../protocols/types.ts';
import type { LogRecord, UndecodableRecord } from './scanLog.ts';
import { summary, type OutcomeSummary } from './outcomes.ts';

/** Where a record is in the log. */
export interface Position {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
}

/** One RoundOutcome record of the log, and where it is. */
export interface RecordedOutcome extends OutcomeSummary {
  topic: string;
  partition: number;
  offset: number;
  eventId: string;
}

/** What the log recorded of one round: its request, each stage's closing, its outcomes. */
export interface RecordedRound {
  roundId: string;
  /** The request that opened the round (stage 0), as the coordinator read it. */
  open?: RoundOpen;
  /** Where that request is. */
  opened?: Position;
  /** The first closing of each stage (an iterative round closes each of its stages once). */
  stages: Map<number, RoundClosed>;
  /** Every RoundOutcome of the round, in log order. */
  outcomes: RecordedOutcome[];
  /** Every answer (bid or vote) given in the round, by event id, so its closings find the ones they counted. */
  answers: Map<string, RoundAnswer>;
  /** Decided again while the log was read (see settleAsRead); its answers are let go. */
  settled?: SettledRound;
  /** Answers whose signature replay refused (signatures required), by event id: never taken as the round's answer of that id. */
  forged?: Map<string, ForgedAnswer>;
}

/** An answer refused for its signature. */
export interface ForgedAnswer {
  eventId: string;
  agentId: string;
  reasonCode: string;
  reason: string;
}

/** The signature check replay makes of each answer (checkSignature with the log's key directory); undefined: it is its agent's. */
export type VerifyAnswer = (record: LogRecord, agentId: string) => { reasonCode: string; reason: string } | undefined;

/** A round decided again: the outcome, the answers counted, or what was missing to decide it. */
export interface SettledRound {
  replayed?: OutcomeSummary;
  counted: Array<{ agentId: string; amount?: number; choice?: string }>;
  missing: string[];
  /** Answers a closing counted that replay refused for their signature (left out when deciding again). */
  forged?: ForgedAnswer[];
}

/** The inputs a round was decided from, as the protocols take them; or what is missing from the log. */
export type RoundInputs =
  | { complete: true; open: RoundOpen; stages: RoundClosed[]; countedByStage: RoundAnswer[][]; events: RoundEvent[]; forged: ForgedAnswer[] }
  | { complete: false; missing: string[] };

/**
 * The rounds of a log, gathered record by record as the log is read (any
 * topic order: a round's events are on one partition number of several
 * topics, read side by side). Only what replay and audit need is kept: the
 * request, the answers (per round, by event id, so a closing's counted
 * list finds them), the closings, the outcomes. A record read twice (the engine's copy
 * of a misplaced record has the same event id) counts once.
 */
export class RoundHistory {
  readonly rounds = new Map<string, RecordedRound>();
  /** Called once for each round the log has all of, as soon as it has (see settleAsRead). */
  private readonly onComplete: ((round: RecordedRound, history: RoundHistory) => void) | undefined;
  /** With signatures required: the check each bid and vote must pass to be an answer (its record needs LogRecord.raw). */
  private readonly verify: VerifyAnswer | undefined;

  constructor(onComplete?: (round: RecordedRound, history: RoundHistory) => void, verify?: VerifyAnswer) {
    this.onComplete = onComplete;
    this.verify = verify;
  }
  readonly undecodable: UndecodableRecord[] = [];
  /** Events read. */
  events = 0;

  add(record: LogRecord): void {
    this.events++;
    const { decoded } = record;
    switch (decoded.type) {
      case 'BidRequest':
      case 'Proposal': {
        const request = decoded.event;
        if ((request.stage ?? 0) !== 0) return; // later stages' requests come from the protocol
        const round = this.round(request.roundId);
        if (round.open) return;
        round.open = toRoundEvent(decoded) as RoundOpen;
        round.opened = { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp };
        return;
      }
      case 'Bid':
      case 'Vote': {
        const answer = decoded.event;
        const round = this.round(answer.roundId);
        if (round.settled || round.answers.has(answer.envelope.eventId)) return;
        const refusal = this.verify?.(record, answer.agentId);
        if (refusal) {
          // Kept apart: a forged record that reuses an honest answer's event id must not stand in for it.
          (round.forged ??= new Map()).set(answer.envelope.eventId, { eventId: answer.envelope.eventId, agentId: answer.agentId, ...refusal });
          if (round.outcomes.length > 0) this.checkComplete(round);
          return;
        }
        round.answers.set(answer.envelope.eventId, toRoundEvent(decoded) as RoundAnswer);
        // Late answers are refused and counted by no closing: only a round still waiting for a counted one is checked.
        if (round.outcomes.length > 0) this.checkComplete(round);
        return;
      }
      case 'RoundClosed': {
        const closing = decoded.event;
        const round = this.round(closing.roundId);
        const stage = closing.stage ?? 0;
        if (!round.stages.has(stage)) round.stages.set(stage, closing);
        if (round.outcomes.length > 0) this.checkComplete(round);
        return;
      }
      case 'RoundOutcome': {
        const o = decoded.event;
        const round = this.round(o.roundId);
        round.outcomes.push({ topic: record.topic, partition: record.partition, offset: record.offset, eventId: o.envelope.eventId, ...summary(o) });
        this.checkComplete(round);
        return;
      }
      case 'Rejection': {
        // A refusal of a request (no agent): kept by the refused event id, as outcomes may be read before the request.
        const r = decoded.event;
        if (r.agentId === null && r.rejectedEventId) this.refusals.set(r.rejectedEventId, { reasonCode: r.reasonCode, reason: r.reason });
        return;
      }
    }
  }

  /** Refusals of requests, by the refused event id. */
  private readonly refusals = new Map<string, { reasonCode: string; reason: string }>();

  /** The coordinator's refusal of the round's request, if it refused it. */
  refusalOf(round: RecordedRound): { reasonCode: string; reason: string } | undefined {
    return round.open ? this.refusals.get(round.open.eventId) : undefined;
  }

  /**
   * What the protocols are given to decide the round again: the request,
   * then per stage the answers its closing counted (in that order) and, if
   * a deadline closed it, that closing — the operator opens later stages
   * itself, as the coordinator did.
   */
  inputs(round: RecordedRound): RoundInputs {
    const missing: string[] = [];
    if (!round.open) missing.push('the request');
    const stages = [...round.stages.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
    if (stages.length === 0) missing.push('its closing');
    stages.forEach((c, i) => {
      if ((c.stage ?? 0) !== i) missing.push(`the closing of stage ${i}`);
    });
    const forged: ForgedAnswer[] = [];
    const stagesWithForged = new Set<number>();
    const countedByStage = stages.map((c, i) =>
      c.countedEventIds.flatMap((id) => {
        const answer = round.answers.get(id);
        if (answer) return [answer];
        // Counted by the coordinator, refused here: decided again without it (the outcome then differs).
        const refused = round.forged?.get(id);
        if (refused) {
          forged.push(refused);
          stagesWithForged.add(i);
        } else missing.push(`counted answer ${id}`);
        return [];
      }),
    );
    if (missing.length > 0 || !round.open) return { complete: false, missing };
    const events: RoundEvent[] = [round.open];
    stages.forEach((c, i) => {
      events.push(...countedByStage[i]!);
      // A stage that closed complete with a refused answer among those counted is closed where it closed, with the rest.
      const cause = c.cause !== 'complete' ? c.cause : stagesWithForged.has(i) ? 'deadline' : undefined;
      if (cause) events.push({ type: 'close', roundId: round.roundId, cause, eventId: c.envelope.eventId, stage: c.stage ?? 0 });
    });
    return { complete: true, open: round.open, stages, countedByStage, events, forged };
  }

  private checkComplete(round: RecordedRound): void {
    if (!this.onComplete || round.settled || !round.open) return;
    let last: RoundClosed | undefined;
    let top = -1;
    for (const [stage, closing] of round.stages) {
      if (stage > top) {
        top = stage;
        last = closing;
      }
    }
    if (!last || last.final === false || round.stages.size !== top + 1) return;
    for (const closing of round.stages.values()) for (const id of closing.countedEventIds) if (!round.answers.has(id) && !round.forged?.has(id)) return;
    this.onComplete(round, this);
  }

  private round(roundId: string): RecordedRound {
    let round = this.rounds.get(roundId);
    if (!round) {
      round = { roundId, stages: new Map(), outcomes: [], answers: new Map() };
      this.rounds.set(roundId, round);
    }
    return round;
  }
}

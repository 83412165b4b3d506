import { firstValueFrom, from, toArray } from 'rxjs';
import type { Bid, BidRequest, Proposal, RoundClosed, RoundOutcome, Vote } from '../events/types.ts';
import { toRoundEvent } from '../coordinator/events.ts';
import { coordinate } from '../protocols/coordinate.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { Outcome, RoundAnswer, RoundEvent } from '../protocols/types.ts';
import type { LogRecord, UndecodableRecord } from './scanLog.ts';

/** What an outcome decided, as compared: `details` parsed from the recorded JSON. */
export interface OutcomeSummary {
  status: RoundOutcome['status'];
  winners: string[];
  price: number | null;
  value: string | null;
  details: unknown;
}

/** One RoundOutcome record of the log, and where it is. */
export interface RecordedOutcome extends OutcomeSummary {
  topic: string;
  partition: number;
  offset: number;
  eventId: string;
}

/** A round the log holds more than one RoundOutcome for. */
export interface RepeatedOutcome {
  roundId: string;
  /** contradictory: they decide differently; duplicate: they decide the same (an output written twice). */
  kind: 'contradictory' | 'duplicate';
  outcomes: RecordedOutcome[];
}

export interface RoundReplay {
  roundId: string;
  protocol: string;
  cause: RoundClosed['cause'];
  /** The first outcome the log holds for the round (all of them are in `outcomes` when there are more). */
  recorded: OutcomeSummary;
  replayed: OutcomeSummary | undefined;
  /** How many RoundOutcome records the log holds for the round. */
  outcomes: number;
  /** The answers counted, as the log recorded them: who took part. */
  counted: Array<{ agentId: string; amount?: number; choice?: string }>;
  /** The replayed outcome equals every recorded outcome of the round, details included. */
  identical: boolean;
}

export interface ReplayReport {
  rounds: RoundReplay[];
  identical: number;
  different: number;
  /** Rounds with a recorded closing whose request or counted answers are missing from the log. */
  incomplete: string[];
  /** Every round with more than one RoundOutcome in the log, replayed or not. */
  repeated: RepeatedOutcome[];
  /** Every record of the log that did not decode, with its position (from readLog). */
  undecodable: UndecodableRecord[];
}

/**
 * Re-runs every decided round of a log through the protocols: its request,
 * the answers its RoundClosed says were counted (in that order) and the
 * recorded cause of closing go through `coordinate()`, and the outcome is
 * compared with the recorded RoundOutcome. What was decided from outside
 * the log (a deadline) is in the log, so the same input gives the same
 * outcome — or the report says which round differs and how. Nothing is
 * left out: every round with more than one RoundOutcome is reported
 * (contradictory or duplicate), a round is identical only when its replay
 * equals every recorded outcome, details included, and the records that
 * did not decode are listed with their positions.
 */
export async function replayRounds(log: LogRecord[] & { undecodable?: UndecodableRecord[] }, protocols: ProtocolRegistry): Promise<ReplayReport> {
  const requests = new Map<string, RoundEvent>();
  const answers = new Map<string, RoundAnswer>();
  const closings: RoundClosed[] = [];
  /** Every outcome of each round, in log order. */
  const outcomes = new Map<string, RecordedOutcome[]>();
  for (const { decoded, topic, partition, offset } of log) {
    switch (decoded.type) {
      case 'BidRequest':
      case 'Proposal': {
        const open = toRoundEvent(decoded)!;
        const roundId = (decoded.event as unknown as BidRequest | Proposal).roundId;
        // The request that opened the round; later stages' requests come from the protocol.
        if (!requests.has(roundId) && open.type === 'open' && open.stage === 0) requests.set(roundId, open);
        break;
      }
      case 'Bid':
      case 'Vote': {
        const answer = toRoundEvent(decoded) as RoundAnswer;
        answers.set((decoded.event as unknown as Bid | Vote).envelope.eventId, answer);
        break;
      }
      case 'RoundClosed':
        closings.push(decoded.event as unknown as RoundClosed);
        break;
      case 'RoundOutcome': {
        const o = decoded.event as unknown as RoundOutcome;
        const all = outcomes.get(o.roundId) ?? [];
        all.push({ topic, partition, offset, eventId: o.envelope.eventId, ...summary(o) });
        outcomes.set(o.roundId, all);
        break;
      }
    }
  }
  const report: ReplayReport = { rounds: [], identical: 0, different: 0, incomplete: [], repeated: [], undecodable: [...(log.undecodable ?? [])] };
  for (const [roundId, all] of outcomes) {
    if (all.length < 2) continue;
    const first = canonical(pick(all[0]!));
    report.repeated.push({ roundId, kind: all.every((o) => canonical(pick(o)) === first) ? 'duplicate' : 'contradictory', outcomes: all });
  }
  // Each stage of a round closes once (an iterative round has several stages); the last closes for good.
  const stagesOf = new Map<string, Map<number, RoundClosed>>();
  for (const closing of closings) {
    const stages = stagesOf.get(closing.roundId) ?? new Map<number, RoundClosed>();
    if (!stages.has(closing.stage ?? 0)) stages.set(closing.stage ?? 0, closing);
    stagesOf.set(closing.roundId, stages);
  }
  for (const [roundId, stages] of stagesOf) {
    const ordered = [...stages.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
    const closing = ordered[ordered.length - 1]!;
    if (closing.final === false) continue; // still running when the log was read
    const open = requests.get(roundId);
    const countedByStage = ordered.map((c) => c.countedEventIds.map((id) => answers.get(id)));
    const counted = countedByStage.flat();
    const recordedAll = outcomes.get(roundId) ?? [];
    const recorded = recordedAll[0];
    if (!open || counted.some((a) => !a) || !recorded || ordered.some((c, i) => (c.stage ?? 0) !== i)) {
      report.incomplete.push(roundId);
      continue;
    }
    // The request, then per stage the answers its closing counted and, if a deadline closed it, that closing:
    // the operator opens the later stages itself, as the coordinator did.
    const events: RoundEvent[] = [open];
    ordered.forEach((c, i) => {
      events.push(...(countedByStage[i] as RoundAnswer[]));
      if (c.cause !== 'complete') events.push({ type: 'close', roundId, cause: c.cause, eventId: c.envelope.eventId, stage: c.stage ?? 0 });
    });
    const decisions = await firstValueFrom(from(events).pipe(coordinate((name) => protocols.get(name)), toArray()));
    const decided = decisions.find((d): d is Outcome => d.type === 'outcome');
    const replayed = decided ? pick(decided) : undefined;
    const identical = replayed !== undefined && recordedAll.every((r) => canonical(pick(r)) === canonical(replayed));
    report.rounds.push({
      roundId,
      protocol: closing.protocol,
      cause: closing.cause,
      recorded: pick(recorded),
      replayed,
      outcomes: recordedAll.length,
      counted: (counted as RoundAnswer[]).map((a) => ({ agentId: a.agentId, ...(a.amount !== undefined ? { amount: a.amount } : {}), ...(a.choice !== undefined ? { choice: a.choice } : {}) })),
      identical,
    });
    if (identical) report.identical++;
    else report.different++;
  }
  return report;
}

function summary(o: RoundOutcome): OutcomeSummary {
  let details: unknown = o.details;
  if (o.details !== null) {
    try {
      details = JSON.parse(o.details);
    } catch {
      // not JSON: compared as the text it is
    }
  }
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details };
}

function pick(o: OutcomeSummary): OutcomeSummary {
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details: o.details ?? {} };
}

/** JSON with object keys sorted, so equal outcomes compare equal whatever order their details were built in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

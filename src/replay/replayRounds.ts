import { firstValueFrom, from, toArray } from 'rxjs';
import type { Bid, BidRequest, Proposal, RoundClosed, RoundOutcome, Vote } from '../events/types.ts';
import { toRoundEvent } from '../coordinator/events.ts';
import { coordinate } from '../protocols/coordinate.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { Outcome, RoundAnswer, RoundEvent } from '../protocols/types.ts';
import type { LogRecord } from './readLog.ts';

export interface RoundReplay {
  roundId: string;
  protocol: string;
  cause: RoundClosed['cause'];
  recorded: Pick<RoundOutcome, 'status' | 'winners' | 'price' | 'value'>;
  replayed: Pick<Outcome, 'status' | 'winners' | 'price' | 'value'> | undefined;
  /** The answers counted, as the log recorded them: who took part. */
  counted: Array<{ agentId: string; amount?: number; choice?: string }>;
  identical: boolean;
}

export interface ReplayReport {
  rounds: RoundReplay[];
  identical: number;
  different: number;
  /** Rounds with a recorded closing whose request or counted answers are missing from the log. */
  incomplete: string[];
}

/**
 * Re-runs every decided round of a log through the protocols: its request,
 * the answers its RoundClosed says were counted (in that order) and the
 * recorded cause of closing go through `coordinate()`, and the outcome is
 * compared with the recorded RoundOutcome. What was decided from outside
 * the log (a deadline) is in the log, so the same input gives the same
 * outcome — or the report says which round differs and how.
 */
export async function replayRounds(log: LogRecord[], protocols: ProtocolRegistry): Promise<ReplayReport> {
  const requests = new Map<string, RoundEvent>();
  const answers = new Map<string, RoundAnswer>();
  const closings: RoundClosed[] = [];
  const outcomes = new Map<string, RoundOutcome>();
  for (const { decoded } of log) {
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
        if (!outcomes.has(o.roundId)) outcomes.set(o.roundId, o);
        break;
      }
    }
  }
  const report: ReplayReport = { rounds: [], identical: 0, different: 0, incomplete: [] };
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
    const recorded = outcomes.get(roundId);
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
    const replayed = decisions.find((d): d is Outcome => d.type === 'outcome');
    const pick = (o: { status: string; winners: string[]; price: number | null; value: string | null }) => ({ status: o.status, winners: o.winners, price: o.price, value: o.value });
    const identical = replayed !== undefined && JSON.stringify(pick(replayed)) === JSON.stringify(pick(recorded));
    report.rounds.push({
      roundId,
      protocol: closing.protocol,
      cause: closing.cause,
      recorded: pick(recorded) as RoundReplay['recorded'],
      replayed: replayed ? (pick(replayed) as RoundReplay['replayed']) : undefined,
      counted: (counted as RoundAnswer[]).map((a) => ({ agentId: a.agentId, ...(a.amount !== undefined ? { amount: a.amount } : {}), ...(a.choice !== undefined ? { choice: a.choice } : {}) })),
      identical,
    });
    if (identical) report.identical++;
    else report.different++;
  }
  return report;
}

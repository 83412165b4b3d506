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
        if (!requests.has(roundId)) requests.set(roundId, open);
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
  const seen = new Set<string>();
  for (const closing of closings) {
    if (seen.has(closing.roundId)) continue;
    seen.add(closing.roundId);
    const open = requests.get(closing.roundId);
    const counted = closing.countedEventIds.map((id) => answers.get(id));
    const recorded = outcomes.get(closing.roundId);
    if (!open || counted.some((a) => !a) || !recorded) {
      report.incomplete.push(closing.roundId);
      continue;
    }
    const events: RoundEvent[] = [open, ...(counted as RoundAnswer[])];
    if (closing.cause !== 'complete') events.push({ type: 'close', roundId: closing.roundId, cause: closing.cause, eventId: closing.envelope.eventId });
    const decisions = await firstValueFrom(from(events).pipe(coordinate((name) => protocols.get(name)), toArray()));
    const replayed = decisions.find((d): d is Outcome => d.type === 'outcome');
    const pick = (o: { status: string; winners: string[]; price: number | null; value: string | null }) => ({ status: o.status, winners: o.winners, price: o.price, value: o.value });
    const identical = replayed !== undefined && JSON.stringify(pick(replayed)) === JSON.stringify(pick(recorded));
    report.rounds.push({
      roundId: closing.roundId,
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

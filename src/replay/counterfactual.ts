import { MabeamError, describeError } from '../errors.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { Outcome, Protocol, RoundDecision, RoundEvent, RoundOpen } from '../protocols/types.ts';
import { differences, summary, type Difference, type OutcomeSummary } from './outcomes.ts';
import { decideAgain, protocolOf, selectedRounds, type RoundFilter } from './replayRounds.ts';
import type { Position, RecordedRound, RoundHistory } from './roundHistory.ts';

/**
 * What a recorded round would have decided under another rule:
 * - same / changed: decided from the recorded answers, the outcome is (not) the recorded one;
 * - not-comparable: the rule cannot be judged on these answers (`reason`): an iterative
 *   round's answers were to stage prices, an iterative rule asks for answers the log does
 *   not have, or the request is not valid under the rule.
 */
export interface CounterfactualRound {
  roundId: string;
  recordedProtocol: string;
  verdict: 'same' | 'changed' | 'not-comparable';
  request?: Position;
  recorded: OutcomeSummary;
  counterfactual?: OutcomeSummary;
  /** The fields that change (status, winners, price, value; details are not compared: another rule explains itself differently). */
  differences: Difference[];
  reason?: string;
}

export interface CounterfactualReport {
  /** The rule the rounds were decided under again. */
  protocol: string;
  kind: Protocol['kind'];
  events: number;
  /** Rounds of that kind with a recorded outcome and the inputs it was decided from. */
  considered: number;
  same: number;
  changed: number;
  notComparable: number;
  /** Rounds left out: another kind of protocol, or no complete record to decide from. */
  skipped: number;
  /** The first round (in the order of the requests) whose outcome changes. */
  firstChanged?: CounterfactualRound;
  /** Auctions: what changes in who wins and what is paid. */
  auctions?: { decidedRecorded: number; decidedCounterfactual: number; priceTotalRecorded: number; priceTotalCounterfactual: number; winnersChanged: number; pricesChanged: number };
  /** Consensus: decisions flipped (another option chosen) and decisions gained or lost. */
  consensus?: { decidedRecorded: number; decidedCounterfactual: number; decisionsFlipped: number; statusChanged: number };
  rounds: CounterfactualRound[];
}

/** One round decided under the rule: its decisions (the events a coordinator would write), for --write-to. */
export interface CounterfactualDecision {
  round: RecordedRound;
  open: RoundOpen;
  events: RoundEvent[];
  decisions: RoundDecision[];
}

const compared = ['status', 'winners', 'price', 'value'];

/**
 * Re-decides the recorded rounds of a history under another rule (a
 * registered protocol of the same kind), from the answers the log
 * recorded, and reports what changes. A round the recorded coordinator
 * closed at its deadline closes at its deadline again; one that closed
 * complete gets the same answers and, if the rule wants more than the log
 * has, is closed as its deadline would have closed it. Nothing is written
 * (see writeCounterfactual).
 */
export function counterfactual(history: RoundHistory, protocols: ProtocolRegistry, protocolName: string, filter: RoundFilter = {}, onDecided?: (d: CounterfactualDecision) => void): CounterfactualReport {
  const rule = protocols.get(protocolName);
  if (!rule) throw new MabeamError('INVALID_OPTIONS', `No protocol "${protocolName}" (known: ${protocols.names().join(', ')}); a module that registers one can be given with --protocols.`);
  const report: CounterfactualReport = { protocol: rule.name, kind: rule.kind, events: history.events, considered: 0, same: 0, changed: 0, notComparable: 0, skipped: 0, rounds: [] };
  const auctions = { decidedRecorded: 0, decidedCounterfactual: 0, priceTotalRecorded: 0, priceTotalCounterfactual: 0, winnersChanged: 0, pricesChanged: 0 };
  const consensus = { decidedRecorded: 0, decidedCounterfactual: 0, decisionsFlipped: 0, statusChanged: 0 };
  const chosen = selectedRounds(history, filter);
  for (const round of chosen) {
    const inputs = history.inputs(round);
    const recordedOutcome = round.outcomes[0];
    if (!inputs.complete || !recordedOutcome || inputs.open.kind !== rule.kind) {
      report.skipped++;
      continue;
    }
    report.considered++;
    const recorded = mainFields(recordedOutcome);
    const base = { roundId: round.roundId, recordedProtocol: protocolOf(round), recorded, differences: [], ...(round.opened ? { request: round.opened } : {}) };
    const result = decideUnder(rule, protocols, inputs.open, inputs.stages.length, inputs.countedByStage[0] ?? [], inputs.stages[0]!.cause);
    if ('reason' in result) {
      report.notComparable++;
      report.rounds.push({ ...base, verdict: 'not-comparable', reason: result.reason });
      continue;
    }
    onDecided?.({ round, open: result.open, events: result.events, decisions: result.decisions });
    const counter = mainFields(summary(result.outcome));
    const diff = differences(recorded, counter).filter((d) => compared.includes(d.field));
    const entry: CounterfactualRound = { ...base, verdict: diff.length === 0 ? 'same' : 'changed', counterfactual: counter, differences: diff };
    report.rounds.push(entry);
    if (diff.length === 0) report.same++;
    else {
      report.changed++;
      report.firstChanged ??= entry;
    }
    if (rule.kind === 'auction') {
      if (recorded.status === 'decided') auctions.decidedRecorded++;
      if (counter.status === 'decided') auctions.decidedCounterfactual++;
      auctions.priceTotalRecorded += recorded.status === 'decided' ? (recorded.price ?? 0) : 0;
      auctions.priceTotalCounterfactual += counter.status === 'decided' ? (counter.price ?? 0) : 0;
      if (diff.some((d) => d.field === 'winners')) auctions.winnersChanged++;
      if (diff.some((d) => d.field === 'price')) auctions.pricesChanged++;
    } else {
      if (recorded.status === 'decided') consensus.decidedRecorded++;
      if (counter.status === 'decided') consensus.decidedCounterfactual++;
      if (recorded.status === 'decided' && counter.status === 'decided' && recorded.value !== counter.value) consensus.decisionsFlipped++;
      if (recorded.status !== counter.status) consensus.statusChanged++;
    }
  }
  if (rule.kind === 'auction') report.auctions = auctions;
  else report.consensus = consensus;
  return report;
}

/** The fields compared, without details: another rule explains itself differently. */
function mainFields(o: OutcomeSummary): OutcomeSummary {
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details: {} };
}

type Decided = { open: RoundOpen; events: RoundEvent[]; decisions: RoundDecision[]; outcome: Outcome };

function decideUnder(rule: Protocol, protocols: ProtocolRegistry, recordedOpen: RoundOpen, stages: number, answers: RoundEvent[], cause: 'complete' | 'deadline' | 'cancelled'): Decided | { reason: string } {
  if (stages > 1) return { reason: `an iterative round (${stages} stages): its answers were to stage prices, not to one request` };
  const open: RoundOpen = { ...recordedOpen, protocol: rule.name };
  let invalid: string | undefined;
  try {
    invalid = rule.validate?.(open);
  } catch (error) {
    invalid = `${rule.name} could not check the request: ${describeError(error)}`;
  }
  if (invalid) return { reason: `the request is not valid under ${rule.name}: ${invalid}` };
  const close = (c: 'deadline' | 'cancelled'): RoundEvent => ({ type: 'close', roundId: open.roundId, cause: c, eventId: `${open.eventId}:${c}`, stage: 0 });
  const events: RoundEvent[] = [open, ...answers];
  if (cause !== 'complete') events.push(close(cause));
  let decided = decideAgain(events, protocols);
  if (!decided.outcome && !decided.decisions.some((d) => d.type === 'stage')) {
    // The rule wanted more answers than the log has: they were all there would be, so the deadline closes it.
    events.push(close('deadline'));
    decided = decideAgain(events, protocols);
  }
  if (decided.decisions.some((d) => d.type === 'stage')) return { reason: `${rule.name} runs in stages and asks for answers to a next stage that the log does not have` };
  if (!decided.outcome) return { reason: `${rule.name} decided nothing from these answers` };
  return { open, events, decisions: decided.decisions, outcome: decided.outcome };
}

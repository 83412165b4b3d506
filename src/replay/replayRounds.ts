import type { RoundClosed } from '../events/types.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import { applyRoundEvent, emptyRounds } from '../protocols/roundsInternals.ts';
import type { Outcome, RoundEvent } from '../protocols/types.ts';
import { differences, sameOutcome, summary, type Difference, type OutcomeSummary } from './outcomes.ts';
import { RoundHistory, type ForgedAnswer, type Position, type RecordedOutcome, type RecordedRound, type SettledRound } from './roundHistory.ts';
import type { LogRecord, UndecodableRecord } from './scanLog.ts';

export type { Difference, OutcomeSummary } from './outcomes.ts';
export type { Position, RecordedOutcome } from './roundHistory.ts';

/**
 * What replay says of a round:
 * - identical: decided again from its recorded inputs, the outcome equals every recorded one;
 * - different: it does not (`differences` says which fields);
 * - contradictory: the log holds outcomes that decide differently;
 * - duplicate: the log holds the same outcome more than once (exactly once is broken);
 * - incomplete: its request, a counted answer, a closing or its outcome is missing (`missing`);
 * - open: not closed for good when the log was read (not a fault);
 * - refused: the coordinator refused its request (not decided; not a fault).
 */
export type Verdict = 'identical' | 'different' | 'contradictory' | 'duplicate' | 'incomplete' | 'open' | 'refused';

/** The verdicts that make a replay fail. */
export const faultVerdicts: readonly Verdict[] = ['different', 'contradictory', 'duplicate', 'incomplete'];

/** A round with more than one RoundOutcome in the log. */
export interface RepeatedOutcome {
  roundId: string;
  /** contradictory: they decide differently; duplicate: they decide the same (an output written twice). */
  kind: 'contradictory' | 'duplicate';
  outcomes: RecordedOutcome[];
}

export interface RoundReplay {
  roundId: string;
  protocol: string;
  verdict: Verdict;
  /** verdict === 'identical'. */
  identical: boolean;
  /** How the round closed for good (undefined when it did not). */
  cause?: RoundClosed['cause'];
  /** Where its request is. */
  request?: Position;
  /** The first outcome the log holds for the round (all of them are in `repeated` when there are more). */
  recorded?: OutcomeSummary;
  replayed?: OutcomeSummary;
  /** How many RoundOutcome records the log holds for the round. */
  outcomes: number;
  /** Where the replayed outcome differs from a recorded one (different), or the recorded ones from each other (contradictory). */
  differences: Difference[];
  /** What is missing from the log (incomplete). */
  missing: string[];
  /** The answers counted, as the log recorded them: who took part. */
  counted: Array<{ agentId: string; amount?: number; choice?: string }>;
  /** Why the coordinator refused the request (refused). */
  refusal?: { reasonCode: string; reason: string };
  /** Answers the coordinator counted that replay refused for their signature (signatures required): the round is then different. */
  forged?: ForgedAnswer[];
}

export interface ReplayReport {
  /** Events read. */
  events: number;
  /** Every round selected, in the order of their requests in the log (with keep: 'faults', only those that fail, and those named). */
  rounds: RoundReplay[];
  identical: number;
  different: number;
  contradictory: number;
  duplicate: number;
  incomplete: number;
  open: number;
  refused: number;
  /** Every selected round with more than one RoundOutcome in the log. */
  repeated: RepeatedOutcome[];
  /** Every record read that did not decode, with its position (with --round, those keyed by the rounds named, or by nothing). */
  undecodable: UndecodableRecord[];
  /** Rounds named in the filter that the log holds nothing of. */
  notFound: string[];
  /** Nothing different, contradictory, duplicate, incomplete, undecodable or not found. */
  ok: boolean;
}

export interface ReplayOptions {
  /**
   * Which rounds the report lists: every round judged (default), or only
   * those that fail (and those named in the filter) — what a command that
   * prints the faults needs, for far less memory on a long log. The counts
   * are of every round either way.
   */
  keep?: 'all' | 'faults';
}

/** Which rounds to judge. A round passes when it passes every filter given. */
export interface RoundFilter {
  roundIds?: ReadonlySet<string>;
  protocols?: ReadonlySet<string>;
  /** Only rounds whose request was written (log time, ms) at or after `since` and before `until`. */
  since?: number;
  until?: number;
  /** Only rounds whose request is at or past this offset of its partition (by partition number; `all` for every partition). */
  sinceOffset?: OffsetBound;
  /** Only rounds whose request is before this offset of its partition. */
  untilOffset?: OffsetBound;
}

export interface OffsetBound {
  all?: number;
  partitions?: ReadonlyMap<number, number>;
}

/** A round passes the filter: what a filter cannot check (the window of a round whose request is missing) does not pass. */
export function selected(round: RecordedRound, filter: RoundFilter): boolean {
  if (filter.roundIds && !filter.roundIds.has(round.roundId)) return false;
  if (filter.protocols && !filter.protocols.has(protocolOf(round))) return false;
  const at = round.opened;
  const windowed = filter.since !== undefined || filter.until !== undefined || filter.sinceOffset !== undefined || filter.untilOffset !== undefined;
  if (!windowed) return true;
  if (!at) return false;
  if (filter.since !== undefined && at.timestamp < filter.since) return false;
  if (filter.until !== undefined && at.timestamp >= filter.until) return false;
  const bound = (b: OffsetBound | undefined) => (b ? (b.partitions?.get(at.partition) ?? b.all) : undefined);
  const low = bound(filter.sinceOffset);
  const high = bound(filter.untilOffset);
  if (low !== undefined && at.offset < low) return false;
  if (high !== undefined && at.offset >= high) return false;
  return true;
}

export function protocolOf(round: RecordedRound): string {
  return round.open?.protocol ?? [...round.stages.values()][0]?.protocol ?? 'unknown';
}

/** Decides a round again from its inputs, exactly as the coordinator's operator does (coordinate() is applyRoundEvent per event). */
export function decideAgain(events: readonly RoundEvent[], protocols: ProtocolRegistry): { outcome?: Outcome; decisions: ReturnType<typeof applyRoundEvent> } {
  const rounds = emptyRounds();
  const lookup = (name: string) => protocols.get(name);
  const decisions: ReturnType<typeof applyRoundEvent> = [];
  for (const event of events) decisions.push(...applyRoundEvent(rounds, event, lookup));
  const outcome = decisions.find((d): d is Outcome => d.type === 'outcome');
  return outcome ? { outcome, decisions } : { decisions };
}

/**
 * Re-runs the recorded rounds of a history through the protocols — its
 * request, the answers its closings counted (in that order) and the
 * recorded causes of closing — and compares each outcome with every
 * recorded RoundOutcome. What was decided from outside the log (a
 * deadline) is in the log, so the same input gives the same outcome, or
 * the report says which round differs and where. Nothing is left out:
 * rounds with more than one outcome, rounds with inputs missing, and
 * records that did not decode are all reported.
 */
export function replayHistory(history: RoundHistory, protocols: ProtocolRegistry, filter: RoundFilter = {}, options: ReplayOptions = {}): ReplayReport {
  const report: ReplayReport = {
    events: history.events, rounds: [], identical: 0, different: 0, contradictory: 0, duplicate: 0, incomplete: 0, open: 0, refused: 0,
    repeated: [], undecodable: [...history.undecodable], notFound: [], ok: true,
  };
  // Answers to a round id the log has nothing else of (no request, closing or outcome) are not a round: the coordinator refused them (UNKNOWN_ROUND).
  const chosen = selectedRounds(history, filter).filter((r) => r.open || r.stages.size > 0 || r.outcomes.length > 0);
  for (const round of chosen) {
    const result = replayOne(history, round, protocols);
    // Rounds named in the filter are always listed (they are few, and say what was found).
    if (options.keep !== 'faults' || faultVerdicts.includes(result.verdict) || filter.roundIds?.has(round.roundId)) report.rounds.push(result);
    report[result.verdict]++;
    if (round.outcomes.length > 1) report.repeated.push({ roundId: round.roundId, kind: result.verdict === 'contradictory' ? 'contradictory' : repeatedKind(round.outcomes), outcomes: round.outcomes });
  }
  return judged(report, filter);
}

/** The parts of a report that depend on the filter (what was named and not found, which undecodable records concern it), and its verdict. */
export function judged(report: ReplayReport, filter: RoundFilter): ReplayReport {
  const named = filter.roundIds;
  if (named && named.size > 0) {
    const found = new Set(report.rounds.map((r) => r.roundId));
    report.notFound = [...named].filter((id) => !found.has(id));
    // The partition is shared with other rounds: a record keyed by another round is not about these.
    report.undecodable = report.undecodable.filter((u) => u.key === undefined || named.has(u.key));
  }
  report.ok = faultVerdicts.every((v) => report[v as 'different'] === 0) && report.undecodable.length === 0 && report.notFound.length === 0;
  return report;
}

function repeatedKind(outcomes: readonly RecordedOutcome[]): RepeatedOutcome['kind'] {
  return outcomes.every((o) => sameOutcome(o, outcomes[0]!)) ? 'duplicate' : 'contradictory';
}

function replayOne(history: RoundHistory, round: RecordedRound, protocols: ProtocolRegistry): RoundReplay {
  const stages = [...round.stages.entries()].sort(([a], [b]) => a - b).map(([, c]) => c);
  const last = stages[stages.length - 1];
  const base: RoundReplay = {
    roundId: round.roundId, protocol: protocolOf(round), verdict: 'identical', identical: false, outcomes: round.outcomes.length, differences: [], missing: [], counted: [],
    ...(round.opened ? { request: round.opened } : {}),
    ...(round.outcomes[0] ? { recorded: strip(round.outcomes[0]) } : {}),
    ...(last && last.final !== false ? { cause: last.cause } : {}),
  };
  const refusal = history.refusalOf(round);
  if (refusal && round.outcomes.length === 0 && stages.length === 0) return { ...base, verdict: 'refused', refusal };
  if (round.outcomes.length === 0 && (!last || last.final === false) && round.open) return { ...base, verdict: 'open' };

  const decided = round.settled ?? decideRound(history, round, protocols);
  const missing = [...decided.missing];
  if (round.outcomes.length === 0) missing.push('its outcome');
  base.counted = decided.counted;
  if (decided.forged && decided.forged.length > 0) base.forged = decided.forged;
  const replayed = decided.replayed ? { ...base, replayed: decided.replayed } : base;
  if (round.outcomes.length > 1 && repeatedKind(round.outcomes) === 'contradictory') {
    const first = round.outcomes[0]!;
    const other = round.outcomes.find((o) => !sameOutcome(o, first))!;
    return { ...replayed, verdict: 'contradictory', differences: differences(first, other), missing };
  }
  if (missing.length > 0) return { ...replayed, verdict: 'incomplete', missing };
  if (!replayed.replayed) return { ...replayed, verdict: 'different', differences: [{ field: 'status', recorded: round.outcomes[0]!.status, replayed: 'no outcome' }] };
  if (replayed.forged) {
    // Counted live, refused here: whatever the outcome, it was decided from an answer that was not its agent's.
    const signatures: Difference = { field: 'counted', recorded: replayed.forged.map((f) => f.eventId), replayed: replayed.forged.map((f) => `refused ${f.reasonCode}`) };
    return { ...replayed, verdict: 'different', differences: [signatures, ...differences(round.outcomes[0]!, replayed.replayed)] };
  }
  const differing = round.outcomes.find((o) => !sameOutcome(o, replayed.replayed!));
  if (differing) return { ...replayed, verdict: 'different', differences: differences(differing, replayed.replayed) };
  if (round.outcomes.length > 1) return { ...replayed, verdict: 'duplicate' };
  return { ...replayed, verdict: 'identical', identical: true };
}

/** A round decided again from its recorded inputs (or what is missing for that). */
export function decideRound(history: RoundHistory, round: RecordedRound, protocols: ProtocolRegistry): SettledRound {
  const inputs = history.inputs(round);
  if (!inputs.complete) return { missing: inputs.missing, counted: [] };
  const counted = inputs.countedByStage.flat().map((a) => ({ agentId: a.agentId, ...(a.amount !== undefined ? { amount: a.amount } : {}), ...(a.choice !== undefined ? { choice: a.choice } : {}) }));
  const { outcome } = decideAgain(inputs.events, protocols);
  const forged = inputs.forged.length > 0 ? { forged: inputs.forged } : {};
  return outcome ? { missing: [], counted, replayed: summary(outcome), ...forged } : { missing: [], counted, ...forged };
}

/**
 * For reading long logs: decides each round again as soon as the log has
 * all of it (request, final closing, an outcome, every counted answer) and
 * lets go of its answers, so memory holds the rounds still open rather than
 * the whole history. A later record of a settled round (a second outcome)
 * is still judged: the verdict is made at the end from every outcome.
 */
export function settleAsRead(protocols: ProtocolRegistry): (round: RecordedRound, history: RoundHistory) => void {
  return (round, history) => {
    round.settled = decideRound(history, round, protocols);
    round.answers.clear();
    round.forged?.clear();
  };
}

function strip(o: RecordedOutcome): OutcomeSummary {
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details: o.details };
}

/** Rounds in the order of their requests in the log (log time, then id); rounds without a request last. */
export function inRequestOrder(a: { roundId: string; requestedAt: number | undefined }, b: { roundId: string; requestedAt: number | undefined }): number {
  const ta = a.requestedAt ?? Infinity;
  const tb = b.requestedAt ?? Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.roundId < b.roundId ? -1 : a.roundId > b.roundId ? 1 : 0;
}

/** The recorded rounds of a history the filter selects, in request order. */
export function selectedRounds(history: RoundHistory, filter: RoundFilter): RecordedRound[] {
  return [...history.rounds.values()]
    .filter((r) => selected(r, filter))
    .map((r) => ({ round: r, roundId: r.roundId, requestedAt: r.opened?.timestamp }))
    .sort(inRequestOrder)
    .map(({ round }) => round);
}

/** How many rounds a report judged, whatever it lists. */
export function roundsJudged(report: ReplayReport): number {
  return report.identical + report.different + report.contradictory + report.duplicate + report.incomplete + report.open + report.refused;
}

/** replayHistory over records already read (readLog's array). */
export function replayRounds(log: readonly LogRecord[] & { undecodable?: UndecodableRecord[] }, protocols: ProtocolRegistry, filter: RoundFilter = {}): ReplayReport {
  const history = new RoundHistory();
  for (const record of log) history.add(record);
  history.undecodable.push(...(log.undecodable ?? []));
  return replayHistory(history, protocols, filter);
}

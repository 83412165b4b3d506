/**
 * The story of one round from the log: its request, every answer and what
 * became of it, each stage and its closing, the outcome, the award
 * directives, and where each of these is and which transaction wrote it.
 *
 * Reads only the round's partition of the co-partitioned round topics
 * (murmur2 of the round id, as the engine places it; a record a producer
 * put elsewhere was copied there by the coordinator), and — once the
 * outcome says whom it awarded — only those winners' partitions of the
 * directives topic, from shortly before the outcome was written.
 */
import type { Admin } from 'kafkajs';
import { deterministicEventId } from '../events/envelope.ts';
import type { Bid, BidRequest, Directive, Proposal, RoundClosed, RoundOutcome, Vote } from '../events/types.ts';
import { stageEventId } from '../protocols/roundsInternals.ts';
import type { LogRecord } from '../replay/scanLog.ts';
import { topicName } from '../topics/names.ts';
import {
  FirstById,
  allowedTypes,
  notInLog,
  offsetsAt,
  parseJson,
  partitionCounts,
  partitionsOfKey,
  positionOf,
  refusalOf,
  scan,
  whyNotTaken,
  withAdmin,
  writtenByOf,
} from './read.ts';
import type {
  AnswerInfo,
  AuditConnection,
  ClosingInfo,
  IgnoredRecord,
  OutcomeInfo,
  Refusal,
  RoundAudit,
  RoundDirectiveInfo,
  RoundRequestInfo,
  RoundAuditState,
  StageInfo,
} from './types.ts';

/** The co-partitioned topics a round's events are on, keyed by round id. */
export const roundTopicNames = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'] as const;

/** How long before its outcome record an award directive may have been stamped (they are written in one transaction). */
const directiveWindowMs = 60_000;

/** Whether an event belongs to the round: its roundId (a Rejection's subjectId) is the round's id. */
function ofRound(record: LogRecord, roundId: string): boolean {
  const e = record.decoded.event as { roundId?: unknown; subjectId?: unknown };
  return record.decoded.type === 'Rejection' ? e.subjectId === roundId : e.roundId === roundId;
}

export function auditRound(conn: AuditConnection, roundId: string): Promise<RoundAudit> {
  return withAdmin(conn, (admin) => audit(conn, admin, roundId));
}

async function audit(conn: AuditConnection, admin: Admin, roundId: string): Promise<RoundAudit> {
  const allowed = await allowedTypes(conn);
  const counts = await partitionCounts(conn, admin, [...roundTopicNames, 'directives']);
  const directivesTopic = topicName(conn.prefix, 'directives');
  const directivePartitions = counts.get(directivesTopic) ?? 1;
  counts.delete(directivesTopic);
  const plan = partitionsOfKey(roundId, counts);
  const partition = plan.keys().next().value ?? 0;
  const topics = roundTopicNames.map((n) => topicName(conn.prefix, n));

  const mine: LogRecord[] = [];
  const { records, undecodable } = await scan(
    conn,
    plan,
    (r) => {
      if (ofRound(r, roundId)) mine.push(r);
    },
    undefined,
    new Set([roundId]),
  );
  if (mine.length === 0) throw notInLog('round', roundId, `partition ${partition} of ${topics.join(', ')}`);


  // Log order per topic; across topics by log time.
  mine.sort((a, b) => a.timestamp - b.timestamp || (a.topic === b.topic ? a.offset - b.offset : a.topic < b.topic ? -1 : 1));

  const requests = new FirstById<RoundRequestInfo>();
  const answers = new FirstById<AnswerInfo>();
  const closings = new FirstById<ClosingInfo>();
  const outcomes: OutcomeInfo[] = [];
  const refusals: Refusal[] = [];
  const ignored: IgnoredRecord[] = [];
  const notes = new Map<string, string>();

  for (const r of mine) {
    const why = whyNotTaken(r, roundId, allowed);
    const type = r.decoded.type;
    if (why && type !== 'Bid' && type !== 'Vote') {
      ignored.push({ type, eventId: (r.decoded.event as { envelope?: { eventId?: string } }).envelope?.eventId ?? null, position: positionOf(r), why });
      continue;
    }
    switch (type) {
      case 'BidRequest':
      case 'Proposal': {
        const e = r.decoded.event as unknown as BidRequest & Proposal;
        requests.add(e.envelope.eventId, r, () => requestInfo(r));
        break;
      }
      case 'Bid':
      case 'Vote': {
        const e = r.decoded.event as unknown as Bid & Vote;
        const added = answers.add(e.envelope.eventId, r, () => answerInfo(r));
        if (added && why) notes.set(added.eventId, why);
        break;
      }
      case 'RoundClosed': {
        const c = r.decoded.event as unknown as RoundClosed;
        closings.add(c.envelope.eventId, r, () => ({
          stage: c.stage ?? 0, cause: c.cause, final: c.final ?? true, countedEventIds: c.countedEventIds, countedAgents: [],
          eventId: c.envelope.eventId, eventTime: c.envelope.eventTime, position: positionOf(r), writtenBy: writtenByOf(r), duplicates: [],
        }));
        break;
      }
      case 'RoundOutcome':
        outcomes.push(outcomeInfo(r));
        break;
      case 'Rejection':
        refusals.push(refusalOf(r));
        break;
      default:
        ignored.push({ type, eventId: null, position: positionOf(r), why: `a ${type} is not an event of a round` });
    }
  }

  // Refusals by what they refuse. DUPLICATE_EVENT refuses a later copy of an event id, not the first record.
  const refusalOfEvent = new Map<string, Refusal>();
  const duplicateRefusals = new Map<string, Refusal[]>();
  const otherRefusals: Refusal[] = [];
  for (const f of refusals) {
    const id = f.rejectedEventId;
    const known = id !== null && (answers.byId.has(id) || requests.byId.has(id));
    if (!known) otherRefusals.push(f);
    else if (f.reasonCode === 'DUPLICATE_EVENT') duplicateRefusals.set(id, [...(duplicateRefusals.get(id) ?? []), f]);
    else if (!refusalOfEvent.has(id)) refusalOfEvent.set(id, f);
    else otherRefusals.push(f);
  }

  // Requests: the opening one (stage 0), the stages the coordinator opened, and refused ones.
  for (const q of requests.inOrder) {
    const f = refusalOfEvent.get(q.eventId);
    if (f) q.refused = f;
    const dup = duplicateRefusals.get(q.eventId);
    if (dup) otherRefusals.push(...dup);
  }
  const stageZero = requests.inOrder.filter((q) => q.stage === 0);
  const request = stageZero.find((q) => !q.refused) ?? stageZero[0];
  const stageRequests = new Map<number, RoundRequestInfo>();
  if (request && !request.refused) stageRequests.set(0, request);
  for (const q of requests.inOrder) {
    if (q.stage > 0 && !q.refused && q.eventId === stageEventId(roundId, q.stage) && !stageRequests.has(q.stage)) stageRequests.set(q.stage, q);
  }
  const stageOfRequest = new Map([...stageRequests].map(([stage, q]) => [q.eventId, stage]));

  // Closings, stage by stage; what each counted.
  const closingOfStage = new Map<number, ClosingInfo>();
  for (const c of closings.inOrder) if (!closingOfStage.has(c.stage)) closingOfStage.set(c.stage, c);
  const countedBy = new Map<string, ClosingInfo>();
  for (const c of closings.inOrder) for (const id of c.countedEventIds) if (!countedBy.has(id)) countedBy.set(id, c);
  for (const c of closings.inOrder) c.countedAgents = c.countedEventIds.map((id) => answers.byId.get(id)?.agentId ?? null);
  const final = closings.inOrder.find((c) => c.final);

  const outcome = outcomes[0];
  const state: RoundAuditState = outcome ? outcome.status : request ? (request.refused ? 'refused' : 'open') : 'unopened';
  const openStage = Math.max(-1, ...stageRequests.keys());

  for (const a of answers.inOrder) {
    const closing = countedBy.get(a.eventId);
    const refusal = refusalOfEvent.get(a.eventId);
    a.duplicateRefusals = duplicateRefusals.get(a.eventId) ?? [];
    const replyStage = a.repliesTo !== null ? stageOfRequest.get(a.repliesTo) : undefined;
    if (closing) {
      a.verdict = 'counted';
      a.countedAt = { stage: closing.stage, closingEventId: closing.eventId };
      a.stage = closing.stage;
    } else if (refusal) {
      a.verdict = 'refused';
      a.refusal = refusal;
      a.stage = replyStage ?? null;
    } else {
      a.stage = replyStage ?? null;
      a.note = notes.get(a.eventId) ?? neitherNote(state, request, openStage, closingOfStage);
    }
  }

  const stages: StageInfo[] = [];
  const stageNumbers = [...new Set([...stageRequests.keys(), ...closingOfStage.keys()])].sort((x, y) => x - y);
  for (const stage of stageNumbers) {
    const closed = closingOfStage.get(stage);
    const stageRequest = stageRequests.get(stage);
    stages.push({
      stage,
      ...(stageRequest ? { request: stageRequest } : {}),
      ...(closed ? { closed } : {}),
      counted: closed?.countedEventIds.length ?? 0,
      refused: answers.inOrder.filter((a) => a.verdict === 'refused' && a.stage === stage).length,
    });
  }

  // The award directives: only on the winners' partitions of the directives topic, once the outcome says whom it awarded.
  const awarded = outcomes.filter((o) => o.status === 'decided' && o.winners.length > 0 && o.price !== null);
  const winners = [...new Set(awarded.flatMap((o) => o.winners))];
  const directives = new FirstById<RoundDirectiveInfo>();
  let directiveRecords = 0;
  const readDirectivePartitions: number[] = [];
  if (winners.length > 0) {
    const count = new Map([[directivesTopic, directivePartitions]]);
    const wanted = new Set(winners.flatMap((w) => [...partitionsOfKey(w, count).keys()]));
    readDirectivePartitions.push(...[...wanted].sort((x, y) => x - y));
    const since = Math.min(...awarded.map((o) => o.position.timestamp)) - directiveWindowMs;
    const from = await offsetsAt(admin, directivesTopic, readDirectivePartitions, since);
    const read = await scan(
      conn,
      new Map(readDirectivePartitions.map((p) => [p, [directivesTopic]])),
      (r) => {
        if (r.decoded.type !== 'Directive') return;
        const d = r.decoded.event as unknown as Directive;
        if (d.roundId !== roundId) return;
        directives.add(d.envelope.eventId, r, () => ({
          agentId: d.agentId, action: d.action, parameters: parseJson(d.parameters), eventId: d.envelope.eventId,
          expectedId: d.envelope.eventId === deterministicEventId('Directive', roundId, d.agentId),
          eventTime: d.envelope.eventTime, position: positionOf(r), writtenBy: writtenByOf(r), duplicates: [],
        }));
      },
      from,
      new Set(winners),
      // Each winner's award has an id of its own (deterministic): once all are found, later records are of other rounds.
      () => winners.every((w) => directives.byId.has(deterministicEventId('Directive', roundId, w))),
    );
    directiveRecords = read.records;
    undecodable.push(...read.undecodable);
  }
  const told = new Set(directives.inOrder.filter((d) => d.action === 'award').map((d) => d.agentId));

  const kind = request?.kind ?? (outcome?.kind === 'auction' || outcome?.kind === 'consensus' ? outcome.kind : null);
  return {
    roundId,
    state,
    protocol: request?.protocol ?? outcome?.protocol ?? null,
    kind,
    partition,
    read: { topics, partition, records, directivePartitions: readDirectivePartitions, directiveRecords },
    ...(request ? { request } : {}),
    requests: requests.inOrder,
    answers: answers.inOrder,
    stages,
    ...(final ? { closed: final } : {}),
    ...(outcome ? { outcome } : {}),
    outcomes,
    directives: directives.inOrder,
    missingDirectives: (awarded[0]?.winners ?? []).filter((w) => !told.has(w)),
    otherRefusals,
    ignored,
    undecodable,
  };
}

function neitherNote(state: RoundAuditState, request: RoundRequestInfo | undefined, openStage: number, closings: ReadonlyMap<number, ClosingInfo>): string {
  if (!request) return 'its round has no request in the log: an answer waits for its request up to 10 s of log time, then is refused UNKNOWN_ROUND';
  if (request.refused) return `the round's request was refused (${request.refused.reasonCode}); nothing refuses this answer in the log`;
  if (state === 'open' && !closings.has(openStage)) return `the round is still open (stage ${openStage}): not counted yet`;
  return 'no closing counted it and no refusal names it';
}

function requestInfo(r: LogRecord): RoundRequestInfo {
  const auction = r.decoded.type === 'BidRequest';
  const e = r.decoded.event as unknown as BidRequest & Proposal;
  return {
    eventId: e.envelope.eventId,
    type: auction ? 'BidRequest' : 'Proposal',
    kind: auction ? 'auction' : 'consensus',
    protocol: e.protocol,
    stage: e.stage ?? 0,
    subject: parseJson(auction ? e.item : e.subject),
    eligible: auction ? e.eligibleAgents : e.eligibleVoters,
    requiredCapabilities: auction ? e.requiredCapabilities : [],
    options: auction ? [] : e.options,
    weights: auction ? {} : e.weights,
    quorum: auction ? null : e.quorum,
    reservePrice: auction ? e.reservePrice : null,
    deadline: e.deadline,
    parameters: parseJson(e.parameters),
    sentBy: e.envelope.producerId,
    eventTime: e.envelope.eventTime,
    position: positionOf(r),
    writtenBy: writtenByOf(r),
    duplicates: [],
  };
}

/** An answer in words: "42", "42 for cpu+gpu", "pass", or the choice. */
export function answerText(a: { type: 'Bid' | 'Vote'; amount?: number; bundle?: string[]; pass?: boolean; choice?: string }): string {
  if (a.type === 'Vote') return a.choice ?? '';
  if (a.pass) return 'pass';
  return a.bundle && a.bundle.length > 0 ? `${a.amount} for ${a.bundle.join('+')}` : String(a.amount);
}

function answerInfo(r: LogRecord): AnswerInfo {
  const e = r.decoded.event as unknown as Bid & Vote;
  const base = {
    eventId: e.envelope.eventId,
    agentId: e.agentId,
    eventTime: e.envelope.eventTime,
    sentBy: e.envelope.producerId,
    repliesTo: e.envelope.causationId,
    stage: null,
    position: positionOf(r),
    verdict: 'neither' as const,
    duplicates: [],
    duplicateRefusals: [],
  };
  if (r.decoded.type === 'Bid') {
    const attributes = parseJson(e.attributes);
    const pass = !!attributes && typeof attributes === 'object' && (attributes as { pass?: unknown }).pass === true;
    const bid = { type: 'Bid' as const, amount: e.amount, bundle: e.bundle, pass };
    return { ...base, ...bid, answer: answerText(bid), ...(e.attributes !== null ? { attributes } : {}) };
  }
  const vote = { type: 'Vote' as const, choice: e.choice };
  return { ...base, ...vote, answer: answerText(vote), weight: e.weight, reason: e.reason };
}

function outcomeInfo(r: LogRecord): OutcomeInfo {
  const o = r.decoded.event as unknown as RoundOutcome;
  return {
    status: o.status,
    winners: o.winners,
    price: o.price,
    value: parseJson(o.value),
    reason: o.reason,
    details: parseJson(o.details),
    subject: parseJson(o.subject ?? null),
    kind: o.kind ?? null,
    eligible: o.eligible ?? [],
    protocol: o.protocol,
    eventId: o.envelope.eventId,
    eventTime: o.envelope.eventTime,
    position: positionOf(r),
    writtenBy: writtenByOf(r),
  };
}

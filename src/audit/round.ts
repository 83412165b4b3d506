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
import type { DecodedEvent } from '../codec/codec.ts';
import { deterministicEventId } from '../events/envelope.ts';
import type { RoundOutcome } from '../events/types.ts';
import { offsetsAt } from '../kafka/readToEnd.ts';
import { stageEventId } from '../protocols/roundsInternals.ts';
import type { LogRecord } from '../replay/scanLog.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import {
  FirstById,
  allowedTypes,
  notInLog,
  parseJson,
  partitionsOfKey,
  positionOf,
  refusalOf,
  scan,
  type ScanResult,
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

/** How far before the first coordinator output of a round its request is looked for first (then eight times as far, and so on). */
export const requestWindowMs = 60_000;

/**
 * The round's records of its partition: first the outcomes topic (the
 * coordinator's closings, outcomes and refusals name every answer and
 * request it decided on, and say when), then the request and answer topics
 * — from a little before the round's first output until every record those
 * name is found, when the round is closed for good and the coordinators
 * have decided on everything on the partition (so no answer of the round
 * is left that nothing names); else, or when nothing names them, whole.
 * Only records keyed by the round are decoded.
 */
async function readRound(conn: AuditConnection, admin: Admin, roundId: string, partition: number, topics: string[], mine: LogRecord[], outputsRead: (outputs: readonly LogRecord[]) => void): Promise<{ records: number; whole: boolean; undecodable: ScanResult['undecodable'] }> {
  const keys = new Set([roundId]);
  const outcomesTopic = topicName(conn.prefix, 'outcomes');
  const inputs = topics.filter((t) => t !== outcomesTopic);
  /** Records read of each event id (a copy has the id of the event it copies). */
  const seen = new Map<string, number>();
  const see = (id: string) => seen.set(id, (seen.get(id) ?? 0) + 1);
  const take = (r: LogRecord) => {
    if (!ofRound(r, roundId)) return;
    mine.push(r);
    const id = (r.decoded.event as { envelope?: { eventId?: string } }).envelope?.eventId;
    if (id) see(id);
    if ((r.decoded.type === 'BidRequest' || r.decoded.type === 'Proposal') && (r.decoded.event.stage ?? 0) === 0) see('stage 0');
  };
  const first = await scan(conn, new Map([[partition, [outcomesTopic]]]), take, undefined, keys);
  outputsRead([...mine]);
  /** The records the coordinator's outputs name, by event id: how many of each there are at least (each refused copy adds one). */
  const named = new Map<string, number>([['stage 0', 1]]);
  const name = (id: string, copies = 1) => named.set(id, Math.max(named.get(id) ?? 0, copies));
  const duplicates = new Map<string, number>();
  let final = false;
  for (const r of mine) {
    if (r.decoded.type === 'RoundClosed') {
      const c = r.decoded.event;
      for (const id of c.countedEventIds) name(id);
      if ((c.stage ?? 0) > 0) name(stageEventId(roundId, c.stage ?? 0));
      if (c.final !== false) final = true;
    } else if (r.decoded.type === 'Rejection') {
      const f = r.decoded.event;
      if (!f.rejectedEventId) continue;
      if (f.reasonCode === 'DUPLICATE_EVENT') duplicates.set(f.rejectedEventId, (duplicates.get(f.rejectedEventId) ?? 0) + 1);
      name(f.rejectedEventId);
    }
  }
  for (const [id, refused] of duplicates) name(id, refused + 1);
  const result = { records: first.records, whole: true, undecodable: [...first.undecodable] };
  const add = (read: ScanResult) => {
    result.records += read.records;
    result.undecodable.push(...read.undecodable);
  };
  const plan = new Map([[partition, inputs]]);
  if (mine.length === 0 || !final || !(await caughtUp(admin, `${conn.prefix}.coordinators`, inputs, partition))) {
    add(await scan(conn, plan, take, undefined, keys));
    return result;
  }
  result.whole = false;
  const enough = () => [...named].every(([id, copies]) => (seen.get(id) ?? 0) >= copies);
  // From a little before the round's first output, then further back each time (the request of a round with a long deadline), until the outputs' records are all found.
  const firstOutput = Math.min(...mine.map((r) => r.timestamp));
  let until: Map<string, number> | undefined;
  for (let windowMs = requestWindowMs; ; windowMs *= 8) {
    const start = new Map<string, number>();
    for (const topic of inputs) for (const [key, offset] of await offsetsAt(admin, topic, firstOutput - windowMs, [partition])) start.set(key, offset);
    // Nothing earlier to read: the window starts where the partitions begin (or where the last one did).
    const atBeginning = [...start.values()].every((o) => o === 0) || (until !== undefined && [...start].every(([key, o]) => o >= (until!.get(key) ?? 0)));
    add(await scan(conn, plan, take, atBeginning ? undefined : start, keys, enough, until));
    if (enough()) break;
    if (atBeginning || windowMs > 365 * 86_400_000) {
      // Not all found back to the beginning: what is there has been read, the rest is not in the log.
      if (!atBeginning) add(await scan(conn, plan, take, undefined, keys, enough, start));
      result.whole = true;
      break;
    }
    until = start;
  }
  return result;
}

/** The group has committed, on the partition of every topic, the partition's end: it has decided on everything there. */
async function caughtUp(admin: Admin, groupId: string, topics: readonly string[], partition: number): Promise<boolean> {
  const committed = await admin.fetchOffsets({ groupId, topics: [...topics] });
  for (const topic of topics) {
    const end = Number((await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)?.high ?? 0);
    const at = Number(committed.find((t) => t.topic === topic)?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
    if (end > 0 && at < end) return false;
  }
  return true;
}

export function auditRound(conn: AuditConnection, roundId: string): Promise<RoundAudit> {
  return withAdmin(conn, (admin) => audit(conn, admin, roundId));
}

async function audit(conn: AuditConnection, admin: Admin, roundId: string): Promise<RoundAudit> {
  const allowed = await allowedTypes(conn);
  const counts = await partitionCounts(admin, conn.prefix, [...roundTopicNames, 'directives']);
  const directivesTopic = topicName(conn.prefix, 'directives');
  const directivePartitions = counts.get(directivesTopic) ?? 1;
  counts.delete(directivesTopic);
  const plan = partitionsOfKey(roundId, counts);
  const partition = plan.keys().next().value ?? 0;
  const topics = roundTopicNames.map((n) => topicName(conn.prefix, n));

  const mine: LogRecord[] = [];
  let awards: Promise<AwardsRead> = Promise.resolve({ directives: new FirstById<RoundDirectiveInfo>(), directiveRecords: 0, readDirectivePartitions: [], undecodable: [] });
  const { records, whole, undecodable } = await readRound(conn, admin, roundId, partition, topics, mine, (outputs) => {
    // The outcome is known once the outcomes topic is read: the awards are read beside the requests and answers.
    awards = readAwards(conn, admin, roundId, outputs.filter((r) => r.decoded.type === 'RoundOutcome').map(outcomeInfo), directivesTopic, directivePartitions);
    awards.catch(() => undefined);
  });
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
    switch (r.decoded.type) {
      case 'BidRequest':
      case 'Proposal': {
        const e = r.decoded.event;
        requests.add(e.envelope.eventId, r, () => requestInfo(r));
        break;
      }
      case 'Bid':
      case 'Vote': {
        const e = r.decoded.event;
        const added = answers.add(e.envelope.eventId, r, () => answerInfo(r));
        if (added && why) notes.set(added.eventId, why);
        break;
      }
      case 'RoundClosed': {
        const c = r.decoded.event;
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

  const { directives, directiveRecords, readDirectivePartitions, undecodable: directiveUndecodable } = await awards;
  undecodable.push(...directiveUndecodable);
  const told = new Set(directives.inOrder.filter((d) => d.action === 'award').map((d) => d.agentId));

  const kind = request?.kind ?? (outcome?.kind === 'auction' || outcome?.kind === 'consensus' ? outcome.kind : null);
  return {
    roundId,
    state,
    protocol: request?.protocol ?? outcome?.protocol ?? null,
    kind,
    partition,
    read: { topics, partition, records, whole, directivePartitions: readDirectivePartitions, directiveRecords },
    ...(request ? { request } : {}),
    requests: requests.inOrder,
    answers: answers.inOrder,
    stages,
    ...(final ? { closed: final } : {}),
    ...(outcome ? { outcome } : {}),
    outcomes,
    directives: directives.inOrder,
    missingDirectives: (outcomes.find((o) => o.status === 'decided' && o.winners.length > 0 && o.price !== null)?.winners ?? []).filter((w) => !told.has(w)),
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
  // Only requests come here.
  const d = r.decoded as DecodedEvent<'BidRequest' | 'Proposal'>;
  const auction = d.type === 'BidRequest';
  const e = d.event;
  return {
    eventId: e.envelope.eventId,
    type: auction ? 'BidRequest' : 'Proposal',
    kind: auction ? 'auction' : 'consensus',
    protocol: e.protocol,
    stage: e.stage ?? 0,
    subject: parseJson(auction ? d.event.item : d.event.subject),
    eligible: auction ? d.event.eligibleAgents : d.event.eligibleVoters,
    requiredCapabilities: auction ? d.event.requiredCapabilities : [],
    options: auction ? [] : d.event.options,
    weights: auction ? {} : d.event.weights,
    quorum: auction ? null : d.event.quorum,
    reservePrice: auction ? d.event.reservePrice : null,
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
  // Only answers come here.
  const d = r.decoded as DecodedEvent<'Bid' | 'Vote'>;
  const e = d.event;
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
  if (d.type === 'Bid') {
    const b = d.event;
    const attributes = parseJson(b.attributes);
    const pass = !!attributes && typeof attributes === 'object' && (attributes as { pass?: unknown }).pass === true;
    const bid = { type: 'Bid' as const, amount: b.amount, bundle: b.bundle, pass };
    return { ...base, ...bid, answer: answerText(bid), ...(b.attributes !== null ? { attributes } : {}) };
  }
  const v = d.event;
  const vote = { type: 'Vote' as const, choice: v.choice };
  return { ...base, ...vote, answer: answerText(vote), weight: v.weight, reason: v.reason };
}

interface AwardsRead {
  directives: FirstById<RoundDirectiveInfo>;
  directiveRecords: number;
  readDirectivePartitions: number[];
  undecodable: ScanResult['undecodable'];
}

/** The award directives: only on the winners' partitions of the directives topic, from just before the outcome until each winner's is found. */
async function readAwards(conn: AuditConnection, admin: Admin, roundId: string, outcomes: readonly OutcomeInfo[], directivesTopic: string, directivePartitions: number): Promise<AwardsRead> {
  const awarded = outcomes.filter((o) => o.status === 'decided' && o.winners.length > 0 && o.price !== null);
  const winners = [...new Set(awarded.flatMap((o) => o.winners))];
  const directives = new FirstById<RoundDirectiveInfo>();
  const readDirectivePartitions: number[] = [];
  if (winners.length === 0) return { directives, directiveRecords: 0, readDirectivePartitions, undecodable: [] };
  const count = new Map([[directivesTopic, directivePartitions]]);
  const wanted = new Set(winners.flatMap((w) => [...partitionsOfKey(w, count).keys()]));
  readDirectivePartitions.push(...[...wanted].sort((x, y) => x - y));
  const since = Math.min(...awarded.map((o) => o.position.timestamp)) - directiveWindowMs;
  const from = await offsetsAt(admin, directivesTopic, since, readDirectivePartitions);
  const read = await scan(
    conn,
    new Map(readDirectivePartitions.map((p) => [p, [directivesTopic]])),
    (r) => {
      if (r.decoded.type !== 'Directive') return;
      const d = r.decoded.event;
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
  return { directives, directiveRecords: read.records, readDirectivePartitions, undecodable: read.undecodable };
}

function outcomeInfo(r: LogRecord): OutcomeInfo {
  // Only outcomes come here.
  const o = r.decoded.event as RoundOutcome;
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

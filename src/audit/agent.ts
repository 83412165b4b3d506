/**
 * What one agent did, from the log: its lifecycle (instances, restarts,
 * migrations), its bids and votes and what became of each (counted or
 * refused, with the reason), the rounds it won, the directives it received
 * and whether it handled them, and its handler failures.
 *
 * Bids and votes are keyed by round id, so they are found by the decoded
 * agentId field over every partition of bids and votes (never by headers:
 * producers in other languages set none), and then their closings and
 * refusals over outcomes. Lifecycle transitions, handler failures (both on
 * the lifecycle topic), directives and the registration are keyed by agent
 * id: only the agent's partition of those is read.
 */
import type { DecodedEvent } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import type { Bid, Vote } from '../events/types.ts';
import type { LogRecord } from '../replay/scanLog.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import type { Admin } from 'kafkajs';
import { FirstById, allowedTypes, committedOffset, notInLog, parseJson, partitionsOfKey, positionOf, refusalOf, scan, whyNotTaken, withAdmin, writtenByOf } from './read.ts';
import { answerText } from './round.ts';
import type {
  AgentAnswerInfo,
  AgentAudit,
  AgentDirectiveInfo,
  AgentInstanceInfo,
  AgentMigration,
  AgentRestart,
  AuditConnection,
  HandlerFailureInfo,
  LifecycleStep,
  Refusal,
  RoundWonInfo,
} from './types.ts';

export function auditAgent(conn: AuditConnection, agentId: string): Promise<AgentAudit> {
  return withAdmin(conn, (admin) => audit(conn, admin, agentId));
}

async function audit(conn: AuditConnection, admin: Admin, agentId: string): Promise<AgentAudit> {
  const t = (name: string) => topicName(conn.prefix, name);
  const counts = await partitionCounts(admin, conn.prefix, ['bids', 'votes', 'outcomes', 'lifecycle', 'directives', 'agents']);
  const allowed = await allowedTypes(conn);
  const own = new Map([...counts].filter(([topic]) => [t('lifecycle'), t('directives'), t('agents')].includes(topic)));
  const ownPlan = partitionsOfKey(agentId, own);
  const agentPartition = ownPlan.keys().next().value ?? 0;
  const roundPartitions = counts.get(t('bids')) ?? 1;

  // Its answers over every partition of bids and votes; meanwhile its own partition of lifecycle, directives and agents.
  const answerRecords: LogRecord[] = [];
  const ownRecords: LogRecord[] = [];
  const [answersRead, ownRead] = await Promise.all([
    scan(conn, { all: [t('bids'), t('votes')] }, (r) => {
      if ((r.decoded.type === 'Bid' || r.decoded.type === 'Vote') && (r.decoded.event as { agentId?: unknown }).agentId === agentId) answerRecords.push(r);
    }),
    scan(conn, ownPlan, (r) => {
      if ((r.decoded.event as { agentId?: unknown }).agentId === agentId) ownRecords.push(r);
    }),
  ]);

  // One answer per event id: the record on its round's partition (where the coordinator decided it) is the answer, others are copies.
  const answers = new Map<string, { info: AgentAnswerInfo; record: LogRecord }>();
  answerRecords.sort((a, b) => a.timestamp - b.timestamp || a.offset - b.offset);
  for (const r of answerRecords) {
    // Only bids and votes are read here.
    const e = r.decoded.event as Bid | Vote;
    const id = e.envelope.eventId;
    const home = partitionOfKey(Buffer.from(e.roundId), roundPartitions) === r.partition;
    const known = answers.get(id);
    if (known) {
      const knownHome = partitionOfKey(Buffer.from(known.info.roundId), roundPartitions) === known.record.partition;
      if (home && !knownHome) {
        const duplicates = [...known.info.duplicates, known.info.position];
        answers.set(id, { info: { ...answerOf(r), duplicates }, record: r });
      } else known.info.duplicates.push(positionOf(r));
      continue;
    }
    const info = answerOf(r);
    const why = whyNotTaken(r, e.roundId, allowed);
    if (why) info.note = why;
    answers.set(id, { info, record: r });
  }

  // Their closings and refusals, and the rounds it won, over outcomes.
  const counted = new Map<string, { stage: number; closingEventId: string }>();
  const refusals: Refusal[] = [];
  const won = new FirstById<RoundWonInfo>();
  const outcomesRead = await scan(conn, { all: [t('outcomes')] }, (r) => {
    switch (r.decoded.type) {
      case 'RoundClosed': {
        const c = r.decoded.event;
        for (const id of c.countedEventIds) if (answers.has(id) && !counted.has(id)) counted.set(id, { stage: c.stage ?? 0, closingEventId: c.envelope.eventId });
        break;
      }
      case 'Rejection': {
        const j = r.decoded.event;
        if (j.agentId === agentId || (j.rejectedEventId !== null && answers.has(j.rejectedEventId))) refusals.push(refusalOf(r));
        break;
      }
      case 'RoundOutcome': {
        const o = r.decoded.event;
        if (!o.winners.includes(agentId)) break;
        won.add(o.envelope.eventId, r, () => ({
          roundId: o.roundId, protocol: o.protocol, winners: o.winners, price: o.price, value: parseJson(o.value), reason: o.reason,
          eventId: o.envelope.eventId, eventTime: o.envelope.eventTime, position: positionOf(r), duplicates: [],
        }));
        break;
      }
    }
  });

  const refusalByEvent = new Map<string, Refusal>();
  for (const f of refusals) if (f.rejectedEventId !== null && f.reasonCode !== 'DUPLICATE_EVENT' && !refusalByEvent.has(f.rejectedEventId)) refusalByEvent.set(f.rejectedEventId, f);
  const answerList = [...answers.values()].map(({ info }) => info);
  for (const a of answerList) {
    const at = counted.get(a.eventId);
    const refusal = refusalByEvent.get(a.eventId);
    if (at) {
      a.verdict = 'counted';
      a.countedAt = at;
      delete a.note;
    } else if (refusal) {
      a.verdict = 'refused';
      a.refusal = refusal;
      delete a.note;
    } else {
      a.note ??= `no closing counted it and no refusal names it (is round ${a.roundId} still open? mabeam audit round ${a.roundId})`;
    }
  }

  // Lifecycle, handler failures, directives and the registration, in log order.
  ownRecords.sort((a, b) => (a.topic === b.topic ? a.offset - b.offset : a.timestamp - b.timestamp));
  const lifecycle: LifecycleStep[] = [];
  const failures = new FirstById<HandlerFailureInfo>();
  const directives = new FirstById<AgentDirectiveInfo>();
  let registration: AgentAudit['registration'];
  for (const r of ownRecords) {
    switch (r.decoded.type) {
      case 'LifecycleChanged': {
        const l = r.decoded.event;
        lifecycle.push({ from: l.from, to: l.to, reason: l.reason, instanceId: l.instanceId, host: l.host, eventTime: l.envelope.eventTime, position: positionOf(r) });
        break;
      }
      case 'HandlerFailed': {
        const h = r.decoded.event;
        failures.add(h.envelope.eventId, r, () => ({
          handler: h.handler, subjectId: h.subjectId, causeEventId: h.causeEventId, error: h.error, instanceId: h.instanceId,
          eventId: h.envelope.eventId, eventTime: h.envelope.eventTime, position: positionOf(r), duplicates: [],
        }));
        break;
      }
      case 'Directive': {
        const d = r.decoded.event;
        directives.add(d.envelope.eventId, r, () => ({
          eventId: d.envelope.eventId, action: d.action, roundId: d.roundId, variableId: d.variableId, parameters: parseJson(d.parameters), sentBy: d.envelope.producerId,
          eventTime: d.envelope.eventTime, position: positionOf(r), writtenBy: writtenByOf(r), handling: 'unknown', duplicates: [],
        }));
        break;
      }
      case 'AgentRecord': {
        const a = r.decoded.event;
        registration = { role: a.role, capabilities: a.capabilities, resources: a.resources, consumerGroup: a.consumerGroup, metadata: a.metadata, eventTime: a.envelope.eventTime, position: positionOf(r) };
        break;
      }
    }
  }

  // Whether each directive was handled: a failure names it, the lifecycle says the host acted on it, or the agent's group read past it.
  const consumerGroup = registration?.consumerGroup ?? null;
  const committed = consumerGroup ? await committedOffset(admin, consumerGroup, t('directives'), agentPartition) : undefined;
  const failureOf = new Map(failures.inOrder.filter((f) => f.handler === 'onDirective').map((f) => [f.causeEventId, f]));
  for (const d of directives.inOrder) {
    const failure = failureOf.get(d.eventId);
    if (failure) {
      d.handling = 'failed';
      d.failure = failure;
    } else if (lifecycle.some((l) => l.reason.includes(`${d.action} directive ${d.eventId}`))) d.handling = 'carried-out';
    else if (consumerGroup !== null) d.handling = committed !== undefined && committed > d.position.offset ? 'delivered' : 'pending';
  }

  const { instances, restarts, migrations } = lifecycleStory(lifecycle);
  const audit: AgentAudit = {
    agentId,
    read: {
      topics: [t('bids'), t('votes'), t('outcomes'), ...own.keys()],
      agentPartition,
      records: answersRead.records + ownRead.records + outcomesRead.records,
      consumerGroup,
    },
    ...(registration ? { registration } : {}),
    lifecycle,
    instances,
    restarts,
    migrations,
    answers: answerList,
    roundsWon: won.inOrder,
    directives: directives.inOrder,
    handlerFailures: failures.inOrder,
    undecodable: [...answersRead.undecodable, ...ownRead.undecodable, ...outcomesRead.undecodable],
  };
  const knows = audit.lifecycle.length + audit.answers.length + audit.roundsWon.length + audit.directives.length + audit.handlerFailures.length + refusals.length > 0 || registration !== undefined;
  if (!knows) throw notInLog('agent', agentId, `${t('bids')}, ${t('votes')}, ${t('outcomes')} and partition ${agentPartition} of ${[...own.keys()].join(', ')}`);
  return audit;
}

function answerOf(r: LogRecord): AgentAnswerInfo {
  // Only bids and votes come here.
  const d = r.decoded as DecodedEvent<'Bid' | 'Vote'>;
  if (d.type === 'Bid') {
    const e = d.event;
    const attributes = parseJson(e.attributes);
    const pass = !!attributes && typeof attributes === 'object' && (attributes as { pass?: unknown }).pass === true;
    return {
      roundId: e.roundId, type: 'Bid', eventId: e.envelope.eventId, answer: answerText({ type: 'Bid', amount: e.amount, bundle: e.bundle, pass }), amount: e.amount,
      eventTime: e.envelope.eventTime, position: positionOf(r), verdict: 'neither', duplicates: [],
    };
  }
  const e = d.event;
  return { roundId: e.roundId, type: 'Vote', eventId: e.envelope.eventId, answer: e.choice, choice: e.choice, eventTime: e.envelope.eventTime, position: positionOf(r), verdict: 'neither', duplicates: [] };
}

/**
 * Instances, restarts and migrations as the lifecycle shows them. A restart
 * is a `starting` after the agent had been in another state (stopped,
 * failed — or still running or starting: an instance that died without a
 * word); a migration is a `migrating`, resumed by the next instance that
 * starts.
 */
export function lifecycleStory(steps: readonly LifecycleStep[]): { instances: AgentInstanceInfo[]; restarts: AgentRestart[]; migrations: AgentMigration[] } {
  const instances = new Map<string, AgentInstanceInfo>();
  const restarts: AgentRestart[] = [];
  const migrations: AgentMigration[] = [];
  let previous: LifecycleStep | undefined;
  let lastInstance: string | null = null;
  let migrating: AgentMigration | undefined;
  for (const step of steps) {
    if (step.instanceId !== null) {
      const known = instances.get(step.instanceId);
      if (known) {
        known.lastSeen = step.eventTime;
        known.states.push(step.to);
        known.lastState = step.to;
      } else instances.set(step.instanceId, { instanceId: step.instanceId, host: step.host, firstSeen: step.eventTime, lastSeen: step.eventTime, states: [step.to], lastState: step.to });
    }
    if (step.to === 'migrating') {
      migrating = { fromInstanceId: step.instanceId, toInstanceId: null, reason: step.reason, at: step.eventTime, resumedAt: null };
      migrations.push(migrating);
    } else if (step.to === 'starting' && previous && previous.to !== 'starting') {
      if (migrating && migrating.resumedAt === null && step.instanceId !== migrating.fromInstanceId) {
        migrating.resumedAt = step.eventTime;
        migrating.toInstanceId = step.instanceId;
      } else {
        restarts.push({ instanceId: step.instanceId, at: step.eventTime, after: previous.to, previousInstanceId: lastInstance, reason: step.reason });
      }
    }
    // A supervisor reports `starting` without an instance: the instance that then runs is the one that resumed.
    if (migrating && migrating.resumedAt !== null && migrating.toInstanceId === null && step.instanceId !== null && step.instanceId !== migrating.fromInstanceId) {
      migrating.toInstanceId = step.instanceId;
    }
    if (step.instanceId !== null) lastInstance = step.instanceId;
    previous = step;
  }
  return { instances: [...instances.values()], restarts, migrations };
}

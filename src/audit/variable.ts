/**
 * The history of one variable from the log: every version with its previous
 * and new value, who wrote it, why (the cause and trigger its request
 * carried: a direct set, a compare-and-set, a consensus or market round, an
 * adaptation from metric samples) and the request that led to it; every
 * refused change with the owners' reason code; requests not answered yet.
 *
 * Reads only the variable's partition of variable-requests and
 * variable-changes (both keyed by variable id).
 */
import type { DecodedEvent } from '../codec/codec.ts';
import type { LogRecord } from '../replay/scanLog.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { FirstById, notInLog, parseJson, partitionsOfKey, positionOf, scan, withAdmin, writtenByOf } from './read.ts';
import type { AuditConnection, VariableAudit, VariableCause, VariableRefusalInfo, VariableRequestInfo, VariableVersionInfo } from './types.ts';

export const variableTopicNames = ['variable-requests', 'variable-changes'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/**
 * What a cause and trigger say, in the terms the writers use: `define`
 * (VariablesClient.define), `set` (with an expected version: a
 * compare-and-set), `consensus` (trigger: the round, its protocol and
 * outcome — proposeVariableChange), `adaptation` (trigger: the function,
 * its reason and the samples — the adaptation loop), `market` (trigger: the
 * round — allocateByMarket); any other cause as it is written.
 */
export function describeCause(cause: string, triggerJson: unknown, expectedVersion: number | null): VariableCause {
  const trigger = isObject(triggerJson) ? triggerJson : {};
  const cas = expectedVersion !== null ? { expectedVersion } : {};
  const at = expectedVersion !== null ? ` at version ${expectedVersion}` : '';
  switch (cause) {
    case 'define':
      return { kind: 'define', name: cause, summary: 'defined', ...cas };
    case 'set':
      return expectedVersion !== null
        ? { kind: 'compare-and-set', name: cause, summary: `compare-and-set on version ${expectedVersion}`, ...cas }
        : { kind: 'set', name: cause, summary: 'set directly' };
    case 'consensus':
    case 'market': {
      const roundId = text(trigger['roundId']);
      const protocol = text(trigger['protocol']);
      const status = text(trigger['status']);
      const value = text(trigger['value']);
      const said = [protocol, status, value].filter(Boolean).join(', ');
      const what = cause === 'consensus' ? 'consensus round' : 'market round';
      const summary = roundId ? `${what} ${roundId}${said ? ` (${said})` : ''}${at}` : `${cause}, naming no round${status ? ` (${status}${text(trigger['reason']) ? `: ${text(trigger['reason'])}` : ''})` : ''}`;
      return { kind: cause, name: cause, summary, ...cas, ...(roundId ? { roundId } : {}), ...(protocol ? { protocol } : {}) };
    }
    case 'adaptation': {
      const fn = text(trigger['function']);
      const reason = text(trigger['reason']);
      const samples = Array.isArray(trigger['metrics'])
        ? (trigger['metrics'] as unknown[]).filter(isObject).map((m) => ({ eventId: String(m['eventId']), name: String(m['name']), value: Number(m['value']) }))
        : [];
      const from = samples.length > 0 ? ` from ${samples.length} sample${samples.length === 1 ? '' : 's'} (${samples.slice(0, 3).map((s) => `${s.name}=${s.value}`).join(', ')}${samples.length > 3 ? ', …' : ''})` : '';
      const summary = `adaptation${fn ? ` by ${fn}` : ''}${reason ? `: ${reason}` : ''}${from}${at}`;
      return { kind: 'adaptation', name: cause, summary, ...cas, ...(fn ? { function: fn } : {}), ...(reason ? { reason } : {}), samples };
    }
    default:
      return { kind: 'other', name: cause, summary: `${cause}${at}`, ...cas };
  }
}

export async function auditVariable(conn: AuditConnection, variableId: string): Promise<VariableAudit> {
  const counts = await withAdmin(conn, (admin) => partitionCounts(admin, conn.prefix, variableTopicNames));
  const plan = partitionsOfKey(variableId, counts);
  const partitions: Record<string, number> = {};
  for (const [p, topics] of plan) for (const t of topics) partitions[t] = p;

  const mine: LogRecord[] = [];
  const { records, undecodable } = await scan(conn, plan, (r) => {
    if ((r.decoded.event as { variableId?: unknown }).variableId === variableId) mine.push(r);
  });
  if (mine.length === 0) throw notInLog('variable', variableId, Object.entries(partitions).map(([t, p]) => `${t}/${p}`).join(', '));

  const requests = new FirstById<VariableRequestInfo>();
  const changes: LogRecord[] = [];
  for (const r of mine) {
    if (r.decoded.type === 'VariableChangeRequested') {
      const q = r.decoded.event;
      requests.add(q.envelope.eventId, r, () => ({
        eventId: q.envelope.eventId, requesterId: q.requesterId, value: parseJson(q.value), expectedVersion: q.expectedVersion, cause: q.cause,
        trigger: parseJson(q.trigger), definition: parseJson(q.definition), eventTime: q.envelope.eventTime, position: positionOf(r), duplicates: [],
      }));
    } else if (r.decoded.type === 'VariableChanged' || r.decoded.type === 'VariableChangeRejected') changes.push(r);
  }

  const versions = new FirstById<VariableVersionInfo>();
  const refused = new FirstById<VariableRefusalInfo>();
  const answered = new Set<string>();
  for (const r of changes) {
    // changes holds only these two.
    const d = r.decoded as DecodedEvent<'VariableChanged' | 'VariableChangeRejected'>;
    const causation = d.event.envelope.causationId;
    const request = causation !== null ? requests.byId.get(causation) : undefined;
    if (request) answered.add(request.eventId);
    if (d.type === 'VariableChanged') {
      const c = d.event;
      versions.add(c.envelope.eventId, r, () => ({
        version: c.version, previousValue: parseJson(c.previousValue), value: parseJson(c.value), writerId: c.writerId,
        cause: describeCause(c.cause, parseJson(c.trigger), request?.expectedVersion ?? null),
        trigger: parseJson(c.trigger), eventId: c.envelope.eventId, eventTime: c.envelope.eventTime, position: positionOf(r), writtenBy: writtenByOf(r),
        ...(request ? { request } : {}), duplicates: [],
      }));
    } else {
      const j = d.event;
      refused.add(j.envelope.eventId, r, () => ({
        reasonCode: j.reasonCode, reason: j.reason, attemptedValue: parseJson(j.attemptedValue), requesterId: j.requesterId,
        ...(request ? { cause: describeCause(request.cause, request.trigger, request.expectedVersion), request } : {}),
        eventId: j.envelope.eventId, eventTime: j.envelope.eventTime, position: positionOf(r), writtenBy: writtenByOf(r), duplicates: [],
      }));
    }
  }

  const ordered = [...versions.inOrder].sort((a, b) => a.version - b.version || a.position.offset - b.position.offset);
  const first = ordered.find((v) => v.version === 1);
  const last = ordered[ordered.length - 1];
  return {
    variableId,
    read: { topics: [...counts.keys()], partitions, records },
    definition: first?.request?.definition ?? null,
    current: last ? { version: last.version, value: last.value } : null,
    versions: ordered,
    refused: refused.inOrder,
    unanswered: requests.inOrder.filter((q) => !answered.has(q.eventId)),
    undecodable,
  };
}

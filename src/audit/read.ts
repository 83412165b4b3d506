/** What the audits share: partition counts, positions, scans of chosen partitions. */
import type { Admin } from 'kafkajs';
import { partitionOfKey } from '../engine/routing.ts';
import { MabeamError } from '../errors.ts';
import { scanLog, type LogRecord, type UndecodableRecord } from '../replay/scanLog.ts';
import { loadTopicDefinitions } from '../topics/definitions.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { AuditConnection, LogPosition, Refusal, WrittenBy } from './types.ts';
import type { Rejection } from '../events/types.ts';

export const defaultAuditTimeoutMs = 120_000;

/** JSON text as a value; text that is not JSON (or null) as it is. */
export function parseJson(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function positionOf(record: LogRecord): LogPosition {
  const position: LogPosition = { topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp };
  if (record.forwardedFrom) position.forwardedFrom = { partition: record.forwardedFrom.partition, offset: record.forwardedFrom.offset };
  return position;
}

export function writtenByOf(record: LogRecord): WrittenBy | null {
  return record.producer ? { producerId: record.producer.id, producerEpoch: record.producer.epoch, transactional: record.producer.transactional } : null;
}

export function refusalOf(record: LogRecord): Refusal {
  const r = record.decoded.event as Rejection;
  return {
    reasonCode: r.reasonCode,
    reason: r.reason,
    eventId: r.envelope.eventId,
    rejectedEventId: r.rejectedEventId,
    agentId: r.agentId,
    eventTime: r.envelope.eventTime,
    position: positionOf(record),
    writtenBy: writtenByOf(record),
  };
}

/** Event ids are used once: the first record of an id is the event, later ones are copies. */
export class FirstById<T extends { duplicates: LogPosition[] }> {
  readonly byId = new Map<string, T>();
  readonly inOrder: T[] = [];

  /** The record's item, or undefined when it is a copy (then its position is added to the first one's duplicates). */
  add(eventId: string, record: LogRecord, make: () => T): T | undefined {
    const first = this.byId.get(eventId);
    if (first) {
      first.duplicates.push(positionOf(record));
      return undefined;
    }
    const item = make();
    this.byId.set(eventId, item);
    this.inOrder.push(item);
    return item;
  }
}

/** The definitions the audit was given, or topics/*.json. */
export async function definitionsOf(conn: AuditConnection): Promise<TopicDefinition[]> {
  return conn.definitions ?? loadTopicDefinitions();
}

/** The event types (full names) each prefixed topic carries. */
export async function allowedTypes(conn: AuditConnection): Promise<Map<string, Set<string>>> {
  return new Map((await definitionsOf(conn)).map((d) => [topicName(conn.prefix, d.name), new Set(d.eventTypes)]));
}

/**
 * Why the deciding member (coordinator, owner) does not take a record, if it
 * does not: an event type its topic does not carry, or a key other than the
 * id the event names. Both go to dead letters.
 */
export function whyNotTaken(record: LogRecord, id: string, allowed: ReadonlyMap<string, ReadonlySet<string>>): string | undefined {
  const types = allowed.get(record.topic);
  if (types && !types.has(record.decoded.fullName)) return `a ${record.decoded.type} on ${record.topic}, which does not carry it: it is dead-lettered (UNEXPECTED_EVENT_TYPE), not decided`;
  if (record.key !== id) return `keyed by ${record.key === null ? 'nothing' : JSON.stringify(record.key)}, not by ${JSON.stringify(id)}: it is dead-lettered (VALIDATION_FAILED), not decided`;
  return undefined;
}

/** Runs `work` with one connected admin client, disconnected after. */
export async function withAdmin<T>(conn: AuditConnection, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = conn.kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}


/** The partition of each topic a key belongs to, as a plan of scans: partition number → topics. */
export function partitionsOfKey(key: string, counts: ReadonlyMap<string, number>): Map<number, string[]> {
  const bytes = Buffer.from(key);
  const plan = new Map<number, string[]>();
  for (const [topic, count] of counts) {
    const p = partitionOfKey(bytes, count);
    const topics = plan.get(p);
    if (topics) topics.push(topic);
    else plan.set(p, [topic]);
  }
  return plan;
}

export interface ScanResult {
  records: number;
  undecodable: UndecodableRecord[];
}

/**
 * Reads the planned partitions (partition → topics; all partitions when the
 * plan is 'all') with scanLog, committed records only, handing each event
 * over as read. Records that do not decode are collected with their
 * positions.
 */
export async function scan(
  conn: AuditConnection,
  plan: ReadonlyMap<number, readonly string[]> | { all: readonly string[] },
  onEvent: (record: LogRecord) => void,
  from?: ReadonlyMap<string, number>,
  /** Only records with these keys (or none) are decoded: the others on the partition are about other rounds, agents or variables. */
  keys?: ReadonlySet<string>,
  /** True once the audit has what it looked for: the read ends there. */
  enough?: () => boolean,
  until?: ReadonlyMap<string, number>,
): Promise<ScanResult> {
  const undecodable: UndecodableRecord[] = [];
  let records = 0;
  const each = (record: LogRecord) => {
    records++;
    onEvent(record);
  };
  const options = (topics: readonly string[], partitions?: number[]) => ({
    topics: [...topics],
    ...(partitions ? { partitions } : {}),
    ...(from ? { from } : {}),
    // A read that stops once it has what it looks for fetches a little at a time.
    ...(enough ? { enough, fetchBytesPerPartition: 128 * 1024 } : {}),
    ...(until ? { until } : {}),
    ...(keys ? { keys } : {}),
    timeoutMs: conn.timeoutMs ?? defaultAuditTimeoutMs,
    onUndecodable: (u: UndecodableRecord) => {
      records++;
      undecodable.push(u);
    },
  });
  if ('all' in plan) {
    if (plan.all.length > 0) await scanLog(conn.kafka, conn.codec, options(plan.all as string[]), each);
  } else {
    await Promise.all([...plan].map(([partition, topics]) => scanLog(conn.kafka, conn.codec, options(topics, [partition]), each)));
  }
  undecodable.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
  return { records, undecodable };
}

/** A group's committed offset on one partition (the next record it reads), or undefined when it never committed there. */
export async function committedOffset(admin: Admin, groupId: string, topic: string, partition: number): Promise<number | undefined> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const offset = Number(offsets?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
  return offset >= 0 ? offset : undefined;
}

export function notInLog(what: string, id: string, where: string): MabeamError {
  return new MabeamError('NOT_IN_LOG', `The log holds nothing about ${what} "${id}" (read ${where}).`, { details: { [what]: id } });
}

/** "2026-01-02T03:04:05.678Z" */
export const iso = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms));

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Kafka } from 'kafkajs';
import { MabeamError, type ErrorCode } from '../errors.ts';
import { topicName } from '../topics/names.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { partitionsOfRounds, roundTopics } from './readHistory.ts';
import { inRequestOrder, judged, type ReplayReport, type RoundFilter } from './replayRounds.ts';
import type { ReplayShare, WorkerMessage } from './replayWorker.ts';
import type { StackEndpoints } from '../stack/types.ts';

export interface ParallelReplayOptions {
  kafka: Kafka;
  /** Where each worker connects, and with which logins. */
  endpoints: StackEndpoints;
  prefix: string;
  filter?: RoundFilter;
  /** Modules that add protocols, loaded in every worker. */
  protocolModules?: string[];
  /** Worker threads; default the machine's parallelism, at most 4 (and never more than the partitions). */
  workers?: number;
  onProgress?: (read: number, total: number) => void;
  timeoutMs?: number;
  /** Which rounds the report lists (see ReplayOptions). */
  keep?: 'all' | 'faults';
  /** Check each answer's signature as a coordinator with signatures required does. */
  requireSignatures?: boolean;
}

export function defaultReplayWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/**
 * Replay split by partition number among worker threads. A round's
 * records are all on one partition number of the round topics (they are
 * co-partitioned, and each share passes by the records the engine copied
 * to their key's partition, see scanLog placedOnly), so each worker reads
 * and decides its own rounds and the reports add up to the whole.
 */
export async function parallelReplay(options: ParallelReplayOptions): Promise<ReplayReport> {
  const filter = options.filter ?? {};
  const admin = options.kafka.admin();
  await admin.connect();
  let count: number;
  try {
    count = (await partitionCounts(admin, options.prefix, roundTopics)).get(topicName(options.prefix, 'bid-requests')) ?? 1;
  } finally {
    await admin.disconnect();
  }
  let all = Array.from({ length: count }, (_, p) => p);
  if (filter.roundIds && filter.roundIds.size > 0) {
    all = partitionsOfRounds(filter.roundIds, count);
  }
  const workers = Math.max(1, Math.min(options.workers ?? defaultReplayWorkers(), all.length));
  const shares = Array.from({ length: workers }, (_, w) => all.filter((_, i) => i % workers === w));
  const progress = shares.map(() => ({ read: 0, total: 0 }));
  const reports = await Promise.all(
    shares.map(
      (partitions, w) =>
        new Promise<ReplayReport>((resolve, reject) => {
          const share: ReplayShare = { endpoints: options.endpoints, prefix: options.prefix, partitions, filter, protocolModules: options.protocolModules ?? [], ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}), ...(options.keep ? { keep: options.keep } : {}), ...(options.requireSignatures ? { requireSignatures: true } : {}) };
          const worker = new Worker(new URL(`./replayWorker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url), { workerData: share });
          let settled = false;
          worker.on('message', (message: WorkerMessage) => {
            if (message.type === 'progress') {
              progress[w] = { read: message.read, total: message.total };
              options.onProgress?.(progress.reduce((t, p) => t + p.read, 0), progress.reduce((t, p) => t + p.total, 0));
            } else if (message.type === 'report') {
              settled = true;
              resolve(message.report);
            } else {
              settled = true;
              reject(new MabeamError((message.code as ErrorCode | undefined) ?? 'LOG_READ_TIMEOUT', message.message));
            }
          });
          worker.on('error', (error) => {
            settled = true;
            reject(error);
          });
          worker.on('exit', (code) => {
            if (!settled) reject(new MabeamError('CHILD_FAILED', `A replay worker (partitions ${partitions.join(', ')}) exited with code ${code} before its report.`));
          });
        }),
    ),
  );
  return mergeReports(reports, filter);
}

/** The reports of the shares as one: rounds in request order, counts added, every repeated outcome and undecodable record kept. */
export function mergeReports(reports: readonly ReplayReport[], filter: RoundFilter = {}): ReplayReport {
  const merged: ReplayReport = { events: 0, rounds: [], identical: 0, different: 0, contradictory: 0, duplicate: 0, incomplete: 0, open: 0, refused: 0, repeated: [], undecodable: [], notFound: [], ok: true };
  for (const r of reports) {
    merged.events += r.events;
    merged.rounds.push(...r.rounds);
    for (const v of ['identical', 'different', 'contradictory', 'duplicate', 'incomplete', 'open', 'refused'] as const) merged[v] += r[v];
    merged.repeated.push(...r.repeated);
    merged.undecodable.push(...r.undecodable);
  }
  merged.rounds.sort((a, b) => inRequestOrder({ roundId: a.roundId, requestedAt: a.request?.timestamp }, { roundId: b.roundId, requestedAt: b.request?.timestamp }));
  merged.undecodable.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
  return judged(merged, filter);
}

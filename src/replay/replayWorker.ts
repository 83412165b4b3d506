/**
 * One share of a parallel replay, in a worker thread: it reads its
 * partition numbers of the round topics (rounds are partition-local: the
 * round topics are co-partitioned), decides those rounds again and posts
 * the report. See parallelReplay.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { codecFor } from '../codec/codec.ts';
import type { StackEndpoints } from '../stack/types.ts';
import { kafkaFor, silenceKafkajsTimerWarnings } from '../kafka/client.ts';
import { createLogger } from '../log/logger.ts';
import { loadProtocolModules } from '../protocols/modules.ts';
import { loadCatalog } from '../schemas/catalog.ts';
import { loadKeyDirectory } from '../security/directoryFollower.ts';
import { readHistory } from './readHistory.ts';
import { replayHistory, settleAsRead, type ReplayOptions, type RoundFilter } from './replayRounds.ts';

export interface ReplayShare {
  endpoints: StackEndpoints;
  prefix: string;
  partitions: number[];
  filter: RoundFilter;
  protocolModules: string[];
  timeoutMs?: number;
  keep?: ReplayOptions['keep'];
  /** Check every answer's signature against the agents' keys (each worker reads the agents topic itself). */
  requireSignatures?: boolean;
}

export type WorkerMessage =
  | { type: 'progress'; read: number; total: number }
  | { type: 'report'; report: ReturnType<typeof replayHistory> }
  | { type: 'failed'; message: string; code?: string };

silenceKafkajsTimerWarnings();
const share = workerData as ReplayShare;
const post = (message: WorkerMessage) => parentPort!.postMessage(message);

try {
  const kafka = kafkaFor(share.endpoints, `mabeam-replay-${share.partitions.join('-')}`, createLogger({ level: 'error' }));
  const codec = codecFor(share.endpoints, await loadCatalog());
  const { protocols } = await loadProtocolModules(share.protocolModules);
  const keys = share.requireSignatures ? await loadKeyDirectory(kafka, codec, share.prefix) : undefined;
  let last = 0;
  const history = await readHistory({
    kafka, codec, prefix: share.prefix, filter: share.filter, partitions: share.partitions, onComplete: settleAsRead(protocols), ...(keys ? { keys } : {}),
    ...(share.timeoutMs ? { timeoutMs: share.timeoutMs } : {}),
    onProgress: (read, total) => {
      // At most every 100 ms: messages between threads are not free.
      if (Date.now() - last < 100 && read < total) return;
      last = Date.now();
      post({ type: 'progress', read, total });
    },
  });
  post({ type: 'report', report: replayHistory(history, protocols, share.filter, share.keep ? { keep: share.keep } : {}) });
} catch (error) {
  post({ type: 'failed', message: error instanceof Error ? error.message : String(error), ...((error as { code?: string }).code ? { code: (error as { code: string }).code } : {}) });
}

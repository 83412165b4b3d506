import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError, isMabeamError } from '../errors.ts';
import type { AgentStateSnapshot } from '../events/types.ts';
import { isRetriable, readToEnd } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Reads the latest state snapshot of each of `agentIds` from the compacted
 * agent-state topic: everything committed up to the end the topic had when
 * called (readToEnd). A registry that cannot be reached is asked again —
 * the same record, never skipped — until the read times out
 * (LOG_READ_TIMEOUT), so an agent never starts from its initial state and
 * later overwrites the snapshot it could not read. A snapshot that can never
 * decode is said with its position (the topic's own consumers dead-letter
 * it), and the agent's latest readable one stands.
 */
export async function readSnapshots(kafka: Kafka, codec: EventCodec, topic: string, agentIds: readonly string[], logger: Logger, timeoutMs = 30_000): Promise<Map<string, AgentStateSnapshot>> {
  const wanted = new Set(agentIds);
  const latest = new Map<string, AgentStateSnapshot>();
  await readToEnd(kafka, {
    topics: [topic],
    groupPrefix: `${topic}.restore`,
    timeoutMs,
    onRecord: async ({ partition, offset, message }) => {
      const key = message.key?.toString();
      if (!key || !wanted.has(key)) return;
      if (message.value === null) {
        latest.delete(key);
        return;
      }
      try {
        latest.set(key, (await codec.decode<AgentStateSnapshot>(message.value, { allowedTypes: ['io.mabeam.events.AgentStateSnapshot'] })).event);
      } catch (error) {
        if (isRetriable(error)) throw error; // readToEnd asks again
        logger.warn({ topic, partition, offset, key, code: isMabeamError(error) ? error.code : undefined, error: describeError(error) }, 'an undecodable state snapshot: the agent keeps its latest readable one');
      }
    },
  });
  return latest;
}

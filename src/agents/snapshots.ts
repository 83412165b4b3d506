import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import type { AgentStateSnapshot } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Reads the latest state snapshot of each of `agentIds` from the compacted
 * agent-state topic: everything up to the end the topic had when called.
 * A snapshot that does not decode is skipped with a warning (the topic's own
 * consumers dead-letter it); the agent then starts from its initial state.
 */
export async function readSnapshots(kafka: Kafka, codec: EventCodec, topic: string, agentIds: readonly string[], logger: Logger): Promise<Map<string, AgentStateSnapshot>> {
  const wanted = new Set(agentIds);
  const latest = new Map<string, AgentStateSnapshot>();
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = (await admin.fetchTopicOffsets(topic)).filter((p) => Number(p.high) > Number(p.low));
    if (ends.length === 0) return latest;
    const remaining = new Map(ends.map((p) => [p.partition, Number(p.high) - 1]));
    const consumer = kafka.consumer({ groupId: `${topic}.restore.${randomBytes(6).toString('hex')}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer.on(consumer.events.CRASH, ({ payload }) => !payload.restart && reject(payload.error));
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              const key = message.key?.toString();
              if (key && wanted.has(key)) {
                if (message.value === null) latest.delete(key);
                else {
                  try {
                    latest.set(key, (await codec.decode<AgentStateSnapshot>(message.value, { allowedTypes: ['io.mabeam.events.AgentStateSnapshot'] })).event);
                  } catch (error) {
                    logger.warn({ key, offset: message.offset, error: describeError(error) }, 'skipping an undecodable state snapshot');
                  }
                }
              }
              const last = remaining.get(partition);
              if (last !== undefined && Number(message.offset) >= last) remaining.delete(partition);
              if (remaining.size === 0) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return latest;
  } finally {
    await admin.disconnect();
  }
}

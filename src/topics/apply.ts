import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, ITopicConfig } from 'kafkajs';
import { topicResourceType } from '../kafka/client.ts';
import { MabeamError, describeError } from '../errors.ts';
import { checkTopicSet } from './definitions.ts';
import { topicName } from './names.ts';
import type { ApplyReport, TopicChange, TopicDefinition } from './types.ts';

/**
 * Waits until every partition of the topics has a leader that serves it.
 * (kafkajs's own waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION and
 * NOT_LEADER_FOR_PARTITION, which a KRaft broker answers for a moment after
 * the controller created the topic.) A topic that serves is not asked again,
 * so on a busy broker the wait narrows to the topics still electing.
 */
export async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(topics);
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const { topics: metadata } = await admin.fetchTopicMetadata({ topics: [...pending] });
      const led = metadata.filter((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)).map((t) => t.name);
      // Metadata names a leader a moment before it serves: ask each partition for its offsets.
      await Promise.all(
        led.map((topic) =>
          admin.fetchTopicOffsets(topic).then(
            () => pending.delete(topic),
            (error: unknown) => {
              lastError = error;
            },
          ),
        ),
      );
      if (pending.size === 0) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(50);
  }
  throw new MabeamError('TOPIC_APPLY_FAILED', `Topics had no leaders within ${timeoutMs} ms: ${[...pending].join(', ')} (${describeError(lastError)})`);
}

/** Kafka's ConfigSource code for a config set on the topic itself. */
const dynamicTopicConfig = 1;

export interface ApplyTopicsOptions {
  prefix: string;
  /** Replication factor to use instead of the definitions' (capped at the broker count either way). */
  replicationFactor?: number;
}

/**
 * Makes the cluster match the definitions: creates missing topics, sets
 * configs that differ, adds partitions that are missing. Idempotent: a second
 * run reports every topic unchanged. It never deletes a topic, never removes
 * a config it does not manage and never shrinks a topic (Kafka cannot).
 */
export async function applyTopics(admin: Admin, definitions: TopicDefinition[], options: ApplyTopicsOptions): Promise<ApplyReport> {
  checkTopicSet(definitions);
  const warnings: string[] = [];
  const brokers = (await admin.describeCluster()).brokers.length;
  const wantedRf = options.replicationFactor;
  const plans = definitions.map((d) => {
    const desired = wantedRf ?? d.replicationFactor;
    const rf = Math.min(desired, brokers);
    const config = { ...d.config };
    if (rf < desired) warnings.push(`${d.name}: replication factor ${desired} capped at ${rf} (the cluster has ${brokers} broker${brokers === 1 ? '' : 's'})`);
    const isr = Number(config['min.insync.replicas'] ?? '1');
    if (isr > rf) {
      config['min.insync.replicas'] = String(rf);
      warnings.push(`${d.name}: min.insync.replicas ${isr} capped at ${rf}`);
    }
    return { definition: d, topic: topicName(options.prefix, d.name), rf, config };
  });

  const existing = new Set(await admin.listTopics());
  const toCreate = plans.filter((p) => !existing.has(p.topic));
  const toCheck = plans.filter((p) => existing.has(p.topic));
  const changes: TopicChange[] = [];

  if (toCreate.length > 0) {
    const topics: ITopicConfig[] = toCreate.map((p) => ({
      topic: p.topic,
      numPartitions: p.definition.partitions,
      replicationFactor: p.rf,
      configEntries: Object.entries(p.config).map(([name, value]) => ({ name, value })),
    }));
    try {
      await admin.createTopics({ topics, waitForLeaders: false });
    } catch (error) {
      // A concurrent apply may have created some of them: those are fine.
      if (!/already exists/i.test(describeError(error)) && (error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') {
        throw new MabeamError('TOPIC_APPLY_FAILED', `Creating topics failed: ${describeError(error)}`, { cause: error });
      }
    }
    await waitForLeaders(admin, toCreate.map((p) => p.topic));
    for (const p of toCreate) changes.push({ kind: 'created', topic: p.topic, partitions: p.definition.partitions, replicationFactor: p.rf });
  }

  if (toCheck.length > 0) {
    const [metadata, described] = await Promise.all([
      admin.fetchTopicMetadata({ topics: toCheck.map((p) => p.topic) }),
      admin.describeConfigs({
        includeSynonyms: false,
        resources: toCheck.map((p) => ({ type: topicResourceType, name: p.topic })),
      }),
    ]);
    const partitionCounts = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
    const currentConfigs = new Map(
      described.resources.map((r) => [r.resourceName, new Map(r.configEntries.map((e) => [e.configName, e.configValue]))]),
    );
    // Configs set on the topic itself (source DYNAMIC_TOPIC_CONFIG), ours or an operator's.
    const topicLevelConfigs = new Map(
      described.resources.map((r) => [
        r.resourceName,
        Object.fromEntries(r.configEntries.filter((e) => e.configSource === dynamicTopicConfig).map((e) => [e.configName, e.configValue])),
      ]),
    );
    const partitionIncreases: Array<{ topic: string; count: number }> = [];
    for (const p of toCheck) {
      const have = partitionCounts.get(p.topic) ?? 0;
      if (have > p.definition.partitions) {
        throw new MabeamError(
          'TOPIC_PARTITIONS_SHRINK',
          `${p.topic} has ${have} partitions but its definition asks for ${p.definition.partitions}; Kafka cannot remove partitions. Raise the definition or recreate the topic.`,
        );
      }
      const current = currentConfigs.get(p.topic) ?? new Map<string, string>();
      const diff: Record<string, { from: string | undefined; to: string }> = {};
      for (const [name, value] of Object.entries(p.config)) {
        if (current.get(name) !== value) diff[name] = { from: current.get(name), to: value };
      }
      if (Object.keys(diff).length > 0) {
        // AlterConfigs replaces the whole topic-level set, so the topic's other
        // configs (an operator's) are sent along unchanged.
        const merged = { ...topicLevelConfigs.get(p.topic), ...p.config };
        await admin.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: topicResourceType,
              name: p.topic,
              configEntries: Object.entries(merged).map(([name, value]) => ({ name, value })),
            },
          ],
        });
      }
      const partitions = have < p.definition.partitions ? { from: have, to: p.definition.partitions } : undefined;
      if (partitions) {
        partitionIncreases.push({ topic: p.topic, count: p.definition.partitions });
        if (p.definition.coPartitionGroup) {
          warnings.push(`${p.topic}: partitions raised from ${have} to ${partitions.to}; keys of open rounds now map to other partitions`);
        }
      }
      if (Object.keys(diff).length > 0 || partitions) {
        changes.push({ kind: 'updated', topic: p.topic, configs: diff, ...(partitions ? { partitions } : {}) });
      } else {
        changes.push({ kind: 'unchanged', topic: p.topic });
      }
    }
    if (partitionIncreases.length > 0) await admin.createPartitions({ topicPartitions: partitionIncreases });
  }

  const order = new Map(plans.map((p, i) => [p.topic, i]));
  changes.sort((a, b) => (order.get(a.topic) ?? 0) - (order.get(b.topic) ?? 0));
  return { changes, warnings };
}

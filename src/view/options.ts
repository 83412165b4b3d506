import type { Redis } from 'ioredis';
import type { Kafka, Producer } from 'kafkajs';
import { z } from 'zod';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { TopicDefinition } from '../topics/types.ts';

export interface LiveViewOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  /** The agent registry's read model lives there. */
  redis: Redis;
  /** Writes the dead letters of the registry's views. */
  producer: Producer;
  /** Names this view (its consumer group and its registry view); default view-<pid>-<random>. */
  instanceId?: string;
  /** Whose kinds of protocol the rounds are shown with; default the process-wide registry. */
  protocols?: ProtocolRegistry;
  /** Records read back per partition at start (the view starts near the end of long logs). */
  recordsPerPartition?: number;
  /** Rounds kept (the newest). */
  maxRounds?: number;
  /** Studies kept (the latest seen). */
  maxStudies?: number;
  /** Latest dead letters kept. */
  latestDeadLetters?: number;
  /** How often the agent registry is read again (ms). */
  agentPollMs?: number;
}

export const liveDefaults = Object.freeze({ recordsPerPartition: 1_000, maxRounds: 500, maxStudies: 500, latestDeadLetters: 50, agentPollMs: 500 });

const tuningSchema = z.strictObject({
  recordsPerPartition: z.number().int().min(1).default(liveDefaults.recordsPerPartition),
  maxRounds: z.number().int().min(1).default(liveDefaults.maxRounds),
  maxStudies: z.number().int().min(1).default(liveDefaults.maxStudies),
  latestDeadLetters: z.number().int().min(1).default(liveDefaults.latestDeadLetters),
  agentPollMs: z.number().int().min(50).default(liveDefaults.agentPollMs),
});

export type LiveTuning = z.infer<typeof tuningSchema>;

/** The numbers of the options, checked once, with their defaults; INVALID_OPTIONS names what is wrong. */
export function liveTuning(options: LiveViewOptions): LiveTuning {
  const given = Object.fromEntries(Object.entries({
    recordsPerPartition: options.recordsPerPartition, maxRounds: options.maxRounds, maxStudies: options.maxStudies,
    latestDeadLetters: options.latestDeadLetters, agentPollMs: options.agentPollMs,
  }).filter(([, v]) => v !== undefined));
  const parsed = tuningSchema.safeParse(given);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new MabeamError('INVALID_OPTIONS', `Invalid live view options: ${problems}.`);
  }
  return parsed.data;
}

/**
 * The key directory read from the `agents` topic: followed live by a
 * decider (KeyDirectoryFollower), or read once to its end for replay
 * (loadKeyDirectory). Both feed KeyDirectory the same records in log order.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError, MabeamError } from '../errors.ts';
import type { AgentRecord } from '../events/types.ts';
import { readToEnd } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import { TopicFollower } from '../readmodel/topicFollower.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import { topicName } from '../topics/names.ts';
import { KeyDirectory, type KeyLookup, type PinnedKey, type SignedRecord } from './directory.ts';
import { checkSignature, type SignatureRefusal } from './verify.ts';

const agentRecordType = 'io.mabeam.events.AgentRecord';

/** Applies one record of the agents topic (a tombstone removes the agent); what does not decode is logged and passed by. */
async function applyMessage(directory: KeyDirectory, codec: EventCodec, message: KafkaMessage, logger?: Logger): Promise<void> {
  const key = message.key?.toString();
  if (message.value === null) {
    if (key) directory.remove(key);
    return;
  }
  let event: AgentRecord;
  try {
    event = (await codec.decode<AgentRecord>(message.value, { allowedTypes: [agentRecordType] })).event;
  } catch (error) {
    if (error instanceof MabeamError && error.retriable) throw error;
    logger?.warn({ key, offset: message.offset, error: describeError(error) }, 'an agents record does not decode; no key taken from it');
    return;
  }
  const record: SignedRecord = { key: message.key, value: message.value, headers: message.headers, timestamp: Number(message.timestamp) };
  const applied = directory.apply(event, record);
  if (applied === 'refused') logger?.warn({ agentId: event.agentId, ...directory.refused[directory.refused.length - 1] }, 'an agent record\'s key was not taken');
}

/** The directory of the agents topic as it is now (replay: the keys the log holds). */
export async function loadKeyDirectory(kafka: Kafka, codec: EventCodec, prefix: string, options: { logger?: Logger; timeoutMs?: number } = {}): Promise<KeyDirectory> {
  const directory = new KeyDirectory();
  await readToEnd(kafka, {
    topics: [topicName(prefix, 'agents')],
    groupPrefix: 'keys',
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    onRecord: ({ message }) => applyMessage(directory, codec, message, options.logger),
  });
  return directory;
}

/**
 * A decider's key directory, kept up to date from the agents topic.
 * `verify` is checkSignature with one more look: a key the directory does
 * not know may belong to an agent that registered a moment ago, so before
 * refusing with UNKNOWN_KEY the topic is read to its end once and the key
 * looked up again.
 */
export class KeyDirectoryFollower implements KeyLookup, StopsForGood {
  readonly directory = new KeyDirectory();
  private readonly follower: TopicFollower;

  constructor(options: { kafka: Kafka; codec: EventCodec; prefix: string; groupPrefix: string; logger: Logger }) {
    const { codec, logger } = options;
    this.follower = new TopicFollower({
      kafka: options.kafka,
      topic: topicName(options.prefix, 'agents'),
      groupPrefix: options.groupPrefix,
      logger,
      onMessage: (message) => applyMessage(this.directory, codec, message, logger),
    });
  }

  get stoppedForGood(): Promise<Error> {
    return this.follower.stoppedForGood;
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  key(agentId: string, keyId: string): PinnedKey | undefined {
    return this.directory.key(agentId, keyId);
  }

  owner(keyId: string): string | undefined {
    return this.directory.owner(keyId);
  }

  /**
   * Reads the agents topic to the end it has now. Not shared with a read
   * already under way: that one's end may be from before the record asked.
   */
  refresh(): Promise<void> {
    return this.follower.caughtUp();
  }

  async verify(record: SignedRecord, agentId: string): Promise<SignatureRefusal | undefined> {
    const first = checkSignature(record, agentId, this.directory);
    if (first?.reasonCode !== 'UNKNOWN_KEY') return first;
    await this.refresh();
    return checkSignature(record, agentId, this.directory);
  }
}

import type { KafkaMessage } from 'kafkajs';
import type { Outputs } from './outputs.ts';

/** A record the engine hands a decider: on its right partition, above the committed offset. */
export interface InputRecord {
  topic: string;
  partition: number;
  offset: string;
  message: KafkaMessage;
}

/** What a decider may do while it decides a record of one partition (a lane). */
export interface Lane<D> {
  readonly partition: number;
  /** What the lane's next transaction writes. */
  readonly out: Outputs<D>;
  /** Sends a record to dead-letters, in the lane's transaction. */
  deadLetter(record: InputRecord, error: unknown): Promise<void>;
}

/**
 * The part of a consume → decide → produce member that knows its domain
 * (rounds, variables). Its state is per partition: the engine gives it a
 * partition to restore once that partition is fenced, feeds it the
 * partition's records in log order, and asks it to forget the partition
 * when the partition moves or a transaction fails.
 */
export interface Decider<D> {
  /** Prefixed names of the topics decided from (co-partitioned, keyed alike). */
  readonly inputs: readonly string[];
  /** Prefixed names of topics whose committed group offset the decider reads on restore (its changelog). */
  readonly stateTopics?: readonly string[];
  /**
   * The partitions are now this member's and no one else can commit on
   * them: read their state. `committed` holds the group's committed offsets
   * per partition, by topic (inputs and state topics; absent = never
   * committed). Called once per assignment, for every partition assigned.
   */
  restore(partitions: readonly number[], committed: ReadonlyMap<number, ReadonlyMap<string, number>>): Promise<void>;
  /**
   * Decides one record. A retriable MabeamError (the registry is down) is
   * retried for the same record; any other error sends the record to
   * dead-letters. A decider must leave its state unchanged when it throws.
   */
  decide(record: InputRecord, lane: Lane<D>): Promise<void>;
  /**
   * Whether the partition's state changed since its changelog was last
   * written. A batch that decided nothing and changed nothing (a decider
   * reading back its own outputs) then needs no transaction of its own: its
   * offsets go with the lane's next one, or after quietFlushMs. Without it,
   * every such batch is committed after idleFlushMs.
   */
  changed?(partition: number): boolean;
  /** Just before the lane's transaction: write the changelog of what changed. */
  beforeCommit?(partition: number, out: Outputs<D>): Promise<void>;
  /** After the transaction's records were sent: offsets of state topics to commit with it. */
  stateOffsets?(partition: number): Array<{ topic: string; offset: number }>;
  /** The lane's transaction committed with these decisions. */
  committed?(partition: number, decisions: readonly D[]): void;
  /** Forgets the partition (it moved, or the member starts over from the log). */
  release(partition: number): void;
}

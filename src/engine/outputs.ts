import type { Message, RecordMetadata } from 'kafkajs';

/** One record a decision writes, and (for changelogs) what to learn of the offset it got. */
export interface Pending {
  topic: string;
  message: Message;
  onOffset?: (offset: number) => void;
}

/**
 * What a lane has applied since its last commit and what its next
 * transaction writes: records (decisions, forwarded records, changelog
 * entries, dead letters) and the input positions they were decided from.
 */
export class Outputs<D = unknown> {
  private records: Pending[] = [];
  /** Next offset to read, per input topic (of this lane's partition). */
  readonly offsets = new Map<string, number>();
  /** What the transaction decided, for the metrics once it commits. */
  readonly decisions: D[] = [];
  /** The trace headers of the record being decided: what it leads to carries them, unless it has its own. */
  trace: Record<string, string> | undefined;

  get size(): number {
    return this.records.length;
  }

  get empty(): boolean {
    return this.records.length === 0 && this.offsets.size === 0;
  }

  add(topic: string, message: Message, onOffset?: (offset: number) => void): void {
    if (this.trace && message.headers?.['traceparent'] === undefined) message = { ...message, headers: { ...this.trace, ...message.headers } };
    this.records.push(onOffset ? { topic, message, onOffset } : { topic, message });
  }

  /** A DeadLetterWriter writes through this: the dead letter joins the transaction. */
  async send(record: { topic: string; messages: Message[] }): Promise<RecordMetadata[]> {
    for (const message of record.messages) this.add(record.topic, message);
    return [];
  }

  /** The topics its records go to. */
  topics(): string[] {
    return this.records.map((r) => r.topic);
  }

  consumed(topic: string, offset: string): void {
    this.offsets.set(topic, Math.max(this.offsets.get(topic) ?? 0, Number(offset) + 1));
  }

  /**
   * The records in produce requests of at most about `maxBytes` each, in
   * order. A broker refuses a record batch over its `message.max.bytes`
   * (1 MB by default) — and kafkajs puts all of a request's records for one
   * partition in one batch — so a transaction that writes a lot (a quiet
   * partition's sweep refusing thousands of answers at once) is sent in
   * pieces, all in the same transaction.
   */
  chunks(maxBytes = 256 * 1024): Array<{ topicMessages: Array<{ topic: string; messages: Message[] }>; records: Pending[] }> {
    return Outputs.chunked(this.records, maxBytes);
  }

  private static chunked(records: readonly Pending[], maxBytes: number): Array<{ topicMessages: Array<{ topic: string; messages: Message[] }>; records: Pending[] }> {
    const out: Array<{ topicMessages: Array<{ topic: string; messages: Message[] }>; records: Pending[] }> = [];
    let current: Pending[] = [];
    let bytes = 0;
    const size = (m: Message) => (Buffer.isBuffer(m.value) ? m.value.length : String(m.value ?? '').length) + (Buffer.isBuffer(m.key) ? m.key.length : String(m.key ?? '').length) + 64;
    for (const r of records) {
      const n = size(r.message);
      if (current.length > 0 && bytes + n > maxBytes) {
        out.push({ topicMessages: Outputs.byTopic(current), records: current });
        current = [];
        bytes = 0;
      }
      current.push(r);
      bytes += n;
    }
    if (current.length > 0) out.push({ topicMessages: Outputs.byTopic(current), records: current });
    return out;
  }

  /**
   * The records in produce requests that each go to one topic-partition
   * (at most about `maxBytes`), in order per partition. `partitionOf` names
   * the partition of a record that does not name its own (by its key).
   *
   * On a cluster of several brokers a request that spans partitions on
   * different leaders is not safe to let kafkajs retry: when one leader
   * fails, kafkajs sends the whole request again after reconnecting, and
   * the partitions another leader had already written are written a second
   * time, with new sequence numbers, in the same transaction (kafkajs keys
   * the answers it has by broker object, and a reconnect makes new ones).
   * A request to one partition is retried with its own sequence numbers,
   * which the broker recognises.
   */
  partitionChunks(partitionOf: (topic: string, key: Message['key']) => number, maxBytes = 256 * 1024): Array<{ topicMessages: Array<{ topic: string; messages: Message[] }>; records: Pending[] }> {
    const byPartition = new Map<string, Pending[]>();
    for (const r of this.records) {
      const partition = r.message.partition ?? partitionOf(r.topic, r.message.key);
      const key = `${r.topic}/${partition}`;
      let list = byPartition.get(key);
      if (!list) byPartition.set(key, (list = []));
      list.push({ ...r, message: { ...r.message, partition } });
    }
    return [...byPartition.values()].flatMap((records) => Outputs.chunked(records, maxBytes));
  }

  private static byTopic(records: Pending[]): Array<{ topic: string; messages: Message[] }> {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of records) {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(message);
    }
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  }

  /**
   * Tells each changelog record the offset it was written at. The broker
   * gives the base offset per topic-partition and kafkajs keeps the order
   * of a partition's messages, so the n-th record on it has base + n.
   * Records that want their offset name their partition explicitly (every
   * record on that topic-partition must, for the count to hold).
   */
  written(metadata: RecordMetadata[], records: readonly Pending[] = this.records): void {
    const base = new Map(metadata.map((m) => [`${m.topicName}/${m.partition}`, Number(m.baseOffset)]));
    const seen = new Map<string, number>();
    for (const r of records) {
      if (r.message.partition === undefined) continue;
      const key = `${r.topic}/${r.message.partition}`;
      const n = seen.get(key) ?? 0;
      seen.set(key, n + 1);
      const b = base.get(key);
      if (r.onOffset && b !== undefined) r.onOffset(b + n);
    }
  }
}

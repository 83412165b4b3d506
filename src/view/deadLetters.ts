/**
 * Dead letters the view has read: how many per source topic and reason
 * code, and the latest few (where the record is and why it was not taken).
 */
import type { DeadLetter } from '../events/types.ts';
import type { DeadLetterRow, DeadLetters } from './types.ts';

export class DeadLetterBoard {
  private readonly counts = new Map<string, { topic: string; reasonCode: string; count: number }>();
  private latest: DeadLetterRow[] = [];
  private total = 0;
  private readonly keep: number;

  constructor(keep: number) {
    this.keep = keep;
  }

  get size(): number {
    return this.total;
  }

  apply(d: DeadLetter): DeadLetterRow {
    const row: DeadLetterRow = { at: d.envelope.eventTime, topic: d.sourceTopic, partition: d.sourcePartition, offset: d.sourceOffset, reasonCode: d.reasonCode, reason: d.reason };
    const key = `${d.sourceTopic}\u0000${d.reasonCode}`;
    const count = this.counts.get(key) ?? { topic: d.sourceTopic, reasonCode: d.reasonCode, count: 0 };
    count.count += 1;
    this.counts.set(key, count);
    this.total += 1;
    // The partitions of the topic are read side by side: keep the latest by time, not by arrival.
    this.latest.push(row);
    this.latest.sort((a, b) => b.at - a.at);
    if (this.latest.length > this.keep) this.latest = this.latest.slice(0, this.keep);
    return { ...row };
  }

  /** Counts most first; the latest newest first. */
  list(): DeadLetters {
    return {
      counts: [...this.counts.values()].map((c) => ({ ...c })).sort((a, b) => b.count - a.count || a.topic.localeCompare(b.topic) || a.reasonCode.localeCompare(b.reasonCode)),
      latest: this.latest.map((r) => ({ ...r })),
    };
  }
}

/**
 * A timer per open round, for the deadline of its current stage. A deadline
 * is a clock decision: when a timer fires, the coordinator writes RoundClosed
 * (cause "deadline") with the outcome before anything acts on it, so replay
 * reads the decision from the log instead of a clock.
 */
export class Deadlines {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; stage: number; partition: number }>();

  /** Sets (or keeps) the timer of a round's stage; a timer of an earlier stage is replaced. */
  schedule(partition: number, roundId: string, stage: number, deadline: number, fire: (partition: number, roundId: string, stage: number) => void): void {
    const current = this.timers.get(roundId);
    if (current && current.stage === stage) return;
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      this.timers.delete(roundId);
      fire(partition, roundId, stage);
    }, Math.max(0, deadline - Date.now()));
    timer.unref();
    this.timers.set(roundId, { timer, stage, partition });
  }

  clear(roundId: string): void {
    clearTimeout(this.timers.get(roundId)?.timer);
    this.timers.delete(roundId);
  }

  /** Forgets the timers of a partition's rounds (it moved, or restores again). */
  clearPartition(partition: number): void {
    for (const [roundId, t] of this.timers) {
      if (t.partition !== partition) continue;
      clearTimeout(t.timer);
      this.timers.delete(roundId);
    }
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
  }

  get size(): number {
    return this.timers.size;
  }
}

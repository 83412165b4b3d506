/**
 * A timer per open round, for the deadline of its current stage. A deadline
 * is a clock decision: when a timer fires, the coordinator writes RoundClosed
 * (cause "deadline") with the outcome before anything acts on it, so replay
 * reads the decision from the log instead of a clock.
 */
/** The longest a Node timer waits. */
const maxTimerMs = 2 ** 31 - 1;

export class Deadlines {
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; stage: number; partition: number }>();

  /** Sets (or keeps) the timer of a round's stage; a timer of an earlier stage is replaced. */
  schedule(partition: number, roundId: string, stage: number, deadline: number, fire: (partition: number, roundId: string, stage: number) => void): void {
    const current = this.timers.get(roundId);
    if (current && current.stage === stage) return;
    if (current) clearTimeout(current.timer);
    // A timer cannot wait longer than 2^31 - 1 ms (Node fires it at once instead): a far deadline is waited for in steps.
    const wait = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(roundId);
      if (deadline > Date.now()) this.schedule(partition, roundId, stage, deadline, fire);
      else fire(partition, roundId, stage);
    }, Math.min(wait, maxTimerMs));
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

import type { Consumer } from 'kafkajs';

/**
 * A long-running part of a process (a coordinator, a variable owner, an
 * agent host, a view) that can stop for good on its own: its consumer
 * crashed with an error kafkajs will not restart from, or its work cannot go
 * on. `stoppedForGood` never resolves while it runs; it resolves with the
 * cause when it has stopped, and a command then exits non-zero so a
 * supervisor (systemd, Kubernetes, `mabeam supervise`) restarts it.
 */
export interface StopsForGood {
  readonly stoppedForGood: Promise<Error>;
}

/** A latch a component resolves once, with the first cause. */
export class StoppedLatch implements StopsForGood {
  readonly stoppedForGood: Promise<Error>;
  private resolve!: (error: Error) => void;
  private cause: Error | undefined;

  constructor() {
    this.stoppedForGood = new Promise<Error>((resolve) => (this.resolve = resolve));
  }

  /** The cause, once stopped for good. */
  get error(): Error | undefined {
    return this.cause;
  }

  stop(error: unknown): void {
    if (this.cause) return;
    this.cause = error instanceof Error ? error : new Error(String(error));
    this.resolve(this.cause);
  }

  /** Latches when kafkajs reports a crash of `consumer` it will not restart from. */
  watch(consumer: Consumer): this {
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) this.stop(payload.error);
    });
    return this;
  }
}

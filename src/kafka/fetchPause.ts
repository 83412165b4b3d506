/**
 * A fix for kafkajs 2.2.4's fetch loop: a consumer's fetcher calls fetch
 * again as soon as one returns, and a fetch that fails at once (its leader
 * just died, the broker pool is being rebuilt) is turned into an empty
 * answer without any wait. Such fetches then follow each other in
 * microtasks only: the process spins at 100% CPU, its event loop never
 * runs I/O again — no metadata refresh, so it never recovers, and no
 * signal, so it cannot even be stopped. (Seen with engine members after a
 * broker of a cluster was killed; kafkajs issues #1384, #1387, #1428.)
 *
 * An empty fetch that came back in less than a millisecond or two is not a
 * broker's long poll (that waits maxWaitTime): the fetcher waits a little
 * before the next one, on a timer, so the event loop turns.
 *
 * The same spin, for good, when the consumer is stopped while its fetch
 * manager is rebuilding its fetchers (a rebalance of fetchers after a
 * broker is lost): the new fetchers keep asking a runner that no longer
 * runs, which answers "nothing" at once, forever — and the disconnect that
 * stopped it never finishes. A stopped runner's fetch now fails, which ends
 * its fetcher and lets the fetch manager wind down.
 */
import { createRequire } from 'node:module';

/** How long a fetcher waits after an empty answer that took no time. */
export const emptyFetchPauseMs = 50;

interface ConsumerGroupPrototype {
  fetch(this: unknown, nodeId: number): Promise<unknown[]>;
  mabeamFetchPause?: true;
}

/** Installs the pause; called by abortedFilter.ts once its own fix is in (loading kafkajs's consumer before it would bypass that fix). */
export function installFetchPause(): void {
  const require = createRequire(import.meta.url);
  const proto = (require('kafkajs/src/consumer/consumerGroup.js') as { prototype: ConsumerGroupPrototype }).prototype;
  if (proto.mabeamFetchPause) return;
  const fetch = proto.fetch;
  proto.fetch = async function (this: unknown, nodeId: number): Promise<unknown[]> {
    const started = performance.now();
    const batches = await fetch.call(this, nodeId);
    if (batches.length === 0 && performance.now() - started < 2) await new Promise((resolve) => setTimeout(resolve, emptyFetchPauseMs));
    return batches;
  };
  proto.mabeamFetchPause = true;

  const runner = (require('kafkajs/src/consumer/runner.js') as { prototype: RunnerPrototype }).prototype;
  const runnerFetch = runner.fetch;
  runner.fetch = async function (this: { running: boolean }, nodeId: number): Promise<unknown[]> {
    if (!this.running) throw new ConsumerStoppedError();
    return runnerFetch.call(this, nodeId);
  };
}

/** What a stopped consumer's fetch fails with, so its fetchers end. */
export class ConsumerStoppedError extends Error {
  override readonly name = 'MabeamConsumerStopped';
  constructor() {
    super('the consumer has stopped: its fetchers end');
  }
}

interface RunnerPrototype {
  fetch(this: { running: boolean }, nodeId: number): Promise<unknown[]>;
}

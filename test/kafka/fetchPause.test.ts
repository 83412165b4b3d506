import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../src/kafka/abortedFilter.ts';
import { ConsumerStoppedError, emptyFetchPauseMs } from '../../src/kafka/fetchPause.ts';

const require = createRequire(import.meta.url);
const { prototype } = require('kafkajs/src/consumer/consumerGroup.js') as { prototype: { fetch(this: unknown, nodeId: number): Promise<unknown[]> } };

describe('a kafkajs fetcher whose fetches fail at once', () => {
  // What kafkajs's own fetch does when its leader is gone: the error is "recovered" into an empty answer.
  const failing = { cluster: { refreshMetadataIfNecessary: async () => Promise.reject(new Error('Connection error: connect ECONNREFUSED')) }, recoverFromFetch: async () => undefined };

  it('waits on a timer before the next fetch, so the event loop (I/O, signals) still turns', async () => {
    let timerFired = false;
    setTimeout(() => (timerFired = true), 0);
    const started = performance.now();
    // The fetcher's loop: fetch after fetch, each empty at once. Without the pause the timer never fires.
    for (let i = 0; i < 3 && !timerFired; i++) expect(await prototype.fetch.call(failing, 1)).toEqual([]);
    expect(timerFired).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(emptyFetchPauseMs - 5);
  });

  it('ends when its consumer has stopped, instead of being told "nothing" forever', async () => {
    const { prototype: runner } = require('kafkajs/src/consumer/runner.js') as { prototype: { fetch(this: unknown, nodeId: number): Promise<unknown[]> } };
    await expect(runner.fetch.call({ running: false }, 1)).rejects.toBeInstanceOf(ConsumerStoppedError);
  });
});

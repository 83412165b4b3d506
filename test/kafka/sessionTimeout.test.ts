import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseSessionTimeout, defaultSessionTimeoutMs, heartbeatIntervalFor, kafkaDefaultMinSessionTimeoutMs, sessionTimeoutBounds } from '../../src/kafka/sessionTimeout.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('session', { applyTopics: false });
});
afterAll(() => ctx?.close());

describe('the session timeout group members use', () => {
  it('is the default within the bounds the broker states (the local stack allows 1 s)', async () => {
    expect(await sessionTimeoutBounds(ctx.kafka)).toEqual({ min: 1_000, max: expect.any(Number) });
    expect(await chooseSessionTimeout(ctx.kafka)).toEqual({ sessionTimeoutMs: defaultSessionTimeoutMs, source: 'default' });
    expect(await chooseSessionTimeout(ctx.kafka, 4_500)).toEqual({ sessionTimeoutMs: 4_500, source: 'requested' });
  });

  it('is Kafka\'s default floor when the broker cannot be asked', async () => {
    const unreachable = new Kafka({ brokers: ['127.0.0.1:1'], logLevel: logLevel.NOTHING, retry: { retries: 0 }, connectionTimeout: 200 });
    expect(await chooseSessionTimeout(unreachable)).toEqual({ sessionTimeoutMs: kafkaDefaultMinSessionTimeoutMs, source: 'bounds-unknown' });
  });

  it('beats four times within a session, never more often than every 250 ms', () => {
    expect(heartbeatIntervalFor(2_000)).toBe(500);
    expect(heartbeatIntervalFor(6_000)).toBe(1_500);
    expect(heartbeatIntervalFor(600)).toBe(250);
  });
});

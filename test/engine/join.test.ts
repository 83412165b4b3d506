import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Processor } from '../../src/engine/processor.ts';
import type { Decider } from '../../src/engine/types.ts';
import { sendSnappyRecord } from '../foreignRecords.ts';
import { testContext, uniqueName, type TestContext } from '../helpers.ts';

// Its own topics: the record that stops a consumer here would stop the members of another file too.
let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('join');
});
afterAll(() => ctx?.close());

const decider = (decided: string[]): Decider<never> => ({
  inputs: [ctx.topic('bid-requests')],
  restore: async () => undefined,
  decide: async (record) => {
    decided.push(record.offset);
  },
  release: () => undefined,
});

describe('an engine member joining its group', () => {
  it('whose consumer crashes before it is ready tries again, then stops for good and says why instead of waiting forever', { timeout: 90_000 }, async () => {
    // A client with compression.type=snappy wrote a request: kafkajs crashes on the first fetch, before the member is ready.
    await sendSnappyRecord(await ctx.producer(), ctx.topic('bid-requests'), 'round-snappy', Buffer.from('{"from":"another client"}'));
    const decided: string[] = [];
    const member = new Processor<never>({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, producerId: 'join-test',
      groupId: uniqueName(`${ctx.prefix}.members`), decider: decider(decided), joinAttempts: 2,
    });
    ctx.defer(() => member.stop());
    await expect(member.start()).rejects.toThrow(/could not join: .*Snappy compression not implemented/);
    await expect(member.stoppedForGood).resolves.toMatchObject({ message: expect.stringMatching(/Snappy compression not implemented/) });
    expect(decided).toEqual([]);
  });
});

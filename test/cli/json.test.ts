/** Commands that print data print it as JSON with --json, for machines. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../agentProcesses.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('json');
});
afterAll(() => ctx?.close());

const json = async (args: string[]) => {
  const r = await runCli(ctx.stack, args);
  expect(r.stderr, args.join(' ')).not.toMatch(/mabeam:/);
  return { code: r.code, value: JSON.parse(r.stdout) as unknown };
};

describe('--json', () => {
  it('topics list, topics apply, schemas list and schemas register', { timeout: 60_000 }, async () => {
    const topics = await json(['topics', 'list', '--prefix', ctx.prefix, '--json']);
    expect(topics.value).toEqual(expect.arrayContaining([expect.objectContaining({ topic: ctx.topic('bids'), name: 'bids', key: 'roundId', partitions: 12 })]));
    const applied = await json(['topics', 'apply', '--prefix', ctx.prefix, '--json']);
    expect((applied.value as { changes: Array<{ kind: string }> }).changes.every((c) => c.kind === 'unchanged')).toBe(true);
    const schemas = await json(['schemas', 'list', '--json']);
    expect(schemas.value).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Bid', fullName: 'io.mabeam.events.Bid', schema: expect.objectContaining({ type: 'record' }) })]));
    const registered = await json(['schemas', 'register', '--json']);
    expect(registered.value).toEqual(expect.arrayContaining([expect.objectContaining({ subject: 'io.mabeam.events.Bid', id: expect.any(Number) })]));
  });

  it('agents list, agents health and var list on an empty prefix; dev status of a stack that does not run', { timeout: 60_000 }, async () => {
    expect((await json(['agents', 'list', '--prefix', ctx.prefix, '--json'])).value).toEqual([]);
    expect((await json(['agents', 'health', '--prefix', ctx.prefix, '--json'])).value).toEqual([]);
    expect((await json(['var', 'list', '--prefix', ctx.prefix, '--json'])).value).toEqual([]);
    const status = await json(['--stack', `${ctx.prefix}-none`, 'dev', 'status', '--json']);
    expect(status.code).toBe(1);
    expect(status.value).toMatchObject({ name: `${ctx.prefix}-none`, state: 'not-running', services: [] });
  });
});

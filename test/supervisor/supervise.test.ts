import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { sendSnappyRecord } from '../foreignRecords.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';

// Its own topics: the record that stops a consumer here would stop every agent of another file too.
let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('supervise');
});
afterAll(() => ctx?.close());

const counter = fileURLToPath(new URL('../fixtures/agents/counter.ts', import.meta.url));

describe('mabeam supervise', () => {
  it('exits with code 1, naming the child, once a child keeps failing past its restart budget', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mabeam-supervise-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    const spec = join(dir, 'spec.json');
    const child = { id: 'poisoned', module: counter, restart: 'permanent', maxRestarts: 1, periodMs: 60_000, backoff: { initialMs: 50, factor: 2, maxMs: 500 }, args: ['--session-timeout-ms', '3000', '--heartbeat-ms', '500'] };
    await writeFile(spec, JSON.stringify({ prefix: ctx.prefix, children: [child] }));
    const p = runCliProcess(ctx.stack, ['supervise', spec], { FIXTURE_AGENT_ID: 'poisoned' });
    ctx.defer(() => stopAgentProcess(p));
    await waitFor(() => /poisoned: pid \d+ running/.test(p.stderr()), { what: 'the supervised agent to run', timeoutMs: 40_000 });

    // Every incarnation of the agent resumes at this record and stops for good on it: kafkajs
    // cannot read Snappy batches.
    await sendSnappyRecord(await ctx.producer(), ctx.topic('bid-requests'), 'round-snappy', Buffer.from('{"from":"another client"}'));

    await waitFor(() => p.process.exitCode !== null || p.process.signalCode !== null, { what: 'supervise to exit', timeoutMs: 40_000 });
    expect(await p.exited).toEqual({ code: 1, signal: null });
    const said = p.stderr();
    expect(said).toMatch(/poisoned: pid \d+ exited \(1\) → restart in 50 ms/);
    expect(said).toMatch(/poisoned: pid \d+ exited \(1\) → gave-up/);
    expect(said).toMatch(/stopped for good: poisoned exited with code 1 and its restart budget \(1 restarts in 60000 ms\) is spent/);
  });
});

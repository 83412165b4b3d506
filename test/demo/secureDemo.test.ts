import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { readLog } from '../../src/replay/readLog.ts';
import { runCli } from '../agentProcesses.ts';
import { secureStack, testContext, uniqueName } from '../helpers.ts';

describe('mabeam demo --secure', () => {
  it('runs the whole demo on the secure stack, each part as its own user: signed bids, a forged one refused, an honest winner, writes beyond a role refused', { timeout: 120_000 }, async () => {
    const secure = secureStack();
    const prefix = uniqueName('sdemo');
    const keysDir = mkdtempSync(join(tmpdir(), 'mabeam-sdemo-keys-'));
    const r = await runCli(secure.stack, ['demo', '--secure', '--prefix', prefix], { MABEAM_KEYS_DIR: keysDir }, 110_000);
    expect(r.stderr).not.toMatch(/mabeam:/);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const line = (pattern: RegExp) => lines.find((l) => pattern.test(l)) ?? `(no line matches ${pattern})`;
    expect(line(/principals/)).toMatch(new RegExp(`${prefix}-coordinator \\(coordinator\\), ${prefix}-owner \\(owner\\), ${prefix}-agents \\(agent pool "demo"\\), ${prefix}-client \\(client\\); \\d+ ACLs`));
    expect(line(/coordinator \(first-price\)/)).toMatch(/3 bids joined by round id; planner-b wins at 42/);
    expect(line(/refused by the coordinator/)).toMatch(/a bid in coder-c's name — FORGED: .*of agent planner-a/);
    expect(line(/writing to outcomes/)).toMatch(new RegExp(`${prefix}-agents writing to outcomes: KAFKA_NOT_AUTHORIZED`));
    expect(line(/reading round-state/)).toMatch(new RegExp(`${prefix}-client reading round-state: KAFKA_NOT_AUTHORIZED`));
    expect(line(/dead letter:/)).toMatch(/BAD_MAGIC_BYTE/);
    expect(line(/variables from the Redis view/)).toMatch(/demo\.temperature = 0\.7, demo\.team-size = 3/);
    expect(line(/mabeam_forged_events_total/)).toMatch(new RegExp(`\\{topic="${prefix}\\.bids",reason="FORGED"\\} 1`));

    // The log says the same: one outcome for the round, and the forged bid's Rejection in it.
    const ctx = await testContext('sdemo-read', { stack: secure.stack, applyTopics: false });
    try {
      const roundId = /demo complete: round (\S+)/.exec(r.stdout)?.[1];
      expect(roundId).toBeDefined();
      const log = (await readLog(ctx.kafka, ctx.codec, [`${prefix}.outcomes`])).map((e) => e.decoded).filter((d) => (d.event as { roundId?: string }).roundId === roundId || (d.event as { subjectId?: string }).subjectId === roundId);
      expect(log.filter((d) => d.type === 'RoundOutcome').map((d) => d.event)).toEqual([expect.objectContaining({ winners: ['planner-b'], price: 42 })]);
      expect(log.filter((d) => d.type === 'Rejection').map((d) => d.event)).toEqual([expect.objectContaining({ agentId: 'coder-c', reasonCode: 'FORGED' })]);
    } finally {
      await ctx.close();
    }
  });

  it('says what it needs on a cluster reached without a login', async () => {
    const r = await runCli(inject('stack'), ['demo', '--secure', '--prefix', uniqueName('sdemo-plain')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/demo --secure on the services in the environment needs an admin login.*\[INVALID_CREDENTIALS\]/);
  });
});

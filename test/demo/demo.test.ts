import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceHeader } from '../../src/agents/host.ts';
import type { LiveDemoResult } from '../../src/demo/live.ts';
import type { Bid, LifecycleChanged } from '../../src/events/types.ts';
import { readToEnd } from '../../src/kafka/readToEnd.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { environmentFor } from '../../src/stack/endpoints.ts';
import { runCli } from '../agentProcesses.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('demo', { applyTopics: false });
});
afterAll(() => ctx?.close());

const root = fileURLToPath(new URL('../..', import.meta.url));

/** `npm start -- …` as a newcomer runs it, on the test stack through the environment. */
function npmStart(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['start', '--silent', '--', ...args], { cwd: root, env: { ...process.env, ...environmentFor(ctx.stack) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm start (the README\'s main job)', () => {
  it('runs a real deployment and its scenario; every step\'s facts are in the topics', { timeout: 240_000 }, async () => {
    const run = await npmStart(['--prefix', ctx.prefix, '--json']);
    if (run.code !== 0) throw new Error(`npm start exited ${run.code}:\n${run.stderr.slice(-3000)}`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop()!) as LiveDemoResult;
    // The narration went to stderr, one numbered line per step.
    for (let n = 1; n <= 8; n++) expect(run.stderr).toMatch(new RegExp(`^\\[${n}\\] `, 'm'));
    expect(run.stderr).toMatch(/^live view: http:\/\/127\.0\.0\.1:\d+\//m);
    expect(result.processes.map((p) => p.id)).toEqual(['view', 'coordinator-1', 'coordinator-2', 'owner', 'optimizer', 'planner', 'ada', 'bo', 'cy', 'dee-1', 'dee-2']);
    expect(new Set(result.processes.map((p) => p.pid)).size).toBe(11);

    const log = await readLog(ctx.kafka, ctx.codec, ['outcomes', 'bid-requests', 'votes', 'variable-changes', 'lifecycle', 'studies', 'plans', 'dead-letters'].map((t) => ctx.topic(t)));
    const events = (type: string, key: string) => log.filter((r) => r.decoded.type === type && r.key === key).map((r) => r.decoded.event as unknown as Record<string, unknown>);
    const outcomeOf = (roundId: string) => {
      const outcomes = events('RoundOutcome', roundId);
      expect(outcomes, `outcomes of ${roundId}`).toHaveLength(1); // exactly one outcome per round, in the committed log
      return outcomes[0]!;
    };

    // 1. The auctions: Vickrey (ada bids 42, pays bo's 35); English from 20 in steps of 2, in stages: ada wins
    // near bo's limit of 35 — at 34 if ada led at 34 (bo cannot go to 36), at 36 if bo's 34 came first.
    expect(outcomeOf(result.sealedRound)).toMatchObject({ protocol: 'vickrey', status: 'decided', winners: ['ada'], price: 35 });
    const english = outcomeOf(result.englishRound);
    expect(english).toMatchObject({ protocol: 'english', status: 'decided', winners: ['ada'] });
    expect([34, 36]).toContain(english['price']);
    expect(events('BidRequest', result.englishRound).length).toBeGreaterThan(2);

    // 2. The vote of the affected agents, and the change it allowed.
    const votes = events('Vote', result.consensusRound).map((v) => `${String(v['agentId'])} ${String(v['choice'])}`).sort();
    expect(votes).toEqual(['ada yes', 'bo yes', 'cy no']);
    expect(outcomeOf(result.consensusRound)).toMatchObject({ status: 'decided', value: '"yes"' });
    const priceChange = events('VariableChanged', 'demo.gpu-price').find((e) => e['version'] === result.gpuPrice.version)!;
    expect(priceChange).toMatchObject({ cause: 'consensus' });
    expect(JSON.parse(String(priceChange['value']))).toBe(30);
    expect(JSON.parse(String(priceChange['trigger']))).toMatchObject({ roundId: result.consensusRound });

    // 3. A killed replica: the supervisor wrote its failure and restart; dee's bid came from another instance.
    const dee = events('LifecycleChanged', 'dee') as unknown as LifecycleChanged[];
    const failed = dee.find((l) => l.to === 'failed' && l.reason?.includes(`process ${result.agentKill.killedPid} killed by SIGKILL`));
    expect(failed, 'the supervisor\'s failed transition for the killed replica').toBeDefined();
    expect(dee.some((l) => l.to === 'starting' && l.from === 'failed')).toBe(true);
    expect(outcomeOf(result.agentKill.roundId)).toMatchObject({ status: 'decided', winners: ['ada'], price: 35 });
    const deeBids: Array<{ bid: Bid; instance: string | undefined }> = [];
    await readToEnd(ctx.kafka, {
      topics: [ctx.topic('bids')],
      onRecord: async ({ message }) => {
        if (message.key?.toString() !== result.agentKill.roundId || !message.value) return;
        const decoded = await ctx.codec.decode(message.value);
        if (decoded.type === 'Bid' && (decoded.event as unknown as Bid).agentId === 'dee') deeBids.push({ bid: decoded.event as unknown as Bid, instance: message.headers?.[instanceHeader]?.toString() });
      },
    });
    expect(deeBids.length).toBeGreaterThan(0);
    expect(deeBids.map((b) => b.instance)).not.toContain(failed!.instanceId);
    expect(result.agentKill.restartedPid).not.toBe(result.agentKill.killedPid);

    // 4. A killed coordinator: one closing and one outcome, decided.
    expect(outcomeOf(result.coordinatorKill.roundId)).toMatchObject({ status: 'decided', winners: ['ada'], price: 42 });
    expect(events('RoundClosed', result.coordinatorKill.roundId)).toHaveLength(1);
    expect(result.coordinatorKill.restartedPid).not.toBe(result.coordinatorKill.killedPid);
    // A coordinator is no agent: the supervisor writes no lifecycle for it.
    expect(log.filter((r) => r.decoded.type === 'LifecycleChanged' && r.key?.startsWith('coordinator'))).toEqual([]);

    // 5. The study completed, and its best team was applied as a change with cause optimization.
    expect(events('StudyCompleted', result.study.studyId)).toHaveLength(1);
    expect(events('TrialCompleted', result.study.studyId).length).toBeGreaterThanOrEqual(20);
    const teamChange = events('VariableChanged', 'demo.team').find((e) => e['version'] === result.team.version)!;
    expect(teamChange).toMatchObject({ cause: 'optimization' });
    expect(JSON.parse(String(teamChange['value']))).toEqual(result.study.best);
    expect(JSON.parse(String(teamChange['trigger']))).toMatchObject({ study: result.study.studyId });

    // 6. The plan completed, its four steps run by agents.
    expect(events('PlanCompleted', result.planId)).toHaveLength(1);
    expect(new Set(log.filter((r) => r.decoded.type === 'StepAssigned' && r.decoded.event['planId'] === result.planId).map((r) => (r.decoded.event as { stepId?: string }).stepId))).toEqual(new Set(['build', 'review', 'benchmark', 'release']));

    // 7. The garbage: dead-lettered with its reason and its bytes; the next round decided.
    const letter = log.filter((r) => r.decoded.type === 'DeadLetter').map((r) => r.decoded.event as unknown as { key: Buffer | null; value: Buffer | null; reasonCode: string; sourceTopic: string }).find((l) => l.key?.toString() === result.garbage.key);
    expect(letter).toMatchObject({ reasonCode: 'BAD_MAGIC_BYTE', sourceTopic: ctx.topic('bids') });
    expect(letter!.value!.toString()).toMatch(/not avro at all/);
    expect(outcomeOf(result.afterGarbageRound)).toMatchObject({ status: 'decided' });

    // 8. The log replays identically (its only undecodable record is the garbage); the audit names the sealed round's winner.
    const replay = await runCli(ctx.stack, ['replay', '--prefix', ctx.prefix, '--json']);
    const report = JSON.parse(replay.stdout.trim().split('\n').pop()!) as { identical: number; different: number; contradictory: number; duplicate: number; incomplete: number; undecodable: Array<{ key?: string }> };
    expect(report).toMatchObject({ different: 0, contradictory: 0, duplicate: 0, incomplete: 0 });
    expect(report.identical).toBeGreaterThanOrEqual(7);
    expect(report.undecodable.map((u) => u.key)).toEqual([result.garbage.key]);
    expect(result.replay.identical).toBe(report.identical);
    expect(result.audit).toMatch(new RegExp(`Round ${result.sealedRound}: vickrey auction, decided\\n\\s+ada won at 35`));
  });
});

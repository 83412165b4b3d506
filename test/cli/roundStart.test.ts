import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLog } from '../../src/replay/readLog.ts';
import { applyTopics } from '../../src/topics/index.ts';
import { runAgentProcess, runCli, runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { testContext, type TestContext } from '../helpers.ts';

const roundStart = (args: string[]) => runCli(ctx.stack, ['round', 'start', '--prefix', ctx.prefix, ...args]);
const bidder = fileURLToPath(new URL('../fixtures/agents/bidder.ts', import.meta.url));
const lowestBid = fileURLToPath(new URL('../fixtures/protocols/lowestBid.ts', import.meta.url));

let ctx: TestContext;

/** Runs `mabeam round start …` as a user would, on this file's prefix; its exit code and output. */

/** The round ids of every request (stage 0) on the request topics, sorted. */
async function requestedRounds(): Promise<string[]> {
  const log = await readLog(ctx.kafka, ctx.codec, [ctx.topic('bid-requests'), ctx.topic('proposals')]);
  return log.filter((r) => ((r.decoded.event as { stage?: number }).stage ?? 0) === 0).map((r) => (r.decoded.event as { roundId: string }).roundId).sort();
}

beforeAll(async () => {
  ctx = await testContext('round-start');
  // The coordinator also runs a protocol of a user's own module.
  const coordinator = runCliProcess(ctx.stack, ['coordinator', 'run', '--prefix', ctx.prefix, '--protocols', lowestBid]);
  ctx.defer(() => stopAgentProcess(coordinator));
  // Three bidders, one process each: alpha bids 10, bravo 30, charlie 20; alpha and bravo vote yes, charlie no.
  const agents = [
    ['alpha', '10', 'yes'],
    ['bravo', '30', 'yes'],
    ['charlie', '20', 'no'],
  ].map(([id, price, vote]) => {
    const p = runAgentProcess(ctx.stack, bidder, ['--prefix', ctx.prefix], { FIXTURE_AGENT_ID: id!, BID_PRICE: price!, VOTE_CHOICE: vote! });
    ctx.defer(() => stopAgentProcess(p));
    return p;
  });
  await Promise.all([coordinator.ready, ...agents.map((a) => a.ready)]);
}, 120_000);
afterAll(() => ctx?.close());

describe('mabeam round start', () => {
  it('runs a first-price auction among three bidder processes and prints the winner and price', { timeout: 90_000 }, async () => {
    const r = await roundStart(['--protocol', 'first-price', '--bidders', 'alpha,bravo,charlie', '--item', '{"gpuHours":4}', '--deadline', '30s']);
    expect(r.stderr).toMatch(/first-price auction requested on .*bid-requests among alpha, bravo, charlie, deadline in 30 s/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^status\s+decided$/m);
    expect(r.stdout).toMatch(/^winners\s+bravo$/m);
    expect(r.stdout).toMatch(/^price\s+30$/m);
    expect(r.stdout).toMatch(/^bids\s+bravo 30, charlie 20, alpha 10$/m);
    const roundId = /^round\s+(\S+)$/m.exec(r.stdout)?.[1];
    expect(roundId).toMatch(/^auction-/);
    expect(await requestedRounds()).toContain(roundId);
  });

  it('runs a round under a protocol of a module given to both the coordinator and the command', { timeout: 90_000 }, async () => {
    const r = await roundStart(['--protocols', lowestBid, '--protocol', 'lowest-bid', '--bidders', 'alpha,bravo,charlie', '--deadline', '30s', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ protocol: 'lowest-bid', status: 'decided', winners: ['alpha'], price: 10 });
  });

  it('prints one JSON object with --json; a round file gives the fields and flags override it', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mabeam-round-'));
    const file = join(dir, 'round.json');
    await writeFile(file, JSON.stringify({ protocol: 'first-price', item: { gpuHours: 2 }, bidders: ['alpha', 'bravo', 'charlie'], deadline: '30s', roundId: `${ctx.prefix}-file` }));
    const r = await roundStart(['--file', file, '--protocol', 'vickrey', '--json']);
    expect(r.code).toBe(0);
    const outcome = JSON.parse(r.stdout) as Record<string, unknown>;
    // Vickrey, from the flag: bravo wins and pays the second-highest bid.
    expect(outcome).toMatchObject({ roundId: `${ctx.prefix}-file`, protocol: 'vickrey', kind: 'auction', status: 'decided', winners: ['bravo'], price: 20, subject: { gpuHours: 2 } });
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('runs a consensus the three agents vote in', { timeout: 90_000 }, async () => {
    const r = await roundStart(['--protocol', 'majority', '--voters', 'alpha,bravo,charlie', '--subject', 'upgrade the cluster?', '--options', 'yes,no', '--deadline', '30s', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ protocol: 'majority', kind: 'consensus', status: 'decided', value: 'yes', subject: 'upgrade the cluster?', details: { totals: { yes: 2, no: 1 } } });
  });

  it('shows the answers seen while it waits, and a round closed at its deadline', { timeout: 90_000 }, async () => {
    // delta never answers, so the round runs to its deadline with three bids.
    const r = await roundStart(['--protocol', 'first-price', '--bidders', 'alpha,bravo,charlie,delta', '--deadline', '5s']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/waiting for the outcome, deadline in \d+ s, 3 of 4 bids seen/);
    expect(r.stdout).toMatch(/^winners\s+bravo$/m);
  });

  it('exits 3 and says so when no outcome comes before --timeout', { timeout: 90_000 }, async () => {
    // Topics of their own and no coordinator on them.
    const prefix = `${ctx.prefix}-idle`;
    await applyTopics(ctx.admin, ctx.definitions, { prefix });
    const r = await roundStart(['--prefix', prefix, '--protocol', 'first-price', '--bidders', 'alpha', '--deadline', '1s', '--timeout', '2s', '--round-id', 'idle-1', '--json']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/mabeam: no outcome for round idle-1 within 2 s .*Is a coordinator running on prefix "t-round-start-[0-9a-f]+-idle"\?/);
    expect(JSON.parse(r.stdout)).toMatchObject({ roundId: 'idle-1', status: 'timeout' });
  });

  it('exits 3 when the round decides nothing, with the outcome printed', { timeout: 90_000 }, async () => {
    const r = await roundStart(['--protocol', 'unanimous', '--voters', 'alpha,bravo,charlie', '--subject', 'upgrade?', '--deadline', '30s']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^status\s+no-decision$/m);
    expect(r.stdout).toMatch(/^reason\s+votes differ$/m);
  });

  it('exits 2 with the reason code when the coordinator refuses the request', { timeout: 90_000 }, async () => {
    // The round id of the file's round is taken: a reused round id is refused by the coordinator, not by the command.
    const r = await roundStart(['--protocol', 'first-price', '--bidders', 'alpha', '--round-id', `${ctx.prefix}-file`, '--deadline', '30s']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/The coordinator refused round .*-file: .*\[DUPLICATE_ROUND\]/);
    expect(r.stdout).toBe('');
  });

  it('refuses bad input with exit 2 and a one-line message, and produces nothing', { timeout: 90_000 }, async () => {
    const before = await requestedRounds();
    const cases: Array<[string[], RegExp]> = [
      [['--protocol', 'no-such-protocol', '--round-id', 'bad-1'], /^mabeam: unknown protocol "no-such-protocol"; known: .*first-price.*majority.*vickrey/],
      [['--protocol', 'english', '--bidders', 'alpha,bravo', '--param', 'increment=-1', '--round-id', 'bad-2'], /^mabeam: "english" refuses this round: parameters\.increment must be more than 0, not -1/],
      [['--protocol', 'first-price', '--params', '{"maxAmount": 5', '--round-id', 'bad-3'], /^mabeam: --params: not valid JSON/],
      [['--protocol', 'first-price', '--item', '{gpuHours: 4}', '--round-id', 'bad-4'], /^mabeam: --item: not valid JSON/],
      [['--protocol', 'majority', '--subject', 'upgrade?', '--round-id', 'bad-5'], /^mabeam: "majority" is a consensus: name its voters with --voters/],
      [['--protocol', 'first-price', '--reserve-price', 'cheap', '--round-id', 'bad-6'], /^mabeam: --reserve-price: expected a number, got "cheap"/],
      [['--protocol', 'first-price', '--deadline', 'soon', '--round-id', 'bad-7'], /^mabeam: --deadline: expected a duration like 500ms, 10s or 2m/],
      [['--protocol', 'vickrey', '--voters', 'alpha', '--round-id', 'bad-8'], /^mabeam: --voters is for consensus rounds, and "vickrey" is an auction/],
      [['--protocol', 'quorum', '--voters', 'alpha,bravo', '--quorum', '1.5', '--round-id', 'bad-9'], /^mabeam: --quorum: expected a fraction in \(0, 1\], got 1\.5/],
    ];
    // Each case is its own process; they run side by side.
    const runs = await Promise.all(cases.map(async ([args]) => roundStart(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stdout).toBe('');
    }
    const after = await requestedRounds();
    expect(after).toEqual(before);
    expect(after.filter((id) => id.startsWith('bad-'))).toEqual([]);
  });
});

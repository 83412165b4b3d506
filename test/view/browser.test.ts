import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { createViewServer } from '../../src/view/server.ts';
import { runAgentProcess, stopAgentProcess, type AgentProcess } from '../agentProcesses.ts';
import { ensureChromium } from '../chromium.ts';
import { testContext, type TestContext } from '../helpers.ts';

/**
 * The live view's page in a real Chromium (playwright-core over Debian's
 * chromium, never `playwright install`): the view server over the test's
 * prefix, an in-process coordinator, and bidder agents as separate
 * processes with 500 ms heartbeats, so one can be killed.
 */
const bidderModule = fileURLToPath(new URL('../fixtures/agents/bidder.ts', import.meta.url));
const screenshot = fileURLToPath(new URL('../../test-artifacts/view.png', import.meta.url));
const bidders = [
  { id: 'bidder-a', price: 12 },
  { id: 'bidder-b', price: 30 },
  { id: 'bidder-c', price: 21 },
];

let ctx: TestContext;
let rounds: RoundClient;
let url: string;
let browser: Browser;
let page: Page;
const agents = new Map<string, AgentProcess>();
/** What the page said at error level, or threw. */
const pageErrors: string[] = [];

beforeAll(async () => {
  ctx = await testContext('view-browser');
  const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => coordinator.stop());
  for (const b of bidders) {
    const p = runAgentProcess(ctx.stack, bidderModule, ['--prefix', ctx.prefix, '--heartbeat-ms', '500', '--session-timeout-ms', '3000'], { FIXTURE_AGENT_ID: b.id, BID_PRICE: String(b.price) });
    ctx.defer(() => stopAgentProcess(p));
    agents.set(b.id, p);
  }
  const redis = new Redis(ctx.stack.redisUrl, { maxRetriesPerRequest: 2 });
  ctx.defer(() => redis.quit());
  const view = createViewServer({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, redis, producer: await ctx.producer() });
  ctx.defer(() => view.close());
  rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix, clientId: 'view-test' });
  ctx.defer(() => rounds.stop());
  const [address, executablePath] = await Promise.all([
    view.listen({ port: 0, host: '127.0.0.1' }),
    ensureChromium(inject('runId')),
    coordinator.start(),
    rounds.start(),
    ...[...agents.values()].map((a) => a.ready),
  ]);
  url = `${address}/`;
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  // Closed before the server (cleanups run in reverse): a page whose server went away would log errors.
  ctx.defer(() => browser.close());
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => pageErrors.push(`page: ${e.message}`));
  // Long enough to wait for a Chromium the run is still installing (a clean machine).
}, 900_000);
afterAll(() => ctx?.close());

const agentRow = (id: string, health?: string) => `#agents tbody tr[data-agent-id="${id}"]${health ? `[data-health="${health}"]` : ''}`;

describe('the live view in Chromium', () => {
  it('loads without console errors: the prefix in the header, every agent in the table, live updates connected', async () => {
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"][data-live="open"]');
    expect(await page.textContent('#prefix')).toBe(ctx.prefix);
    for (const b of bidders) await page.waitForSelector(agentRow(b.id));
    expect(await page.textContent('#agents tbody tr[data-agent-id="bidder-a"] .cap')).toBe('gpu');
    expect(await page.locator('#rounds tbody tr').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it('shows a round the test starts, live, with its winner; clicking it draws the sequence with every bidder', async () => {
    // Set on the page before the round: a reload would lose it.
    await page.evaluate(() => { (globalThis as { beforeTheRound?: boolean }).beforeTheRound = true; });
    const roundId = `auction-${ctx.prefix}-1`;
    const outcome = await rounds.auction({ roundId, protocol: 'first-price', item: { gpuHours: 2 }, bidders: bidders.map((b) => b.id), deadlineMs: 20_000 });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['bidder-b'], price: 30 });

    const row = `#rounds tbody tr[data-round-id="${roundId}"]`;
    await page.waitForSelector(`${row}[data-status="decided"]`, { timeout: 15_000 });
    expect(await page.textContent(`${row} [data-field="winners"]`)).toBe('bidder-b');
    expect(await page.textContent(`${row} [data-field="price"]`)).toBe('30');
    expect(await page.textContent(`${row} [data-field="protocol"]`)).toBe('first-price');
    expect(await page.evaluate(() => (globalThis as { beforeTheRound?: boolean }).beforeTheRound)).toBe(true);
    expect(await page.textContent('#overview [data-count="rounds"]')).toBe('1');

    await page.click(row);
    await page.waitForSelector(`#round-detail[data-round-id="${roundId}"][data-loading="false"] svg#sequence`, { timeout: 30_000 });
    const lifelines = await page.$$eval('#sequence [data-lifeline]', (els) => els.map((e) => [e.getAttribute('data-lifeline'), e.getAttribute('data-role')]));
    expect(lifelines).toEqual(expect.arrayContaining([['view-test', 'requester'], ['coordinator', 'coordinator'], ...bidders.map((b) => [b.id, 'bidder'])]));
    expect(lifelines).toHaveLength(2 + bidders.length);
    const messages = await page.$$eval('#sequence [data-message]', (els) => els.map((e) => ({ kind: e.getAttribute('data-message'), agent: e.getAttribute('data-agent-id'), verdict: e.getAttribute('data-verdict'), to: e.getAttribute('data-to') })));
    expect(messages[0]).toMatchObject({ kind: 'request', to: ['coordinator', ...bidders.map((b) => b.id)].join(',') });
    expect(messages.filter((m) => m.kind === 'answer').map((m) => [m.agent, m.verdict]).sort()).toEqual(bidders.map((b) => [b.id, 'counted']));
    expect(messages.filter((m) => m.kind === 'close')).toHaveLength(1);
    expect(messages.filter((m) => m.kind === 'outcome')).toEqual([expect.objectContaining({ verdict: 'decided', to: 'view-test' })]);
    expect(messages.filter((m) => m.kind === 'directive')).toEqual([expect.objectContaining({ agent: 'bidder-b', to: 'bidder-b' })]);
    expect(await page.textContent('#sequence [data-lifeline="bidder-b"] .name')).toBe('★ bidder-b');
    expect(pageErrors).toEqual([]);
  });

  it('turns an agent process killed with SIGKILL dead in the agents table', async () => {
    const victim = agents.get('bidder-c')!;
    // First seen alive (its heartbeats on time), so the change to dead is the kill's.
    await page.waitForSelector(agentRow('bidder-c', 'alive'), { timeout: 20_000 });
    victim.process.kill('SIGKILL');
    await victim.exited;
    // 500 ms heartbeats: dead after 5 missed intervals (or 2 with its group empty), then the view's next poll.
    await page.waitForSelector(agentRow('bidder-c', 'dead'), { timeout: 30_000 });
    expect(await page.getAttribute(`${agentRow('bidder-c')} .badge`, 'class')).toContain('dead');
    expect(pageErrors).toEqual([]);
  });

  it('writes a screenshot of the page to test-artifacts/view.png', async () => {
    await mkdir(fileURLToPath(new URL('../../test-artifacts/', import.meta.url)), { recursive: true });
    await page.evaluate('window.scrollTo(0, 0)');
    const png = await page.screenshot({ path: screenshot, fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  });
});

import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import type { RoundAudit } from '../../src/audit/index.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient, bidRequestEvent } from '../../src/coordinator/roundClient.ts';
import type { BidRequest } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import type { ChildMessage } from '../../src/supervisor/messages.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { adaptationRate } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { LiveView } from '../../src/view/live.ts';
import { createViewServer, type ViewServer } from '../../src/view/server.ts';
import type { DeadLetters, Overview, RoundSummary, StudySummary, VariableRow } from '../../src/view/types.ts';
import { runCliProcess, stopAgentProcess, type AgentProcess } from '../agentProcesses.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';
import { StudyHarness } from '../optimizer/studyHarness.ts';

/**
 * The live view's server on the real stack: a coordinator, a variable owner
 * and three bidder agents in this process, the view served in-process on a
 * free port (and once as `mabeam view`), read over HTTP and its event stream
 * as the page reads it.
 */
let ctx: TestContext;
let redis: Redis;
let server: ViewServer;
let base: string;
let events: EventProducer;
let rounds: RoundClient;
let variables: VariablesClient;
let cli: AgentProcess;

const bids: Record<string, number> = { a: 10, b: 30, c: 20 };

interface Received {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** An event stream client, as the page opens it; resolves once the stream is open. */
async function openStream(): Promise<{ source: EventSource; received: Received[] }> {
  const source = new EventSource(`${base}api/events`);
  const received: Received[] = [];
  for (const type of ['round', 'agent', 'variable', 'study', 'dead-letter']) {
    source.addEventListener(type, (e) => received.push({ type, data: JSON.parse(e.data) as Record<string, unknown>, at: Date.now() }));
  }
  ctx.defer(() => source.close());
  await new Promise<void>((resolve, reject) => {
    source.onopen = () => resolve();
    source.onerror = (e) => reject(new Error(`the event stream did not open: ${e.message ?? 'error'}`));
  });
  source.onerror = null;
  return { source, received };
}

const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as T };
};

beforeAll(async () => {
  ctx = await testContext('view');
  // The CLI's view starts beside the rest (it is checked last).
  cli = runCliProcess(ctx.stack, ['view', '--port', '0', '--prefix', ctx.prefix]);
  ctx.defer(() => stopAgentProcess(cli));
  redis = new Redis(ctx.stack.redisUrl, { db: 7 });
  ctx.defer(() => redis.quit());
  const conn = { kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions };
  const coordinator = new Coordinator(conn);
  const owner = new VariableOwner(conn);
  const bidders = new AgentHost({
    ...conn, pool: 'view-bidders', heartbeatIntervalMs: 500,
    agents: Object.keys(bids).map((id) => defineAgent({ id, role: 'bidder', capabilities: ['gpu'], onBidRequest: () => ({ amount: bids[id]! }) })),
  });
  const producer = await ctx.producer();
  rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix });
  variables = new VariablesClient({ kafka: ctx.kafka, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix });
  server = createViewServer({ ...conn, redis, producer });
  ctx.defer(() => coordinator.stop());
  ctx.defer(() => owner.stop());
  ctx.defer(() => bidders.stop());
  ctx.defer(() => rounds.stop());
  ctx.defer(() => variables.stop());
  ctx.defer(() => server.close());
  await Promise.all([coordinator.start(), owner.start(), bidders.start(), rounds.start(), variables.start(), server.listen({ port: 0, host: '127.0.0.1' })]);
  base = `http://127.0.0.1:${(server.server.address() as { port: number }).port}/`;
  events = new EventProducer(producer, ctx.codec);
}, 60_000);
afterAll(() => ctx?.close());

describe('mabeam view: the server', () => {
  it('shows a round on /api/rounds and the event stream within a second of its outcome, and its audit with every bidder', async () => {
    const { received } = await openStream();
    const roundId = uniqueName('round');
    const outcome = await rounds.auction({ roundId, protocol: 'first-price', item: '4 gpu-hours', bidders: Object.keys(bids), deadlineMs: 20_000 });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['b'], price: 30 });

    // The page hears of it (opened, then decided) within a second of the outcome.
    const decided = await waitFor(() => received.find((e) => e.type === 'round' && e.data['roundId'] === roundId && e.data['status'] === 'decided'), { timeoutMs: 1_000, what: 'the decided round on the stream' });
    expect(decided.data).toMatchObject({ protocol: 'first-price', kind: 'auction', winners: ['b'], price: 30 });
    expect(received.some((e) => e.type === 'round' && e.data['roundId'] === roundId && e.data['status'] === 'open')).toBe(true);

    const list = await get<RoundSummary[]>('api/rounds?limit=10');
    expect(list.status).toBe(200);
    const row = list.body.find((r) => r.roundId === roundId);
    expect(row).toMatchObject({ protocol: 'first-price', kind: 'auction', status: 'decided', winners: ['b'], price: 30, answers: 3 });
    expect(row!.latencyMs).toBe(row!.decidedAt! - row!.openedAt!);
    expect((await get<RoundSummary[]>('api/rounds?status=decided&protocol=first-price')).body.map((r) => r.roundId)).toContain(roundId);
    expect((await get<RoundSummary[]>('api/rounds?status=open')).body.map((r) => r.roundId)).not.toContain(roundId);

    const audit = await get<RoundAudit>(`api/rounds/${roundId}`);
    expect(audit.status).toBe(200);
    expect(audit.body).toMatchObject({ roundId, state: 'decided', protocol: 'first-price', kind: 'auction' });
    expect(audit.body.answers.map((a) => [a.agentId, a.amount, a.verdict]).sort()).toEqual([['a', 10, 'counted'], ['b', 30, 'counted'], ['c', 20, 'counted']]);
    expect(audit.body.outcome).toMatchObject({ winners: ['b'], price: 30 });
  });

  it('answers errors as JSON: an unknown round 404 NOT_IN_LOG, a malformed query 400, an unknown route 404', async () => {
    const unknown = await get<{ error: string; code: string }>(`api/rounds/${uniqueName('never')}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('NOT_IN_LOG');
    expect(unknown.body.error).toMatch(/The log holds nothing about round/);
    for (const query of ['limit=abc', 'limit=0', 'limit=1001', 'limit=2.5', 'status=closed', 'colour=red']) {
      const r = await get<{ error: string; code: string }>(`api/rounds?${query}`);
      expect([query, r.status, r.body.code]).toEqual([query, 400, 'BAD_REQUEST']);
      expect(r.body.error).toMatch(/query parameter "(limit|status|colour)"/);
    }
    expect((await get<{ code: string }>('api/agents?state=asleep')).status).toBe(400);
    const tooLong = await get<{ code: string }>(`api/rounds/${'r'.repeat(201)}`);
    expect([tooLong.status, tooLong.body.code]).toEqual([400, 'BAD_REQUEST']);
    // A URL the router cannot read (bad percent-encoding) gets the same error shape.
    const badUrl = await get<{ error: string; code: string }>('api/rounds/%00%ff');
    expect([badUrl.status, badUrl.body.code]).toEqual([400, 'BAD_REQUEST']);
    expect(badUrl.body.error).toMatch(/^Bad request: /);
    const nowhere = await get<{ error: string; code: string }>('api/nowhere');
    expect([nowhere.status, nowhere.body.code]).toEqual([404, 'NOT_FOUND']);
    expect((await get<{ code: string }>(`api/variables/${uniqueName('nothing')}`)).body.code).toBe('NOT_IN_LOG');
    expect((await get<{ code: string }>(`api/studies/${uniqueName('nothing')}`)).body.code).toBe('NOT_IN_LOG');
  });

  it('serves uPlot itself', async () => {
    const js = await fetch(`${base}vendor/uplot.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(await js.text()).toMatch(/uPlot/);
    const css = await fetch(`${base}vendor/uplot.css`);
    expect([css.status, css.headers.get('content-type')]).toEqual([200, expect.stringMatching(/text\/css/)]);
  });

  it('lists the agents with state, health, memory and lag; filters them', async () => {
    const rows = await waitFor(async () => {
      const r = (await get<Array<Record<string, unknown>>>('api/agents')).body;
      return r.length === 3 && r.every((a) => a['state'] === 'running' && a['health'] === 'alive') && r;
    }, { timeoutMs: 10_000, what: 'three running, alive agents' });
    expect(rows.map((a) => a['agentId'])).toEqual(['a', 'b', 'c']);
    expect(rows[0]).toMatchObject({ role: 'bidder', capabilities: ['gpu'], consumerLag: expect.any(Number), memoryRssBytes: expect.any(Number), lastHeartbeat: expect.any(Number), instanceId: expect.any(String) });
    expect((await get<unknown[]>('api/agents?capability=gpu&state=running')).body).toHaveLength(3);
    expect((await get<unknown[]>('api/agents?capability=fly')).body).toEqual([]);
    expect((await get<unknown[]>('api/agents?role=bidder&capability=')).body).toHaveLength(3);
  });

  it('shows a dead letter: garbage on bids, dead-lettered by the coordinator', async () => {
    const { received } = await openStream();
    const producer = await ctx.producer();
    await producer.send({ topic: ctx.topic('bids'), messages: [{ key: uniqueName('garbage'), value: Buffer.from('not an event') }] });
    const letters = await waitFor(async () => {
      const d = (await get<DeadLetters>('api/dead-letters')).body;
      return d.latest.length > 0 && d;
    }, { timeoutMs: 10_000, what: 'the dead letter' });
    expect(letters.counts).toEqual([{ topic: ctx.topic('bids'), reasonCode: 'BAD_MAGIC_BYTE', count: 1 }]);
    expect(letters.latest[0]).toMatchObject({ topic: ctx.topic('bids'), reasonCode: 'BAD_MAGIC_BYTE', partition: expect.any(Number), offset: expect.any(Number), at: expect.any(Number) });
    expect(letters.latest[0]!.reason).toMatch(/magic byte/);
    await waitFor(() => received.some((e) => e.type === 'dead-letter' && e.data['reasonCode'] === 'BAD_MAGIC_BYTE'), { timeoutMs: 2_000, what: 'the dead letter on the stream' });
    expect((await get<Overview>('api/overview')).body).toMatchObject({ prefix: ctx.prefix, deadLetters: 1, agents: 3 });
  });

  it('holds 50 event stream clients: each gets the next round, the server still answers, and a closed client is let go', async () => {
    const before = server.live.listenerCount;
    const clients = await Promise.all(Array.from({ length: 50 }, () => openStream()));
    expect(server.live.listenerCount).toBe(before + 50);
    const roundId = uniqueName('crowd');
    const request: BidRequest = bidRequestEvent({ roundId, protocol: 'first-price', item: 'a crowd', bidders: Object.keys(bids), deadlineMs: 20_000 }, 'view-test');
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
    await waitFor(() => clients.every((c) => c.received.some((e) => e.type === 'round' && e.data['roundId'] === roundId)), { timeoutMs: 10_000, what: 'the round on all 50 streams' });
    const overview = await get<Overview>('api/overview');
    expect(overview.status).toBe(200);
    expect(overview.body.prefix).toBe(ctx.prefix);
    for (const c of clients) c.source.close();
    await waitFor(() => server.live.listenerCount === before, { timeoutMs: 5_000, what: 'the closed streams let go' });
  });

  it('shows a variable defined through the variables client, and its change on the stream', async () => {
    const { received } = await openStream();
    await variables.define(adaptationRate('view.rate', { initial: 0.25 }));
    const row = await waitFor(async () => (await get<VariableRow[]>('api/variables')).body.find((v) => v.variableId === 'view.rate'), { timeoutMs: 10_000, what: 'the variable' });
    expect(row).toMatchObject({ value: 0.25, version: 1, updatedAt: expect.any(Number) });
    await variables.set('view.rate', 0.5);
    await waitFor(() => received.some((e) => e.type === 'variable' && e.data['variableId'] === 'view.rate' && e.data['version'] === 2 && e.data['value'] === 0.5), { timeoutMs: 5_000, what: 'the change on the stream' });
    const audit = await get<{ variableId: string; versions: unknown[] }>('api/variables/view.rate');
    expect(audit.status).toBe(200);
    expect(audit.body.variableId).toBe('view.rate');
  });

  it('shows a study from its log: the list, its status, best curve and intermediate values; a view started near the end of its log reads the rest', async () => {
    // A study's log as an optimizer writes it (the optimizer's own decisions, evaluated in memory).
    const studyId = uniqueName('study');
    const h = new StudyHarness({ now: Date.now() });
    const space = { x: { type: 'float', low: 0, high: 1 } };
    h.declare(studyId, { name: 'view study', space, objectives: [{ name: 'loss', direction: 'minimize' }], budget: { trials: 4 }, parallelism: 2, searcher: 'random' });
    h.evaluate(studyId, (p) => ({ values: [p['x'] as number], reports: [{ step: 1, values: [(p['x'] as number) + 1] }] }));
    const run = h.run(studyId);
    expect(run.completed).not.toBeNull();
    const { received } = await openStream();
    for (const e of h.studyLog(studyId)) await events.send(ctx.topic('studies'), studyId, e.type, e.event as never);

    const expected: StudySummary = { studyId, name: 'view study', searcher: 'random', trials: 4, finished: 4, completed: true, best: [Math.min(...run.trials.map((t) => t.values![0]!))] };
    await waitFor(async () => (await get<StudySummary[]>('api/studies')).body.find((s) => s.studyId === studyId && s.completed), { timeoutMs: 10_000, what: 'the study listed' });
    expect((await get<StudySummary[]>('api/studies')).body.find((s) => s.studyId === studyId)).toEqual(expected);
    await waitFor(() => received.some((e) => e.type === 'study' && e.data['studyId'] === studyId), { timeoutMs: 2_000, what: 'the study on the stream' });

    const detail = await get<{ status: Record<string, unknown>; curve: Array<number | null>; trials: Array<{ number: number; state: string; values: number[]; intermediate: number[][] }> }>(`api/studies/${studyId}`);
    expect(detail.status).toBe(200);
    expect(detail.body.status).toMatchObject({ studyId, name: 'view study', searcher: 'random', proposed: 4, finished: 4 });
    expect(detail.body.curve).toHaveLength(4);
    expect(detail.body.trials.map((t) => [t.number, t.state, t.intermediate])).toEqual(run.trials.map((t) => [t.number, 'complete', [[1, t.values![0]! + 1]]]));

    // Started two records before each partition's end, the study's StudyCreated is older: it is read from the part before.
    const late = new LiveView({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, redis, producer: await ctx.producer(), recordsPerPartition: 2 });
    ctx.defer(() => late.stop());
    await late.start();
    await late.caughtUp();
    await waitFor(() => late.studies().find((s) => s.studyId === studyId && s.name !== null), { timeoutMs: 10_000, what: 'the older part of the study read' });
    expect(late.studies().find((s) => s.studyId === studyId)).toEqual(expected);
  });

  it('runs as `mabeam view`: prints its URL, says ready with it over IPC, serves, and stops on SIGTERM', async () => {
    const ready = (await cli.ready) as ChildMessage & { url?: string };
    expect(ready).toMatchObject({ type: 'ready', pool: 'view', agents: [], url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/) });
    expect(cli.stderr()).toContain(`view: ${ready.url}`);
    const overview = (await (await fetch(`${ready.url}api/overview`)).json()) as Overview;
    expect(overview.prefix).toBe(ctx.prefix);
    cli.process.kill('SIGTERM');
    expect(await cli.exited).toEqual({ code: 0, signal: null });
  });
});

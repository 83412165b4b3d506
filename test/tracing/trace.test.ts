/**
 * One trace across a round on the real broker: the client's request, the
 * agents' bids, the coordinator's closing, outcome and award, and the
 * winner's handling of its award — with an in-memory span exporter.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { typedVariable } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { runCli } from '../agentProcesses.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

const exporter = new InMemorySpanExporter();
let ctx: TestContext;

beforeAll(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  ctx = await testContext('trace');
});
afterAll(async () => {
  await ctx?.close();
  trace.disable();
});

const traceIdOf = (m: KafkaMessage): string | undefined => m.headers?.['traceparent']?.toString().split('-')[1];
const typeOf = (m: KafkaMessage) => m.headers?.['mabeam-event-type']?.toString();

describe('trace context', () => {
  it('one trace id across the request, the bids, the closing, the outcome and the award, and the spans of every hop', { timeout: 60_000 }, async () => {
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => coordinator.stop());
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'traced', sign: false,
      agents: [defineAgent({ id: 'low', role: 'worker', capabilities: ['x'], onBidRequest: () => ({ amount: 5 }) }), defineAgent({ id: 'high', role: 'worker', capabilities: ['x'], onBidRequest: () => ({ amount: 9 }) })],
    });
    ctx.defer(() => host.stop());
    const client = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => client.stop());
    await Promise.all([coordinator.start(), host.start(), client.start()]);
    const [requests, bids, outcomes, directives] = await Promise.all([
      collectRaw(ctx, ctx.topic('bid-requests')),
      collectRaw(ctx, ctx.topic('bids')),
      collectRaw(ctx, ctx.topic('outcomes')),
      collectRaw(ctx, ctx.topic('directives')),
    ]);

    const outcome = await client.auction({ roundId: `${ctx.prefix}-r1`, item: 'x', bidders: ['low', 'high'], deadlineMs: 30_000 });
    expect(outcome).toMatchObject({ winners: ['high'], price: 9 });

    await waitFor(() => requests.messages.length >= 1 && bids.messages.length >= 2 && outcomes.messages.length >= 2 && directives.messages.length >= 1, { what: 'the round\'s records', timeoutMs: 20_000 });
    const records = [...requests.messages, ...bids.messages, ...outcomes.messages, ...directives.messages];
    const traceId = traceIdOf(requests.messages[0]!);
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(records.map((m) => [typeOf(m), traceIdOf(m)])).toEqual(records.map((m) => [typeOf(m), traceId]));
    expect(records.map(typeOf).sort()).toEqual(['Bid', 'Bid', 'BidRequest', 'Directive', 'RoundClosed', 'RoundOutcome']);

    // The spans: the client's send, each agent handling the request, the coordinator's sends, the winner handling its award.
    const spans = await waitFor(() => {
      const all = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      return all.some((s) => s.name === `process ${ctx.topic('directives')}`) && all;
    }, { what: 'the span of the award\'s handling', timeoutMs: 20_000 });
    const names = spans.map((s) => s.name);
    expect(names).toContain(`send ${ctx.topic('bid-requests')}`);
    expect(names).toContain(`process ${ctx.topic('bid-requests')}`);
    expect(names.filter((n) => n === `send ${ctx.topic('outcomes')}`)).toHaveLength(2);
    expect(names).toContain(`send ${ctx.topic('directives')}`);
    // Every span names the round: as its attribute, or as the key of the record it processed.
    for (const s of spans) {
      expect(s.attributes['messaging.system'], s.name).toBe('kafka');
      expect([s.attributes['mabeam.round_id'], s.attributes['messaging.kafka.message.key']], s.name).toContain(`${ctx.prefix}-r1`);
    }
    // Every span but the first has a parent in the trace.
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    const roots = spans.filter((s) => !s.parentSpanContext || !ids.has(s.parentSpanContext.spanId));
    expect(roots.map((s) => s.name)).toEqual([`send ${ctx.topic('bid-requests')}`]);
  });
});

describe('trace context of a variable change', () => {
  it('the request and what the owner writes for it share one trace id, through the engine\'s span of the request', { timeout: 60_000 }, async () => {
    const owner = new VariableOwner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => owner.stop());
    const variables = new VariablesClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => variables.stop());
    await owner.start();
    await variables.start();
    const [requests, changes] = await Promise.all([collectRaw(ctx, ctx.topic('variable-requests')), collectRaw(ctx, ctx.topic('variable-changes'))]);
    await variables.define(typedVariable('traced.size', { kind: 'integer', min: 1, max: 9 }, 2));
    await variables.set('traced.size', 5);
    await waitFor(() => requests.messages.length >= 2 && changes.messages.length >= 2, { what: 'the requests and their changes', timeoutMs: 20_000 });
    const requestTraces = requests.messages.map(traceIdOf);
    expect(new Set(requestTraces).size).toBe(2);
    // Each change is in the trace of the request it answers (the change's causation).
    for (const m of changes.messages) {
      const change = (await ctx.codec.decode<{ envelope: { causationId: string } }>(m.value)).event;
      const request = await Promise.all(requests.messages.map(async (r) => ({ id: (await ctx.codec.decode<{ envelope: { eventId: string } }>(r.value)).event.envelope.eventId, trace: traceIdOf(r) })));
      expect(traceIdOf(m)).toBe(request.find((r) => r.id === change.envelope.causationId)?.trace);
    }
    const spans = exporter.getFinishedSpans().filter((s) => requestTraces.includes(s.spanContext().traceId)).map((s) => s.name);
    expect(spans).toContain(`send ${ctx.topic('variable-requests')}`);
    expect(spans).toContain(`process ${ctx.topic('variable-requests')}`);
  });
});

describe('span export', () => {
  it('with OTEL_EXPORTER_OTLP_ENDPOINT set, a command exports its spans over OTLP/HTTP before it exits', { timeout: 60_000 }, async () => {
    const received: Array<{ url: string; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ url: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ctx.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => coordinator.stop());
    await coordinator.start();
    const roundId = `${ctx.prefix}-exported`;
    const r = await runCli(ctx.stack, ['round', 'start', '--prefix', ctx.prefix, '--protocol', 'first-price', '--bidders', 'nobody', '--item', '"x"', '--deadline', '1s', '--round-id', roundId], {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_SERVICE_NAME: 'mabeam-test',
    });
    expect(r.stderr).not.toMatch(/exporting spans failed/);
    // Nobody bids: the round ends at its deadline without a decision (exit 3).
    expect(r.stdout).toMatch(/no-decision/);
    expect(r.code).toBe(3);
    const traces = received.filter((x) => x.url === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    const body = traces.map((x) => x.body).join('\n');
    expect(body).toContain(`send ${ctx.topic('bid-requests')}`);
    expect(body).toContain(roundId);
    expect(body).toContain('mabeam-test');
  });
});

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register as globalRegistry, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.ts';
import { serveMetrics, type MetricsServer } from '../../src/metrics/server.ts';

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function serve(metrics: Metrics): Promise<MetricsServer> {
  const server = await serveMetrics({ registry: metrics.registry, port: 0, host: '127.0.0.1' });
  opened.push(server);
  return server;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (label order does not matter). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

const newMetricNames = [
  'mabeam_coordination_latency_seconds',
  'mabeam_rounds_total',
  'mabeam_round_stages_total',
  'mabeam_answers_total',
  'mabeam_rejections_total',
  'mabeam_agents',
  'mabeam_variable_changes_total',
  'mabeam_consumer_lag',
  'mabeam_dead_letters_total',
];

describe('createMetrics', () => {
  it('registers only in the registry it is given, so each test can have its own', async () => {
    const a = createMetrics({ registry: new Registry() });
    const b = createMetrics({ registry: new Registry(), labels: { service: 'b' } });
    a.rounds.inc({ protocol: 'vickrey', status: 'decided' });
    expect((await a.rounds.get()).values).toEqual([{ labels: { protocol: 'vickrey', status: 'decided' }, value: 1 }]);
    expect((await b.rounds.get()).values).toEqual([]);
    for (const name of newMetricNames) {
      expect(a.registry.getSingleMetric(name), name).toBeDefined();
      expect(b.registry.getSingleMetric(name), name).toBeDefined();
      expect(globalRegistry.getSingleMetric(name), name).toBeUndefined();
    }
  });

  it('collects the default process metrics only when asked, and only in its registry', () => {
    const plain = createMetrics({ registry: new Registry() });
    const withDefaults = createMetrics({ registry: new Registry(), defaults: true });
    expect(plain.registry.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
    expect(withDefaults.registry.getSingleMetric('process_cpu_user_seconds_total')).toBeDefined();
    expect(globalRegistry.getSingleMetric('process_cpu_user_seconds_total')).toBeUndefined();
  });
});

describe('serveMetrics', () => {
  it('answers GET /metrics with the registry in the Prometheus text format', async () => {
    const metrics = createMetrics({ registry: new Registry(), labels: { service: 'test' } });
    metrics.coordinationLatency.observe({ protocol: 'vickrey', status: 'decided' }, 0.042);
    metrics.coordinationLatency.observe({ protocol: 'vickrey', status: 'decided' }, 3);
    metrics.rounds.inc({ protocol: 'vickrey', status: 'decided' }, 2);
    metrics.rounds.inc({ protocol: 'majority', status: 'no-decision' });
    metrics.roundStages.inc({ protocol: 'english' }, 3);
    metrics.answers.inc({ protocol: 'vickrey', kind: 'bid' }, 5);
    metrics.answers.inc({ protocol: 'majority', kind: 'vote' }, 4);
    metrics.rejections.inc({ reason: 'DUPLICATE_ANSWER' });
    metrics.agentsByState.set({ state: 'running' }, 7);
    metrics.variableChanges.inc({ variable: 'team-size', outcome: 'applied' });
    metrics.variableChanges.inc({ variable: 'team-size', outcome: 'rejected' });
    metrics.consumerLag.set({ group: 'mabeam.coordinators', topic: 'mabeam.bids' }, 12);
    metrics.deadLetters.inc({ topic: 'mabeam.bids', reason: 'BAD_MAGIC_BYTE' });
    const server = await serve(metrics);
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);

    const response = await fetch(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(metrics.registry.contentType);
    const text = await response.text();
    for (const name of newMetricNames) expect(text).toContain(`# TYPE ${name} `);
    const samples = parseExposition(text);
    const value = (name: string, labels: Record<string, string>): number | undefined => samples.find((x) => x.name === name && sameLabels(x.labels, { ...labels, service: 'test' }))?.value;
    const decidedVickrey = { protocol: 'vickrey', status: 'decided' };
    expect(value('mabeam_coordination_latency_seconds_bucket', { ...decidedVickrey, le: '0.025' })).toBe(0);
    expect(value('mabeam_coordination_latency_seconds_bucket', { ...decidedVickrey, le: '0.05' })).toBe(1);
    expect(value('mabeam_coordination_latency_seconds_bucket', { ...decidedVickrey, le: '5' })).toBe(2);
    expect(value('mabeam_coordination_latency_seconds_bucket', { ...decidedVickrey, le: '60' })).toBe(2);
    expect(value('mabeam_coordination_latency_seconds_count', decidedVickrey)).toBe(2);
    expect(value('mabeam_coordination_latency_seconds_sum', decidedVickrey)).toBeCloseTo(3.042);
    const buckets = samples.filter((x) => x.name === 'mabeam_coordination_latency_seconds_bucket').map((x) => x.labels['le']);
    expect(buckets).toEqual(['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '60', '+Inf']);
    expect(value('mabeam_rounds_total', decidedVickrey)).toBe(2);
    expect(value('mabeam_rounds_total', { protocol: 'majority', status: 'no-decision' })).toBe(1);
    expect(value('mabeam_round_stages_total', { protocol: 'english' })).toBe(3);
    expect(value('mabeam_answers_total', { protocol: 'vickrey', kind: 'bid' })).toBe(5);
    expect(value('mabeam_answers_total', { protocol: 'majority', kind: 'vote' })).toBe(4);
    expect(value('mabeam_rejections_total', { reason: 'DUPLICATE_ANSWER' })).toBe(1);
    expect(value('mabeam_agents', { state: 'running' })).toBe(7);
    expect(value('mabeam_variable_changes_total', { variable: 'team-size', outcome: 'applied' })).toBe(1);
    expect(value('mabeam_variable_changes_total', { variable: 'team-size', outcome: 'rejected' })).toBe(1);
    expect(value('mabeam_consumer_lag', { group: 'mabeam.coordinators', topic: 'mabeam.bids' })).toBe(12);
    expect(value('mabeam_dead_letters_total', { topic: 'mabeam.bids', reason: 'BAD_MAGIC_BYTE' })).toBe(1);

    // A scrape sees later changes.
    metrics.rounds.inc({ protocol: 'vickrey', status: 'failed' });
    const later = parseExposition(await (await fetch(`${server.url}?after=1`)).text());
    expect(later.find((x) => x.name === 'mabeam_rounds_total' && x.labels['status'] === 'failed')).toEqual({ name: 'mabeam_rounds_total', labels: { protocol: 'vickrey', status: 'failed', service: 'test' }, value: 1 });
  });

  it('answers /healthz with ok and anything else with 404', async () => {
    const server = await serve(createMetrics({ registry: new Registry() }));
    const base = `http://127.0.0.1:${server.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok');
    for (const [path, method] of [
      ['/', 'GET'],
      ['/metricsx', 'GET'],
      ['/metrics/other', 'GET'],
      ['/metrics', 'POST'],
    ] as const) {
      const response = await fetch(`${base}${path}`, { method });
      expect(response.status, `${method} ${path}`).toBe(404);
      await response.text();
    }
  });

  it('refuses a port already in use with PORT_IN_USE', async () => {
    const other = createServer((_request, response) => response.end());
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    opened.push({ close: () => new Promise<void>((resolve) => other.close(() => resolve())) });
    const port = (other.address() as AddressInfo).port;

    const error: unknown = await serveMetrics({ registry: new Registry(), port, host: '127.0.0.1' }).then(
      (server) => {
        opened.push(server);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(isMabeamError(error, 'PORT_IN_USE')).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*already in use`));
    expect((error as { details: unknown }).details).toEqual({ host: '127.0.0.1', port });
  });

  it('refuses a port that is not a port with INVALID_OPTIONS', async () => {
    for (const port of [-1, 65_536, 1.5]) {
      const error: unknown = await serveMetrics({ registry: new Registry(), port, host: '127.0.0.1' }).catch((e: unknown) => e);
      expect(isMabeamError(error, 'INVALID_OPTIONS'), String(port)).toBe(true);
    }
  });

  it('closes, also with a keep-alive connection open, and close() can be called again', async () => {
    const server = await serveMetrics({ registry: new Registry(), port: 0, host: '127.0.0.1' });
    expect((await fetch(server.url)).status).toBe(200);
    await server.close();
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

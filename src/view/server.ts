/**
 * The live view over HTTP (fastify): the page and its assets (served from
 * this folder's public/ and the installed uPlot, nothing from elsewhere), a
 * JSON API of the live state and of the stories the log tells (a round's or
 * a variable's audit, a study read from its log), and a server-sent event
 * stream of every change.
 *
 * Errors are JSON `{ error, code }`: 400 BAD_REQUEST for a query or path
 * parameter that does not fit, 404 NOT_FOUND for an unknown route, 404
 * NOT_IN_LOG for a round, variable or study the log does not hold.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { lifecycleStates } from '../agents/lifecycle.ts';
import { auditRound, auditVariable } from '../audit/index.ts';
import type { AuditConnection } from '../audit/types.ts';
import { describeError, isMabeamError } from '../errors.ts';
import { bestCurve } from '../optimizer/study/best.ts';
import { trialNumberOf } from '../optimizer/study/run.ts';
import { statusJson } from '../optimizer/study/status.ts';
import { readStudy } from '../optimizer/study/studyLog.ts';
import { LiveView } from './live.ts';
import type { LiveViewOptions } from './options.ts';
import type { LiveEvent, RoundStatus } from './types.ts';

export interface ViewServerOptions extends LiveViewOptions {
  /** How long an audit or a study read may take (ms, default 30 000; then 504 LOG_READ_TIMEOUT). */
  readTimeoutMs?: number;
  /** How often the event stream says it is alive (ms, default 15 000). */
  pingMs?: number;
  /** The page's folder (default src/view/public). */
  publicDir?: string;
}

/** The fastify instance, with the live state it serves (started when the server is ready, stopped when it closes). */
export type ViewServer = FastifyInstance & { readonly live: LiveView };

export const viewDefaults = Object.freeze({ readTimeoutMs: 30_000, pingMs: 15_000, maxIdLength: 200 });

/** A stream whose client does not read is ended past this many bytes waiting. */
const maxBufferedBytes = 4 * 1024 * 1024;

const roundStatuses: readonly RoundStatus[] = ['open', 'decided', 'no-decision', 'failed'];

const id = { type: 'string', minLength: 1, maxLength: viewDefaults.maxIdLength } as const;

const schemas = {
  agents: {
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { capability: { type: 'string' }, role: { type: 'string' }, state: { type: 'string', enum: ['', ...lifecycleStates] } },
    },
  },
  rounds: {
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, protocol: { type: 'string' }, status: { type: 'string', enum: ['', ...roundStatuses] } },
    },
  },
  round: { params: { type: 'object', properties: { roundId: id }, required: ['roundId'] } },
  variable: { params: { type: 'object', properties: { variableId: id }, required: ['variableId'] } },
  study: { params: { type: 'object', properties: { studyId: id }, required: ['studyId'] } },
} as const;

const given = (value: string | undefined): string | undefined => (value === undefined || value === '' ? undefined : value);

/** A validation failure in words: which parameter, what is wrong. */
function validationMessage(error: FastifyError): string {
  const first = error.validation?.[0];
  if (!first) return error.message;
  const where = error.validationContext === 'params' ? 'path parameter' : 'query parameter';
  const params = first.params as Record<string, unknown>;
  if (first.keyword === 'additionalProperties') return `Unknown ${where} "${String(params['additionalProperty'])}".`;
  const name = first.instancePath.replace(/^\//, '') || String(params['missingProperty'] ?? '');
  const what = first.keyword === 'enum' ? `must be one of ${(params['allowedValues'] as unknown[]).filter((v) => v !== '').join(', ')}` : (first.message ?? 'is not valid');
  return `The ${where} "${name}" ${what}.`;
}

export function createViewServer(options: ViewServerOptions): ViewServer {
  const { logger } = options;
  const readTimeoutMs = options.readTimeoutMs ?? viewDefaults.readTimeoutMs;
  const pingMs = options.pingMs ?? viewDefaults.pingMs;
  const live = new LiveView(options);
  const conn: AuditConnection = { kafka: options.kafka, codec: options.codec, prefix: options.prefix, definitions: options.definitions, timeoutMs: readTimeoutMs };

  const app = Fastify({
    logger: false,
    // An unknown query parameter is refused, not dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } },
    return503OnClosing: true,
    // Ids are checked by the routes' schemas (a 400 that says why), not cut off by the router (a 404); encoded, an id is longer.
    routerOptions: { maxParamLength: viewDefaults.maxIdLength * 12 },
    // A URL the router cannot read (bad percent-encoding) or a malformed request gets the API's own error shape too.
    frameworkErrors: (error, _request, reply) => {
      void (reply as FastifyReply).code(400).send({ error: `Bad request: ${error.message}`, code: 'BAD_REQUEST' });
    },
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) return reply.code(400).send({ error: validationMessage(error), code: 'BAD_REQUEST' });
    if (isMabeamError(error, 'NOT_IN_LOG')) return reply.code(404).send({ error: error.message, code: 'NOT_IN_LOG' });
    if (isMabeamError(error, 'LOG_READ_TIMEOUT')) return reply.code(504).send({ error: error.message, code: 'LOG_READ_TIMEOUT' });
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send({ error: error.message, code: status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST' });
    logger.error({ ns: 'view', method: request.method, url: request.url, error: describeError(error) }, 'a request of the live view failed');
    return reply.code(500).send({ error: `The view could not answer: ${describeError(error)}`, code: isMabeamError(error) ? error.code : 'INTERNAL' });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `No route ${request.method} ${request.url.split('?')[0]}: the API is under /api (overview, agents, rounds, variables, studies, dead-letters, events).`, code: 'NOT_FOUND' }),
  );

  // ---- the page and its assets ----
  void app.register(fastifyStatic, { root: options.publicDir ?? fileURLToPath(new URL('./public/', import.meta.url)), prefix: '/', index: ['index.html'], dotfiles: 'ignore' });
  const uplot = dirname(createRequire(import.meta.url).resolve('uplot'));
  app.get('/vendor/uplot.js', (_request, reply) => reply.sendFile('uPlot.iife.min.js', uplot));
  app.get('/vendor/uplot.css', (_request, reply) => reply.sendFile('uPlot.min.css', uplot));

  // ---- the live state ----
  app.get('/api/overview', async () => live.overview());
  app.get<{ Querystring: { capability?: string; role?: string; state?: string } }>('/api/agents', { schema: schemas.agents }, async (request) => {
    const q = request.query;
    return live.agents({ ...(given(q.capability) ? { capability: q.capability! } : {}), ...(given(q.role) ? { role: q.role! } : {}), ...(given(q.state) ? { state: q.state! } : {}) });
  });
  app.get<{ Querystring: { limit: number; protocol?: string; status?: RoundStatus | '' } }>('/api/rounds', { schema: schemas.rounds }, async (request) => {
    const q = request.query;
    return live.roundList({ limit: q.limit, ...(given(q.protocol) ? { protocol: q.protocol! } : {}), ...(q.status ? { status: q.status } : {}) });
  });
  app.get('/api/variables', async () => live.variables());
  app.get('/api/studies', async () => live.studies());
  app.get('/api/dead-letters', async () => live.deadLetters());

  // ---- stories read from the log ----
  app.get<{ Params: { roundId: string } }>('/api/rounds/:roundId', { schema: schemas.round }, async (request) => auditRound(conn, request.params.roundId));
  app.get<{ Params: { variableId: string } }>('/api/variables/:variableId', { schema: schemas.variable }, async (request) => auditVariable(conn, request.params.variableId));
  app.get<{ Params: { studyId: string } }>('/api/studies/:studyId', { schema: schemas.study }, async (request) => {
    const studyId = request.params.studyId;
    // Each attempt's intermediate reports, by trial id: the fold keeps only the last.
    const reports = new Map<string, Map<number, Array<[number, number | null]>>>();
    const run = await readStudy(options.kafka, options.codec, logger, options.prefix, studyId, {
      timeoutMs: readTimeoutMs,
      onEvent: (e) => {
        if (e.type !== 'TrialReported' || trialNumberOf(studyId, e.event.trialId) === undefined) return;
        const byAttempt = reports.get(e.event.trialId) ?? new Map<number, Array<[number, number | null]>>();
        reports.set(e.event.trialId, byAttempt);
        const points = byAttempt.get(e.event.attempt) ?? [];
        byAttempt.set(e.event.attempt, points);
        points.push([e.event.step, e.event.values[0] ?? null]);
      },
    });
    return {
      status: statusJson(run),
      curve: bestCurve(run),
      trials: run.trials.map((t) => ({
        number: t.number, state: t.state, agentId: t.agentId, values: t.values, params: t.params, intermediate: reports.get(t.trialId)?.get(t.attempt) ?? [],
      })),
    };
  });

  // ---- the event stream ----
  const streams = new Set<FastifyReply['raw']>();
  const ping = setInterval(() => {
    for (const raw of streams) raw.write(': ping\n\n');
  }, pingMs);
  ping.unref();
  app.get('/api/events', (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    raw.write('retry: 2000\n: connected\n\n');
    const send = (event: LiveEvent) => {
      if (raw.writableLength > maxBufferedBytes) {
        logger.warn({ ns: 'view', remote: request.ip, buffered: raw.writableLength }, 'an event stream client does not read; its stream is ended');
        raw.destroy();
        return;
      }
      raw.write(`event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
    };
    const unsubscribe = live.subscribe(send);
    streams.add(raw);
    const closed = () => {
      unsubscribe();
      streams.delete(raw);
    };
    raw.once('close', closed);
    raw.once('error', closed);
  });

  app.addHook('onReady', async () => live.start());
  // Open streams would keep the server from closing: they are ended first.
  app.addHook('preClose', async () => {
    clearInterval(ping);
    for (const raw of streams) raw.end();
    streams.clear();
  });
  app.addHook('onClose', async () => live.stop());

  return Object.assign(app, { live });
}

/**
 * The orchestrator: variables in, directives out; metrics in, variable
 * changes out; and a picture of the whole system.
 *
 * - `coordinateSystem` plans the directives of every variable (or of the ids
 *   asked for) — its coordination function or its type's default strategy,
 *   given what the agent registry knows — and writes them to `directives`
 *   keyed by agent id, all in one produce request. Directive event ids derive
 *   from (variableId, version, agentId, action), so coordinating one version
 *   twice writes recognisable duplicates. A variable whose plan is refused
 *   (unknown function, invalid directive) or an id nobody defined is
 *   reported as a failure and sends nothing; the others are sent.
 * - `adaptSystem` returns the adaptation loop over the `metrics` topic
 *   (adapter.ts, adaptation.ts): call start() / stop().
 * - `systemStatus` reports agents by lifecycle state, every variable, the
 *   last rounds decided and the latest sample of every metric, and sets the
 *   `agentsByState` gauge when given Metrics. It reads no clock: events are
 *   its input (`readRecentEvents` reads them from the topics).
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import type { LifecycleState, MetricSample, RoundOutcome } from '../events/types.ts';
import { lifecycleStates } from '../agents/lifecycle.ts';
import type { AgentRegistry } from '../agents/registry.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { readLog } from '../replay/readLog.ts';
import { topicName } from '../topics/names.ts';
import type { VariableAccess, VariableRecord } from '../variables/types.ts';
import { SystemAdapter, type SystemAdapterOptions } from './adapter.ts';
import { directiveEvent, planDirectives } from './directives.ts';
import { sharedFunctions, type AgentInfo, type FunctionRegistry } from './functions.ts';
import type { DirectiveAction } from './actions.ts';

/** Where agent information comes from: the registry, or a list given as is. */
export type AgentSource = AgentInfo[] | Pick<AgentRegistry, 'list' | 'byState'>;

/** Every registered agent with its capabilities, role and latest lifecycle state. */
export async function agentInfos(source: AgentSource): Promise<AgentInfo[]> {
  if (Array.isArray(source)) return source;
  const [agents, states] = await Promise.all([source.list(), agentsByState(source)]);
  const stateOf = new Map<string, LifecycleState>();
  for (const state of lifecycleStates) for (const id of states[state]) stateOf.set(id, state);
  return agents.map((a) => ({ agentId: a.agentId, capabilities: [...a.capabilities], role: a.role, ...(stateOf.has(a.agentId) ? { state: stateOf.get(a.agentId)! } : {}) }));
}

async function agentsByState(registry: Pick<AgentRegistry, 'byState'>): Promise<Record<LifecycleState, string[]>> {
  const lists = await Promise.all(lifecycleStates.map((s) => registry.byState(s)));
  return Object.fromEntries(lifecycleStates.map((s, i) => [s, [...lists[i]!].sort()])) as Record<LifecycleState, string[]>;
}

export interface CoordinateSystemOptions {
  variables: Pick<VariableAccess, 'all'>;
  agents: AgentSource;
  producer: Pick<Producer, 'sendBatch'>;
  codec: EventCodec;
  prefix: string;
  /** Only these variables (default: all). */
  ids?: string[];
  functions?: FunctionRegistry;
  /** The Directive envelopes' producerId (default "orchestrator"). */
  producerId?: string;
  logger?: Logger;
}

export interface SentDirective {
  eventId: string;
  variableId: string;
  version: number;
  agentId: string;
  action: DirectiveAction;
  parameters: Record<string, unknown>;
}

export interface CoordinationReport {
  /** What was written to the directives topic, in order. */
  directives: SentDirective[];
  /** Variables that sent nothing, and why. */
  failures: Array<{ variableId: string; reason: string }>;
}

export async function coordinateSystem(options: CoordinateSystemOptions): Promise<CoordinationReport> {
  const functions = options.functions ?? sharedFunctions();
  const producerId = options.producerId ?? 'orchestrator';
  const all = await options.variables.all();
  const byId = new Map(all.map((v) => [v.id, v]));
  const chosen: VariableRecord[] = options.ids ? options.ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : [])) : [...all].sort((a, b) => a.id.localeCompare(b.id));
  const failures: CoordinationReport['failures'] = (options.ids ?? []).filter((id) => !byId.has(id)).map((variableId) => ({ variableId, reason: 'no such variable' }));
  const context = { agents: await agentInfos(options.agents) };

  const directives: SentDirective[] = [];
  const messages: Message[] = [];
  for (const variable of chosen) {
    let planned;
    try {
      planned = planDirectives(variable, context, functions);
    } catch (error) {
      failures.push({ variableId: variable.id, reason: describeError(error) });
      options.logger?.error({ variable: variable.id, error: describeError(error) }, 'coordination refused');
      continue;
    }
    for (const p of planned) {
      const event = directiveEvent(p, variable, producerId);
      const value = await options.codec.encode('Directive', event);
      messages.push({ key: p.agentId, value, headers: { [eventHeaders.type]: 'Directive', [eventHeaders.id]: event.envelope.eventId } });
      directives.push({ eventId: event.envelope.eventId, variableId: variable.id, version: variable.version, agentId: p.agentId, action: p.action, parameters: p.parameters });
    }
  }
  if (messages.length > 0) await options.producer.sendBatch({ topicMessages: [{ topic: topicName(options.prefix, 'directives'), messages }] });
  options.logger?.info({ directives: directives.length, variables: chosen.length, failures: failures.length }, 'system coordinated');
  return { directives, failures };
}

/** The adaptation loop over the metrics topic; call start() and stop(). */
export function adaptSystem(options: SystemAdapterOptions): SystemAdapter {
  return new SystemAdapter(options);
}

export interface SystemStatusOptions {
  agents: Pick<AgentRegistry, 'list' | 'byState'>;
  variables: Pick<VariableAccess, 'all'>;
  /** RoundOutcome events in log order (e.g. from readRecentEvents). */
  outcomes?: RoundOutcome[];
  /** MetricSample events in log order; the latest of each name is reported. */
  samples?: MetricSample[];
  /** How many of the last outcomes to report (default 20). */
  recent?: number;
  /** When given, its `agentsByState` gauge is set from the registry. */
  metrics?: Metrics;
}

export interface SystemStatus {
  agents: { total: number; byState: Record<LifecycleState, string[]> };
  variables: VariableRecord[];
  recentCoordination: Array<Pick<RoundOutcome, 'roundId' | 'protocol' | 'status' | 'winners' | 'price' | 'value' | 'reason'> & { eventId: string; eventTime: number }>;
  performance: Record<string, { value: number; labels: Record<string, string>; source: string; eventId: string; eventTime: number }>;
}

export async function systemStatus(options: SystemStatusOptions): Promise<SystemStatus> {
  const [agents, byState, variables] = await Promise.all([options.agents.list(), agentsByState(options.agents), options.variables.all()]);
  if (options.metrics) for (const state of lifecycleStates) options.metrics.agentsByState.set({ state }, byState[state].length);
  const recent = options.recent ?? 20;
  const outcomes = recent > 0 ? (options.outcomes ?? []).slice(-recent) : [];
  const performance: SystemStatus['performance'] = {};
  for (const s of options.samples ?? []) {
    const seen = performance[s.name];
    // The latest by event time; on a tie the later in the log.
    if (!seen || s.envelope.eventTime >= seen.eventTime) {
      performance[s.name] = { value: s.value, labels: s.labels, source: s.source, eventId: s.envelope.eventId, eventTime: s.envelope.eventTime };
    }
  }
  return {
    agents: { total: agents.length, byState },
    variables: [...variables].sort((a, b) => a.id.localeCompare(b.id)),
    recentCoordination: outcomes.map((o) => ({
      roundId: o.roundId, protocol: o.protocol, status: o.status, winners: o.winners, price: o.price, value: o.value, reason: o.reason,
      eventId: o.envelope.eventId, eventTime: o.envelope.eventTime,
    })),
    performance,
  };
}

/**
 * The events systemStatus takes, read from the topics with `readLog`:
 * the last `last` RoundOutcome events (ordered by event time, then round
 * id) and the MetricSamples among the last `samplesPerPartition` (default
 * 1,000) of each metrics partition, in event-time order. Only the end of
 * each partition is read, so the cost does not grow with retention.
 */
export async function readRecentEvents(kafka: Kafka, codec: EventCodec, prefix: string, options: { last?: number; samplesPerPartition?: number } = {}): Promise<{ outcomes: RoundOutcome[]; samples: MetricSample[] }> {
  const last = options.last ?? 20;
  // The last N outcomes overall are among the last N outcomes of their partitions. Offsets there also
  // hold each round's closing, its transaction marker and any rejections: 8 offsets per outcome leaves room.
  const [outcomeRecords, sampleRecords] = await Promise.all([
    last > 0 ? readLog(kafka, codec, [topicName(prefix, 'outcomes')], { lastPerPartition: last * 8 }) : Promise.resolve([]),
    readLog(kafka, codec, [topicName(prefix, 'metrics')], { lastPerPartition: options.samplesPerPartition ?? 1_000 }),
  ]);
  const records = [...outcomeRecords, ...sampleRecords];
  const outcomes = records
    .map((r) => r.decoded)
    .filter((d) => d.type === 'RoundOutcome')
    .map((d) => d.event)
    .sort((a, b) => a.envelope.eventTime - b.envelope.eventTime || a.roundId.localeCompare(b.roundId));
  const samples = records
    .map((r) => r.decoded)
    .filter((d) => d.type === 'MetricSample')
    .map((d) => d.event)
    .sort((a, b) => a.envelope.eventTime - b.envelope.eventTime);
  return { outcomes: last > 0 ? outcomes.slice(-last) : [], samples };
}

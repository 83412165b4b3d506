import { randomUUID } from 'node:crypto';
import type { DecodedEvent } from '../codec/codec.ts';
import type { Connections } from '../cli/connect.ts';
import { EventConsumer } from '../consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import { Coordinator } from '../coordinator/coordinator.ts';
import type { AgentRecord, Bid, BidRequest, DeadLetter, RoundOutcome } from '../events/types.ts';
import { EventProducer } from '../producer/eventProducer.ts';
import { CompactedView } from '../readmodel/compactedView.ts';
import { registerCatalog } from '../schemas/registry.ts';
import { applyTopics, topicName } from '../topics/index.ts';
import { VariablesClient } from '../variables/client.ts';
import { typedVariable } from '../variables/model.ts';
import { VariableOwner } from '../variables/owner.ts';

export interface DemoOptions {
  prefix: string;
  /** One line of progress for a person. */
  say: (line: string) => void;
  timeoutMs?: number;
}

export interface DemoResult {
  roundId: string;
  bids: Array<{ agentId: string; amount: number }>;
  deadLetter: { reasonCode: string; reason: string; originalBytes: number };
  agentsFromRedis: string[];
  outcome: { winners: string[]; price: number | null; reason: string };
  variablesFromRedis: Record<string, unknown>;
  refusedChange: string;
}

const agents: Array<{ agentId: string; capabilities: string[]; bid: number }> = [
  { agentId: 'planner-a', capabilities: ['plan', 'gpu'], bid: 31.5 },
  { agentId: 'planner-b', capabilities: ['plan'], bid: 42 },
  { agentId: 'coder-c', capabilities: ['code', 'gpu'], bid: 27.25 },
];

/**
 * The product end to end, on real services: topics applied, schemas
 * registered, agents registered in a compacted topic and read back from
 * their Redis view, a sealed-bid auction (a bid request and its bids, joined
 * by round id and decided by a coordinator), a malformed bid sent to
 * dead-letters with its reason and bytes, and variables defined and changed
 * through their owner, read back from Redis, with a bad change refused.
 */
export async function runDemo(c: Connections, options: DemoOptions): Promise<DemoResult> {
  const { prefix, say } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const topic = (name: string): string => topicName(prefix, name);
  const definition = (name: string) => c.definitions.find((d) => d.name === name)!;
  const events = new EventProducer(c.producer, c.codec);
  const deadLetters = new DeadLetterWriter({ producer: c.producer, codec: c.codec, topic: topic('dead-letters'), producerId: 'demo', consumerGroup: `${prefix}.demo`, metrics: c.metrics, logger: c.logger });
  const stops: Array<() => Promise<void>> = [];

  try {
    const applied = await applyTopics(c.admin, c.definitions, { prefix });
    const count = (kind: string) => applied.changes.filter((ch) => ch.kind === kind).length;
    say(`topics under "${prefix}": ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged` + (applied.warnings.length ? ` (${applied.warnings.length} settings capped for a one-broker cluster)` : ''));

    const registered = await registerCatalog(c.registry, c.registryTarget, c.catalog);
    say(`schemas: ${registered.length} event types registered with BACKWARD compatibility (ids ${Math.min(...registered.map((r) => r.id))}–${Math.max(...registered.map((r) => r.id))})`);

    // The readers: two Redis views of compacted topics, and a join of requests with bids by round id.
    // They start together: each group join takes a few seconds.
    const agentView = new CompactedView({
      kafka: c.kafka, redis: c.redis, codec: c.codec, deadLetters, logger: c.logger,
      topic: topic('agents'), definition: definition('agents'), namespace: `mabeam:${prefix}:agents`,
      project: (d) => ({ capabilities: (d.event as unknown as AgentRecord).capabilities }),
    });
    stops.push(() => agentView.stop());
    const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, metrics: c.metrics });
    stops.push(() => coordinator.stop());
    const owner = new VariableOwner({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix, definitions: c.definitions, metrics: c.metrics });
    stops.push(() => owner.stop());
    const variables = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix, redis: c.redis, definitions: c.definitions, clientId: 'demo' });
    stops.push(() => variables.stop());
    const roundId = `round-${randomUUID()}`;
    const joined = new Map<string, { request?: BidRequest; outcome?: RoundOutcome }>();
    const round = () => joined.get(roundId) ?? {};
    const join = (decoded: DecodedEvent) => {
      const entry = round();
      if (decoded.type === 'BidRequest') entry.request = decoded.event as unknown as BidRequest;
      else if (decoded.type === 'RoundOutcome') entry.outcome = decoded.event as unknown as RoundOutcome;
      joined.set((decoded.event as unknown as { roundId: string }).roundId, entry);
    };
    const seenLetters: DeadLetter[] = [];
    const collector = new EventConsumer({
      kafka: c.kafka, groupId: `${prefix}.demo.collector`, codec: c.codec, deadLetters, logger: c.logger,
      topics: [{ topic: topic('bid-requests'), definition: definition('bid-requests') }, { topic: topic('outcomes'), definition: definition('outcomes') }],
      fromBeginning: true,
      onEvent: (decoded) => { if ((decoded.event as { roundId?: string }).roundId === roundId) join(decoded); },
    });
    const letters = new EventConsumer({
      kafka: c.kafka, groupId: `${prefix}.demo.dead-letter-reader`, codec: c.codec, deadLetters, logger: c.logger,
      topics: [{ topic: topic('dead-letters'), definition: definition('dead-letters') }],
      fromBeginning: true,
      onEvent: (decoded) => { const l = decoded.event as unknown as DeadLetter; if (l.key?.toString() === roundId) seenLetters.push(l); },
    });
    stops.push(() => collector.stop(), () => letters.stop());

    await Promise.all([agentView.start(), collector.start(), letters.start(), coordinator.start(), owner.start().then(() => variables.start())]);

    // Agents: a compacted registry topic, and its read model in Redis.
    for (const a of agents) {
      const record: AgentRecord = {
        envelope: newEnvelope('AgentRecord', 'demo', { correlationId: a.agentId }),
        agentId: a.agentId,
        role: 'worker',
        capabilities: a.capabilities,
        resources: { memoryMb: 256 },
        consumerGroup: `${prefix}.agents.${a.agentId}`,
        metadata: {},
      };
      await events.send(topic('agents'), a.agentId, 'AgentRecord', record);
    }
    await agentView.caughtUp(timeoutMs);
    const agentEntries = await agentView.entries<{ capabilities: string[] }>();
    const gpu = [...agentEntries].filter(([, v]) => v.capabilities.includes('gpu')).map(([k]) => k).sort();
    say(`agents: ${agentEntries.size} in the registry view (Redis); with capability "gpu": ${gpu.join(', ')}`);

    // A round: the request and its bids share the round id as key, so they are co-partitioned.
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', 'demo', { correlationId: roundId }),
      roundId, protocol: 'first-price', item: JSON.stringify({ resource: 'gpu-hours', quantity: 4 }),
      requiredCapabilities: [], eligibleAgents: agents.map((a) => a.agentId), reservePrice: 10,
      deadline: Date.now() + 60_000, parameters: null,
    };
    await events.send(topic('bid-requests'), roundId, 'BidRequest', request);
    for (const a of agents) {
      const bid: Bid = { envelope: newEnvelope('Bid', a.agentId, { correlationId: roundId, causationId: request.envelope.eventId }), roundId, agentId: a.agentId, amount: a.bid, bundle: [], attributes: null };
      await events.send(topic('bids'), roundId, 'Bid', bid);
    }
    const garbage = Buffer.from(JSON.stringify({ roundId, agentId: 'rogue', amount: 99 }));
    await c.producer.send({ topic: topic('bids'), messages: [{ key: roundId, value: garbage }] });
    say(`round ${roundId}: 1 bid request, ${agents.length} bids and 1 malformed bid (plain JSON) produced`);

    // The coordinator joins the request with its bids by round id, decides, and dead-letters the malformed bid.
    await waitFor(() => round().request !== undefined && round().outcome !== undefined && seenLetters.length === 1, timeoutMs, 'the outcome and the dead letter', () => collector.crash ?? letters.crash);
    const outcome = round().outcome!;
    const bids = (JSON.parse(outcome.details ?? '{}') as { bids?: Array<{ agentId: string; amount: number }> }).bids ?? [];
    say(`coordinator (first-price): ${bids.length} bids joined by round id; ${outcome.winners.join(', ')} wins at ${outcome.price} (${outcome.reason})`);
    const letter = seenLetters[0]!;
    say(`dead letter: ${letter.reasonCode} — ${letter.reason} (original ${letter.value?.length ?? 0} bytes kept, from ${letter.sourceTopic}@${letter.sourcePartition}:${letter.sourceOffset})`);

    // Variables: defined and changed through their owner (versions, type checks), read back from Redis.
    await variables.define(typedVariable('demo.temperature', { kind: 'float', min: 0, max: 2 }, 0.4));
    await variables.define(typedVariable('demo.team-size', { kind: 'integer', min: 1, max: 10 }, 3));
    const changed = await variables.set('demo.temperature', 0.7);
    let refusedChange = '';
    await variables.set('demo.team-size', 99).catch((error: unknown) => (refusedChange = describeError(error)));
    const fromRedis: Record<string, unknown> = {};
    for (const id of ['demo.temperature', 'demo.team-size']) fromRedis[id] = (await variables.get(id))?.value;
    say(`variables from the Redis view: ${Object.entries(fromRedis).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')} (demo.temperature at version ${changed.version})`);
    say(`a bad change refused: ${refusedChange}`);

    const counted = (await c.metrics.deadLetters.get()).values.map((v) => `{topic="${v.labels.topic}",reason="${v.labels.reason}"} ${v.value}`);
    say(`metrics: mabeam_dead_letters_total${counted.join(', ')}`);
    return {
      roundId,
      bids,
      deadLetter: { reasonCode: letter.reasonCode, reason: letter.reason, originalBytes: letter.value?.length ?? 0 },
      agentsFromRedis: [...agentEntries.keys()].sort(),
      outcome: { winners: outcome.winners, price: outcome.price, reason: outcome.reason },
      variablesFromRedis: fromRedis,
      refusedChange,
    };
  } finally {
    await Promise.all(stops.map((stop) => stop().catch((error: unknown) => c.logger.warn({ error: describeError(error) }, 'stopping a demo consumer failed'))));
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, crashed?: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const crash = crashed?.();
    if (crash) throw new Error(`A demo consumer crashed while waiting for ${what}: ${crash.message}`);
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

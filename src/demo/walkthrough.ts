import { randomUUID } from 'node:crypto';
import type { DecodedEvent } from '../codec/codec.ts';
import type { Connections } from '../cli/connect.ts';
import { EventConsumer } from '../consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { describeError, MabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import { Coordinator } from '../coordinator/coordinator.ts';
import type { AgentRecord, Bid, BidRequest, DeadLetter, EventTypeName, EventTypes, Rejection, RoundOutcome } from '../events/types.ts';
import { createProducer, kafkaFor } from '../kafka/client.ts';
import { readToEnd } from '../kafka/readToEnd.ts';
import { silentLogger } from '../log/logger.ts';
import { EventProducer, eventHeaders } from '../producer/eventProducer.ts';
import { explainKafkaError } from '../security/kafkaErrors.ts';
import { agentKey, type AgentKey } from '../security/keys.ts';
import { signingHeaders } from '../security/signing.ts';
import { readerGroupId } from '../topics/names.ts';
import { demoPool, demoPrincipals, type DemoPrincipals, type DemoRole } from './principals.ts';
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
  /**
   * On a secured cluster, with `c` logged in as an admin: each part runs as
   * its own user with its role's ACLs, agents sign what they write, the
   * coordinator requires signatures, and a forged bid and two writes or
   * reads beyond a role are shown refused.
   */
  secure?: {
    /** The registry's read-only login for the parts (default: `c`'s). */
    registryReader?: { username: string; password: string };
    /** Where the demo agents' keys are kept (default: keys.ts keysDir). */
    keysDir?: string;
  };
}

export interface DemoResult {
  roundId: string;
  bids: Array<{ agentId: string; amount: number }>;
  deadLetter: { reasonCode: string; reason: string; originalBytes: number };
  agentsFromRedis: string[];
  outcome: { winners: string[]; price: number | null; reason: string };
  variablesFromRedis: Record<string, unknown>;
  refusedChange: string;
  /** On a secure run: the forged bid's refusal, and what the broker refused beyond a role. */
  secure?: {
    users: string[];
    acls: number;
    rejections: Array<{ agentId: string; reasonCode: string; reason: string }>;
    refused: string[];
  };
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
  const deadLetters = new DeadLetterWriter({ producer: c.producer, codec: c.codec, topic: topic('dead-letters'), producerId: 'demo', consumerGroup: `${prefix}.demo`, metrics: c.metrics, logger: c.logger });
  const stops: Array<() => Promise<void>> = [];
  let principals: DemoPrincipals | undefined;

  try {
    const applied = await applyTopics(c.admin, c.definitions, { prefix });
    const count = (kind: string) => applied.changes.filter((ch) => ch.kind === kind).length;
    say(`topics under "${prefix}": ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged` + (applied.warnings.length ? ` (${applied.warnings.length} settings capped for a one-broker cluster)` : ''));

    const registered = await registerCatalog(c.registry, c.registryTarget, c.catalog);
    say(`schemas: ${registered.length} event types registered with BACKWARD compatibility (ids ${Math.min(...registered.map((r) => r.id))}–${Math.max(...registered.map((r) => r.id))})`);

    // On a secured cluster each part runs as its own user, with only its role's rights.
    if (options.secure) {
      principals = await demoPrincipals(c, prefix, options.secure.registryReader);
      const u = principals.users;
      say(`principals (SCRAM-SHA-512): ${u.coordinator} (coordinator), ${u.owner} (owner), ${u.agents} (agent pool "${demoPool}"), ${u.client} (client); ${principals.acls} ACLs from security/roles.json, nothing else allowed`);
    }
    const part = (role: DemoRole): Connections => principals?.as[role] ?? c;
    const agentKeys = options.secure ? new Map(agents.map((a) => [a.agentId, agentKey(a.agentId, options.secure?.keysDir ? { dir: options.secure.keysDir } : {})])) : undefined;
    /** Writes an event as it is, or signed by `signer` (its key and value bytes, in headers). */
    const send = async <K extends EventTypeName>(as: Connections, t: string, key: string, type: K, event: EventTypes[K], signer?: AgentKey): Promise<void> => {
      if (!signer) {
        await new EventProducer(as.producer, as.codec).send(t, key, type, event);
        return;
      }
      const value = await as.codec.encode(type, event);
      await as.producer.send({ topic: t, messages: [{ key, value, headers: { ...signingHeaders(key, value, signer), [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId } }] });
    };

    // The readers: two Redis views of compacted topics, and a join of requests with bids by round id.
    // They start together: each group join takes a few seconds.
    const agentView = new CompactedView({
      kafka: c.kafka, redis: c.redis, codec: c.codec, deadLetters, logger: c.logger,
      topic: topic('agents'), definition: definition('agents'), namespace: `mabeam:${prefix}:agents`,
      project: (d) => ({ capabilities: d.type === 'AgentRecord' ? d.event.capabilities : [] }),
    });
    stops.push(() => agentView.stop());
    const coordinating = part('coordinator');
    const coordinator = new Coordinator({
      kafka: coordinating.kafka, codec: coordinating.codec, logger: c.logger, prefix, definitions: c.definitions, metrics: coordinating.metrics,
      ...(options.secure ? { requireSignatures: true } : {}),
    });
    stops.push(() => coordinator.stop());
    const owning = part('owner');
    const owner = new VariableOwner({ kafka: owning.kafka, codec: owning.codec, logger: c.logger, prefix, definitions: c.definitions, metrics: owning.metrics });
    stops.push(() => owner.stop());
    const client = part('client');
    const variables = new VariablesClient({ kafka: client.kafka, codec: client.codec, producer: client.producer, logger: c.logger, prefix, redis: client.redis, definitions: c.definitions, clientId: 'demo' });
    stops.push(() => variables.stop());
    const roundId = `round-${randomUUID()}`;
    const joined: { request?: BidRequest; outcome?: RoundOutcome; rejections: Rejection[] } = { rejections: [] };
    const join = (decoded: DecodedEvent) => {
      if (decoded.type === 'BidRequest') joined.request = decoded.event;
      else if (decoded.type === 'RoundOutcome') joined.outcome = decoded.event;
      else if (decoded.type === 'Rejection') joined.rejections.push(decoded.event);
    };
    const seenLetters: DeadLetter[] = [];
    // The client's readers use throw-away groups, as every reader from outside does.
    const collector = new EventConsumer({
      kafka: client.kafka, groupId: readerGroupId(prefix, 'demo.collector'), codec: client.codec, deadLetters, logger: c.logger,
      topics: [{ topic: topic('bid-requests'), definition: definition('bid-requests') }, { topic: topic('outcomes'), definition: definition('outcomes') }],
      fromBeginning: true,
      onEvent: (decoded) => {
        const e = decoded.event as { roundId?: string; subjectId?: string };
        if (e.roundId === roundId || e.subjectId === roundId) join(decoded);
      },
    });
    const letters = new EventConsumer({
      kafka: client.kafka, groupId: readerGroupId(prefix, 'demo.dead-letter-reader'), codec: client.codec, deadLetters, logger: c.logger,
      topics: [{ topic: topic('dead-letters'), definition: definition('dead-letters') }],
      fromBeginning: true,
      onEvent: (decoded) => { if (decoded.type === 'DeadLetter' && decoded.event.key?.toString() === roundId) seenLetters.push(decoded.event); },
    });
    stops.push(() => collector.stop(), () => letters.stop());

    await Promise.all([agentView.start(), collector.start(), letters.start(), coordinator.start(), owner.start().then(() => variables.start())]);

    // Agents: a compacted registry topic, and its read model in Redis.
    const pool = part('agents');
    for (const a of agents) {
      const key = agentKeys?.get(a.agentId);
      const record: AgentRecord = {
        envelope: newEnvelope('AgentRecord', 'demo', { correlationId: a.agentId }),
        agentId: a.agentId,
        role: 'worker',
        capabilities: a.capabilities,
        resources: { memoryMb: 256 },
        consumerGroup: options.secure ? `${prefix}.agents.${demoPool}` : `${prefix}.agents.${a.agentId}`,
        metadata: options.secure ? { pool: demoPool } : {},
        ...(key ? { publicKey: key.publicKeyBase64, keyId: key.keyId, keyNotAfter: key.notAfter } : {}),
      };
      // A first key signs the record that publishes it (proof of possession).
      await send(pool, topic('agents'), a.agentId, 'AgentRecord', record, key);
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
    await send(client, topic('bid-requests'), roundId, 'BidRequest', request);
    const bidOf = (agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId, causationId: request.envelope.eventId }), roundId, agentId, amount, bundle: [], attributes: null });
    for (const a of agents) await send(pool, topic('bids'), roundId, 'Bid', bidOf(a.agentId, a.bid), agentKeys?.get(a.agentId));
    // A forgery from inside the pool: a bid in coder-c's name, valid Avro, signed with planner-a's key.
    const forged = bidOf('coder-c', 99);
    if (agentKeys) await send(pool, topic('bids'), roundId, 'Bid', forged, agentKeys.get('planner-a'));
    const garbage = Buffer.from(JSON.stringify({ roundId, agentId: 'rogue', amount: 99 }));
    await pool.producer.send({ topic: topic('bids'), messages: [{ key: roundId, value: garbage }] });
    say(`round ${roundId}: 1 bid request, ${agents.length} ${agentKeys ? 'signed ' : ''}bids${agentKeys ? ', 1 forged bid (coder-c\'s name at 99, planner-a\'s key)' : ''} and 1 malformed bid (plain JSON) produced`);

    // The coordinator joins the request with its bids by round id, decides, and dead-letters the malformed bid.
    const rejected = agentKeys ? 1 : 0;
    await waitFor(() => joined.request !== undefined && joined.outcome !== undefined && joined.rejections.length >= rejected && seenLetters.length === 1, timeoutMs, 'the outcome and the dead letter', () => collector.crash ?? letters.crash);
    const outcome = joined.outcome!;
    const bids = (JSON.parse(outcome.details ?? '{}') as { bids?: Array<{ agentId: string; amount: number }> }).bids ?? [];
    say(`coordinator (first-price): ${bids.length} bids joined by round id; ${outcome.winners.join(', ')} wins at ${outcome.price} (${outcome.reason})`);
    const letter = seenLetters[0]!;
    for (const r of joined.rejections) say(`refused by the coordinator: a bid in ${r.agentId}'s name — ${r.reasonCode}: ${r.reason}`);
    say(`dead letter: ${letter.reasonCode} — ${letter.reason} (original ${letter.value?.length ?? 0} bytes kept, from ${letter.sourceTopic}@${letter.sourcePartition}:${letter.sourceOffset})`);
    const refused = principals ? await refusals(principals, topic) : [];
    for (const r of refused) say(`refused by the broker: ${r}`);

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

    const counted = (await coordinating.metrics.deadLetters.get()).values.map((v) => `{topic="${v.labels.topic}",reason="${v.labels.reason}"} ${v.value}`);
    say(`metrics: mabeam_dead_letters_total${counted.join(', ')}`);
    if (principals) {
      const forgedCounts = (await coordinating.metrics.forgedEvents.get()).values.map((v) => `{topic="${v.labels.topic}",reason="${v.labels.reason}"} ${v.value}`);
      say(`metrics: mabeam_forged_events_total${forgedCounts.join(', ')}`);
    }
    return {
      roundId,
      bids,
      deadLetter: { reasonCode: letter.reasonCode, reason: letter.reason, originalBytes: letter.value?.length ?? 0 },
      agentsFromRedis: [...agentEntries.keys()].sort(),
      outcome: { winners: outcome.winners, price: outcome.price, reason: outcome.reason },
      variablesFromRedis: fromRedis,
      refusedChange,
      ...(principals
        ? {
            secure: {
              users: Object.values(principals.users),
              acls: principals.acls,
              rejections: joined.rejections.map((r) => ({ agentId: r.agentId ?? '', reasonCode: r.reasonCode, reason: r.reason })),
              refused,
            },
          }
        : {}),
    };
  } finally {
    await Promise.all(stops.map((stop) => stop().catch((error: unknown) => c.logger.warn({ error: describeError(error) }, 'stopping a demo consumer failed'))));
    await principals?.close();
  }
}

/** What the broker refuses beyond a role: an agent writing an outcome, a client reading round state. */
async function refusals(principals: DemoPrincipals, topic: (name: string) => string): Promise<string[]> {
  const quiet = silentLogger();
  const attempt = async (what: string, user: string, work: () => Promise<unknown>): Promise<string> => {
    try {
      await work();
      return `${what}: ALLOWED (the ACLs are wrong)`;
    } catch (error) {
      const explained = explainKafkaError(error, { user });
      return `${what}: ${explained ? `${explained.code}` : describeError(error)}`;
    }
  };
  const agents = principals.users.agents;
  const producer = createProducer(kafkaFor(principals.endpoints.agents, 'mabeam-demo-refused', quiet, { retry: { retries: 1 } }));
  const asAgent = await attempt(`${agents} writing to outcomes`, agents, async () => {
    await producer.connect();
    try {
      await producer.send({ topic: topic('outcomes'), messages: [{ key: 'forged', value: 'a forged outcome' }] });
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  });
  const client = principals.users.client;
  const asClient = await attempt(`${client} reading round-state`, client, () =>
    readToEnd(kafkaFor(principals.endpoints.client, 'mabeam-demo-refused', quiet, { retry: { retries: 1 } }), { topics: [topic('round-state')], onRecord: () => undefined, timeoutMs: 15_000 }),
  );
  return [asAgent, asClient];
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, crashed?: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const crash = crashed?.();
    if (crash) throw new MabeamError('DEMO_FAILED', `A demo consumer crashed while waiting for ${what}: ${crash.message}`);
    if (Date.now() > deadline) throw new MabeamError('DEMO_FAILED', `Timed out after ${timeoutMs} ms waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

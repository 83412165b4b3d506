import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError, describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { AgentStateSnapshot } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Outgoing } from './outbox.ts';
import { readSnapshots } from './snapshots.ts';
import type { HostedAgent } from './types.ts';

/**
 * Agent state across instances: the state object of each agent is written
 * as JSON to the compacted agent-state topic when an instance stops or
 * hands over, and read back by the next instance before it joins the pool.
 */

/** Sets each agent's state (and snapshot sequence) from its latest snapshot, if it has one. */
export async function restoreStates(kafka: Kafka, codec: EventCodec, topic: string, agents: ReadonlyMap<string, HostedAgent>, logger: Logger): Promise<void> {
  const snapshots = await readSnapshots(kafka, codec, topic, [...agents.keys()], logger);
  for (const [agentId, snapshot] of snapshots) {
    const agent = agents.get(agentId)!;
    let state: unknown;
    try {
      state = JSON.parse(snapshot.state.toString('utf8'));
    } catch (error) {
      // Starting from the initial state instead would overwrite this snapshot at the next stop.
      throw new MabeamError(
        'INVALID_AGENT',
        `The state snapshot of agent ${agentId} (sequence ${snapshot.sequence}, written by ${snapshot.instanceId}) is not JSON (${describeError(error)}); it is left as it is and the agent is not started.`,
        { cause: error },
      );
    }
    agent.context.state = state;
    agent.snapshotSequence = snapshot.sequence;
    logger.info({ agent: agentId, sequence: snapshot.sequence, from: snapshot.instanceId }, 'state restored from snapshot');
  }
}

/**
 * The snapshot of an agent's current state, or the reason there can be none
 * (a state that is not JSON-serialisable: a BigInt, a cycle). Its sequence
 * advances only when there is one.
 */
export function snapshotOf(agent: HostedAgent, instanceId: string, topic: string): Outgoing | { error: string } {
  let json: string | undefined;
  try {
    json = JSON.stringify(agent.context.state ?? {});
  } catch (error) {
    return { error: `its state cannot be saved: ${describeError(error)}` };
  }
  if (json === undefined) return { error: 'its state cannot be saved: it is not a JSON value' };
  const event: AgentStateSnapshot = {
    envelope: newEnvelope('AgentStateSnapshot', instanceId, { correlationId: agent.definition.id }),
    agentId: agent.definition.id,
    instanceId,
    sequence: ++agent.snapshotSequence,
    state: Buffer.from(json),
    contentType: 'application/json',
  };
  return { topic, key: agent.definition.id, type: 'AgentStateSnapshot', event };
}

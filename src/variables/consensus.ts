import type { RoundClient } from '../coordinator/roundClient.ts';
import { MabeamError } from '../errors.ts';
import type { Value } from './model.ts';
import type { VariableAccess, VariableRecord } from './types.ts';

export interface ProposeOptions {
  /** A consensus protocol (default majority); the change needs its decision to be "yes". */
  protocol?: string;
  /**
   * Who votes; default the variable's affected agents. The owners apply only
   * a consensus whose electorate was exactly those agents: any other set
   * runs its round and is then refused (CONSENSUS_REFUSED, saying who was
   * missing or not affected).
   */
  voters?: string[];
  weights?: Record<string, number>;
  quorum?: number;
  deadlineMs?: number;
}

/**
 * A strongly consistent change: the voters (by default the variable's
 * affected agents) vote "yes" or "no" on a Proposal whose subject is
 * `{ variableId, value, version }`; the change is then requested with the
 * round's outcome as its trigger and the version voted on as its expected
 * version. The owners apply it only if the round's outcome in the log is
 * "yes" for exactly this change and the variable has not changed meanwhile
 * — otherwise the caller gets
 * VARIABLE_REJECTED (CONSENSUS_REFUSED or STALE_VERSION), and the refusal is
 * an event on variable-changes like any other.
 */
export async function proposeVariableChange(variables: VariableAccess, rounds: RoundClient, id: string, value: Value, options: ProposeOptions = {}): Promise<VariableRecord> {
  const current = await variables.get(id);
  if (!current) return variables.set(id, value, { cause: 'consensus', trigger: { status: 'no-round', reason: 'unknown variable' } });
  const voters = options.voters ?? current.definition.affectedAgents;
  if (voters.length === 0) throw new MabeamError('INVALID_OPTIONS', `${id} has no affected agents to vote; name the voters.`);
  const protocol = options.protocol ?? 'majority';
  const outcome = await rounds.consensus({
    protocol,
    subject: { variableId: id, value, version: current.version },
    voters,
    options: ['yes', 'no'],
    ...(options.weights ? { weights: options.weights } : {}),
    ...(options.quorum !== undefined ? { quorum: options.quorum } : {}),
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
  });
  return variables.set(id, value, {
    cause: 'consensus',
    expectedVersion: current.version,
    trigger: { roundId: outcome.roundId, protocol, status: outcome.status, value: outcome.value, reason: outcome.reason },
  });
}

/**
 * The owners' rule for one request, as a pure function of the request, the
 * variable's current record and — for a change that claims consensus — the
 * round's outcome as the log has it (nothing else: no clock), so the log
 * decides the same way wherever it is read.
 *
 * - A request with a definition defines the variable: version 1 with the
 *   request's value or the definition's initial value. Defining it again
 *   with the same definition is refused as ALREADY_DEFINED (the client
 *   takes that as success); with another definition as DEFINITION_CONFLICT.
 * - A change of an unknown variable: UNKNOWN_VARIABLE. A value that is not
 *   JSON or not of the variable's type: WRONG_TYPE; outside its range or
 *   options: OUT_OF_RANGE. A compare-and-set whose expected version is not
 *   the current one: STALE_VERSION.
 * - A change caused by a consensus round (cause "consensus") names the round
 *   in its trigger (trigger.roundId). It applies only if the log holds that
 *   round's outcome, the round was decided by a consensus protocol whose
 *   electorate was exactly the variable's affected agents (as a set: not
 *   voters of the requester's choosing, not an open round), it decided
 *   "yes", and it asked about exactly this change: this variable, this
 *   value, the version it is at. What the trigger says about the outcome is
 *   not taken on trust. Otherwise CONSENSUS_REFUSED, with what did not
 *   match (see electorateProblem).
 * - Otherwise the value becomes version + 1, written by the requester at the
 *   request's event time (the last-write-wins tie-break: see newer()).
 */
import { isDeepStrictEqual } from 'node:util';
import type { VariableChangeRequested } from '../events/types.ts';
import type { LoggedApproval } from './approvals.ts';
import { checkValue, defineVariable, type Value } from './model.ts';
import type { VariableRecord, VariableRejectionCode } from './types.ts';

export type ChangeDecision =
  | { type: 'changed'; variableId: string; record: VariableRecord }
  | { type: 'rejected'; variableId: string; reasonCode: VariableRejectionCode; reason: string };

const refuse = (variableId: string, reasonCode: VariableRejectionCode, reason: string): ChangeDecision => ({ type: 'rejected', variableId, reasonCode, reason });

function parse(json: string | null): { ok: true; value: unknown } | { ok: false } {
  if (json === null) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(json) };
  } catch {
    return { ok: false };
  }
}

/** The round a consensus change names in its trigger. */
export function roundIdOf(trigger: string | null): string | undefined {
  const parsed = parse(trigger);
  const roundId = parsed.ok && parsed.value && typeof parsed.value === 'object' ? (parsed.value as { roundId?: unknown }).roundId : undefined;
  return typeof roundId === 'string' && roundId.length > 0 ? roundId : undefined;
}

/**
 * Why a logged round cannot approve a change of a variable with these
 * affected agents, or undefined when it can: it must be a consensus
 * protocol, and its electorate (the proposal's eligibleVoters) must be the
 * affected agents, no more and no fewer. An open round (no voters named) is
 * not that electorate, so a variable without affected agents cannot be
 * changed by consensus at all.
 */
export function electorateProblem(id: string, affected: readonly string[], approval: LoggedApproval): string | undefined {
  const round = `Round ${approval.roundId} (${approval.protocol})`;
  if (approval.kind !== 'consensus') {
    const was = approval.kind === null ? 'its outcome does not say it was a consensus' : `it was ${/^[aeiou]/i.test(approval.kind) ? 'an' : 'a'} ${approval.kind}, not a consensus`;
    return `${round} cannot approve a change of ${id}: ${was}.`;
  }
  if (affected.length === 0) return `${id} has no affected agents, so no consensus round can approve a change of it.`;
  const named = affected.map((a) => JSON.stringify(a)).join(', ');
  if (approval.eligible.length === 0) return `${round} was open to any voter; a change of ${id} needs its affected agents (${named}) as the electorate.`;
  const voters = new Set(approval.eligible);
  const affectedSet = new Set(affected);
  const missing = [...affectedSet].filter((a) => !voters.has(a));
  const extra = [...voters].filter((v) => !affectedSet.has(v));
  if (missing.length === 0 && extra.length === 0) return undefined;
  const list = (ids: string[]) => ids.map((a) => JSON.stringify(a)).join(', ');
  const diff = [missing.length > 0 ? `missing ${list(missing)}` : '', extra.length > 0 ? `not affected ${list(extra)}` : ''].filter(Boolean).join('; ');
  return `${round} had another electorate than the affected agents of ${id} (${named}): ${diff}.`;
}

export function decideChange(request: VariableChangeRequested, current: VariableRecord | undefined, approval?: LoggedApproval): ChangeDecision {
  const id = request.variableId;
  const at = { eventTime: request.envelope.eventTime, writerId: request.requesterId };
  if (request.definition !== null) {
    const raw = parse(request.definition);
    if (!raw.ok) return refuse(id, 'INVALID_DEFINITION', 'The definition is not JSON.');
    let definition;
    try {
      definition = defineVariable(raw.value);
    } catch (error) {
      return refuse(id, 'INVALID_DEFINITION', (error as Error).message);
    }
    if (definition.id !== id) return refuse(id, 'INVALID_REQUEST', `The definition is of "${definition.id}", the request of "${id}".`);
    if (current) {
      return JSON.stringify(current.definition) === JSON.stringify(definition)
        ? refuse(id, 'ALREADY_DEFINED', `${id} is already defined so (version ${current.version}).`)
        : refuse(id, 'DEFINITION_CONFLICT', `${id} is already defined differently; a definition does not change.`);
    }
    if (request.expectedVersion !== null && request.expectedVersion !== 0) return refuse(id, 'STALE_VERSION', `${id} does not exist yet (version 0), not version ${request.expectedVersion}.`);
    let value: unknown = definition.initial;
    if (request.value !== null) {
      const given = parse(request.value);
      if (!given.ok) return refuse(id, 'WRONG_TYPE', 'The value is not JSON.');
      value = given.value;
    }
    const problem = checkValue(definition.valueType, value);
    if (problem) return refuse(id, problem.reasonCode, `${id} ${problem.reason}.`);
    return { type: 'changed', variableId: id, record: { id, definition, value: value as Value, version: 1, ...at } };
  }
  if (!current) return refuse(id, 'UNKNOWN_VARIABLE', `No variable ${id} is defined.`);
  const given = parse(request.value);
  if (!given.ok) return refuse(id, 'WRONG_TYPE', `A change of ${id} needs a value, as JSON.`);
  const problem = checkValue(current.definition.valueType, given.value);
  if (problem) return refuse(id, problem.reasonCode, `${id} ${problem.reason}.`);
  if (request.expectedVersion !== null && request.expectedVersion !== current.version) {
    return refuse(id, 'STALE_VERSION', `${id} is at version ${current.version}, not ${request.expectedVersion}: read it again and retry.`);
  }
  if (request.cause === 'consensus') {
    const roundId = roundIdOf(request.trigger);
    if (!roundId) return refuse(id, 'CONSENSUS_REFUSED', `A change of ${id} by consensus must name its round (trigger.roundId).`);
    if (!approval || approval.roundId !== roundId) return refuse(id, 'CONSENSUS_REFUSED', `The log holds no outcome of consensus round ${roundId}.`);
    if (approval.contradicted) return refuse(id, 'CONSENSUS_REFUSED', `The log holds contradictory outcomes of round ${roundId}; it approves nothing.`);
    const electorate = electorateProblem(id, current.definition.affectedAgents, approval);
    if (electorate) return refuse(id, 'CONSENSUS_REFUSED', electorate);
    if (approval.status !== 'decided' || approval.value !== JSON.stringify('yes')) {
      return refuse(id, 'CONSENSUS_REFUSED', `The consensus round ${roundId} did not approve the change (${approval.status}${approval.value ? `, ${approval.value}` : ''}).`);
    }
    const asked = approval.subject;
    if (asked.variableId !== id || asked.version !== current.version || !isDeepStrictEqual(asked.value, given.value)) {
      return refuse(id, 'CONSENSUS_REFUSED', `The consensus round ${roundId} approved another change (${asked.variableId} at version ${String(asked.version)} to ${JSON.stringify(asked.value)}), not ${id} at version ${current.version} to ${request.value}.`);
    }
  }
  return { type: 'changed', variableId: id, record: { id, definition: current.definition, value: given.value as Value, version: current.version + 1, ...at } };
}

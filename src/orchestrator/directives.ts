/**
 * From a variable to the Directive events that carry it out.
 *
 * Rules:
 * - A variable's directives come from the coordination function its
 *   definition names (looked up in the function registry; a name nobody
 *   registered is an error, never a silent fall-back) or, without one, from
 *   its type's default strategy.
 * - A planned directive must name an agent, use one of `directiveActions`
 *   and carry a JSON object of parameters; a variable's plan names each
 *   (agent, action) at most once. Anything else refuses the whole plan of
 *   that variable (VALIDATION_FAILED) — nothing of it is sent.
 * - A Directive is keyed by its agent id, has `variableId` set, `roundId`
 *   null, `parameters` as JSON, the variable id as correlation id, and an
 *   event id derived from (variableId, version, agentId, action): sending
 *   the directives of one version again yields events readers recognise as
 *   the same.
 */
import { isDeepStrictEqual } from 'node:util';
import { MabeamError, describeError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { Directive } from '../events/types.ts';
import type { VariableRecord } from '../variables/types.ts';
import { directiveActions, isDirectiveAction } from './actions.ts';
import type { CoordinationContext, FunctionRegistry, PlannedDirective } from './functions.ts';
import { defaultStrategy } from './strategies.ts';

/** The event id of the directive of a variable version for an agent and action. */
export function directiveEventId(variableId: string, version: number, agentId: string, action: string): string {
  return deterministicEventId('directive', variableId, String(version), agentId, action);
}

/** The checked directives a variable's value calls for; throws VALIDATION_FAILED when its function misbehaves. */
export function planDirectives(variable: VariableRecord, context: CoordinationContext, functions: FunctionRegistry): PlannedDirective[] {
  const name = variable.definition.coordination;
  const fn = name === undefined ? defaultStrategy : functions.coordination(name);
  if (!fn) throw new MabeamError('VALIDATION_FAILED', `Variable ${variable.id} names the coordination function "${name}", which is not registered.`);
  const source = name === undefined ? `the default ${variable.definition.type} strategy` : `coordination function "${name}"`;
  let planned: unknown;
  try {
    planned = fn(variable, context);
  } catch (error) {
    throw new MabeamError('VALIDATION_FAILED', `${source} failed for variable ${variable.id}: ${describeError(error)}`, { cause: error });
  }
  if (!Array.isArray(planned)) throw new MabeamError('VALIDATION_FAILED', `${source} must return a list of directives for variable ${variable.id}.`);
  const seen = new Set<string>();
  return planned.map((d: unknown, i) => {
    const problem = directiveProblem(d);
    if (problem) throw new MabeamError('VALIDATION_FAILED', `${source} planned an invalid directive #${i} for variable ${variable.id}: ${problem}.`);
    const directive = d as PlannedDirective;
    const key = `${directive.agentId}\u0000${directive.action}`;
    if (seen.has(key)) throw new MabeamError('VALIDATION_FAILED', `${source} planned "${directive.action}" for agent ${directive.agentId} twice for variable ${variable.id}; merge their parameters.`);
    seen.add(key);
    return { agentId: directive.agentId, action: directive.action, parameters: directive.parameters };
  });
}

function directiveProblem(d: unknown): string | undefined {
  if (typeof d !== 'object' || d === null) return 'not an object';
  const { agentId, action, parameters } = d as Record<string, unknown>;
  if (typeof agentId !== 'string' || agentId.length === 0) return 'no agentId';
  if (!isDirectiveAction(action)) return `action ${JSON.stringify(action)} is not one of ${directiveActions.join(', ')}`;
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) return 'parameters must be an object';
  try {
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(parameters)), parameters)) return 'parameters must be plain JSON';
  } catch (error) {
    return `parameters are not JSON: ${describeError(error)}`;
  }
  return undefined;
}

/** The Directive event for a planned directive of a variable version. */
export function directiveEvent(planned: PlannedDirective, variable: Pick<VariableRecord, 'id' | 'version'>, producerId: string, eventTime?: number): Directive {
  return {
    envelope: newEnvelope('Directive', producerId, {
      correlationId: variable.id,
      eventId: directiveEventId(variable.id, variable.version, planned.agentId, planned.action),
      ...(eventTime !== undefined ? { eventTime } : {}),
    }),
    agentId: planned.agentId,
    action: planned.action,
    parameters: JSON.stringify(planned.parameters),
    roundId: null,
    variableId: variable.id,
  };
}

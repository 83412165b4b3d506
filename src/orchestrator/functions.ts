/**
 * Named coordination and adaptation functions. A variable definition is data
 * (it travels in the log), so it names its functions; the code behind a name
 * is registered here, in every process that coordinates or adapts, the way
 * protocols are registered with `registerProtocol`.
 *
 * Rules:
 * - A coordination function turns a variable's current record into the
 *   directives agents should get: `(variable, { agents }) => PlannedDirective[]`.
 *   `agents` is what the agent registry knows (capabilities, role, state).
 *   A definition without a coordination function gets its type's default
 *   strategy (strategies.ts).
 * - An adaptation function proposes a new value from performance samples:
 *   `(variable, metrics) => { value, reason } | undefined` (undefined: leave
 *   the variable as it is). It must be pure — no clock, no random draw, no
 *   I/O — because its only input is what is in the log: the same record and
 *   samples give the same answer on replay. The orchestrator records which
 *   samples it saw in the change's trigger.
 * - Names are 1–100 letters, digits and `. _ : -`, unique per registry and
 *   per kind (a coordination and an adaptation function may share a name).
 * - `registerCoordination` / `registerAdaptation` add to the process-wide
 *   registry (`sharedFunctions()`) unless given another one; the
 *   orchestrator uses the shared one unless given another one.
 */
import { MabeamError } from '../errors.ts';
import type { LifecycleState, MetricSample } from '../events/types.ts';
import type { Value } from '../variables/model.ts';
import type { VariableRecord } from '../variables/types.ts';
import type { DirectiveAction } from './actions.ts';

/** What a coordination function knows about an agent (from the agent registry). */
export interface AgentInfo {
  agentId: string;
  capabilities: string[];
  role?: string;
  /** Its latest lifecycle state, when the registry has one. */
  state?: LifecycleState;
}

export interface CoordinationContext {
  agents: AgentInfo[];
}

/** A directive a function wants sent; the orchestrator writes it as a Directive event. */
export interface PlannedDirective {
  agentId: string;
  action: DirectiveAction;
  /** JSON-serialisable; written as the Directive's `parameters`. */
  parameters: Record<string, unknown>;
}

export type CoordinationFunction = (variable: VariableRecord, context: CoordinationContext) => PlannedDirective[];

/** A new value an adaptation function proposes, and why. */
export interface Adaptation {
  value: Value;
  reason: string;
}

export type AdaptationFunction = (variable: VariableRecord, metrics: MetricSample[]) => Adaptation | undefined;

const namePattern = /^[A-Za-z0-9._:-]{1,100}$/;

export class FunctionRegistry {
  private readonly coordinations = new Map<string, CoordinationFunction>();
  private readonly adaptations = new Map<string, AdaptationFunction>();

  registerCoordination(name: string, fn: CoordinationFunction): this {
    add(this.coordinations, 'coordination', name, fn);
    return this;
  }

  registerAdaptation(name: string, fn: AdaptationFunction): this {
    add(this.adaptations, 'adaptation', name, fn);
    return this;
  }

  coordination(name: string): CoordinationFunction | undefined {
    return this.coordinations.get(name);
  }

  adaptation(name: string): AdaptationFunction | undefined {
    return this.adaptations.get(name);
  }

  names(): { coordination: string[]; adaptation: string[] } {
    return { coordination: [...this.coordinations.keys()].sort(), adaptation: [...this.adaptations.keys()].sort() };
  }
}

function add<F>(map: Map<string, F>, kind: string, name: string, fn: F): void {
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw new MabeamError('INVALID_OPTIONS', `A ${kind} function name is 1 to 100 letters, digits, ".", "_", ":" or "-", not ${JSON.stringify(name)}.`);
  }
  if (typeof fn !== 'function') throw new MabeamError('INVALID_OPTIONS', `The ${kind} function "${name}" must be a function.`);
  if (map.has(name)) throw new MabeamError('INVALID_OPTIONS', `A ${kind} function named "${name}" is already registered.`);
  map.set(name, fn);
}

const shared = new FunctionRegistry();

/** The process-wide registry the orchestrator uses by default. */
export function sharedFunctions(): FunctionRegistry {
  return shared;
}

/** Registers a coordination function (in the process-wide registry unless one is given). */
export function registerCoordination(name: string, fn: CoordinationFunction, registry: FunctionRegistry = shared): void {
  registry.registerCoordination(name, fn);
}

/** Registers an adaptation function (in the process-wide registry unless one is given). */
export function registerAdaptation(name: string, fn: AdaptationFunction, registry: FunctionRegistry = shared): void {
  registry.registerAdaptation(name, fn);
}

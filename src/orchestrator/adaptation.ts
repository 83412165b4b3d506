/**
 * Which variable changes a batch of performance samples calls for. Pure: the
 * same records and samples always plan the same changes.
 *
 * Rules:
 * - Only variables whose definition names an adaptation function adapt.
 * - Samples relevant to a variable: a sample labelled `variable` belongs to
 *   the variable of that id only; a sample without that label is a
 *   system-wide measurement and goes to every adapting variable. Samples
 *   keep their log order.
 * - A variable without relevant samples is not asked.
 * - The function's answer `{ value, reason }` becomes a change only when the
 *   value differs from the current one (deep equality); `undefined` means
 *   "leave it". A change is a compare-and-set on the version the function
 *   saw, so a decision taken from a value someone has since changed is
 *   refused (STALE_VERSION) rather than applied over theirs.
 * - The change's trigger records the function, its reason and every sample
 *   it was given (event id, name, value): what the decision came from is in
 *   the log with it.
 * - A function name nobody registered, a function that throws, or an answer
 *   without a reason is a problem reported for that variable; the others
 *   still adapt.
 */
import { isDeepStrictEqual } from 'node:util';
import { describeError } from '../errors.ts';
import type { MetricSample } from '../events/types.ts';
import type { Value } from '../variables/model.ts';
import type { VariableRecord } from '../variables/types.ts';
import type { FunctionRegistry } from './functions.ts';

/** The label that ties a sample to one variable. */
export const variableLabel = 'variable';

/** What a change caused by adaptation carries as its trigger. */
export interface AdaptationTrigger {
  function: string;
  reason: string;
  metrics: Array<{ eventId: string; name: string; value: number }>;
}

export interface PlannedChange {
  variableId: string;
  /** The version the function saw: the change is a compare-and-set on it. */
  expectedVersion: number;
  value: Value;
  trigger: AdaptationTrigger;
}

export interface AdaptationProblem {
  variableId: string;
  reason: string;
}

/** The samples an adaptation function of this variable is given. */
export function relevantSamples(variableId: string, samples: readonly MetricSample[]): MetricSample[] {
  return samples.filter((s) => {
    const label = s.labels[variableLabel];
    return label === undefined || label === variableId;
  });
}

export function planAdaptations(
  variables: readonly VariableRecord[],
  samples: readonly MetricSample[],
  functions: FunctionRegistry,
): { changes: PlannedChange[]; problems: AdaptationProblem[] } {
  const changes: PlannedChange[] = [];
  const problems: AdaptationProblem[] = [];
  for (const variable of variables) {
    const name = variable.definition.adaptation;
    if (name === undefined) continue;
    const relevant = relevantSamples(variable.id, samples);
    if (relevant.length === 0) continue;
    const fn = functions.adaptation(name);
    if (!fn) {
      problems.push({ variableId: variable.id, reason: `the adaptation function "${name}" is not registered` });
      continue;
    }
    let answer: ReturnType<typeof fn>;
    try {
      answer = fn(variable, relevant);
    } catch (error) {
      problems.push({ variableId: variable.id, reason: `the adaptation function "${name}" failed: ${describeError(error)}` });
      continue;
    }
    if (answer === undefined || answer === null) continue;
    if (typeof answer !== 'object' || !('value' in answer) || typeof answer.reason !== 'string') {
      problems.push({ variableId: variable.id, reason: `the adaptation function "${name}" must return { value, reason } or undefined` });
      continue;
    }
    if (isDeepStrictEqual(answer.value, variable.value)) continue;
    changes.push({
      variableId: variable.id,
      expectedVersion: variable.version,
      value: answer.value,
      trigger: {
        function: name,
        reason: answer.reason,
        metrics: relevant.map((s) => ({ eventId: s.envelope.eventId, name: s.name, value: s.value })),
      },
    });
  }
  return { changes, problems };
}

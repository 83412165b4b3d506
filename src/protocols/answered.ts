import type { RoundAnswer } from './types.ts';

/**
 * Who has answered, in time linear in a round's size. A round naming
 * thousands of bidders is asked "is it complete?" after every answer; a
 * scan of every name against every answer made that cubic (a round of
 * 10,000 named bidders never finished counting).
 *
 * The sets are kept per array: a round's list of names never changes once
 * it is open (a new stage brings a new list), and its counted answers only
 * grow, through `countAnswer`, until a new stage starts a new array.
 */
const nameSets = new WeakMap<readonly string[], ReadonlySet<string>>();
const answerers = new WeakMap<readonly RoundAnswer[], Set<string>>();

/** The distinct names of a list (a round's eligible agents). */
export function nameSet(names: readonly string[]): ReadonlySet<string> {
  let set = nameSets.get(names);
  if (!set) nameSets.set(names, (set = new Set(names)));
  return set;
}

/** The agents among a list of answers. */
export function answeredBy(counted: readonly RoundAnswer[]): ReadonlySet<string> {
  return answerersOf(counted);
}

/** Appends an answer to a round's counted answers, keeping who answered in step. */
export function countAnswer(counted: RoundAnswer[], answer: RoundAnswer): void {
  const agents = answerersOf(counted);
  counted.push(answer);
  agents.add(answer.agentId);
}

/** Every one of the names (at least one) is among the answers' agents. */
export function allAnswered(names: readonly string[], counted: readonly RoundAnswer[]): boolean {
  if (names.length === 0) return false;
  const wanted = nameSet(names);
  if (counted.length < wanted.size) return false;
  const agents = answerersOf(counted);
  for (const id of wanted) if (!agents.has(id)) return false;
  return true;
}

function answerersOf(counted: readonly RoundAnswer[]): Set<string> {
  let agents = answerers.get(counted);
  // Built again from the array when it was not counted through countAnswer (restored, made by a protocol, changed in place).
  if (!agents || agents.size !== counted.length) answerers.set(counted, (agents = new Set(counted.map((a) => a.agentId))));
  return agents;
}

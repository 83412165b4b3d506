import { type OperatorFunction, concatMap, defer, from } from 'rxjs';
import { applyRoundEvent, emptyRounds, type Rounds } from './roundsInternals.ts';
import type { Protocol, RoundDecision, RoundEvent } from './types.ts';

/**
 * The coordinator's join as an operator: requests, answers and closes of
 * many rounds (in log order) in, rejections, closings and outcomes out.
 * `lookup` resolves protocol names (a ProtocolRegistry's `get`). Each
 * subscription holds its own rounds (from `seed`, empty by default).
 */
export function coordinate(lookup: (name: string) => Protocol | undefined, seed: () => Rounds = emptyRounds): OperatorFunction<RoundEvent, RoundDecision> {
  return (events) =>
    defer(() => {
      const rounds = seed();
      return events.pipe(concatMap((event) => from(applyRoundEvent(rounds, event, lookup))));
    });
}

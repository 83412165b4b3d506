/** The pruner that never prunes: every trial runs to its end. Valid for any number of objectives. */
import type { Pruner } from './types.ts';
import { CONTINUE } from './types.ts';
import { checkReport } from './internals.ts';

export type NoneConfig = Record<string, never>;
export type NoneState = null;

export const nonePruner: Pruner<NoneConfig, NoneState> = {
  name: 'none',
  init: () => null,
  start: (state) => state,
  report(state, report) {
    checkReport(report);
    return { state, decision: CONTINUE };
  },
  complete: (state) => state,
};

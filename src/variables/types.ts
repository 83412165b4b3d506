import type { Observable } from 'rxjs';
import type { Value, VariableDefinition } from './model.ts';

/** A variable as the `variables` topic holds it: its definition, its value and which write set it. */
export interface VariableRecord {
  id: string;
  definition: VariableDefinition;
  value: Value;
  /** 1 for the definition's initial value, +1 per change. */
  version: number;
  /** Event time of the write that set it. */
  eventTime: number;
  /** Who asked for the write (the requester), for the last-write-wins tie-break. */
  writerId: string;
}

/**
 * Which of two records of one variable is the newer: the higher version,
 * then the later event time, then the greater writer id. Every reader
 * applies this one rule, so all of them converge on the same value whatever
 * order they read the records in.
 */
export function newer(a: VariableRecord, b: VariableRecord): VariableRecord {
  if (a.version !== b.version) return a.version > b.version ? a : b;
  if (a.eventTime !== b.eventTime) return a.eventTime > b.eventTime ? a : b;
  return a.writerId >= b.writerId ? a : b;
}

/** Why a change was refused (VariableChangeRejected.reasonCode). */
export const variableRejectionCodes = [
  'UNKNOWN_VARIABLE',
  'WRONG_TYPE',
  'OUT_OF_RANGE',
  'STALE_VERSION',
  'INVALID_DEFINITION',
  /** Defined already with this very definition: a define request the client takes as success. */
  'ALREADY_DEFINED',
  'DEFINITION_CONFLICT',
  'CONSENSUS_REFUSED',
  'INVALID_REQUEST',
] as const;
export type VariableRejectionCode = (typeof variableRejectionCodes)[number];

export interface ChangeOptions {
  /** Compare-and-set: apply only if the variable is at this version. */
  expectedVersion?: number;
  /** Why (define, set, consensus, adaptation, coordination, …); default "set". */
  cause?: string;
  /** What led to it, as a JSON-able value (a round and its outcome, the metrics of an adaptation). */
  trigger?: unknown;
  /** How long to wait for the owners' answer (default 10 s). */
  timeoutMs?: number;
}

/** What a process uses to read and change variables (see VariablesClient). */
export interface VariableAccess {
  /** Defines a variable (idempotent for the same definition); resolves with its record. */
  define(definition: VariableDefinition): Promise<VariableRecord>;
  /** Changes a value; resolves with the new record, or rejects with VARIABLE_REJECTED and the reason code in details.reasonCode. */
  set(id: string, value: Value, options?: ChangeOptions): Promise<VariableRecord>;
  /** The current record, or undefined for an unknown variable. */
  get(id: string): Promise<VariableRecord | undefined>;
  /** Every variable's current record. */
  all(): Promise<VariableRecord[]>;
  /** The current record (when there is one), then every change. */
  watch(id: string): Observable<VariableRecord>;
}

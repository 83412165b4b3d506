import type { DecodedEvent } from '../codec/codec.ts';
import type { Value, VariableDefinition } from './model.ts';
import type { VariableRecord } from './types.ts';

/** A VariableState event as a record (undefined for other events or a state without its definition). */
export function toRecord(decoded: DecodedEvent): VariableRecord | undefined {
  if (decoded.type !== 'VariableState') return undefined;
  const s = decoded.event;
  if (!s.definition) return undefined;
  return {
    id: s.variableId,
    definition: JSON.parse(s.definition) as VariableDefinition,
    value: JSON.parse(s.value) as Value,
    version: s.version,
    eventTime: s.envelope.eventTime,
    writerId: s.writerId,
  };
}

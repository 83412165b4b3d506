import type avro from 'avsc';

/**
 * Checks a decoded (or about to be encoded) event beyond what Avro types
 * say: the envelope is complete and names the right type, numbers are
 * finite, ids are not empty, JSON fields hold JSON. Returns the problems,
 * each with the path of the offending field; none means valid.
 */
export type Validator = (event: Record<string, unknown>) => string[];

const lifecycleStates = new Set(['registered', 'starting', 'running', 'stopping', 'stopped', 'failed', 'migrating']);

/** String fields that carry JSON (see the schemas' docs). */
const jsonFields = new Set(['value', 'previousValue', 'attemptedValue', 'item', 'parameters', 'attributes', 'details', 'subject', 'definition', 'trigger']);

/** The path of the field at `trail` (keys and indexes from the event), as problems name it. */
function pathOf(trail: ReadonlyArray<string | number>): string {
  return trail.reduce<string>((path, part) => (typeof part === 'number' ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
}

/** Walks every field; paths are only built for a problem (readers of whole logs validate millions of events). */
function walk(value: unknown, trail: Array<string | number>, problems: string[]): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) problems.push(`${pathOf(trail)}: ${value} is not a finite number`);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (v !== null && (typeof v === 'object' || typeof v === 'number')) {
        trail.push(i);
        walk(v, trail, problems);
        trail.pop();
      }
    }
    return;
  }
  if (Buffer.isBuffer(value)) return;
  const top = trail.length === 0;
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    if (typeof v === 'string') {
      if (k.endsWith('Id') && v.trim() === '') problems.push(`${pathOf([...trail, k])}: must not be empty`);
      if (top && jsonFields.has(k)) {
        try {
          JSON.parse(v);
        } catch {
          problems.push(`${pathOf([...trail, k])}: must be JSON`);
        }
      }
      continue;
    }
    if (v !== null && (typeof v === 'object' || typeof v === 'number')) {
      trail.push(k);
      walk(v, trail, problems);
      trail.pop();
    }
  }
}

function envelopeProblems(event: Record<string, unknown>, shortName: string): string[] {
  const envelope = event['envelope'] as Record<string, unknown> | undefined;
  if (!envelope || typeof envelope !== 'object') return ['envelope: missing'];
  const problems: string[] = [];
  if (envelope['eventType'] !== shortName) problems.push(`envelope.eventType: "${String(envelope['eventType'])}" does not match the record type ${shortName}`);
  if (typeof envelope['producerId'] !== 'string' || envelope['producerId'].trim() === '') problems.push('envelope.producerId: must not be empty');
  const time = envelope['eventTime'];
  if (typeof time !== 'number' || time <= 0) problems.push(`envelope.eventTime: ${String(time)} is not a positive timestamp`);
  return problems;
}

/** Rules specific to one event type, by short name. */
const typeRules: Record<string, Validator> = {
  Heartbeat: (e) =>
    (['sequence', 'intervalMs', 'memoryRssBytes', 'heapUsedBytes', 'consumerLag'] as const)
      .filter((k) => typeof e[k] === 'number' && (e[k] as number) < 0)
      .map((k) => `${k}: must not be negative`),
  LifecycleChanged: (e) => {
    const problems: string[] = [];
    if (!lifecycleStates.has(e['to'] as string)) problems.push(`to: "${String(e['to'])}" is not a lifecycle state (${[...lifecycleStates].join(', ')})`);
    if (e['from'] != null && !lifecycleStates.has(e['from'] as string)) problems.push(`from: "${String(e['from'])}" is not a lifecycle state`);
    return problems;
  },
  Vote: (e) => (typeof e['weight'] === 'number' && e['weight'] < 0 ? ['weight: must not be negative'] : []),
  Proposal: (e) => {
    const q = e['quorum'];
    return typeof q === 'number' && (q <= 0 || q > 1) ? [`quorum: ${q} is not a fraction in (0, 1]`] : [];
  },
  VariableState: (e) => (typeof e['version'] === 'number' && e['version'] < 0 ? ['version: must not be negative'] : []),
};

export function validateEvent(event: object, shortName: string): string[] {
  const fields = event as Record<string, unknown>;
  const problems = envelopeProblems(fields, shortName);
  walk(fields, [], problems);
  problems.push(...(typeRules[shortName]?.(fields) ?? []));
  return problems;
}

/** Avro-level problems (wrong type, missing field) with their paths, via avsc's error hook. */
export function avroProblems(type: avro.Type, value: unknown): string[] {
  const problems: string[] = [];
  type.isValid(value, {
    errorHook: (path: string[], v: unknown, t: avro.Type) => {
      problems.push(`${path.join('.') || '(root)'}: ${JSON.stringify(v) ?? String(v)} is not a valid ${t.typeName}`);
    },
  });
  return problems;
}

import type { RoundOutcome } from '../events/types.ts';
import type { Outcome } from '../protocols/types.ts';

/** What an outcome decided, as compared: `details` parsed from the recorded JSON. */
export interface OutcomeSummary {
  status: RoundOutcome['status'];
  winners: string[];
  price: number | null;
  value: string | null;
  details: unknown;
}

/** One field two outcomes disagree on: `status`, `winners`, `price`, `value` or `details.<path>`. */
export interface Difference {
  field: string;
  recorded: unknown;
  replayed: unknown;
}

export function summary(o: RoundOutcome | Outcome): OutcomeSummary {
  let details: unknown = o.details;
  if (typeof o.details === 'string') {
    try {
      details = JSON.parse(o.details);
    } catch {
      // not JSON: compared as the text it is
    }
  }
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details: details ?? {} };
}

/** JSON with object keys sorted, so equal outcomes compare equal whatever order their details were built in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function sameOutcome(a: OutcomeSummary, b: OutcomeSummary): boolean {
  return a.status === b.status && a.price === b.price && a.value === b.value && equal(a.winners, b.winners) && equal(a.details ?? {}, b.details ?? {});
}

/** Deep equality of JSON values, object keys in any order (what canonical() compares, without building text). */
export function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equal(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** The fields (and, inside details, the paths) where two outcomes differ, in a stable order. */
export function differences(recorded: OutcomeSummary, replayed: OutcomeSummary): Difference[] {
  const found: Difference[] = [];
  for (const field of ['status', 'winners', 'price', 'value'] as const) {
    if (canonical(recorded[field]) !== canonical(replayed[field])) found.push({ field, recorded: recorded[field], replayed: replayed[field] });
  }
  diffValues('details', recorded.details, replayed.details, found);
  return found;
}

function diffValues(path: string, a: unknown, b: unknown, found: Difference[]): void {
  if (isObject(a) && isObject(b)) {
    for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) diffValues(`${path}.${key}`, a[key], b[key], found);
    return;
  }
  if (canonical(a) !== canonical(b)) found.push({ field: path, recorded: a, replayed: b });
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

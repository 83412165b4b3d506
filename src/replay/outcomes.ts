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
  return canonical(pick(a)) === canonical(pick(b));
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

function pick(o: OutcomeSummary): OutcomeSummary {
  return { status: o.status, winners: o.winners, price: o.price, value: o.value, details: o.details ?? {} };
}

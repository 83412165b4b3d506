/** Bookkeeping the built-in pruners share: report checks and immutable sorted lists. */
import { MabeamError } from '../../errors.ts';
import type { TrialReport } from './types.ts';

export function checkReport(report: TrialReport): void {
  if (typeof report.trialId !== 'string' || report.trialId.length === 0) {
    throw new MabeamError('INVALID_OPTIONS', `A trial report needs a trialId (a non-empty string), not ${JSON.stringify(report.trialId)}.`);
  }
  if (!Number.isInteger(report.step) || report.step < 0) {
    throw new MabeamError('INVALID_OPTIONS', `Trial ${report.trialId} reported step ${report.step}; a step is a whole number ≥ 0.`);
  }
  if (typeof report.value !== 'number') {
    throw new MabeamError('INVALID_OPTIONS', `Trial ${report.trialId} reported ${JSON.stringify(report.value)} at step ${report.step}; a value is a number (NaN is allowed and prunes).`);
  }
}

/** A copy of an ascending list with `value` inserted (after equal values). */
export function insertSorted(list: readonly number[], value: number): number[] {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  const out = list.slice();
  out.splice(lo, 0, value);
  return out;
}

/** A copy of an ascending list with one occurrence of `value` removed (unchanged if absent). */
export function removeSorted(list: readonly number[], value: number): readonly number[] {
  const i = Number.isNaN(value) ? list.findIndex((v) => Number.isNaN(v)) : list.indexOf(value);
  if (i < 0) return list;
  const out = list.slice();
  out.splice(i, 1);
  return out;
}

/** The median of an ascending, non-empty list (the mean of the two middle values when even). */
export function medianOfSorted(list: readonly number[]): number {
  const mid = list.length >> 1;
  return list.length % 2 === 1 ? list[mid]! : (list[mid - 1]! + list[mid]!) / 2;
}

export function withEntry<K, V>(map: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const out = new Map(map);
  out.set(key, value);
  return out;
}

export function withoutEntry<K, V>(map: ReadonlyMap<K, V>, key: K): ReadonlyMap<K, V> {
  if (!map.has(key)) return map;
  const out = new Map(map);
  out.delete(key);
  return out;
}

export function withMember<T>(set: ReadonlySet<T>, member: T): ReadonlySet<T> {
  const out = new Set(set);
  out.add(member);
  return out;
}

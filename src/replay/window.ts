import { MabeamError } from '../errors.ts';
import type { OffsetBound } from './replayRounds.ts';

/** A `--since` / `--until` value: a point in log time (ms), or offsets of the round partitions. */
export type Bound = { time: number } | { offsets: OffsetBound };

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Reads a window bound the way a user writes one:
 * - a time: an ISO date (`2026-12-01T10:00:00Z`), epoch milliseconds (`1764583200000`),
 *   or an age (`30m`, `2h`, `7d`: that long before `now`);
 * - offsets of the partitions requests are on: `offset:1200` (every partition)
 *   or `3:1200,4:900` (partition:offset pairs).
 */
export function parseBound(text: string, now = Date.now()): Bound {
  const value = text.trim();
  const all = /^offset:(\d+)$/.exec(value);
  if (all) return { offsets: { all: Number(all[1]) } };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(value)) {
    return { offsets: { partitions: new Map(value.split(',').map((pair) => pair.split(':').map(Number) as [number, number])) } };
  }
  const age = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value);
  if (age) return { time: now - Number(age[1]) * units[age[2]!]! };
  if (/^\d{10,}$/.test(value)) return { time: Number(value) };
  const parsed = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(parsed)) return { time: parsed };
  throw new MabeamError('INVALID_OPTIONS', `"${text}" is neither a time (an ISO date, epoch ms, or an age such as 30m / 2h / 7d) nor offsets (offset:N, or partition:offset pairs such as 3:1200,4:900).`);
}

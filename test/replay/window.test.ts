import { describe, expect, it } from 'vitest';
import { differences } from '../../src/replay/outcomes.ts';
import { selected } from '../../src/replay/replayRounds.ts';
import type { RecordedRound } from '../../src/replay/roundHistory.ts';
import { parseBound } from '../../src/replay/window.ts';

describe('replay windows', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');

  it('reads times, ages and offsets as a user writes them', () => {
    expect(parseBound('2026-12-01T10:00:00Z', now)).toEqual({ time: Date.parse('2026-12-01T10:00:00Z') });
    expect(parseBound('1764583200000', now)).toEqual({ time: 1764583200000 });
    expect(parseBound('30m', now)).toEqual({ time: now - 30 * 60_000 });
    expect(parseBound('2h', now)).toEqual({ time: now - 2 * 3_600_000 });
    expect(parseBound('7d', now)).toEqual({ time: now - 7 * 86_400_000 });
    expect(parseBound('offset:1200', now)).toEqual({ offsets: { all: 1200 } });
    expect(parseBound('3:1200,4:900', now)).toEqual({ offsets: { partitions: new Map([[3, 1200], [4, 900]]) } });
  });

  it('refuses what is neither, saying what it takes', () => {
    for (const bad of ['yesterday', '12', '3:', 'offset:-1', '2026-13-45']) expect(() => parseBound(bad, now), bad).toThrow(/is neither a time .* nor offsets/);
  });

  it('selects rounds by the position and time of their request; a round without a request passes no window', () => {
    const round = (partition: number, offset: number, timestamp: number): RecordedRound => ({ roundId: `r-${partition}-${offset}`, stages: new Map(), outcomes: [], answers: new Map(), opened: { topic: 't', partition, offset, timestamp } });
    const a = round(3, 100, now - 1_000);
    const b = round(4, 50, now + 1_000);
    expect([a, b].filter((r) => selected(r, { since: now }))).toEqual([b]);
    expect([a, b].filter((r) => selected(r, { until: now }))).toEqual([a]);
    expect([a, b].filter((r) => selected(r, { sinceOffset: { all: 60 } }))).toEqual([a]);
    expect([a, b].filter((r) => selected(r, { sinceOffset: { partitions: new Map([[4, 10]]) } }))).toEqual([a, b]);
    expect([a, b].filter((r) => selected(r, { untilOffset: { partitions: new Map([[3, 100]]), all: 1_000 } }))).toEqual([b]);
    const orphan: RecordedRound = { roundId: 'orphan', stages: new Map(), outcomes: [], answers: new Map() };
    expect(selected(orphan, {})).toBe(true);
    expect(selected(orphan, { since: 0 })).toBe(false);
  });

  it('names each field where two outcomes differ, inside details too', () => {
    const base = { status: 'decided' as const, winners: ['a'], price: 9, value: null, details: { bids: [{ agentId: 'a', amount: 9 }], note: 'x' } };
    expect(differences(base, { ...base, details: { bids: [{ agentId: 'a', amount: 9 }], note: 'x' } })).toEqual([]);
    expect(differences(base, { ...base, price: 7, details: { ...base.details, note: 'y', extra: 1 } })).toEqual([
      { field: 'price', recorded: 9, replayed: 7 },
      { field: 'details.extra', recorded: undefined, replayed: 1 },
      { field: 'details.note', recorded: 'x', replayed: 'y' },
    ]);
  });
});

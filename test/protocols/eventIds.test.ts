import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PackedEventIds, packEventIds } from '../../src/protocols/eventIds.ts';

describe('packed event ids', () => {
  it('hold exactly the ids added, canonical UUIDs and any other id alike, in the order they came', () => {
    const uuids = Array.from({ length: 60 }, () => randomUUID());
    const others = ['bid-a', uuids[0]!.toUpperCase(), '00000000-0000-0000-0000-000000000000x', ''];
    const mixed = [uuids[0]!, others[0]!, ...uuids.slice(1, 30), others[1]!, others[2]!, ...uuids.slice(30), others[3]!];
    const ids = new PackedEventIds(mixed);
    expect([...ids]).toEqual(mixed);
    expect(ids.size).toBe(mixed.length);
    for (const id of mixed) expect(ids.has(id)).toBe(true);
    // Exact: the upper-case spelling of a held UUID is another id, and a UUID of zeros is not a slot left for another id.
    expect(ids.has(uuids[1]!.toUpperCase())).toBe(false);
    expect(ids.has('00000000-0000-0000-0000-000000000000')).toBe(false);
    expect(ids.has(randomUUID())).toBe(false);
    expect(ids.has('bid-b')).toBe(false);
  });

  it('grow by what is added, once each', () => {
    const ids = packEventIds(new Set(['bid-a']));
    const late = randomUUID();
    ids.add(late);
    ids.add(late);
    ids.add('bid-a');
    ids.add('bid-late');
    expect([...ids]).toEqual(['bid-a', late, 'bid-late']);
    for (let i = 0; i < 100; i++) ids.add(randomUUID());
    expect(ids.size).toBe(103);
    expect(ids.has(late)).toBe(true);
    expect(packEventIds(ids)).toBe(ids);
  });
});

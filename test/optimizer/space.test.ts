import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { Random, deriveSeed } from '../../src/optimizer/random.ts';
import { checkParams, decodeParam, defineSpace, encodeParam, repairTeam, sampleParam, sampleSpace, type AgentSetParam, type ParamSpec } from '../../src/optimizer/space.ts';

function refusal(input: unknown): string {
  try {
    defineSpace(input);
  } catch (error) {
    expect(isMabeamError(error, 'VALIDATION_FAILED')).toBe(true);
    return (error as Error).message;
  }
  throw new Error('the space was accepted');
}

describe('defineSpace', () => {
  it('fills in defaults and sorts parameters by name', () => {
    const space = defineSpace({ z: { type: 'int', low: 1, high: 5 }, a: { type: 'agentSet', candidates: ['p', 'q', 'r'] }, m: { type: 'boolean' } });
    expect(Object.keys(space)).toEqual(['a', 'm', 'z']);
    expect(space['z']).toEqual({ type: 'int', low: 1, high: 5, step: 1 });
    expect(space['a']).toEqual({ type: 'agentSet', candidates: ['p', 'q', 'r'], minSize: 1, maxSize: 3 });
  });

  it.each([
    [{}, 'at least one parameter'],
    [{ x: { type: 'float', low: 2, high: 1 } }, 'x: low (2) must not exceed high (1)'],
    [{ x: { type: 'float', low: 0, high: 1, log: true } }, 'x: a log-scale parameter needs low > 0, not 0'],
    [{ x: { type: 'float', low: 1, high: 10, log: true, step: 1 } }, 'x: log and step cannot be combined'],
    [{ x: { type: 'float', low: 0, high: 1, step: 0.3 } }, 'x: high - low (1) must be a whole number of steps of 0.3'],
    [{ x: { type: 'int', low: 0.5, high: 3 } }, 'x.low'],
    [{ x: { type: 'float', low: 0, high: 1, scale: 'log' } }, 'scale'],
    [{ x: { type: 'choice', values: [] } }, 'x.values: must list at least one value'],
    [{ x: { type: 'choice', values: ['a', { b: 1, c: 2 }, { c: 2, b: 1 }] } }, 'x: the value {"b":1,"c":2} is listed twice'],
    [{ t: { type: 'agentSet', candidates: ['a', 'b', 'a'] } }, 't: candidates listed twice: a'],
    [{ t: { type: 'agentSet', candidates: ['a', 'b'], maxSize: 3 } }, 't: maxSize (3) exceeds the number of candidates (2)'],
    [{ t: { type: 'agentSet', candidates: ['a', 'b', 'c'], minSize: 3, maxSize: 2 } }, 't: minSize (3) must not exceed maxSize (2)'],
    [{ x: { type: 'simplex' } }, 'x.type'],
    [{ '9x': { type: 'boolean' } }, 'a parameter name must start with a letter'],
  ])('refuses %j saying what is wrong', (input, message) => {
    expect(refusal(input)).toContain(message);
  });

  it('lists every problem at once', () => {
    const message = refusal({ a: { type: 'float', low: 3, high: 1 }, b: { type: 'agentSet', candidates: ['x'], minSize: 2 } });
    expect(message).toContain('a: low (3)');
    expect(message).toContain('b: minSize (2)');
  });
});

describe('sampling', () => {
  const draws = (spec: ParamSpec, n = 2000, seed = 7) => {
    const rng = Random.fromSeed(seed);
    return Array.from({ length: n }, () => sampleParam(spec, rng));
  };

  it('keeps floats in bounds, log-uniform for a log parameter', () => {
    const xs = draws({ type: 'float', low: 1e-4, high: 1, log: true }) as number[];
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1e-4);
    expect(Math.max(...xs)).toBeLessThanOrEqual(1);
    // Log-uniform: about a quarter of the draws in each decade.
    const firstDecade = xs.filter((x) => x < 1e-3).length / xs.length;
    expect(firstDecade).toBeGreaterThan(0.2);
    expect(firstDecade).toBeLessThan(0.3);
  });

  it('keeps stepped floats on their grid and reaches both ends', () => {
    const xs = draws({ type: 'float', low: 0, high: 1, step: 0.1 }) as number[];
    const grid = Array.from({ length: 11 }, (_, k) => Number((k / 10).toFixed(1)));
    expect(new Set(xs)).toEqual(new Set(grid));
  });

  it('keeps ints whole, in bounds and on their step', () => {
    const xs = draws({ type: 'int', low: 2, high: 20, step: 3 }) as number[];
    expect(new Set(xs)).toEqual(new Set([2, 5, 8, 11, 14, 17, 20]));
    const logs = draws({ type: 'int', low: 1, high: 1000, log: true }) as number[];
    expect(logs.every((x) => Number.isInteger(x) && x >= 1 && x <= 1000)).toBe(true);
    expect(logs.filter((x) => x < 10).length / logs.length).toBeGreaterThan(0.2);
  });

  it('draws teams of every allowed size and no other', () => {
    const spec: AgentSetParam = { type: 'agentSet', candidates: ['a', 'b', 'c', 'd', 'e', 'f'], minSize: 2, maxSize: 4 };
    const teams = draws(spec) as string[][];
    expect(new Set(teams.map((t) => t.length))).toEqual(new Set([2, 3, 4]));
    for (const t of teams) expect(checkParams({ t: spec }, { t })).toBeUndefined();
    expect(new Set(teams.flat())).toEqual(new Set(spec.candidates));
  });

  it('repairs a team mask to the size bounds', () => {
    const spec: AgentSetParam = { type: 'agentSet', candidates: ['a', 'b', 'c', 'd', 'e'], minSize: 2, maxSize: 3 };
    const rng = Random.fromSeed(1);
    expect(repairTeam(spec, [1, 1, 1, 1, 1], rng).reduce((s, x) => s + x, 0)).toBe(3);
    expect(repairTeam(spec, [0, 0, 0, 0, 0], rng).reduce((s, x) => s + x, 0)).toBe(2);
    expect(repairTeam(spec, [0, 1, 0, 1, 0], rng)).toEqual([0, 1, 0, 1, 0]);
  });

  it('draws the same values from the same seed, whatever the key order of the space', () => {
    const a = defineSpace({ x: { type: 'float', low: 0, high: 1 }, c: { type: 'choice', values: ['u', 'v', 3, null] } });
    const b = defineSpace({ c: { type: 'choice', values: ['u', 'v', 3, null] }, x: { type: 'float', low: 0, high: 1 } });
    expect(sampleSpace(a, Random.fromSeed(42))).toEqual(sampleSpace(b, Random.fromSeed(42)));
    expect(sampleSpace(a, Random.fromSeed(42))).not.toEqual(sampleSpace(a, Random.fromSeed(43)));
  });
});

describe('encoding', () => {
  it('round-trips every kind of value', () => {
    const space = defineSpace({
      f: { type: 'float', low: 1e-3, high: 10, log: true },
      i: { type: 'int', low: 0, high: 9, step: 3 },
      c: { type: 'choice', values: ['a', { k: [1, 2] }, 7] },
      b: { type: 'boolean' },
      t: { type: 'agentSet', candidates: ['x', 'y', 'z'], maxSize: 2 },
    });
    const params = { f: 0.5, i: 6, c: { k: [1, 2] }, b: true, t: ['x', 'z'] };
    expect(checkParams(space, params)).toBeUndefined();
    expect(encodeParam(space['f']!, 0.5)).toEqual([Math.log(0.5)]);
    expect(encodeParam(space['c']!, { k: [1, 2] })).toEqual([1]);
    expect(encodeParam(space['t']!, ['x', 'z'])).toEqual([1, 0, 1]);
    for (const [name, value] of Object.entries(params)) {
      const decoded = decodeParam(space[name]!, encodeParam(space[name]!, value));
      if (typeof value === 'number') expect(decoded).toBeCloseTo(value, 12);
      else expect(decoded).toEqual(value);
    }
  });

  it('snaps and clamps decoded numbers to the grid', () => {
    expect(decodeParam({ type: 'int', low: 0, high: 9, step: 3 }, [7.4])).toBe(6);
    expect(decodeParam({ type: 'int', low: 0, high: 9, step: 3 }, [42])).toBe(9);
    expect(decodeParam({ type: 'float', low: 0, high: 1, step: 0.1 }, [0.34])).toBe(0.3);
    expect(decodeParam({ type: 'float', low: 0, high: 1 }, [-3])).toBe(0);
  });

  it('says why values do not fit', () => {
    const space = defineSpace({ x: { type: 'float', low: 0, high: 1 }, t: { type: 'agentSet', candidates: ['a', 'b', 'c'], maxSize: 2 } });
    expect(checkParams(space, { x: 2, t: ['a'] })).toBe('x: 2 is outside [0, 1]');
    expect(checkParams(space, { x: 0.5, t: ['a', 'b', 'c'] })).toBe('t: has 3 members, not between 1 and 2');
    expect(checkParams(space, { x: 0.5, t: ['a', 'q'], y: 1 })).toBe('t: names agents that are not candidates: q; y: not a parameter of the space');
    expect(checkParams(space, { t: ['a'] })).toBe('x: missing');
  });
});

describe('Random', () => {
  it('rebuilt from its state draws what the original draws next', () => {
    const a = Random.fromSeed(123);
    a.float();
    a.normal();
    const b = Random.fromState(JSON.parse(JSON.stringify(a.state())) as number[]);
    expect([a.float(), a.int(0, 100), a.normal(), a.shuffle([1, 2, 3, 4, 5])]).toEqual([b.float(), b.int(0, 100), b.normal(), b.shuffle([1, 2, 3, 4, 5])]);
  });

  it('draws normals with the right mean and spread', () => {
    const rng = Random.fromSeed(5);
    const xs = Array.from({ length: 20000 }, () => rng.normal(3, 2));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(mean).toBeCloseTo(3, 1);
    expect(sd).toBeCloseTo(2, 1);
  });

  it('derives distinct per-proposal seeds', () => {
    const seeds = new Set(Array.from({ length: 1000 }, (_, k) => deriveSeed(42, k)));
    expect(seeds.size).toBe(1000);
    expect(deriveSeed(42, 0)).not.toBe(deriveSeed(43, 0));
  });
});

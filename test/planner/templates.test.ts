import { describe, expect, it } from 'vitest';
import { isMabeamError } from '../../src/errors.ts';
import { parsePlan } from '../../src/planner/plan.ts';
import { Templates, mapReduce } from '../../src/planner/templates.ts';

/** The code and message a goal the map-reduce template refuses gets. */
function refusal(goal: Record<string, unknown>): { code: string | false; message: string } {
  try {
    mapReduce.plan(goal);
  } catch (error) {
    return { code: isMabeamError(error) && error.code, message: (error as Error).message };
  }
  throw new Error('the goal was accepted');
}

describe('the map-reduce template', () => {
  it('makes one step per item and a reduce step over their results', () => {
    const plan = parsePlan(mapReduce.plan({ items: ['x', 'y'], map: 'map', reduce: 'join' }));
    expect(plan.steps.map((s) => s.id)).toEqual(['map-0', 'map-1', 'reduce']);
  });

  it('refuses a goal without items, without map, or with a bad reduce with VALIDATION_FAILED', () => {
    expect(refusal({ items: [], map: 'map' })).toEqual({ code: 'VALIDATION_FAILED', message: 'a map-reduce goal needs items: a non-empty array' });
    expect(refusal({ map: 'map' })).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('items') });
    expect(refusal({ items: [1] })).toEqual({ code: 'VALIDATION_FAILED', message: 'a map-reduce goal needs map: the capability of its map steps' });
    expect(refusal({ items: [1], map: 'map', reduce: '' })).toEqual({ code: 'VALIDATION_FAILED', message: 'reduce, when given, is the capability of the reduce step' });
  });

  it('is built in, and a template without a type or plan is refused with INVALID_OPTIONS', () => {
    expect(new Templates().types()).toEqual(['map-reduce']);
    expect(() => new Templates([{ type: '', plan: () => ({}) }])).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
  });
});

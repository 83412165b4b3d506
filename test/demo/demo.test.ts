import { describe, expect, inject, it } from 'vitest';
import { connect } from '../../src/cli/connect.ts';
import { runDemo } from '../../src/demo/demo.ts';
import { createLogger } from '../../src/log/logger.ts';
import { uniqueName } from '../helpers.ts';

describe('the demo (the README\'s main job)', () => {
  it('runs end to end on the real services, twice on the same topics', async () => {
    const c = await connect(inject('stack'), createLogger({ level: 'error' }), 'demo-test');
    try {
      const prefix = uniqueName('demo');
      const lines: string[] = [];
      const first = await runDemo(c, { prefix, say: (l) => lines.push(l) });
      expect(first.bids).toEqual([
        { agentId: 'planner-b', amount: 42 },
        { agentId: 'planner-a', amount: 31.5 },
        { agentId: 'coder-c', amount: 27.25 },
      ]);
      expect(first.deadLetter.reasonCode).toBe('BAD_MAGIC_BYTE');
      expect(first.deadLetter.originalBytes).toBeGreaterThan(0);
      expect(first.agentsFromRedis).toEqual(['coder-c', 'planner-a', 'planner-b']);
      expect(first.outcome).toMatchObject({ winners: ['planner-b'], price: 42 });
      expect(first.variablesFromRedis).toEqual({ 'demo.temperature': 0.7, 'demo.team-size': 3 });
      expect(first.refusedChange).toMatch(/demo\.team-size 99 is over the maximum 10\. \[OUT_OF_RANGE\]/);
      expect(lines[0]).toBe(`topics under "${prefix}": 20 created, 0 updated, 0 unchanged (40 settings capped for a one-broker cluster)`);

      const again: string[] = [];
      const second = await runDemo(c, { prefix, say: (l) => again.push(l) });
      expect(second.roundId).not.toBe(first.roundId);
      expect(again[0]).toMatch(/0 created, 0 updated, 20 unchanged/);
      expect(second.bids).toEqual(first.bids);
    } finally {
      await c.close();
    }
  });
});

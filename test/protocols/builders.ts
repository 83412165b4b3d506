import { TestScheduler } from 'rxjs/testing';
import { expect } from 'vitest';
import type { RoundAnswer, RoundClose, RoundOpen } from '../../src/protocols/types.ts';

export const open = (over: Partial<RoundOpen> = {}): RoundOpen => ({
  type: 'open',
  roundId: 'r1',
  protocol: 'first-price',
  kind: 'auction',
  eventId: 'req-r1',
  eventTime: 1_000,
  deadline: 9_000,
  eligible: [],
  reservePrice: null,
  options: [],
  weights: {},
  quorum: null,
  parameters: {},
  stage: 0,
  earlierStages: [],
  ...over,
});

export const bid = (agentId: string, amount: number, over: Partial<RoundAnswer> = {}): RoundAnswer => ({
  type: 'answer',
  roundId: 'r1',
  kind: 'bid',
  agentId,
  eventId: `bid-${agentId}`,
  eventTime: 2_000,
  amount,
  ...over,
});

export const vote = (agentId: string, choice: string, over: Partial<RoundAnswer> = {}): RoundAnswer => ({
  type: 'answer',
  roundId: 'r1',
  kind: 'vote',
  agentId,
  eventId: `vote-${agentId}`,
  eventTime: 2_000,
  choice,
  ...over,
});

export const close = (cause: RoundClose['cause'] = 'deadline', roundId = 'r1'): RoundClose => ({ type: 'close', roundId, cause, eventId: `close-${roundId}` });

export const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

export const closed = (cause: string, counted: string[], protocol = 'first-price', roundId = 'r1', stage = 0, final = true) => ({ type: 'closed', roundId, protocol, cause, counted, stage, final });

export const rejectedAs = (reasonCode: string, eventId: string, agentId: string | null = null, roundId = 'r1') => ({
  type: 'rejected',
  roundId,
  eventId,
  agentId,
  reasonCode,
  reason: expect.any(String),
});

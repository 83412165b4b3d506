import { describe, expect, it } from 'vitest';
import { validateEvent } from '../../src/codec/validation.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, LifecycleChanged, Proposal } from '../../src/events/types.ts';

const bid = (over: Partial<Bid> = {}): Bid => ({
  envelope: newEnvelope('Bid', 'agent-1', { correlationId: 'r1' }),
  roundId: 'r1',
  agentId: 'agent-1',
  amount: 10,
  bundle: [],
  attributes: '{}',
  ...over,
});

describe('event validation', () => {
  it('accepts a complete event', () => {
    expect(validateEvent(bid() as never, 'Bid')).toEqual([]);
  });

  it('refuses non-finite numbers, empty ids and non-JSON JSON fields, naming the field', () => {
    expect(validateEvent(bid({ amount: Number.NaN }) as never, 'Bid')).toEqual(['amount: NaN is not a finite number']);
    expect(validateEvent(bid({ amount: Number.POSITIVE_INFINITY }) as never, 'Bid')).toEqual(['amount: Infinity is not a finite number']);
    expect(validateEvent(bid({ roundId: ' ' }) as never, 'Bid')).toEqual(['roundId: must not be empty']);
    expect(validateEvent(bid({ attributes: '{oops' }) as never, 'Bid')).toEqual(['attributes: must be JSON']);
  });

  it('checks the envelope: type name, producer and time', () => {
    const wrong = bid({ envelope: { ...newEnvelope('Vote', ''), eventTime: 0 } });
    expect(validateEvent(wrong as never, 'Bid')).toEqual([
      'envelope.eventType: "Vote" does not match the record type Bid',
      'envelope.producerId: must not be empty',
      'envelope.eventTime: 0 is not a positive timestamp',
      'envelope.producerId: must not be empty',
    ]);
  });

  it('applies the rules of one event type', () => {
    const lifecycle: LifecycleChanged = {
      envelope: newEnvelope('LifecycleChanged', 'sup'),
      agentId: 'a',
      instanceId: null,
      from: null,
      to: 'flying' as never,
      reason: 'x',
      host: null,
    };
    expect(validateEvent(lifecycle as never, 'LifecycleChanged')).toEqual([
      'to: "flying" is not a lifecycle state (registered, starting, running, stopping, stopped, failed, migrating)',
    ]);
    const proposal: Proposal = {
      envelope: newEnvelope('Proposal', 'c'),
      roundId: 'r',
      protocol: 'quorum',
      subject: '{}',
      options: [],
      eligibleVoters: ['a'],
      weights: {},
      quorum: 1.5,
      deadline: 1,
      parameters: '{}',
    };
    expect(validateEvent(proposal as never, 'Proposal')).toEqual(['quorum: 1.5 is not a fraction in (0, 1]']);
  });
});

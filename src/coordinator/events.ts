import type { DecodedEvent } from '../codec/codec.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { BidRequest, Directive, Envelope, Proposal, Rejection, RoundClosed, RoundOutcome } from '../events/types.ts';
import type { RoundDecision, RoundEvent, RoundOpen } from '../protocols/types.ts';
import { isSignatureRefusalCode } from '../security/verify.ts';

function jsonObject(json: string | null): Record<string, unknown> {
  if (!json) return {};
  const value = JSON.parse(json) as unknown;
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

const replyTo = (causationId: string | null) => (causationId ? { inReplyTo: causationId } : {});

/** A decoded event as a round event, or undefined for events the join does not take. */
export function toRoundEvent(decoded: DecodedEvent): RoundEvent | undefined {
  switch (decoded.type) {
    case 'BidRequest': {
      const r = decoded.event;
      return {
        type: 'open', roundId: r.roundId, protocol: r.protocol, kind: 'auction', eventId: r.envelope.eventId, eventTime: r.envelope.eventTime,
        deadline: r.deadline, eligible: r.eligibleAgents, reservePrice: r.reservePrice, options: [], weights: {}, quorum: null, parameters: jsonObject(r.parameters),
        stage: r.stage ?? 0, earlierStages: r.earlierStages ?? [], subject: r.item, requiredCapabilities: r.requiredCapabilities,
      };
    }
    case 'Proposal': {
      const p = decoded.event;
      return {
        type: 'open', roundId: p.roundId, protocol: p.protocol, kind: 'consensus', eventId: p.envelope.eventId, eventTime: p.envelope.eventTime,
        deadline: p.deadline, eligible: p.eligibleVoters, reservePrice: null, options: p.options, weights: p.weights, quorum: p.quorum, parameters: jsonObject(p.parameters),
        stage: p.stage ?? 0, earlierStages: p.earlierStages ?? [], subject: p.subject,
      };
    }
    case 'Bid': {
      const b = decoded.event;
      return { type: 'answer', roundId: b.roundId, kind: 'bid', agentId: b.agentId, eventId: b.envelope.eventId, eventTime: b.envelope.eventTime, amount: b.amount, bundle: b.bundle,
        ...(b.attributes ? { attributes: jsonObject(b.attributes) } : {}), ...replyTo(b.envelope.causationId) };
    }
    case 'Vote': {
      const v = decoded.event;
      return { type: 'answer', roundId: v.roundId, kind: 'vote', agentId: v.agentId, eventId: v.envelope.eventId, eventTime: v.envelope.eventTime, choice: v.choice,
        ...(v.weight !== null ? { weight: v.weight } : {}), ...replyTo(v.envelope.causationId) };
    }
    case 'RoundClosed': {
      const c = decoded.event;
      return c.cause === 'complete' ? undefined : { type: 'close', roundId: c.roundId, cause: c.cause, eventId: c.envelope.eventId, stage: c.stage ?? 0 };
    }
    default:
      return undefined;
  }
}

export type Output =
  | { topic: 'outcomes'; key: string; type: 'Rejection'; event: Rejection }
  | { topic: 'outcomes'; key: string; type: 'RoundClosed'; event: RoundClosed }
  | { topic: 'outcomes'; key: string; type: 'RoundOutcome'; event: RoundOutcome }
  | { topic: 'directives'; key: string; type: 'Directive'; event: Directive }
  | { topic: 'bid-requests'; key: string; type: 'BidRequest'; event: BidRequest }
  | { topic: 'proposals'; key: string; type: 'Proposal'; event: Proposal };

/**
 * The events a decision is written as. Ids derive from the round and the
 * decision, so a decision made twice (by a second coordinator after a
 * failover) is recognisable as the same one.
 */
export function toOutputs(decision: RoundDecision, producerId: string, causationId: string): Output[] {
  const envelope = (type: 'Rejection' | 'RoundClosed' | 'RoundOutcome' | 'Directive' | 'BidRequest' | 'Proposal', ...parts: string[]) =>
    newEnvelope(type, producerId, { correlationId: decision.roundId, causationId, eventId: deterministicEventId(type, decision.roundId, ...parts) });
  switch (decision.type) {
    case 'rejected':
      return [{ topic: 'outcomes', key: decision.roundId, type: 'Rejection', event: {
        // A refusal of a second record with an event id already handled has an id of its own.
        // So has a refusal for a signature: a forger may reuse the event id of an honest answer.
        envelope: decision.reasonCode === 'DUPLICATE_EVENT' || isSignatureRefusalCode(decision.reasonCode) ? envelope('Rejection', decision.eventId, decision.reasonCode) : envelope('Rejection', decision.eventId),
        subjectId: decision.roundId, rejectedEventId: decision.eventId, rejectedEventType: null,
        agentId: decision.agentId, reasonCode: decision.reasonCode, reason: decision.reason,
      } }];
    case 'closed':
      return [{ topic: 'outcomes', key: decision.roundId, type: 'RoundClosed', event: {
        // Each stage of an iterative round closes once: the stage is part of the id.
        envelope: decision.stage === 0 ? envelope('RoundClosed') : envelope('RoundClosed', String(decision.stage)),
        roundId: decision.roundId, protocol: decision.protocol, cause: decision.cause, countedEventIds: decision.counted, stage: decision.stage, final: decision.final,
      } }];
    case 'stage': {
      // The next stage of an iterative round: a request like the first, with the round's id and the protocol's state.
      const o = decision.open;
      // Its id and time are the stage's own (stageEventId, the log time the stage began).
      const env = { ...newEnvelope(o.kind === 'auction' ? 'BidRequest' : 'Proposal', producerId, { correlationId: o.roundId, causationId, eventId: o.eventId }), eventTime: o.eventTime };
      return [requestOutput(o, env)];
    }
    case 'outcome': {
      const outcome: Output = { topic: 'outcomes', key: decision.roundId, type: 'RoundOutcome', event: {
        envelope: envelope('RoundOutcome'), roundId: decision.roundId, protocol: decision.protocol, status: decision.status, winners: decision.winners,
        price: decision.price, value: decision.value, reason: decision.reason, details: JSON.stringify(decision.details), subject: decision.subject ?? null, kind: decision.kind ?? null, eligible: decision.eligible ?? [],
      } };
      // An auction's winners are told so, in the same transaction as the outcome.
      const awards: Output[] = decision.status === 'decided' && decision.winners.length > 0 && decision.price !== null
        ? decision.winners.map((agentId) => ({ topic: 'directives', key: agentId, type: 'Directive', event: {
            envelope: envelope('Directive', agentId), agentId, action: 'award', parameters: JSON.stringify({ roundId: decision.roundId, price: decision.price }),
            roundId: decision.roundId, variableId: null,
          } }))
        : [];
      return [outcome, ...awards];
    }
  }
}

/** A round's request (a stage's, or the opening one) as the event it is written as: a BidRequest for an auction, a Proposal for a consensus. */
export function requestOutput(o: RoundOpen, envelope: Envelope): Extract<Output, { type: 'BidRequest' | 'Proposal' }> {
  const common = { roundId: o.roundId, protocol: o.protocol, deadline: o.deadline, parameters: JSON.stringify(o.parameters), stage: o.stage, earlierStages: o.earlierStages };
  return o.kind === 'auction'
    ? { topic: 'bid-requests', key: o.roundId, type: 'BidRequest', event: {
        envelope, ...common, item: o.subject ?? 'null', requiredCapabilities: o.requiredCapabilities ?? [], eligibleAgents: o.eligible, reservePrice: o.reservePrice,
      } }
    : { topic: 'proposals', key: o.roundId, type: 'Proposal', event: {
        envelope, ...common, subject: o.subject ?? 'null', options: o.options, eligibleVoters: o.eligible, weights: o.weights, quorum: o.quorum,
      } };
}

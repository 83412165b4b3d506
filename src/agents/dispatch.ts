import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { Bid, BidRequest, Directive, HandlerFailed, Vote } from '../events/types.ts';
import { stepItemOf, type StepItem } from '../planner/stepRounds.ts';
import { addressedTo, eligibleForBidRequest, eligibleForProposal, eligibleForStep } from './eligibility.ts';
import type { Outgoing } from './outbox.ts';
import type { BidAnswer, HostedAgent, Step } from './types.ts';

/**
 * Turns one consumed event into handler calls and what they answer, with no
 * Kafka in it: a bid request goes to every eligible agent (the auction of a
 * plan's step, to agents that run steps: they bid their step cost or pass,
 * answered for them), a proposal to
 * every eligible voter, a directive to the agent it names. Whatever a
 * handler does — throws anything, answers something that is not a valid
 * Bid or Vote, answers something the broker will not take — becomes a
 * HandlerFailed event for that agent, and the others are still asked.
 * Nothing a handler does escapes as an exception.
 */

export interface DispatchContext {
  codec: Pick<EventCodec, 'check'>;
  instanceId: string;
  topic: (name: string) => string;
  /** How many steps an agent is running or has bid on and not yet heard of: its load, the base of its default bid in a step's auction (0 when not given). */
  stepsRunning?: (agentId: string) => number;
  /** Told of each default bid in a step's auction, so that it counts in the agent's load until the step is assigned or the auction's deadline passes. */
  bidOnStep?: (agentId: string, item: StepItem, deadline: number) => void;
}

/** A directive the host carries out itself (for all its agents): stop, or hand over. */
export interface HostAction {
  action: 'stop' | 'migrate';
  reason: string;
  directive: Directive;
}

export interface Dispatched {
  out: Outgoing[];
  hostAction?: HostAction;
}

/** HandlerFailed.error is for people: a handler's message longer than this is cut. */
export const maxHandlerErrorLength = 2_000;

/**
 * Whether an agent takes the messages it is given: whenever the consumer
 * hands any out. While starting (joined, state already restored), running,
 * stopping or handing over, every message delivered is committed once it is
 * dispatched, so it must be handled; what the consumer never hands out stays
 * uncommitted for the next instance.
 */
export function handling(agent: HostedAgent): boolean {
  return agent.lifecycle === 'starting' || agent.lifecycle === 'running' || agent.lifecycle === 'stopping' || agent.lifecycle === 'migrating';
}

export async function dispatch(decoded: DecodedEvent, agents: ReadonlyMap<string, HostedAgent>, context: DispatchContext): Promise<Dispatched> {
  const out: Outgoing[] = [];
  if (decoded.type === 'BidRequest') {
    const request = decoded.event;
    const step = stepItemOf(request);
    for (const agent of agents.values()) {
      if (!handling(agent)) continue;
      // A step's auction is answered for an agent that runs steps, never by its onBidRequest.
      if (step && agent.definition.onStep) {
        if (!eligibleForStep(agent.definition, request, step)) continue;
        await sandboxed(agent, 'stepCost', request.roundId, request.envelope.eventId, context, out, async () => bidOf(agent, request, await stepBid(agent, step, request, context), context));
        continue;
      }
      if (!eligibleForBidRequest(agent.definition, request)) continue;
      await sandboxed(agent, 'onBidRequest', request.roundId, request.envelope.eventId, context, out, async () => {
        const answer = await agent.definition.onBidRequest!(request, agent.context);
        return answer ? bidOf(agent, request, answer, context) : undefined;
      });
    }
  } else if (decoded.type === 'Proposal') {
    const proposal = decoded.event;
    for (const agent of agents.values()) {
      if (!handling(agent) || !eligibleForProposal(agent.definition, proposal)) continue;
      await sandboxed(agent, 'onProposal', proposal.roundId, proposal.envelope.eventId, context, out, async () => {
        const answer = await agent.definition.onProposal!(proposal, agent.context);
        if (!answer) return undefined;
        const vote: Vote = {
          envelope: newEnvelope('Vote', agent.definition.id, {
            correlationId: proposal.roundId,
            causationId: proposal.envelope.eventId,
            eventId: deterministicEventId('vote', agent.definition.id, proposal.envelope.eventId),
          }),
          roundId: proposal.roundId,
          agentId: agent.definition.id,
          choice: answer.choice,
          weight: answer.weight ?? null,
          reason: answer.reason ?? null,
        };
        context.codec.check('Vote', vote);
        return { topic: context.topic('votes'), key: proposal.roundId, type: 'Vote', event: vote };
      });
    }
  } else if (decoded.type === 'Directive') {
    const directive = decoded.event;
    const agent = agents.get(directive.agentId);
    if (agent && handling(agent)) {
      if ((directive.action === 'migrate' || directive.action === 'stop') && agent.lifecycle === 'running') {
        return { out, hostAction: { action: directive.action, reason: `${directive.action} directive ${directive.envelope.eventId}`, directive } };
      }
      if (addressedTo(agent.definition, directive)) {
        await sandboxed(agent, 'onDirective', directive.envelope.eventId, directive.envelope.eventId, context, out, async () => {
          await agent.definition.onDirective!(directive, agent.context);
          return undefined;
        });
      }
    }
  }
  return { out };
}

/** An agent's Bid, checked: a nonsense answer is the agent's failure. */
function bidOf(agent: HostedAgent, request: BidRequest, answer: BidAnswer, context: DispatchContext): Outgoing {
  const bid: Bid = {
    envelope: newEnvelope('Bid', agent.definition.id, {
      correlationId: request.roundId,
      causationId: request.envelope.eventId,
      eventId: deterministicEventId('bid', agent.definition.id, request.envelope.eventId),
    }),
    roundId: request.roundId,
    agentId: agent.definition.id,
    amount: answer.amount,
    bundle: answer.bundle ?? [],
    attributes: answer.attributes === undefined ? null : JSON.stringify(answer.attributes),
  };
  context.codec.check('Bid', bid);
  return { topic: context.topic('bids'), key: request.roundId, type: 'Bid', event: bid };
}

/**
 * What an agent that runs steps answers a step's auction: its cost
 * (stepCost), or a pass. Without a stepCost the cost is its load — the steps
 * it runs and those it has bid on and not yet heard of, so the auctions of
 * steps ready at the same moment do not all go to one agent — plus a part
 * below 0.5 drawn from the agent and round ids, so agents equally loaded
 * split those steps evenly instead of the lowest id taking every one.
 */
async function stepBid(agent: HostedAgent, item: StepItem, request: BidRequest, context: DispatchContext): Promise<BidAnswer> {
  const { stepCost } = agent.definition;
  const step: Step = { planId: item.planId, stepId: item.stepId, attempt: item.attempt, capability: item.capability, escalated: item.escalated, inputs: item.inputs };
  let cost: unknown;
  if (stepCost) cost = await stepCost(step, agent.context);
  else {
    cost = (context.stepsRunning?.(agent.definition.id) ?? 0) + tieBreak(agent.definition.id, request.roundId);
    context.bidOnStep?.(agent.definition.id, item, request.deadline);
  }
  if (cost === undefined || cost === null) return { amount: 0, attributes: { pass: true } };
  if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
    throw new TypeError(`stepCost must answer a finite cost >= 0, or undefined to pass, not ${typeof cost === 'number' ? cost : JSON.stringify(cost) ?? typeof cost}`);
  }
  return { amount: cost };
}

/** A number in [0, 0.5) from an agent and a round (FNV-1a): the same for both every time. */
export function tieBreak(agentId: string, roundId: string): number {
  let h = 0x811c9dc5;
  for (const ch of `${agentId}\u0000${roundId}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 10_000) / 20_000;
}

/**
 * Runs one handler, once the agent's previous one has returned: its answer
 * goes out (or, if the broker refuses it, its failure); a throw becomes its
 * failure.
 */
async function sandboxed(
  agent: HostedAgent,
  handler: HandlerFailed['handler'],
  subjectId: string,
  causeEventId: string,
  context: DispatchContext,
  out: Outgoing[],
  run: () => Promise<Outgoing | undefined>,
): Promise<void> {
  const failure = (error: string): Outgoing => handlerFailed(agent, handler, subjectId, causeEventId, context, error);
  // A host dispatches several partitions' messages at once; an agent still sees them one at a time.
  while (agent.busy) await agent.busy;
  let done!: () => void;
  agent.busy = new Promise<void>((resolve) => (done = resolve));
  try {
    const answer = await run();
    if (answer) out.push({ ...answer, instead: (why) => failure(`its answer could not be written: ${why}`) });
  } catch (error) {
    const text = describeThrown(error);
    agent.context.logger.warn({ handler, subjectId, error: text }, 'handler failed');
    out.push(failure(text));
  } finally {
    agent.busy = undefined;
    done();
  }
}

function handlerFailed(agent: HostedAgent, handler: HandlerFailed['handler'], subjectId: string, causeEventId: string, context: DispatchContext, error: string): Outgoing {
  const failed: HandlerFailed = {
    envelope: newEnvelope('HandlerFailed', context.instanceId, {
      correlationId: agent.definition.id,
      causationId: causeEventId,
      eventId: deterministicEventId('handler-failed', agent.definition.id, causeEventId),
    }),
    agentId: agent.definition.id,
    instanceId: context.instanceId,
    handler,
    subjectId,
    causeEventId,
    error: error.length > maxHandlerErrorLength ? `${error.slice(0, maxHandlerErrorLength)}… (${error.length} characters)` : error,
  };
  return { topic: context.topic('lifecycle'), key: agent.definition.id, type: 'HandlerFailed', event: failed };
}

/** What a handler threw, as text, whatever it threw (an object without toString, an Error whose message getter throws). */
export function describeThrown(error: unknown): string {
  try {
    return String(describeError(error));
  } catch {
    return `the handler threw a ${typeof error} that cannot be described`;
  }
}

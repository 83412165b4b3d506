import type { Admin, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { requestOutput, toOutputs } from '../coordinator/events.ts';
import { MabeamError } from '../errors.ts';
import type { Bid, Vote } from '../events/types.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import type { RoundAnswer } from '../protocols/types.ts';
import { applyTopics } from '../topics/apply.ts';
import type { TopicDefinition } from '../topics/index.ts';
import { topicName } from '../topics/names.ts';
import type { CounterfactualDecision } from './counterfactual.ts';
import { roundTopics } from './readHistory.ts';

/** The producer id of what a counterfactual history writes. */
export const counterfactualProducerId = 'mabeam-replay';

export interface WriteCounterfactualOptions {
  admin: Admin;
  producer: Producer;
  codec: EventCodec;
  definitions: TopicDefinition[];
  /** The prefix read from: never written to. */
  sourcePrefix: string;
  /** The prefix written to. */
  prefix: string;
}

/**
 * Writes rounds decided under another rule as a history of their own under
 * another prefix: each round's request (naming the rule), the answers it
 * was given, and what a coordinator would have written for its decisions
 * (closing, refusals, outcome, award directives). `mabeam replay --prefix`
 * that prefix then replays them like any history. Returns the number of
 * records written.
 */
export async function writeCounterfactual(options: WriteCounterfactualOptions, decided: readonly CounterfactualDecision[]): Promise<number> {
  if (options.prefix === options.sourcePrefix) {
    throw new MabeamError('INVALID_OPTIONS', `--write-to must name another prefix than the one replayed (${options.sourcePrefix}): the recorded log is never written to.`);
  }
  const names = new Set<string>([...roundTopics, 'directives']);
  await applyTopics(options.admin, options.definitions.filter((d) => names.has(d.name)), { prefix: options.prefix });
  const byTopic = new Map<string, Array<{ key: string; value: Buffer; headers: Record<string, string> }>>();
  const add = async (topic: string, key: string, type: Parameters<EventCodec['encode']>[0], event: { envelope: { eventId: string } }) => {
    const list = byTopic.get(topic) ?? [];
    list.push({ key, value: await options.codec.encode(type, event), headers: { [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId } });
    byTopic.set(topic, list);
  };
  for (const d of decided) {
    const roundId = d.open.roundId;
    // The opening request, naming the rule (stage 0: the recorded request was).
    const request = requestOutput({ ...d.open, stage: 0, earlierStages: [] }, envelope(d.open.kind === 'auction' ? 'BidRequest' : 'Proposal', d.open.eventId, roundId, counterfactualProducerId, d.open.eventTime));
    await add(topicName(options.prefix, request.topic), roundId, request.type, request.event);
    for (const e of d.events) {
      if (e.type !== 'answer') continue;
      if (e.kind === 'bid') await add(topicName(options.prefix, 'bids'), roundId, 'Bid', bid(e));
      else await add(topicName(options.prefix, 'votes'), roundId, 'Vote', vote(e));
    }
    for (const decision of d.decisions) {
      for (const out of toOutputs(decision, counterfactualProducerId, d.open.eventId)) await add(topicName(options.prefix, out.topic), out.key, out.type, out.event);
    }
  }
  let written = 0;
  for (const [topic, messages] of byTopic) {
    for (let i = 0; i < messages.length; i += 2_000) {
      const chunk = messages.slice(i, i + 2_000);
      await options.producer.send({ topic, messages: chunk });
      written += chunk.length;
    }
  }
  return written;
}

const envelope = (type: string, eventId: string, roundId: string, producerId: string, eventTime: number, causationId: string | null = null) => ({ eventId, eventType: type, correlationId: roundId, causationId, producerId, eventTime });

function bid(a: RoundAnswer): Bid {
  return {
    envelope: envelope('Bid', a.eventId, a.roundId, a.agentId, a.eventTime, a.inReplyTo ?? null), roundId: a.roundId, agentId: a.agentId, amount: a.amount ?? 0, bundle: a.bundle ?? [],
    attributes: a.attributes ? JSON.stringify(a.attributes) : null,
  };
}

function vote(a: RoundAnswer): Vote {
  return { envelope: envelope('Vote', a.eventId, a.roundId, a.agentId, a.eventTime, a.inReplyTo ?? null), roundId: a.roundId, agentId: a.agentId, choice: a.choice ?? '', weight: a.weight ?? null, reason: null };
}

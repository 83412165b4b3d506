import { context } from '@opentelemetry/api';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { BidRequest, Proposal, RoundOutcome } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { EventProducer } from '../producer/eventProducer.ts';
import { traced } from '../tracing/trace.ts';
import { topicName, readerGroupId } from '../topics/names.ts';

export interface AuctionRequest {
  protocol?: string;
  item: unknown;
  /** Named bidders; empty or absent: anyone with the required capabilities. */
  bidders?: string[];
  requiredCapabilities?: string[];
  reservePrice?: number;
  /** How long bids are taken (default 10 s). */
  deadlineMs?: number;
  /** When bids stop being taken (epoch ms); instead of deadlineMs. */
  deadline?: number;
  parameters?: Record<string, unknown>;
  roundId?: string;
}

export interface ConsensusRequest {
  protocol?: string;
  subject: unknown;
  voters: string[];
  options?: string[];
  weights?: Record<string, number>;
  quorum?: number;
  /** How long votes are taken (default 10 s). */
  deadlineMs?: number;
  /** When votes stop being taken (epoch ms); instead of deadlineMs. */
  deadline?: number;
  parameters?: Record<string, unknown>;
  roundId?: string;
}

/** The BidRequest an auction request is produced as (`now` is its event time). */
export function bidRequestEvent(request: AuctionRequest & { roundId: string }, producerId: string, now = Date.now()): BidRequest {
  const { roundId } = request;
  return {
    envelope: newEnvelope('BidRequest', producerId, { correlationId: roundId, eventTime: now }),
    roundId,
    protocol: request.protocol ?? 'first-price',
    item: JSON.stringify(request.item ?? null),
    requiredCapabilities: request.requiredCapabilities ?? [],
    eligibleAgents: request.bidders ?? [],
    reservePrice: request.reservePrice ?? null,
    deadline: request.deadline ?? now + (request.deadlineMs ?? 10_000),
    parameters: request.parameters ? JSON.stringify(request.parameters) : null,
  };
}

/** The Proposal a consensus request is produced as (`now` is its event time). */
export function proposalEvent(request: ConsensusRequest & { roundId: string }, producerId: string, now = Date.now()): Proposal {
  const { roundId } = request;
  return {
    envelope: newEnvelope('Proposal', producerId, { correlationId: roundId, eventTime: now }),
    roundId,
    protocol: request.protocol ?? 'majority',
    subject: JSON.stringify(request.subject ?? null),
    options: request.options ?? [],
    eligibleVoters: request.voters,
    weights: request.weights ?? {},
    quorum: request.quorum ?? null,
    deadline: request.deadline ?? now + (request.deadlineMs ?? 10_000),
    parameters: request.parameters ? JSON.stringify(request.parameters) : null,
  };
}

export interface RoundClientOptions {
  kafka: Kafka;
  codec: EventCodec;
  producer: Producer;
  logger: Logger;
  prefix: string;
  clientId?: string;
}

/**
 * `await client.auction({...})` and `await client.consensus({...})`: thin
 * conveniences over the events. They produce the request, then resolve with
 * the round's RoundOutcome from the outcomes topic — or reject with the
 * coordinator's reason when it refuses the request itself.
 */
export class RoundClient {
  private readonly options: RoundClientOptions;
  private readonly events: EventProducer;
  private consumer: Consumer | undefined;
  private readonly waiting = new Map<string, { resolve: (o: RoundOutcome) => void; reject: (e: Error) => void; requestId: string }>();
  readonly clientId: string;

  constructor(options: RoundClientOptions) {
    this.options = options;
    this.events = new EventProducer(options.producer, options.codec);
    this.clientId = options.clientId ?? `client-${randomBytes(3).toString('hex')}`;
  }

  /** Starts reading outcomes; resolves once the reader is in place. */
  async start(): Promise<void> {
    const consumer = this.options.kafka.consumer({ groupId: readerGroupId(this.options.prefix, `round-client.${this.clientId}`), maxWaitTimeInMs: 100 });
    this.consumer = consumer;
    const ready = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: topicName(this.options.prefix, 'outcomes'), fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const type = message.headers?.['mabeam-event-type']?.toString();
        if (type !== 'RoundOutcome' && type !== 'Rejection') return;
        const key = message.key?.toString();
        if (!key || !this.waiting.has(key)) return;
        const decoded = await this.options.codec.decode(message.value);
        const waiter = this.waiting.get(key)!;
        if (decoded.type === 'RoundOutcome') {
          this.waiting.delete(key);
          waiter.resolve(decoded.event);
        } else if (decoded.type === 'Rejection' && decoded.event.rejectedEventId === waiter.requestId) {
          const r = decoded.event;
          this.waiting.delete(key);
          waiter.reject(new MabeamError('ROUND_REFUSED', `The coordinator refused round ${key}: ${r.reason} [${r.reasonCode}]`, { details: { reasonCode: r.reasonCode } }));
        }
      },
    });
    await ready;
  }

  async stop(): Promise<void> {
    for (const w of this.waiting.values()) w.reject(new MabeamError('STOPPED', 'The round client stopped before the outcome.'));
    this.waiting.clear();
    await this.consumer?.disconnect();
  }

  auction(request: AuctionRequest): Promise<RoundOutcome> {
    const event = bidRequestEvent({ ...request, roundId: request.roundId ?? `auction-${randomUUID()}` }, this.clientId);
    const topic = topicName(this.options.prefix, 'bid-requests');
    return this.run(event.roundId, event.envelope.eventId, () => this.traced(topic, event.roundId, (headers) => this.events.send(topic, event.roundId, 'BidRequest', event, { headers })));
  }

  consensus(request: ConsensusRequest): Promise<RoundOutcome> {
    const event = proposalEvent({ ...request, roundId: request.roundId ?? `consensus-${randomUUID()}` }, this.clientId);
    const topic = topicName(this.options.prefix, 'proposals');
    return this.run(event.roundId, event.envelope.eventId, () => this.traced(topic, event.roundId, (headers) => this.events.send(topic, event.roundId, 'Proposal', event, { headers })));
  }

  /** Writes a round's request in a span of its own: the round's trace starts here (in the caller's, when it has one). */
  private traced(topic: string, roundId: string, send: (headers: Record<string, string>) => Promise<unknown>): Promise<unknown> {
    return traced('send', topic, context.active(), { roundId, key: roundId }, (step) => send(step.headers));
  }

  private async run(roundId: string, requestId: string, send: () => Promise<unknown>): Promise<RoundOutcome> {
    if (!this.consumer) throw new MabeamError('INVALID_OPTIONS', 'Start the round client (await client.start()) before opening rounds.');
    const outcome = new Promise<RoundOutcome>((resolve, reject) => this.waiting.set(roundId, { resolve, reject, requestId }));
    try {
      await send();
    } catch (error) {
      this.waiting.delete(roundId);
      throw error;
    }
    return outcome;
  }
}

import { hostname } from 'node:os';
import type { IHeaders, Message, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { AgentRecord, EventTypeName, EventTypes, Heartbeat, LifecycleChanged, LifecycleState, MetricSample } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import type { AgentKey } from '../security/keys.ts';
import { signingHeaders } from '../security/signing.ts';
import type { AgentDefinition } from './types.ts';

/** Header naming the host instance that produced an event. */
export const instanceHeader = 'mabeam-instance';

/**
 * One event the host writes. `instead` says what to write when the broker
 * refuses this record for what it holds (too large, say): another event, given
 * why (an agent's answer becomes its HandlerFailed), or 'drop' (a measurement
 * an agent reported), logged. Without it a refusal is a fault of the host.
 */
export interface Outgoing {
  topic: string;
  key: string;
  type: EventTypeName;
  event: EventTypes[EventTypeName];
  instead?: ((why: string) => Outgoing) | 'drop';
  /** Signed by the agent's previous key instead of its current one (a registration vouching for a new key). */
  signedByPrevious?: boolean;
}

/** kafkajs error types by which a broker refuses a record for its content; sending it again cannot help. */
const refusedRecordTypes = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

/** Whether a producer error is the broker refusing a record (kafkajs wraps the protocol error in its retrier's). */
function refusesRecord(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { type, retriable } = e as { type?: unknown; retriable?: unknown };
    if (typeof type === 'string' && refusedRecordTypes.has(type) && retriable === false) return true;
  }
  return false;
}

/** Sends waiting for a batch on its way are written together, up to this many bytes of records (far below the broker's 1 MB default limit). */
const maxBatchBytes = 256 * 1024;

/** What one send() call waits for: its encoded events, written in the next batch. */
interface QueuedSend {
  encoded: Array<{ outgoing: Outgoing; message: Message }>;
  headers: IHeaders | undefined;
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** About what a record adds to a batch: its key, value and headers. */
function sizeOf(message: Message): number {
  let bytes = (message.value as Buffer | null)?.length ?? 0;
  bytes += typeof message.key === 'string' ? message.key.length : ((message.key as Buffer | null | undefined)?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers ?? {})) bytes += name.length + (typeof value === 'string' ? value.length : ((value as Buffer | undefined)?.length ?? 0));
  return bytes + 16;
}

export interface OutboxOptions {
  producer: Producer;
  codec: EventCodec;
  instanceId: string;
  topic: (name: string) => string;
  logger: Logger;
}

/** The keys an agent signs with: its current one, and the one it replaced (which vouches for it in its registration). */
export interface SigningKeys {
  current: AgentKey;
  previous?: AgentKey;
}

/** The agent an outgoing event speaks for: its agentId (a measurement's source). */
function speakerOf(e: Outgoing): string | undefined {
  const event = e.event as { agentId?: unknown; source?: unknown };
  const id = event.agentId ?? (e.type === 'MetricSample' ? event.source : undefined);
  return typeof id === 'string' ? id : undefined;
}

/**
 * The one path by which a host writes: lifecycle transitions, registrations,
 * heartbeats, snapshots, answers and failures, and the measurements agents
 * report (queued, and written with whatever goes out next). Every event
 * carries its type and id headers and the instance that wrote it; with
 * keys (useKeys), every event of a signing agent is signed by it over its
 * exact key and value bytes (src/security/signing.ts).
 */
export class Outbox {
  private readonly options: OutboxOptions;
  private readonly reports: Outgoing[] = [];
  private readonly queued: QueuedSend[] = [];
  private flushing = false;
  private keys: ReadonlyMap<string, SigningKeys> = new Map();

  constructor(options: OutboxOptions) {
    this.options = options;
  }

  private get instanceId(): string {
    return this.options.instanceId;
  }

  /** From now on, events of these agents are signed, and their registrations carry their public keys. */
  useKeys(keys: ReadonlyMap<string, SigningKeys>): void {
    this.keys = keys;
  }

  /** A measurement an agent reports (see AgentContext.report); an invalid one is refused here, where it is made. */
  report(agentId: string, name: string, value: number, labels: Record<string, string>): void {
    const sample: MetricSample = { envelope: newEnvelope('MetricSample', agentId, { correlationId: agentId }), name, value, labels, source: agentId };
    this.options.codec.check('MetricSample', sample);
    this.reports.push({ topic: this.options.topic('metrics'), key: agentId, type: 'MetricSample', event: sample, instead: 'drop' });
  }

  registration(definition: AgentDefinition<unknown>, consumerGroup: string, pool: string): Outgoing {
    const d = definition;
    const record: AgentRecord = {
      envelope: newEnvelope('AgentRecord', this.instanceId, { correlationId: d.id }),
      agentId: d.id,
      role: d.role,
      capabilities: [...d.capabilities],
      resources: { ...d.resources },
      consumerGroup,
      metadata: { ...d.metadata, pool },
    };
    const key = this.keys.get(d.id)?.current;
    if (key) Object.assign(record, { publicKey: key.publicKeyBase64, keyId: key.keyId, keyNotAfter: key.notAfter });
    return { topic: this.options.topic('agents'), key: d.id, type: 'AgentRecord', event: record };
  }

  /**
   * What registers an agent: its AgentRecord, signed by its key. After a
   * rotation the record is written twice, first signed by the key it
   * replaces (a registry that pinned the old key moves to the new one), then
   * by the new key itself (a registry that knows neither pins it on first use).
   */
  registrations(definition: AgentDefinition<unknown>, consumerGroup: string, pool: string): Outgoing[] {
    const registration = this.registration(definition, consumerGroup, pool);
    return this.keys.get(definition.id)?.previous ? [{ ...registration, signedByPrevious: true }, registration] : [registration];
  }

  lifecycle(agentId: string, from: LifecycleState | null, to: LifecycleState, reason: string): Outgoing {
    const event: LifecycleChanged = {
      envelope: newEnvelope('LifecycleChanged', this.instanceId, { correlationId: agentId }),
      agentId,
      instanceId: this.instanceId,
      from,
      to,
      reason,
      host: hostname(),
    };
    return { topic: this.options.topic('lifecycle'), key: agentId, type: 'LifecycleChanged', event };
  }

  heartbeat(agentId: string, sequence: number, intervalMs: number, consumerLag: number): Outgoing {
    const memory = process.memoryUsage();
    const event: Heartbeat = {
      envelope: newEnvelope('Heartbeat', this.instanceId, { correlationId: agentId }),
      agentId,
      instanceId: this.instanceId,
      host: hostname(),
      pid: process.pid,
      sequence,
      intervalMs,
      memoryRssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      consumerLag,
    };
    return { topic: this.options.topic('heartbeats'), key: agentId, type: 'Heartbeat', event };
  }

  /**
   * Writes `events` (and the measurements reported meanwhile) in one batch,
   * resolved once the broker has them. While a batch is on its way, what
   * other callers send waits and then goes out together in the next one
   * (up to maxBatchBytes): a host answering several requests at once makes
   * one produce request of their answers, not one each, and a lone send
   * waits for nothing. If the broker refuses a record for its content, the
   * events of each caller in that batch are written again one record at a
   * time, each refused one replaced by its `instead`: records the broker
   * had already taken are then written a second time, with the same event
   * ids — the at-least-once delivery every reader of these topics already
   * expects.
   */
  async send(events: readonly Outgoing[], headers?: IHeaders): Promise<void> {
    const all = this.reports.length > 0 ? [...events, ...this.reports.splice(0)] : [...events];
    if (all.length === 0) return;
    const encoded = await Promise.all(all.map(async (e) => ({ outgoing: e, message: await this.message(e, headers) })));
    const bytes = encoded.reduce((sum, { message }) => sum + sizeOf(message), 0);
    await new Promise<void>((resolve, reject) => {
      this.queued.push({ encoded, headers, bytes, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Writes what is queued, a batch at a time, until nothing is. */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queued.length > 0) {
        let take = 1;
        for (let bytes = this.queued[0]!.bytes; take < this.queued.length && bytes + this.queued[take]!.bytes <= maxBatchBytes; take++) bytes += this.queued[take]!.bytes;
        await this.write(this.queued.splice(0, take));
      }
    } finally {
      this.flushing = false;
    }
  }

  /** One produce request for the sends of `batch`; each is resolved or rejected with what became of it. */
  private async write(batch: QueuedSend[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const { encoded } of batch) {
      for (const { outgoing, message } of encoded) {
        const messages = byTopic.get(outgoing.topic);
        if (messages) messages.push(message);
        else byTopic.set(outgoing.topic, [message]);
      }
    }
    try {
      await this.options.producer.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
      for (const send of batch) send.resolve();
    } catch (error) {
      if (!refusesRecord(error)) {
        for (const send of batch) send.reject(error);
        return;
      }
      for (const send of batch) {
        try {
          for (const { outgoing, message } of send.encoded) await this.sendOne(outgoing, message, send.headers);
          send.resolve();
        } catch (oneError) {
          send.reject(oneError);
        }
      }
    }
  }

  private async sendOne(outgoing: Outgoing, message: Message, headers?: IHeaders): Promise<void> {
    try {
      await this.options.producer.send({ topic: outgoing.topic, messages: [message] });
    } catch (error) {
      if (!refusesRecord(error) || outgoing.instead === undefined) throw error;
      const why = `the broker refused ${outgoing.type} ${outgoing.event.envelope.eventId} (${message.value?.length ?? 0} bytes) on ${outgoing.topic}: ${describeError(error)}`;
      if (outgoing.instead === 'drop') {
        this.options.logger.error({ type: outgoing.type, eventId: outgoing.event.envelope.eventId }, `${why}; not written`);
        return;
      }
      const instead = outgoing.instead(why);
      this.options.logger.warn({ type: outgoing.type, eventId: outgoing.event.envelope.eventId, instead: instead.type }, why);
      await this.options.producer.send({ topic: instead.topic, messages: [await this.message(instead, headers)] });
    }
  }

  /** One event as a record; `extra` headers (the trace context of the step that wrote it) go with it. */
  private async message(e: Outgoing, extra?: IHeaders): Promise<Message> {
    const value = await this.options.codec.encode(e.type, e.event);
    const headers: IHeaders = { ...extra, [instanceHeader]: this.instanceId, [eventHeaders.type]: e.type, [eventHeaders.id]: e.event.envelope.eventId };
    const speaker = speakerOf(e);
    const keys = speaker === undefined ? undefined : this.keys.get(speaker);
    if (keys) {
      const signer = e.signedByPrevious && keys.previous ? keys.previous : keys.current;
      Object.assign(headers, signingHeaders(Buffer.from(e.key), value, signer));
    }
    return { key: e.key, value, headers };
  }
}

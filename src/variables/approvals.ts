import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { describeError, isMabeamError } from '../errors.ts';
import { isRetriable } from '../kafka/readToEnd.ts';
import type { RoundOutcome } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { TopicFollower } from '../readmodel/topicFollower.ts';
import { topicName } from '../topics/names.ts';

/** A round's outcome as the log has it, for a round about a variable change. */
export interface LoggedApproval {
  roundId: string;
  /** The protocol that decided, by name. */
  protocol: string;
  /** Its kind as the outcome states it (auction or consensus); null when the outcome does not say. */
  kind: string | null;
  /** Who could vote (the proposal's eligibleVoters); empty for an open round. */
  eligible: string[];
  status: RoundOutcome['status'];
  /** The decided value, as JSON ("\"yes\"" approves). */
  value: string | null;
  /** What the voters were asked: `{ variableId, value, version }`. */
  subject: { variableId: string; value: unknown; version: unknown };
  /** True when the log holds another, different outcome of the same round: such a round approves nothing. */
  contradicted?: boolean;
}

export interface ApprovalsOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
}

/**
 * The outcomes of consensus rounds about variable changes, read from the
 * `outcomes` topic (committed data only). An owner decides a change that
 * claims consensus from the round's outcome as the log has it, never from
 * what the request says about it. Only outcomes whose subject names a
 * variable are kept.
 */
export class Approvals {
  private readonly byRound = new Map<string, LoggedApproval>();
  private readonly follower: TopicFollower;

  constructor(options: ApprovalsOptions) {
    const topic = topicName(options.prefix, 'outcomes');
    this.follower = new TopicFollower({
      kafka: options.kafka,
      topic,
      groupPrefix: `${options.prefix}.approval-readers`,
      logger: options.logger,
      onMessage: async (message, partition) => {
        try {
          const decoded = await options.codec.decode<RoundOutcome>(message.value);
          if (decoded.type !== 'RoundOutcome') return;
          const approval = toApproval(decoded.event);
          if (!approval) return;
          // The first outcome of a round counts; a different later one makes the round contradicted.
          const first = this.byRound.get(approval.roundId);
          if (!first) this.byRound.set(approval.roundId, approval);
          else if (JSON.stringify({ ...first, contradicted: undefined }) !== JSON.stringify({ ...approval, contradicted: undefined })) first.contradicted = true;
        } catch (error) {
          // The registry unreachable: the follower reads the same record again, never past it.
          if (isRetriable(error)) throw error;
          // The coordinators write this topic and dead-letter nothing here; an undecodable record is said, with where it is.
          options.logger.warn({ topic, partition, offset: message.offset, code: isMabeamError(error) ? error.code : undefined, error: describeError(error) }, 'an undecodable round outcome');
        }
      },
    });
  }

  start(): Promise<void> {
    return this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  /**
   * The logged outcome of a round, or undefined when the log holds none. A
   * round not yet seen is looked for again after reading the topic to its
   * end: a client asks for the change only once it has the outcome, so a
   * real one is always there by then.
   */
  async of(roundId: string): Promise<LoggedApproval | undefined> {
    if (!this.byRound.has(roundId)) await this.follower.caughtUp();
    return this.byRound.get(roundId);
  }
}

function toApproval(outcome: RoundOutcome): LoggedApproval | undefined {
  if (!outcome.subject) return undefined;
  let subject: unknown;
  try {
    subject = JSON.parse(outcome.subject);
  } catch {
    return undefined;
  }
  if (!subject || typeof subject !== 'object' || typeof (subject as { variableId?: unknown }).variableId !== 'string') return undefined;
  return {
    roundId: outcome.roundId, protocol: outcome.protocol, kind: outcome.kind ?? null, eligible: outcome.eligible ?? [],
    status: outcome.status, value: outcome.value, subject: subject as LoggedApproval['subject'],
  };
}

/**
 * The round-state changelog: one RoundState record per round a transaction
 * changed (compacted topic, keyed by round id, on the round's partition),
 * written in the same transaction as the decisions and offsets, and a
 * tombstone when a closed round leaves the coordinator after its grace
 * period. A new owner restores a partition from it after fencing, so its
 * state matches the committed offsets exactly.
 */
import { newEnvelope } from '../events/envelope.ts';
import type { RoundState } from '../events/types.ts';
import type { Protocol, RoundAnswer, RoundOpen } from '../protocols/types.ts';
import type { Rounds } from '../protocols/roundsInternals.ts';
import { packEventIds } from '../protocols/eventIds.ts';

export interface RoundSnapshot {
  roundId: string;
  open: RoundOpen | null;
  protocol: string | null;
  counted: RoundAnswer[];
  pending: RoundAnswer[];
  closed: boolean;
  handled: string[];
  closedAt: number | null;
}

export function snapshotOf(rounds: Rounds, roundId: string, closedAt: number | undefined): RoundSnapshot {
  const round = rounds.byId.get(roundId);
  return {
    roundId,
    open: round?.open ?? null,
    protocol: round?.protocol.name ?? null,
    counted: round ? [...round.counted] : [],
    pending: [...(rounds.pending.get(roundId) ?? [])],
    closed: round?.closed ?? false,
    handled: round ? [...round.handled] : [],
    closedAt: closedAt ?? null,
  };
}

export function toRoundState(snapshot: RoundSnapshot, producerId: string): RoundState {
  return {
    envelope: newEnvelope('RoundState', producerId, { correlationId: snapshot.roundId }),
    roundId: snapshot.roundId,
    request: snapshot.open ? JSON.stringify(snapshot.open) : null,
    protocol: snapshot.protocol,
    counted: JSON.stringify(snapshot.counted),
    pending: JSON.stringify(snapshot.pending),
    closed: snapshot.closed,
    handled: snapshot.handled,
    closedAt: snapshot.closedAt,
  };
}

export function fromRoundState(state: RoundState): RoundSnapshot {
  const counted = JSON.parse(state.counted) as RoundAnswer[];
  return {
    roundId: state.roundId,
    open: state.request ? (JSON.parse(state.request) as RoundOpen) : null,
    protocol: state.protocol,
    counted,
    pending: JSON.parse(state.pending) as RoundAnswer[],
    closed: state.closed,
    // Records written before `handled` existed: the counted answers are what is known.
    handled: state.handled.length > 0 ? state.handled : counted.map((a) => a.eventId),
    closedAt: state.closedAt,
  };
}

/**
 * Puts a round's latest snapshot into an empty partition's rounds, exactly
 * as it was: nothing is decided on restore. A round whose protocol is no
 * longer registered is said and left out.
 */
export function install(rounds: Rounds, snapshot: RoundSnapshot, lookup: (name: string) => Protocol | undefined): 'open' | 'pending' | 'unknown-protocol' {
  if (!snapshot.open) {
    if (snapshot.pending.length > 0) rounds.pending.set(snapshot.roundId, [...snapshot.pending]);
    return 'pending';
  }
  const protocol = snapshot.protocol ? lookup(snapshot.protocol) : undefined;
  if (!protocol) return 'unknown-protocol';
  rounds.byId.set(snapshot.roundId, { open: snapshot.open, protocol, counted: [...snapshot.counted], closed: snapshot.closed, handled: snapshot.closed ? packEventIds(snapshot.handled) : new Set(snapshot.handled) });
  return 'open';
}

import { Subject } from 'rxjs';
import { coordinate } from '../protocols/coordinate.ts';
import { dropRound, emptyRounds, type Rounds } from '../protocols/roundsInternals.ts';
import type { Protocol, ProtocolKind, RoundDecision, RoundEvent } from '../protocols/types.ts';

/**
 * The rounds of one partition and the join that decides them: events go
 * into the `coordinate()` operator and its decisions come out, synchronously,
 * in order. Besides the rounds it keeps what the changelog needs: which
 * rounds changed since the last commit, the offset of each round's latest
 * changelog record, and when (log time) each round closed — a closed round
 * leaves after `graceMs` of log time, with a tombstone.
 */
export class RoundLane {
  readonly rounds: Rounds = emptyRounds();
  /** Rounds whose state goes to the changelog in the next transaction. */
  readonly dirty = new Set<string>();
  /** Rounds that left: a tombstone each in the next transaction. */
  readonly gone = new Set<string>();
  /** Offset of each live round's latest changelog record. */
  readonly stateOffsets = new Map<string, number>();
  /**
   * Log time at which each closed round closed, in that order (log time
   * never goes back on a lane, so the first entry is the oldest).
   */
  readonly closedAt = new Map<string, number>();
  /** The next offset of the changelog partition after what this lane wrote or read. */
  changelogEnd: number | undefined;
  /** The latest event time read on this partition: the lane's clock, from the log. */
  logTime = 0;
  /** Log time of the last tick (answers waiting too long are refused once per second of log time). */
  lastTick = 0;
  /** The latest event time read on each request topic (bid-requests, proposals), by protocol kind. */
  readonly requestsAt: Record<ProtocolKind, number> = { auction: 0, consensus: 0 };
  private readonly input = new Subject<RoundEvent>();
  private readonly decided: RoundDecision[] = [];

  constructor(lookup: (name: string) => Protocol | undefined) {
    // The operator's own state is this lane's rounds, so the changelog sees exactly what it decided from.
    this.input.pipe(coordinate(lookup, () => this.rounds)).subscribe((d) => this.decided.push(d));
  }

  /** Decides one event; a round it touches (or closes) is marked for the changelog. */
  apply(event: RoundEvent): RoundDecision[] {
    this.input.next(event);
    const out = this.decided.splice(0);
    if (event.type !== 'tick') this.dirty.add(event.roundId);
    for (const d of out) {
      this.dirty.add(d.roundId);
      if (d.type === 'outcome') this.closedAt.set(d.roundId, this.logTime);
    }
    return out;
  }

  /**
   * Moves the lane's clock to an event's time. A producer's clock may be
   * wrong or forged: the lane never runs more than `maxAheadMs` ahead of
   * this machine's clock, so a record dated a year ahead cannot make every
   * later round look closed for a year (and never leave).
   */
  advance(eventTime: number, maxAheadMs: number, request?: ProtocolKind): void {
    if (!Number.isFinite(eventTime)) return;
    const t = Math.min(eventTime, Date.now() + maxAheadMs);
    this.logTime = Math.max(this.logTime, t);
    if (request) this.requestsAt[request] = Math.max(this.requestsAt[request], t);
  }

  /** A tick is due once per second of log time while answers wait for their round. */
  tickDue(): boolean {
    if (this.rounds.pending.size === 0 || this.logTime - this.lastTick < 1_000) return false;
    this.lastTick = this.logTime;
    return true;
  }

  /** Log time moved on: rounds closed more than `graceMs` ago leave. */
  expire(graceMs: number): void {
    for (const [roundId, at] of this.closedAt) {
      if (at + graceMs >= this.logTime) break;
      this.closedAt.delete(roundId);
      dropRound(this.rounds, roundId);
      // Its tombstone goes out with the next transaction (which then forgets its changelog offset).
      this.gone.add(roundId);
    }
  }

  /** Where a new owner starts reading the changelog: the oldest latest record of a live round. */
  liveStart(): number | undefined {
    let min: number | undefined;
    for (const offset of this.stateOffsets.values()) if (min === undefined || offset < min) min = offset;
    return min ?? this.changelogEnd;
  }

  complete(): void {
    this.input.complete();
  }
}

import { uuidOfHex } from '../events/envelope.ts';

/**
 * The event ids a round has handled (taken or refused), so that none is
 * handled twice. While a round is open they are a plain Set: each answer is
 * checked in constant time, however large the round. Once the round closes
 * they are packed (`packEventIds`): a closed round is asked only about late
 * answers, where a scan is cheap, but it holds its ids for its whole grace
 * period. A canonical UUID (lower-case, dashed: the ids our agents and
 * clients give) takes 16 bytes there instead of about 70 as a string in a
 * Set; any other id is kept as it is. Membership is exact either way, and
 * the ids come back in the order they were added.
 */
export interface EventIds extends Iterable<string> {
  has(id: string): boolean;
  add(id: string): void;
  readonly size: number;
}

const canonicalUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The 16 bytes of a canonical UUID, and back. */
const uuidBytes = (id: string): Buffer => Buffer.from(id.replaceAll('-', ''), 'hex');
const uuidText = (bytes: Buffer, at: number): string => uuidOfHex(bytes.toString('hex', at, at + 16));

export class PackedEventIds implements EventIds {
  /** 16 bytes per slot; a slot that holds another id is left zero and its id is in `others`. */
  private bytes: Buffer;
  private slots = 0;
  private readonly others = new Map<number, string>();

  constructor(ids: Iterable<string> = []) {
    const unique = new Set(ids);
    this.bytes = Buffer.alloc(16 * unique.size);
    for (const id of unique) this.push(id);
  }

  get size(): number {
    return this.slots;
  }

  has(id: string): boolean {
    if (!canonicalUuid.test(id)) {
      for (const other of this.others.values()) if (other === id) return true;
      return false;
    }
    const wanted = uuidBytes(id);
    const mixed = this.others.size > 0;
    for (let slot = 0; slot < this.slots; slot++) {
      if (mixed && this.others.has(slot)) continue;
      if (this.bytes.compare(wanted, 0, 16, slot * 16, slot * 16 + 16) === 0) return true;
    }
    return false;
  }

  add(id: string): void {
    if (!this.has(id)) this.push(id);
  }

  /** Appends an id not yet held. */
  private push(id: string): void {
    if (16 * (this.slots + 1) > this.bytes.length) {
      const grown = Buffer.alloc(Math.max(16 * 4, this.bytes.length * 2));
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    if (canonicalUuid.test(id)) uuidBytes(id).copy(this.bytes, this.slots * 16);
    else this.others.set(this.slots, id);
    this.slots++;
  }

  *[Symbol.iterator](): Iterator<string> {
    for (let slot = 0; slot < this.slots; slot++) yield this.others.get(slot) ?? uuidText(this.bytes, slot * 16);
  }
}

/** A closed round's ids, packed (see the file's doc). */
export function packEventIds(ids: Iterable<string>): EventIds {
  return ids instanceof PackedEventIds ? ids : new PackedEventIds(ids);
}

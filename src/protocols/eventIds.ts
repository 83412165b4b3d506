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

/** The 16 bytes of a canonical UUID. */
function uuidBytes(id: string): Uint8Array {
  const hex = id.replaceAll('-', '');
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function uuidText(bytes: Uint8Array, at: number): string {
  let hex = '';
  for (let i = 0; i < 16; i++) hex += bytes[at + i]!.toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export class PackedEventIds implements EventIds {
  /** 16 bytes per slot; a slot that holds another id is left zero and its id is in `others`. */
  private bytes: Uint8Array;
  private slots = 0;
  private readonly others = new Map<number, string>();

  constructor(ids: Iterable<string> = []) {
    const unique = new Set(ids);
    this.bytes = new Uint8Array(16 * unique.size);
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
      // Most slots differ at their first byte: a scan costs about one comparison a slot.
      if (mixed && this.others.has(slot)) continue;
      const at = slot * 16;
      let same = true;
      for (let i = 0; i < 16 && same; i++) same = this.bytes[at + i] === wanted[i];
      if (same) return true;
    }
    return false;
  }

  add(id: string): void {
    if (!this.has(id)) this.push(id);
  }

  /** Appends an id not yet held. */
  private push(id: string): void {
    if (16 * (this.slots + 1) > this.bytes.length) {
      const grown = new Uint8Array(Math.max(16 * 4, this.bytes.length * 2));
      grown.set(this.bytes);
      this.bytes = grown;
    }
    if (canonicalUuid.test(id)) this.bytes.set(uuidBytes(id), this.slots * 16);
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

/**
 * A guard for Avro decoding of hostile bytes. An array or map in Avro is a
 * count followed by that many items; avsc trusts the count, so one flipped
 * bit in it (a varint of 2^28) makes the decoder allocate and loop for as
 * long as the count says — seconds, then out of memory — before it notices
 * the bytes ran out. Every item of our schemas takes at least one byte, so a
 * block can never hold more items than bytes remain: a count beyond that
 * (with some slack for zero-byte items such as nulls) marks the buffer
 * invalid at once, and avsc reports it as truncated (UNDECODABLE_BODY).
 *
 * Installed once, on avsc's array and map types (their resolvers take the
 * same read functions), before any type is resolved.
 */
import avro from 'avsc';

interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  skipString(): void;
  isValid(): boolean;
  _invalidate(): void;
}
interface ItemType {
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}

/** Zero-byte items (null) are the only ones that fit more than one a byte. */
const slack = 1024;

/** The next block's item count, or 0 (end) after marking the tap invalid when the count cannot be true. */
function blockSize(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong();
  }
  if (n > tap.buf.length - tap.pos + slack || !tap.isValid()) {
    tap._invalidate();
    return 0;
  }
  return n;
}

let installed = false;

export function installAvroGuard(): void {
  if (installed) return;
  installed = true;
  const types = (avro as unknown as { types: Record<string, { prototype: Record<string, unknown> }> }).types;
  const arrays = types['ArrayType']!.prototype;
  const maps = types['MapType']!.prototype;
  arrays['_read'] = function (this: { itemsType: ItemType }, tap: Tap): unknown[] {
    const out: unknown[] = [];
    for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
      while (n-- > 0 && tap.isValid()) out.push(this.itemsType._read(tap));
      if (!tap.isValid()) break;
    }
    return out;
  };
  arrays['_skip'] = function (this: { itemsType: ItemType }, tap: Tap): void {
    for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
      while (n-- > 0 && tap.isValid()) this.itemsType._skip(tap);
      if (!tap.isValid()) break;
    }
  };
  maps['_read'] = function (this: { valuesType: ItemType }, tap: Tap): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
      while (n-- > 0 && tap.isValid()) {
        const key = tap.readString();
        // A key such as "__proto__" is data, never the object's prototype.
        Object.defineProperty(out, key, { value: this.valuesType._read(tap), enumerable: true, writable: true, configurable: true });
      }
      if (!tap.isValid()) break;
    }
    return out;
  };
  maps['_skip'] = function (this: { valuesType: ItemType }, tap: Tap): void {
    for (let n = blockSize(tap); n > 0; n = blockSize(tap)) {
      while (n-- > 0 && tap.isValid()) {
        tap.skipString();
        this.valuesType._skip(tap);
      }
      if (!tap.isValid()) break;
    }
  };
}

import { MabeamError } from '../errors.ts';

/**
 * Confluent wire format: one magic byte 0, the schema id as a 4-byte
 * big-endian integer, then the Avro binary body.
 */
export const magicByte = 0;
export const headerLength = 5;

export function frame(schemaId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(headerLength);
  header.writeUInt8(magicByte, 0);
  header.writeInt32BE(schemaId, 1);
  return Buffer.concat([header, body]);
}

/** An Avro type's `encode` (avsc): writes at `pos`, returns the end, or minus the bytes missing. */
export interface AvroWriter {
  encode(value: unknown, buffer: Buffer, pos: number): number;
}

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * The framed record in one allocation: header and body written into a
 * scratch buffer, then copied out once (frame() of toBuffer()'s body takes
 * two zero-filled buffers and a concatenation; this is on every event sent).
 */
export function encodeFramed(schemaId: number, type: AvroWriter, value: unknown): Buffer {
  for (;;) {
    scratch.writeUInt8(magicByte, 0);
    scratch.writeInt32BE(schemaId, 1);
    const end = type.encode(value, scratch, headerLength);
    if (end >= headerLength) return Buffer.from(scratch.subarray(0, end));
    scratch = Buffer.allocUnsafe(2 ** Math.ceil(Math.log2(scratch.length - end)));
  }
}

export interface Unframed {
  schemaId: number;
  body: Buffer;
}

export function unframe(buffer: Buffer | null | undefined): Unframed {
  if (!buffer || buffer.length === 0) throw new MabeamError('EMPTY_MESSAGE', 'The message has no value.');
  if (buffer[0] !== magicByte) {
    throw new MabeamError('BAD_MAGIC_BYTE', `The first byte is ${buffer[0]}, not the magic byte ${magicByte} of the Confluent wire format.`);
  }
  if (buffer.length < headerLength) {
    throw new MabeamError('TRUNCATED_MESSAGE', `The message has ${buffer.length} bytes, fewer than the ${headerLength}-byte wire format header.`);
  }
  return { schemaId: buffer.readInt32BE(1), body: buffer.subarray(headerLength) };
}

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

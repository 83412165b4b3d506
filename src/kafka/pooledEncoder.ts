/**
 * kafkajs's request encoder, allocating from Node's buffer pool: installed
 * before kafkajs is first loaded (by abortedFilter.ts, which every module
 * that imports kafkajs for a value imports first).
 *
 * kafkajs 2.2.4 starts an encoder with a zero-filled 512-byte Buffer for
 * every record and every header of every record it produces, and grows it
 * with zero-filled copies. Under sustained load that zero-filling was about
 * a tenth of an agent host's CPU (bench/sustained.ts --profile). An encoder
 * writes every byte up to its offset and hands out only those
 * (`get buffer` is a slice to the offset), so the fill is never read:
 * `Buffer.allocUnsafe` (pooled below 4 KB, not filled) gives the same bytes.
 */
import { createRequire } from 'node:module';

interface EncoderClass {
  new (initialSize?: number): EncoderInstance;
  nextPowerOfTwo(value: number): number;
}
interface EncoderInstance {
  buf: Buffer;
  offset: number;
}

export function installPooledEncoder(): void {
  const require = createRequire(import.meta.url);
  const path = require.resolve('kafkajs/src/protocol/encoder.js');
  const loaded = require.cache[path];
  if (loaded && (loaded.exports as { pooled?: boolean }).pooled) return;
  if (loaded) {
    process.stderr.write('mabeam: kafkajs was loaded before its pooled encoder; import src/kafka/abortedFilter.ts first\n');
    return;
  }
  const Encoder = require(path) as EncoderClass;
  class PooledEncoder extends Encoder {
    static pooled = true;
    constructor(initialSize = 511) {
      super(0);
      this.buf = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(initialSize));
    }

    ensureAvailable(length: number): void {
      if (this.offset + length <= this.buf.length) return;
      const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  }
  require.cache[path]!.exports = PooledEncoder;
}

/**
 * A fix for kafkajs 2.2.4's read_committed filtering, installed before
 * kafkajs is first loaded (every module that imports kafkajs for a value
 * imports this first).
 *
 * A fetch response lists the partition's aborted transactions (producer id,
 * first offset); a record of an aborted transaction is dropped while its
 * producer's transaction is open. kafkajs activates at most one listed
 * transaction per record read, so when a fetch starts past the first offset
 * of several aborted transactions (they interleave: many producers write one
 * partition — dead letters, directives, records moved to their key's
 * partition) only the first is activated and the other producers' aborted
 * records reach the consumer as if committed. The Java client activates every
 * transaction whose first offset has been reached; so does this.
 */
import { createRequire } from 'node:module';
import { installCoordinatorCache } from './coordinatorCache.ts';
import { installFetchPause } from './fetchPause.ts';
import { installPooledEncoder } from './pooledEncoder.ts';

interface Message {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string; inTransaction: boolean };
}
interface Aborted {
  firstOffset: string;
  producerId: string;
}

const abortMarkerKey = Buffer.from([0, 0, 0, 0]);

export function filterAbortedMessages({ messages, abortedTransactions }: { messages: Message[]; abortedTransactions?: Aborted[] }): Message[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const remaining = [...abortedTransactions].sort((a, b) => (BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : 1));
  const open = new Set<string>();
  return messages.filter((message) => {
    const offset = BigInt(message.offset);
    while (remaining.length > 0 && offset >= BigInt(remaining[0]!.firstOffset)) open.add(String(remaining.shift()!.producerId));
    const producerId = String(message.batchContext.producerId);
    if (message.key && Buffer.from(message.key).equals(abortMarkerKey)) {
      open.delete(producerId);
      return true;
    }
    return !(open.has(producerId) && message.batchContext.inTransaction);
  });
}

installPooledEncoder();
const require = createRequire(import.meta.url);
const path = require.resolve('kafkajs/src/consumer/filterAbortedMessages.js');
if (require.cache[require.resolve('kafkajs/src/consumer/batch.js')] && require.cache[path]?.exports !== filterAbortedMessages) {
  process.stderr.write('mabeam: kafkajs was loaded before its read_committed fix; import src/kafka/abortedFilter.ts first\n');
}
require(path);
require.cache[path]!.exports = filterAbortedMessages;
installFetchPause();
installCoordinatorCache();

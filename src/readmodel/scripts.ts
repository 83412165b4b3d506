import type { Redis } from 'ioredis';

/**
 * applyRecord — applies one record of a compacted topic to its Redis view,
 * at most once and never out of order.
 *
 * KEYS[1]  hash: view key -> value
 * KEYS[2]  hash: partition -> last applied offset
 * KEYS[3]  string: the view's generation (changes when the view is rebuilt)
 * ARGV[1]  partition
 * ARGV[2]  offset
 * ARGV[3]  view key
 * ARGV[4]  value (ignored for a delete)
 * ARGV[5]  '1' to delete the key (a tombstone), else '0'
 * KEYS[4]  hash: view key -> JSON array of the index sets it is in
 * ARGV[6]  generation the writer read the record in
 * ARGV[7]  JSON array of index set keys the new value belongs to ('[]' for none)
 * Returns  1 when applied, 0 when that partition is already past this
 *          offset, -1 when the record belongs to an older generation (it was
 *          read before a rebuild and will be read again).
 */
const applyRecord = `
if redis.call('GET', KEYS[3]) ~= ARGV[6] then return -1 end
local last = redis.call('HGET', KEYS[2], ARGV[1])
if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end
local previous = redis.call('HGET', KEYS[4], ARGV[3])
if previous then
  for _, set in ipairs(cjson.decode(previous)) do redis.call('SREM', set, ARGV[3]) end
end
if ARGV[5] == '1' then
  redis.call('HDEL', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[4], ARGV[3])
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  local sets = cjson.decode(ARGV[7])
  for _, set in ipairs(sets) do redis.call('SADD', set, ARGV[3]) end
  if #sets > 0 then redis.call('HSET', KEYS[4], ARGV[3], ARGV[7]) else redis.call('HDEL', KEYS[4], ARGV[3]) end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

export interface ViewKeys {
  values: string;
  offsets: string;
  generation: string;
  memberships: string;
}

export type ApplyResult = 'applied' | 'already-applied' | 'old-generation';

export interface ViewScripts {
  applyRecord(keys: ViewKeys, generation: string, partition: number, offset: string, key: string, value: string | null, indexSets?: string[]): Promise<ApplyResult>;
}

export function viewScripts(redis: Redis): ViewScripts {
  if (!('mabeamApplyRecord' in redis)) redis.defineCommand('mabeamApplyRecord', { numberOfKeys: 4, lua: applyRecord });
  const command = (redis as unknown as { mabeamApplyRecord: (...args: string[]) => Promise<number> }).mabeamApplyRecord.bind(redis);
  return {
    applyRecord: async (keys, generation, partition, offset, key, value, indexSets = []) => {
      const code = await command(keys.values, keys.offsets, keys.generation, keys.memberships, String(partition), offset, key, value ?? '', value === null ? '1' : '0', generation, JSON.stringify(indexSets));
      return code === 1 ? 'applied' : code === 0 ? 'already-applied' : 'old-generation';
    },
  };
}

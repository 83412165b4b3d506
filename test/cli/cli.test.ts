import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../helpers.ts';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs the CLI as a user would, against the test stack named in the environment. */
async function mabeam(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stack = inject('stack');
  try {
    const { stdout, stderr } = await run(process.execPath, [main, ...args], {
      env: { ...process.env, KAFKA_BROKERS: stack.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: stack.schemaRegistryUrl, REDIS_URL: stack.redisUrl, ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('mabeam CLI', () => {
  it('applies topics idempotently and registers schemas', async () => {
    const prefix = uniqueName('cli');
    const first = await mabeam(['topics', 'apply', '--prefix', prefix]);
    expect(first.code).toBe(0);
    expect(first.stdout.match(/ created /g)).toHaveLength(16);
    expect(first.stderr).toMatch(/note: bids: replication factor 3 capped at 1/);
    const second = await mabeam(['topics', 'apply', '--prefix', prefix]);
    expect(second.stdout.match(/ unchanged/g)).toHaveLength(16);

    const schemas = await mabeam(['schemas', 'register']);
    expect(schemas.code).toBe(0);
    expect(schemas.stdout).toMatch(/io\.mabeam\.events\.Bid\s+id \d+/);
  });

  it('says what is wrong and exits non-zero on bad input', async () => {
    const bad = await mabeam(['topics', 'apply', '--replication-factor', 'zero']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/expected a whole number of at least 1, got "zero"/);

    const noStack = await mabeam(['schemas', 'register'], { KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', REDIS_URL: '', MABEAM_STATE_DIR: '/nonexistent' });
    expect(noStack.code).toBe(1);
    expect(noStack.stderr).toMatch(/No running local stack "dev".*mabeam dev up.*\[STACK_NOT_RUNNING\]/s);
  });
});

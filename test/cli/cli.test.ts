import { describe, expect, inject, it } from 'vitest';
import { uniqueName } from '../helpers.ts';
import { runCli } from '../agentProcesses.ts';

/** Runs the CLI as a user would, against the test stack. */
const mabeam = (args: string[], env: Record<string, string> = {}) => runCli(inject('stack'), args, env);


describe('mabeam CLI', () => {
  it('applies topics idempotently and registers schemas', async () => {
    const prefix = uniqueName('cli');
    const first = await mabeam(['topics', 'apply', '--prefix', prefix]);
    expect(first.code).toBe(0);
    expect(first.stdout.match(/ created /g)).toHaveLength(20);
    expect(first.stderr).toMatch(/note: bids: replication factor 3 capped at 1/);
    const second = await mabeam(['topics', 'apply', '--prefix', prefix]);
    expect(second.stdout.match(/ unchanged/g)).toHaveLength(20);

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

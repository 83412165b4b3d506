import { Redis } from 'ioredis';
import { filter, firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Proposal, RoundOutcome, VariableChanged, VariableChangeRejected } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { proposeVariableChange } from '../../src/variables/consensus.ts';
import { adaptationRate, agentSelection, typedVariable } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { testContext, waitFor, type TestContext } from '../helpers.ts';
import { runCli } from '../agentProcesses.ts';

let ctx: TestContext;
let redis: Redis;
let owner: VariableOwner;
const clients: VariablesClient[] = [];
beforeAll(async () => {
  ctx = await testContext('variables');
  redis = new Redis(ctx.stack.redisUrl, { db: 5 });
  ctx.defer(() => redis.quit());
  owner = new VariableOwner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics: ctx.metrics });
  ctx.defer(() => owner.stop());
  await owner.start();
});
afterAll(() => ctx?.close());

async function client(options: { redis?: boolean } = {}): Promise<VariablesClient> {
  const c = new VariablesClient({
    kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix,
    ...(options.redis ? { redis, definitions: ctx.definitions } : {}),
  });
  ctx.defer(() => c.stop());
  await c.start();
  clients.push(c);
  return c;
}

/** `mabeam var …` as a separate OS process. */
const mabeamVar = (args: string[]) => runCli(ctx.stack, ['var', ...args, '--prefix', ctx.prefix]);


/** What the variable-changes log says about a variable, in order. */
async function history(variableId: string) {
  const log = await readLog(ctx.kafka, ctx.codec, [ctx.topic('variable-changes')]);
  return log.filter((r) => (r.decoded.event as { variableId?: string }).variableId === variableId).map((r) => ({ type: r.decoded.type, event: r.decoded.event as unknown as VariableChanged & VariableChangeRejected }));
}

describe('distributed variables', () => {
  it('concurrent writers: every reader converges on the same value; a stale compare-and-set is refused', async () => {
    const [a, b, reader] = await Promise.all([client(), client(), client({ redis: true })]);
    // Both define it at once: one definition applies, the other is answered ALREADY_DEFINED (and both get the variable).
    const [ra, rb] = await Promise.all([a.define(adaptationRate('learning-rate', { initial: 0.1 })), b.define(adaptationRate('learning-rate', { initial: 0.1 }))]);
    expect([ra.version, rb.version]).toEqual([1, 1]);
    const writes = await Promise.all([
      ...[0.2, 0.3, 0.4].map((v) => a.set('learning-rate', v)),
      ...[0.5, 0.6, 0.7].map((v) => b.set('learning-rate', v)),
    ]);
    expect(writes.map((w) => w.version).sort((x, y) => x - y)).toEqual([2, 3, 4, 5, 6, 7]);
    const last = writes.find((w) => w.version === 7)!;
    for (const c of [a, b, reader]) {
      const seen = await waitFor(async () => ((await c.get('learning-rate'))?.version === 7 ? c.get('learning-rate') : undefined), { what: 'version 7 everywhere' });
      expect(seen).toMatchObject({ version: 7, value: last.value });
    }

    // Compare-and-set: both read version 7; the first wins, the second is refused and changes nothing.
    const won = await a.set('learning-rate', 0.25, { expectedVersion: 7 });
    expect(won).toMatchObject({ version: 8, value: 0.25 });
    await expect(b.set('learning-rate', 0.9, { expectedVersion: 7 })).rejects.toMatchObject({ code: 'VARIABLE_REJECTED', details: { reasonCode: 'STALE_VERSION' } });
    expect(await reader.get('learning-rate')).toMatchObject({ version: 8, value: 0.25 });
    const refused = (await history('learning-rate')).filter((h) => h.type === 'VariableChangeRejected').map((h) => h.event.reasonCode);
    expect(refused).toEqual(['ALREADY_DEFINED', 'STALE_VERSION']);
  });

  it('bad input gets a clear error and a rejection event, and leaves the state as it was', async () => {
    const c = await client();
    await c.define(typedVariable('model', { kind: 'choice', options: ['small', 'large'] }, 'small'));
    await c.define(typedVariable('batch-size', { kind: 'integer', min: 1, max: 512 }, 32));
    await expect(c.set('batch-size', 1024)).rejects.toThrow(/batch-size 1024 is over the maximum 512\. \[OUT_OF_RANGE\]/);
    await expect(c.set('batch-size', 'many')).rejects.toThrow(/must be a whole number, not "many"\. \[WRONG_TYPE\]/);
    await expect(c.set('model', 'huge')).rejects.toMatchObject({ details: { reasonCode: 'OUT_OF_RANGE' } });
    await expect(c.set('no-such-variable', 1)).rejects.toMatchObject({ details: { reasonCode: 'UNKNOWN_VARIABLE' } });
    expect(() => typedVariable('bad', { kind: 'float', min: 2, max: 1 }, 1.5)).toThrow(/min must not exceed max/);
    expect(await c.get('batch-size')).toMatchObject({ version: 1, value: 32 });
    expect(await c.get('model')).toMatchObject({ version: 1, value: 'small' });
    const rejected = [...(await history('batch-size')), ...(await history('model')), ...(await history('no-such-variable'))].filter((h) => h.type === 'VariableChangeRejected');
    expect(rejected.map((h) => [h.event.variableId, h.event.reasonCode, h.event.attemptedValue])).toEqual([
      ['batch-size', 'OUT_OF_RANGE', '1024'],
      ['batch-size', 'WRONG_TYPE', '"many"'],
      ['model', 'OUT_OF_RANGE', '"huge"'],
      ['no-such-variable', 'UNKNOWN_VARIABLE', '1'],
    ]);
  });

  it('a consensus-gated change is refused when the vote fails and applied when it passes', async () => {
    let approve = false;
    const voters = ['v1', 'v2', 'v3'];
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'voters',
      agents: voters.map((id) => defineAgent({ id, role: 'worker', capabilities: ['vote'], onProposal: (p: Proposal) => ({ choice: approve && JSON.parse(p.subject).variableId === 'active-team' ? 'yes' : 'no' }) })),
    });
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    const rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => host.stop());
    ctx.defer(() => coordinator.stop());
    ctx.defer(() => rounds.stop());
    const c = await client();
    await Promise.all([host.start(), coordinator.start(), rounds.start()]);
    await c.define(agentSelection('active-team', { agents: voters, initial: ['v1'] }));

    await expect(proposeVariableChange(c, rounds, 'active-team', ['v1', 'v2'])).rejects.toMatchObject({ code: 'VARIABLE_REJECTED', details: { reasonCode: 'CONSENSUS_REFUSED' } });
    expect(await c.get('active-team')).toMatchObject({ version: 1, value: ['v1'] });
    approve = true;
    const applied = await proposeVariableChange(c, rounds, 'active-team', ['v1', 'v2']);
    expect(applied).toMatchObject({ version: 2, value: ['v1', 'v2'] });
    const changed = (await history('active-team')).filter((h) => h.type === 'VariableChanged').pop()!;
    expect(changed.event.cause).toBe('consensus');
    const approved = JSON.parse(changed.event.trigger!) as { roundId: string };
    expect(approved).toMatchObject({ protocol: 'majority', status: 'decided', value: '"yes"', roundId: expect.any(String) });

    // A change that claims consensus is checked against the round's outcome in the log, not its own trigger:
    // a "yes" for a round that never ran, and a real "yes" reused for another change, are both refused.
    const claim = (roundId: string) => ({ roundId, protocol: 'majority', status: 'decided', value: '"yes"' });
    await expect(c.set('active-team', ['v3'], { cause: 'consensus', expectedVersion: 2, trigger: claim('no-such-round') }))
      .rejects.toMatchObject({ code: 'VARIABLE_REJECTED', details: { reasonCode: 'CONSENSUS_REFUSED' }, message: expect.stringContaining('no outcome of consensus round no-such-round') });
    await expect(c.set('active-team', ['v3'], { cause: 'consensus', expectedVersion: 2, trigger: claim(approved.roundId) }))
      .rejects.toMatchObject({ code: 'VARIABLE_REJECTED', details: { reasonCode: 'CONSENSUS_REFUSED' }, message: expect.stringContaining('approved another change') });
    expect(await c.get('active-team')).toMatchObject({ version: 2, value: ['v1', 'v2'] });
  });

  it('the consensus gate checks who voted: only a consensus among exactly the affected agents applies; other voters, an auction or a forged auction outcome are refused', async () => {
    // w4 votes yes to anything, like w1..w3, but is not one of the squad's affected agents.
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'electorate',
      agents: ['w1', 'w2', 'w3', 'w4'].map((id) => defineAgent({ id, role: 'worker', capabilities: ['vote'], onProposal: () => ({ choice: 'yes' }), onBidRequest: () => ({ amount: 1 }) })),
    });
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    const rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => host.stop());
    ctx.defer(() => coordinator.stop());
    ctx.defer(() => rounds.stop());
    const c = await client();
    await Promise.all([host.start(), coordinator.start(), rounds.start()]);
    await c.define(agentSelection('squad', { agents: ['w1', 'w2', 'w3'], initial: ['w1'] }));
    const refused = (message: string) => ({ code: 'VARIABLE_REJECTED', details: { reasonCode: 'CONSENSUS_REFUSED' }, message: expect.stringContaining(message) });

    // A unanimous "yes" among voters of the requester's choosing is not the affected agents' consent.
    await expect(proposeVariableChange(c, rounds, 'squad', ['w1', 'w2'], { voters: ['w1', 'w2'] })).rejects.toMatchObject(refused('missing "w3"'));
    await expect(proposeVariableChange(c, rounds, 'squad', ['w1', 'w2'], { voters: ['w1', 'w2', 'w3', 'w4'] })).rejects.toMatchObject(refused('not affected "w4"'));
    await expect(proposeVariableChange(c, rounds, 'squad', ['w1', 'w2'], { voters: ['w1', 'w4'] })).rejects.toMatchObject(refused('missing "w2", "w3"; not affected "w4"'));
    expect(await c.get('squad')).toMatchObject({ version: 1, value: ['w1'] });

    // A real auction among exactly the affected agents, about exactly this change, is still not a consensus.
    const subject = { variableId: 'squad', value: ['w1', 'w2'], version: 1 };
    const auction = await rounds.auction({ protocol: 'first-price', item: subject, bidders: ['w1', 'w2', 'w3'] });
    expect(auction).toMatchObject({ status: 'decided', kind: 'auction', eligible: ['w1', 'w2', 'w3'] });
    await expect(c.set('squad', ['w1', 'w2'], { cause: 'consensus', expectedVersion: 1, trigger: { roundId: auction.roundId } })).rejects.toMatchObject(refused('it was an auction, not a consensus'));

    // An auction outcome written into the log by hand, saying "yes" to exactly this change among exactly the affected agents;
    // and one that does not say its kind at all (as a producer on the older schema writes it).
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    const forge = async (roundId: string, over: Partial<RoundOutcome>) => {
      const outcome: RoundOutcome = {
        envelope: newEnvelope('RoundOutcome', 'forger', { correlationId: roundId }), roundId, protocol: 'first-price', status: 'decided', winners: ['w1'], price: 1,
        value: JSON.stringify('yes'), reason: 'forged', details: null, subject: JSON.stringify(subject), kind: 'auction', eligible: ['w1', 'w2', 'w3'], ...over,
      };
      await events.send(ctx.topic('outcomes'), roundId, 'RoundOutcome', outcome);
    };
    await forge('forged-auction', {});
    await expect(c.set('squad', ['w1', 'w2'], { cause: 'consensus', expectedVersion: 1, trigger: { roundId: 'forged-auction' } })).rejects.toMatchObject(refused('Round forged-auction (first-price) cannot approve a change of squad: it was an auction'));
    await forge('forged-unknown-kind', { protocol: 'majority', winners: [], price: null, kind: null });
    await expect(c.set('squad', ['w1', 'w2'], { cause: 'consensus', expectedVersion: 1, trigger: { roundId: 'forged-unknown-kind' } })).rejects.toMatchObject(refused('its outcome does not say it was a consensus'));
    expect(await c.get('squad')).toMatchObject({ version: 1, value: ['w1'] });

    // The affected agents themselves (proposeVariableChange's default electorate) approve it.
    expect(await proposeVariableChange(c, rounds, 'squad', ['w1', 'w2'])).toMatchObject({ version: 2, value: ['w1', 'w2'] });
    const told = (await history('squad')).map((h) => [h.type, h.event.reasonCode ?? h.event.cause]);
    expect(told).toEqual([['VariableChanged', 'define'], ...Array(6).fill(['VariableChangeRejected', 'CONSENSUS_REFUSED']), ['VariableChanged', 'consensus']]);
  });

  it('a change is seen by 100 watching agents; after Redis is flushed, reads answer from the rebuilt view', async () => {
    const writer = await client();
    const [watchersA, watchersB] = await Promise.all([client(), client({ redis: true })]);
    await writer.define(typedVariable('temperature', { kind: 'float', min: 0, max: 2 }, 0.7));
    // 100 agents watch, split over two processes' copies of the variables.
    const seen = Array.from({ length: 100 }, (_, i) =>
      firstValueFrom((i % 2 === 0 ? watchersA : watchersB).watch('temperature').pipe(filter((r) => r.value === 1.2))),
    );
    const changed = await writer.set('temperature', 1.2);
    const records = await Promise.all(seen);
    expect(records).toHaveLength(100);
    expect(new Set(records.map((r) => r.version))).toEqual(new Set([changed.version]));

    await redis.flushdb();
    expect(await watchersB.get('temperature')).toMatchObject({ version: changed.version, value: 1.2 });
    expect((await watchersB.all()).map((r) => r.id)).toContain('temperature');
  });

  it('two processes (the CLI) set the same variable at once: both are ordered, every reader ends on the same value, a stale compare-and-set exits non-zero', async () => {
    const reader = await client();
    await reader.define(typedVariable('replicas', { kind: 'integer', min: 1, max: 64 }, 2));
    const [x, y] = await Promise.all([mabeamVar(['set', 'replicas', '8']), mabeamVar(['set', 'replicas', '16'])]);
    expect([x.code, y.code, x.stderr, y.stderr]).toEqual([0, 0, '', '']);
    const written = [x, y].map((r) => JSON.parse(r.stdout) as { version: number; value: number });
    expect(written.map((w) => w.version).sort()).toEqual([2, 3]);
    const last = written.find((w) => w.version === 3)!;
    expect(await waitFor(async () => (await reader.get('replicas'))?.version === 3 && reader.get('replicas'), { what: 'version 3' })).toMatchObject({ value: last.value });
    const got = await mabeamVar(['get', 'replicas']);
    expect(JSON.parse(got.stdout)).toMatchObject({ version: 3, value: last.value });
    const stale = await mabeamVar(['set', 'replicas', '4', '--expected-version', '2']);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/replicas is at version 3, not 2: read it again and retry\. \[STALE_VERSION\] \[VARIABLE_REJECTED\]/);
  });
});

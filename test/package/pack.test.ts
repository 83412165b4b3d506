/**
 * The package as another project gets it: `npm pack` (which builds dist/),
 * installed into a new project, imported by name, and its CLI running an
 * agent module of that project — which bids in a real round.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { BidRequest, RoundOutcome } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { environmentFor } from '../../src/stack/index.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

let ctx: TestContext;
let project: string;
beforeAll(async () => {
  ctx = await testContext('package');
  const packed = await mkdtemp(join(tmpdir(), 'mabeam-pack-'));
  await run('npm', ['pack', '--pack-destination', packed, '--loglevel=error'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const [tarball] = (await readdir(packed)).filter((f) => f.endsWith('.tgz'));
  project = await mkdtemp(join(tmpdir(), 'mabeam-user-'));
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'uses-mabeam', private: true, type: 'module' }));
  await run('npm', ['install', join(packed, tarball!), '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project, maxBuffer: 16 * 1024 * 1024 });
}, 240_000);
afterAll(() => ctx?.close());

describe('the packed package', () => {
  it('imports by name with its public API, and its CLI runs an agent module of another project that bids in a round', { timeout: 120_000 }, async () => {
    await writeFile(join(project, 'api.mjs'), "import * as m from 'mabeam'; console.log(JSON.stringify(Object.keys(m).filter((k) => ['defineAgent', 'AgentHost', 'RoundClient', 'EventCodec', 'coordinate'].includes(k)).sort()));");
    const api = await run(process.execPath, ['api.mjs'], { cwd: project });
    expect(JSON.parse(api.stdout)).toEqual(['AgentHost', 'EventCodec', 'RoundClient', 'coordinate', 'defineAgent']);

    await writeFile(join(project, 'agent.mjs'), [
      "import { defineAgent } from 'mabeam';",
      "export default { pool: 'outside', agents: [defineAgent({ id: 'outsider', role: 'worker', capabilities: ['x'], onBidRequest: () => ({ amount: 17 }) })] };",
    ].join('\n'));
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    ctx.defer(() => coordinator.stop());
    await coordinator.start();
    const child = spawn(process.execPath, [join(project, 'node_modules/mabeam/dist/cli/main.js'), 'agent', 'run', join(project, 'agent.mjs'), '--prefix', ctx.prefix], {
      cwd: project,
      env: { ...process.env, ...environmentFor(ctx.stack) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    ctx.defer(() => new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', () => resolve()), child.kill('SIGTERM')))));
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the packaged CLI exited (${code}) before its agent was ready`)));
    });

    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    const roundId = uniqueName('outside');
    const request: BidRequest = { envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }), roundId, protocol: 'first-price', item: '"x"', requiredCapabilities: [], eligibleAgents: ['outsider'], reservePrice: null, deadline: Date.now() + 30_000, parameters: null };
    await new EventProducer(await ctx.producer(), ctx.codec).send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
    const outcome = await waitFor(async () => {
      for (const m of outcomes.messages) {
        const d = await ctx.codec.decode(m.value);
        if (d.type === 'RoundOutcome' && (d.event as unknown as RoundOutcome).roundId === roundId) return d.event as unknown as RoundOutcome;
      }
      return undefined;
    }, { what: 'the outcome of the round', crashed: outcomes.crashed, timeoutMs: 30_000 });
    expect(outcome).toMatchObject({ winners: ['outsider'], price: 17 });
  });
});

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connections } from '../cli/connect.ts';
import type { DecodedEvent } from '../codec/codec.ts';
import { RoundClient } from '../coordinator/roundClient.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { describeError, MabeamError } from '../errors.ts';
import type { RoundOutcome } from '../events/types.ts';
import { readToEnd } from '../kafka/readToEnd.ts';
import { StudyClient } from '../optimizer/client.ts';
import { bestTrials } from '../optimizer/study/best.ts';
import { PlanClient } from '../planner/client.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { topicName } from '../topics/names.ts';
import { VariablesClient } from '../variables/client.ts';
import { proposeVariableChange } from '../variables/consensus.ts';
import { agentSelection, typedVariable } from '../variables/model.ts';
import { instanceHeader } from '../agents/host.ts';
import { agentIds } from './agents/profiles.ts';
import type { Deployment } from './deployment.ts';

/** What the scenario did: the ids a reader of the log can check it by. */
export interface ScenarioResult {
  sealedRound: string;
  englishRound: string;
  consensusRound: string;
  gpuPrice: { value: number; version: number };
  agentKill: { roundId: string; killed: string; killedPid: number; restartedPid: number };
  coordinatorKill: { roundId: string; killed: string; killedPid: number; restartedPid: number };
  study: { studyId: string; trials: number; best: string[]; quality: number };
  team: { value: string[]; version: number };
  planId: string;
  garbage: { topic: string; key: string };
  afterGarbageRound: string;
}

export interface ScenarioOptions {
  prefix: string;
  deployment: Deployment;
  /** One narrated line (a step's title, or a fact under it). */
  say: (line: string) => void;
}

const bidders = [...agentIds];

const describeBids = (outcome: RoundOutcome): string => {
  const bids = (JSON.parse(outcome.details ?? '{}') as { bids?: Array<{ agentId: string; amount: number }> }).bids ?? [];
  return bids.map((b) => `${b.agentId} ${b.amount}`).join(', ');
};

/**
 * The scenario `npm start` narrates, each step through the public API a
 * user would call, against the deployment's processes: auctions, a
 * consensus-gated variable change, an agent replica and a coordinator
 * killed mid-round, a study whose best team is applied, a plan run by the
 * agents, and garbage from outside dead-lettered.
 */
export async function runScenario(c: Connections, o: ScenarioOptions): Promise<ScenarioResult> {
  const { prefix, deployment, say } = o;
  const topic = (name: string) => topicName(prefix, name);
  const rounds = new RoundClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix, clientId: 'demo' });
  const variables = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix, redis: c.redis, definitions: c.definitions, clientId: 'demo' });
  const studies = new StudyClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix, requesterId: 'demo' });
  const plans = new PlanClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix, requesterId: 'demo' });
  await Promise.all([rounds.start(), variables.start()]);
  const partitions = await partitionCounts(c.admin, prefix, ['bid-requests']);
  const partitionOf = (roundId: string) => partitionOfKey(Buffer.from(roundId), partitions.get(topic('bid-requests'))!);
  let n = 0;
  const step = async <T>(title: string, work: () => Promise<T>): Promise<T> => {
    n += 1;
    say(`[${n}] ${title}`);
    try {
      return await work();
    } catch (error) {
      throw new MabeamError('DEMO_FAILED', `step ${n} (${title}) failed: ${describeError(error)}`, { cause: error });
    }
  };
  const fact = (line: string) => say(`    ${line}`);

  try {
    // 1. Auctions among the agent processes.
    const { sealed, english } = await step('a sealed-bid (Vickrey) and an English auction for GPU hours among ada, bo, cy and dee', async () => {
      const sealed = await rounds.auction({ protocol: 'vickrey', item: { resource: 'gpu-hours', quantity: 4 }, bidders, requiredCapabilities: ['gpu'], deadlineMs: 15_000 });
      fact(`vickrey ${sealed.roundId}: ${sealed.winners.join(', ')} wins, pays ${sealed.price} (${sealed.reason}); bids ${describeBids(sealed)}`);
      const english = await rounds.auction({ protocol: 'english', item: { resource: 'gpu-hours', quantity: 2 }, bidders, parameters: { startPrice: 20, increment: 2 }, deadlineMs: 15_000 });
      const stages = await stagesOf(c, topic('bid-requests'), english.roundId);
      fact(`english ${english.roundId}: ${english.winners.join(', ')} wins at ${english.price} after ${stages} stages, from 20 in steps of 2 (${english.reason})`);
      return { sealed, english };
    });

    // 2. A variable change that the agents it affects vote on.
    const { gpuPrice, consensusRound } = await step('a GPU price change gated by a consensus of the agents it affects', async () => {
      await variables.define(typedVariable('demo.gpu-price', { kind: 'float', min: 0, max: 100 }, 25, { affectedAgents: ['ada', 'bo', 'cy'], description: 'what a GPU hour costs' }));
      const before = (await variables.get('demo.gpu-price'))!;
      // 30 (or 32 when it is 30 already, on a second run): within ada's and bo's valuations, over cy's.
      const proposed = before.value === 30 ? 32 : 30;
      const changed = await proposeVariableChange(variables, rounds, 'demo.gpu-price', proposed, { deadlineMs: 10_000 });
      const change = await changeOf(c, topic('variable-changes'), 'demo.gpu-price', changed.version);
      const roundId = String((JSON.parse(change?.trigger ?? '{}') as { roundId?: string }).roundId ?? '');
      const votes = await votesOf(c, topic('votes'), roundId);
      fact(`vote ${roundId}: ${votes.join(', ')}; demo.gpu-price ${JSON.stringify(before.value)} → ${JSON.stringify(changed.value)} at version ${changed.version} (cause ${change?.cause})`);
      return { gpuPrice: { value: changed.value as number, version: changed.version }, consensusRound: roundId };
    });

    // 3. An agent replica killed while it thinks over a request.
    const agentKill = await step('dee\'s replica killed (SIGKILL) mid-round: the other replica answers, the supervisor restarts it', async () => {
      const roundId = `auction-${randomUUID()}`;
      const groupId = (await deployment.readyOf('dee-1')).groupId;
      const outcome = rounds.auction({ roundId, protocol: 'vickrey', item: { resource: 'gpu-hours', quantity: 8 }, bidders, requiredCapabilities: ['gpu'], deadlineMs: 30_000 });
      // dee thinks 3 s over 8 GPU hours: the replica that holds the round's partition is in the middle of it.
      await sleep(1_000);
      const holder = (await deployment.holderOf(c.admin, groupId, topic('bid-requests'), partitionOf(roundId))) ?? 'dee-1';
      const other = holder === 'dee-1' ? 'dee-2' : 'dee-1';
      const killedPid = deployment.kill(holder);
      fact(`${holder} (pid ${killedPid}) killed while deliberating on ${roundId}`);
      const decided = await outcome;
      const answeredBy = deployment.childOfInstance(await answererOf(c, topic('bids'), roundId, 'dee'));
      const by = answeredBy === other ? `${other}, the other replica` : answeredBy === holder ? `${holder}, restarted` : 'no replica';
      fact(`${decided.winners.join(', ')} wins, pays ${decided.price}; dee's bid written by ${by}; bids ${describeBids(decided)}`);
      const restarted = await deployment.readyOf(holder);
      const restartedPid = deployment.pidOf(holder)!;
      fact(`supervisor restarted ${holder} as pid ${restartedPid} (instance ${restarted.instanceId})`);
      return { roundId, killed: holder, killedPid, restartedPid };
    });

    // 4. A coordinator killed with a round open.
    const coordinatorKill = await step('the coordinator of an open round killed (SIGKILL): the other finishes it, exactly one outcome', async () => {
      const roundId = `auction-${randomUUID()}`;
      const groupId = (await deployment.readyOf('coordinator-1')).groupId;
      const outcome = rounds.auction({ roundId, protocol: 'first-price', item: { resource: 'gpu-hours', quantity: 8 }, bidders, requiredCapabilities: ['gpu'], deadlineMs: 30_000 });
      await sleep(1_000);
      const holder = await deployment.holderOf(c.admin, groupId, topic('bid-requests'), partitionOf(roundId));
      if (!holder) throw new MabeamError('DEMO_FAILED', `no coordinator holds partition ${partitionOf(roundId)} of ${topic('bid-requests')}`);
      const killedPid = deployment.kill(holder);
      fact(`${holder} (pid ${killedPid}) killed with ${roundId} open`);
      const decided = await outcome;
      const outcomes = await outcomesOf(c, topic('outcomes'), roundId);
      const decider = deployment.childOfInstance(decided.envelope.producerId) ?? `instance ${decided.envelope.producerId}`;
      fact(`${decided.winners.join(', ')} wins at ${decided.price}, decided by ${decider}${decider === holder ? ' (restarted)' : ''}; outcomes of the round in the log: ${outcomes}`);
      if (outcomes !== 1) throw new MabeamError('DEMO_FAILED', `round ${roundId} has ${outcomes} outcomes in the log`);
      await deployment.readyOf(holder);
      const restartedPid = deployment.pidOf(holder)!;
      fact(`supervisor restarted ${holder} as pid ${restartedPid}`);
      return { roundId, killed: holder, killedPid, restartedPid };
    });

    // 5. A study of team compositions, its best team applied as a variable change.
    const { study, team } = await step('an optimization study of the team (24 trials, evaluated by the agents), its best team applied', async () => {
      await variables.define(agentSelection('demo.team', { agents: bidders, initial: ['cy'], description: 'the team on duty' }));
      const teamBefore = (await variables.get('demo.team'))!;
      const spec = {
        name: 'demo-team',
        space: { team: { type: 'agentSet', candidates: bidders, minSize: 1 } },
        objectives: [{ name: 'quality', direction: 'maximize' }],
        budget: { trials: 24, timeMs: 120_000 },
        parallelism: 4,
        searcher: 'tpe',
        evaluators: { capability: 'evaluate' },
        apply: { team: 'demo.team' },
      };
      const result = await studies.run(spec, { timeoutMs: 120_000 });
      if (result.status !== 'completed') throw new MabeamError('DEMO_FAILED', `study ${result.studyId} ${result.status === 'rejected' ? `was rejected: ${result.rejection.reason}` : 'did not complete in time'}`);
      const best = bestTrials(result.run)[0];
      if (!best) throw new MabeamError('DEMO_FAILED', `study ${result.studyId} completed without a best trial`);
      const by = new Set(result.run.trials.map((t) => t.agentId).filter((a): a is string => a !== null));
      fact(`study ${result.studyId}: ${result.run.finished} trials by ${[...by].sort().join(', ')}; best team ${(best.params['team'] as string[]).join(' + ')} (quality ${best.values[0]})`);
      const applied = await waitFor(async () => {
        const now = await variables.get('demo.team');
        return now && now.version > teamBefore.version ? now : undefined;
      }, 30_000, 'the best team applied to demo.team');
      const change = await changeOf(c, topic('variable-changes'), 'demo.team', applied.version);
      fact(`demo.team ${JSON.stringify(teamBefore.value)} → ${JSON.stringify(applied.value)} at version ${applied.version} (cause ${change?.cause})`);
      return {
        study: { studyId: result.studyId, trials: result.run.finished, best: best.params['team'] as string[], quality: best.values[0]! },
        team: { value: applied.value as string[], version: applied.version },
      };
    });

    // 6. A plan of steps by capability, run by the agents.
    const planId = await step('a plan of four steps by capability (code → plan and gpu → plan), run by the agents', async () => {
      const result = await plans.run({
        goal: { service: 'checkout' },
        plan: {
          steps: [
            { id: 'build', capability: 'code', inputs: { service: {} } },
            { id: 'review', capability: 'plan', inputs: { build: { step: 'build' } } },
            { id: 'benchmark', capability: 'gpu', inputs: { build: { step: 'build' } } },
            { id: 'release', capability: 'plan', inputs: { review: { step: 'review', path: 'by' }, benchmark: { step: 'benchmark', path: 'by' } } },
          ],
          result: { release: { step: 'release' } },
          deadlineMs: 60_000,
        },
      }, { timeoutMs: 60_000 });
      if (result.status !== 'completed') throw new MabeamError('DEMO_FAILED', `plan ${result.planId} ${result.status}${'reason' in result ? `: ${result.reason}` : ''}`);
      const ran = [...result.run.steps.values()].map((s) => `${s.stepId} by ${s.agentId}`).join(', ');
      fact(`plan ${result.planId} completed: ${ran}`);
      return result.planId;
    });

    // 7. Garbage from outside: dead-lettered, and the next round is decided as usual.
    const { garbage, afterGarbageRound } = await step('garbage from outside on the bids topic: dead-lettered, nothing stops', async () => {
      const key = `auction-${randomUUID()}`;
      const bytes = Buffer.from('{"roundId": "not avro at all", "amount": "lots"}');
      await c.producer.send({ topic: topic('bids'), messages: [{ key, value: bytes }] });
      const letter = await waitFor(() => deadLetterOf(c, topic('dead-letters'), key), 30_000, 'the dead letter');
      fact(`dead letter: ${letter.reasonCode} — ${letter.reason} (the original ${letter.bytes} bytes kept)`);
      const after = await rounds.auction({ protocol: 'first-price', item: { resource: 'gpu-hours', quantity: 1 }, bidders, requiredCapabilities: ['gpu'], deadlineMs: 15_000 });
      fact(`the next round ${after.roundId}: ${after.winners.join(', ')} wins at ${after.price}`);
      return { garbage: { topic: topic('bids'), key }, afterGarbageRound: after.roundId };
    });

    return {
      sealedRound: sealed.roundId,
      englishRound: english.roundId,
      consensusRound,
      gpuPrice,
      agentKill,
      coordinatorKill,
      study,
      team,
      planId,
      garbage,
      afterGarbageRound,
    };
  } finally {
    await Promise.allSettled([rounds.stop(), variables.stop()]);
  }
}

/** Reads one topic to its end, handing over the decoded events keyed `key`. */
async function eventsKeyed(c: Connections, topic: string, key: string, each: (decoded: DecodedEvent, headers: Record<string, string>) => void): Promise<void> {
  await readToEnd(c.kafka, {
    topics: [topic],
    onRecord: async ({ message }) => {
      if (message.key?.toString() !== key || !message.value) return;
      const decoded = await c.codec.decode(message.value).catch(() => undefined);
      if (!decoded) return;
      each(decoded, Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])));
    },
  });
}

/** How many stages (requests) an iterative round had. */
async function stagesOf(c: Connections, topic: string, roundId: string): Promise<number> {
  let stages = 0;
  await eventsKeyed(c, topic, roundId, (d) => void (d.type === 'BidRequest' && (stages += 1)));
  return stages;
}

async function votesOf(c: Connections, topic: string, roundId: string): Promise<string[]> {
  const votes: string[] = [];
  await eventsKeyed(c, topic, roundId, (d) => void (d.type === 'Vote' && votes.push(`${d.event.agentId} ${d.event.choice}`)));
  return votes.sort();
}

/** The instance (its header) that wrote an agent's bid in a round. */
async function answererOf(c: Connections, topic: string, roundId: string, agentId: string): Promise<string | undefined> {
  let instance: string | undefined;
  await eventsKeyed(c, topic, roundId, (d, headers) => void (d.type === 'Bid' && d.event.agentId === agentId && (instance = headers[instanceHeader])));
  return instance;
}

/** The change that made a variable's version, from the variable-changes topic. */
async function changeOf(c: Connections, topic: string, variableId: string, version: number): Promise<{ cause: string; trigger: string | null } | undefined> {
  let change: { cause: string; trigger: string | null } | undefined;
  await eventsKeyed(c, topic, variableId, (d) => void (d.type === 'VariableChanged' && d.event.version === version && (change = { cause: d.event.cause, trigger: d.event.trigger ?? null })));
  return change;
}

async function outcomesOf(c: Connections, topic: string, roundId: string): Promise<number> {
  let count = 0;
  await eventsKeyed(c, topic, roundId, (d) => void (d.type === 'RoundOutcome' && (count += 1)));
  return count;
}

async function deadLetterOf(c: Connections, topic: string, key: string): Promise<{ reasonCode: string; reason: string; bytes: number } | undefined> {
  let found: { reasonCode: string; reason: string; bytes: number } | undefined;
  await readToEnd(c.kafka, {
    topics: [topic],
    onRecord: async ({ message }) => {
      if (!message.value) return;
      const decoded = await c.codec.decode(message.value).catch(() => undefined);
      if (decoded?.type !== 'DeadLetter') return;
      const letter = decoded.event;
      if (letter.key?.toString() === key) found = { reasonCode: letter.reasonCode, reason: letter.reason, bytes: letter.value?.length ?? 0 };
    },
  });
  return found;
}

async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new MabeamError('DEMO_FAILED', `timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

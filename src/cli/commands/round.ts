import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Admin, Consumer, Kafka } from 'kafkajs';
import { RoundClient } from '../../coordinator/roundClient.ts';
import { partitionOfKey } from '../../engine/routing.ts';
import { MabeamError, describeError, isMabeamError } from '../../errors.ts';
import type { RoundOutcome } from '../../events/types.ts';
import { joinedAndFetched } from '../../kafka/client.ts';
import type { Logger } from '../../log/logger.ts';
import { eventHeaders } from '../../producer/eventProducer.ts';
import { loadProtocolModules } from '../../protocols/modules.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix, topicName } from '../../topics/index.ts';
import { connect } from '../connect.ts';
import { out, progress, table } from '../output.ts';
import { roundPlan, type RoundFlags, type RoundPlan } from '../roundRequest.ts';
import { readerGroupId } from '../../topics/names.ts';

/** Exit codes of `round start`. */
export const roundExitCodes = { decided: 0, error: 1, badInput: 2, noDecision: 3 } as const;

interface StartOptions extends RoundFlags {
  prefix: string;
  protocols: string[];
  file?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** Errors that mean the input was wrong (exit 2), not that something failed. */
const badInputCodes = new Set(['INVALID_OPTIONS', 'PROTOCOL_MODULE_INVALID']);

export function registerRoundCommands(program: Command, logger: () => Logger): void {
  const round = program.command('round').description('coordination rounds: start an auction, a market or a consensus');

  round
    .command('start')
    .description(
      'start a round and wait for its outcome; the protocol decides the kind (an auction produces a BidRequest, a consensus a Proposal). ' +
        'Exit 0 decided, 3 no decision (or no outcome in time), 2 bad input or refused by the coordinator, 1 other errors',
    )
    .option('--protocol <name>', 'the protocol (first-price, vickrey, majority, …; see --protocols)')
    .option('--item <json|text>', 'auctions: what is sold (JSON, or else text)')
    .option('--subject <json|text>', 'consensus: what is voted on (JSON, or else text)')
    .option('--bidders <names>', 'auctions: who may bid, comma-separated, repeatable (default: anyone with the capabilities)', collect)
    .option('--voters <names>', 'consensus: who votes, comma-separated, repeatable (required)', collect)
    .option('--capabilities <names>', 'auctions: capabilities a bidder needs, comma-separated, repeatable', collect)
    .option('--reserve-price <price>', 'auctions: the lowest bid taken')
    .option('--options <choices>', 'consensus: the choices a vote may take, comma-separated (default yes,no)', collect)
    .option('--weights <weights>', 'consensus: voter weights, a=3,b=1 or a JSON object')
    .option('--quorum <fraction>', 'consensus: the share of voters that must vote, in (0, 1]')
    .option('--deadline <duration>', 'how long answers are taken: 500ms, 10s, 2m, or milliseconds (default 10s)')
    .option('--param <key=value>', 'a protocol parameter, repeatable; the value is JSON when it parses, else text', collect)
    .option('--params <json>', 'protocol parameters as a JSON object (--param keys win)')
    .option('--round-id <id>', 'the round id (default: auction-<uuid> or consensus-<uuid>)')
    .option('--file <round.json>', 'the round\'s fields as a JSON file ("-" for stdin): protocol, item, subject, bidders, voters, capabilities, reservePrice, options, weights, quorum, deadline, params, roundId, timeout; flags override it')
    .option('--timeout <duration>', 'how long to wait for the outcome (default: the deadline + 30s; staged protocols such as english run a stage per deadline, so give them more)')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--protocols <module...>', 'modules that add protocols (default-export a protocol or call registerProtocol)', [])
    .option('--json', 'print the outcome as one JSON object')
    // A usage error (an unknown flag, a flag without its value) is bad input too: exit 2, before anything runs.
    .showHelpAfterError('(mabeam round start --help lists the flags)')
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : roundExitCodes.badInput))
    .action(async (opts: StartOptions) => {
      const plan = await planFromInput(opts);
      if (!plan) return;
      await startRound(program, logger, opts, plan);
    });
}

/** The round to start, or undefined after saying what is wrong (exit 2). */
async function planFromInput(opts: StartOptions): Promise<RoundPlan | undefined> {
  try {
    const { protocols } = await loadProtocolModules(opts.protocols);
    const file = opts.file === undefined ? undefined : { path: opts.file, text: await readRoundFile(opts.file) };
    return roundPlan(opts, protocols, file);
  } catch (error) {
    if (!isMabeamError(error) || !badInputCodes.has(error.code)) throw error;
    progress(`mabeam: ${error.message} [${error.code}]`);
    process.exitCode = roundExitCodes.badInput;
    return undefined;
  }
}

async function readRoundFile(path: string): Promise<string> {
  try {
    return path === '-' ? await new Response(process.stdin as unknown as ReadableStream).text() : await readFile(path, 'utf8');
  } catch (error) {
    throw new MabeamError('INVALID_OPTIONS', `cannot read the round file ${path}: ${describeError(error)}`);
  }
}

type Waited = { outcome: RoundOutcome } | { refused: MabeamError } | { failed: unknown } | { timedOut: true };

async function startRound(program: Command, logger: () => Logger, opts: StartOptions, plan: RoundPlan): Promise<void> {
  const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
  const c = await connect(endpoints, logger(), 'mabeam-round', { redis: false });
  const requestTopic = topicName(opts.prefix, plan.kind === 'auction' ? 'bid-requests' : 'proposals');
  const answerTopic = topicName(opts.prefix, plan.kind === 'auction' ? 'bids' : 'votes');
  const client = new RoundClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, clientId: 'mabeam-cli' });
  const answers = new AnswerWatch(c.kafka, answerTopic, plan.roundId, readerGroupId(opts.prefix, 'round-cli'));
  let ticker: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    // A prefix without its topics is bad input too: say so rather than wait on topics that are not there.
    const existing = new Set(await c.admin.listTopics());
    const missing = [requestTopic, answerTopic, topicName(opts.prefix, 'outcomes')].filter((t) => !existing.has(t));
    if (missing.length > 0) {
      progress(`mabeam: no topic ${missing.join(', ')}: is the prefix "${opts.prefix}" right? (mabeam topics apply --prefix ${opts.prefix} creates them) [INVALID_OPTIONS]`);
      process.exitCode = roundExitCodes.badInput;
      return;
    }
    // Both readers are in place before the request goes out, so nothing about the round is missed.
    await Promise.all([client.start(), answers.start(await partitionCount(c.admin, answerTopic))]);
    const startedAt = Date.now();
    const deadline = startedAt + plan.deadlineMs;
    const outcome = plan.kind === 'auction' ? client.auction({ ...plan.request, deadline }) : client.consensus({ ...plan.request, deadline });
    const settled = outcome.then(
      (o): Waited => ({ outcome: o }),
      (error: unknown): Waited => (isMabeamError(error, 'ROUND_REFUSED') ? { refused: error } : { failed: error }),
    );
    const timedOut = new Promise<Waited>((resolve) => {
      timer = setTimeout(() => resolve({ timedOut: true }), plan.timeoutMs);
    });
    const answerWord = plan.kind === 'auction' ? 'bid' : 'vote';
    const named = plan.open.eligible.length;
    const seen = () => `${answers.count}${named > 0 ? ` of ${named}` : ''} ${answerWord}${answers.count === 1 && named === 0 ? '' : 's'} seen`;
    progress(`round ${plan.roundId}: ${plan.protocol.name} ${plan.kind} requested on ${requestTopic}${named > 0 ? ` among ${plan.open.eligible.join(', ')}` : ''}, deadline in ${seconds(plan.deadlineMs)}`);
    ticker = setInterval(() => {
      const left = deadline - Date.now();
      progress(left > 0
        ? `round ${plan.roundId}: waiting for the outcome, deadline in ${seconds(left)}, ${seen()}`
        : `round ${plan.roundId}: deadline passed ${left > -1_000 ? 'just now' : `${seconds(-left)} ago`}, waiting for the outcome, ${seen()}`);
    }, 1_000);
    const result = await Promise.race([settled, timedOut]);
    clearInterval(ticker);
    report(plan, opts, result, startedAt);
  } finally {
    clearInterval(ticker);
    clearTimeout(timer);
    await Promise.allSettled([client.stop(), answers.stop()]);
    await c.close();
  }
}

/** Says how the round ended and sets the exit code. */
function report(plan: RoundPlan, opts: StartOptions, result: Waited, startedAt: number): void {
  if ('failed' in result) throw result.failed;
  if ('refused' in result) {
    progress(`mabeam: ${result.refused.message}`);
    process.exitCode = roundExitCodes.badInput;
    return;
  }
  if ('timedOut' in result) {
    const waited = Date.now() - startedAt;
    progress(
      `mabeam: no outcome for round ${plan.roundId} within ${seconds(waited)} (its deadline passed ${seconds(waited - plan.deadlineMs)} ago). ` +
        `Is a coordinator running on prefix "${opts.prefix}"? The round may still be decided later; its outcome would be on ${topicName(opts.prefix, 'outcomes')}.`,
    );
    if (opts.json) out(JSON.stringify({ roundId: plan.roundId, protocol: plan.protocol.name, kind: plan.kind, status: 'timeout', reason: `no outcome within ${seconds(waited)}` }));
    process.exitCode = roundExitCodes.noDecision;
    return;
  }
  const o = result.outcome;
  out(opts.json ? JSON.stringify(outcomeJson(o, plan)) : outcomeTable(o, plan));
  process.exitCode = o.status === 'decided' ? roundExitCodes.decided : roundExitCodes.noDecision;
}

const seconds = (ms: number): string => `${Math.max(0, Math.round(ms / 1000))} s`;

function parseJson(text: string | null | undefined): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function outcomeJson(o: RoundOutcome, plan: Pick<RoundPlan, 'kind'>): Record<string, unknown> {
  return {
    roundId: o.roundId, protocol: o.protocol, kind: o.kind ?? plan.kind, status: o.status, winners: o.winners, price: o.price,
    value: parseJson(o.value), reason: o.reason, details: parseJson(o.details), subject: parseJson(o.subject), eligible: o.eligible ?? [],
    eventId: o.envelope.eventId, eventTime: new Date(o.envelope.eventTime).toISOString(),
  };
}

const show = (value: unknown): string => (value === null || value === undefined ? '-' : typeof value === 'string' ? value : JSON.stringify(value));

/** The outcome for people: one row per field, and the counted answers when the details list them. */
export function outcomeTable(o: RoundOutcome, plan: Pick<RoundPlan, 'kind'>): string {
  const details = parseJson(o.details);
  const rest: Record<string, unknown> = details && typeof details === 'object' && !Array.isArray(details) ? { ...(details as Record<string, unknown>) } : {};
  const rows: string[][] = [
    ['round', o.roundId],
    ['protocol', `${o.protocol} (${o.kind ?? plan.kind})`],
    ['status', o.status],
    ['winners', o.winners.length > 0 ? o.winners.join(', ') : '-'],
    ['price', show(o.price)],
    ['value', show(parseJson(o.value))],
    ['reason', o.reason],
  ];
  const bids = rest['bids'];
  if (Array.isArray(bids) && bids.every((b) => b && typeof b === 'object' && 'agentId' in b)) {
    rows.push(['bids', bids.length === 0 ? 'none' : bids.map((b: { agentId: string; amount?: unknown }) => `${b.agentId} ${show(b.amount)}`).join(', ')]);
    delete rest['bids'];
  }
  const totals = rest['totals'];
  if (totals && typeof totals === 'object' && !Array.isArray(totals)) {
    const cast = typeof rest['cast'] === 'number' ? ` (${rest['cast']} cast)` : '';
    rows.push(['votes', Object.entries(totals).map(([choice, n]) => `${choice} ${show(n)}`).join(', ') + cast]);
    delete rest['totals'];
    delete rest['cast'];
  }
  if (Object.keys(rest).length > 0) rows.push(['details', JSON.stringify(rest)]);
  return table(rows);
}

async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  return metadata.topics[0]?.partitions.length ?? 0;
}

/**
 * Counts the answers (bids or votes) written for one round, for the
 * progress line: a throw-away consumer of the answer topic that reads only
 * the partition the round id hashes to, from its end when the round starts.
 * Only headers and keys are looked at; nothing is decoded.
 */
class AnswerWatch {
  count = 0;
  private consumer: Consumer | undefined;
  private readonly kafka: Kafka;
  private readonly topic: string;
  private readonly roundId: string;
  private readonly groupId: string;

  constructor(kafka: Kafka, topic: string, roundId: string, groupId: string) {
    this.kafka = kafka;
    this.topic = topic;
    this.roundId = roundId;
    this.groupId = groupId;
  }

  async start(partitions: number): Promise<void> {
    if (partitions === 0) return;
    const mine = partitionOfKey(Buffer.from(this.roundId), partitions);
    const others = Array.from({ length: partitions }, (_, p) => p).filter((p) => p !== mine);
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 250 });
    this.consumer = consumer;
    const ready = joinedAndFetched(consumer);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (others.length > 0) consumer.pause([{ topic: this.topic, partitions: others }]);
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const type = message.headers?.[eventHeaders.type]?.toString();
        if ((type === 'Bid' || type === 'Vote') && message.key?.toString() === this.roundId) this.count += 1;
      },
    });
    await ready;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

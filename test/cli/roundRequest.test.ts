import { describe, expect, it } from 'vitest';
import { mergeFields, parseDuration, parseFlags, parseJsonOrText, parseParam, parseRoundFile, parseWeights, planRound, roundPlan } from '../../src/cli/roundRequest.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { ProtocolRegistry } from '../../src/protocols/registry.ts';
import type { Protocol, RoundOpen } from '../../src/protocols/types.ts';

const registry = defaultProtocols();
const now = 1_800_000_000_000;
const plan = (flags: Parameters<typeof roundPlan>[0], file?: { text: string; path: string }) => roundPlan(flags, registry, file, { now });
const refused = (f: () => unknown): string => {
  try {
    f();
  } catch (error) {
    expect((error as { code?: string }).code).toBe('INVALID_OPTIONS');
    return (error as Error).message;
  }
  throw new Error('expected the input to be refused');
};

describe('round request parsing', () => {
  it('reads durations in ms, s, m, h or plain milliseconds', () => {
    expect(parseDuration('500ms', '--deadline')).toBe(500);
    expect(parseDuration('10s', '--deadline')).toBe(10_000);
    expect(parseDuration('1.5s', '--deadline')).toBe(1_500);
    expect(parseDuration('2m', '--deadline')).toBe(120_000);
    expect(parseDuration('1h', '--deadline')).toBe(3_600_000);
    expect(parseDuration('750', '--deadline')).toBe(750);
    for (const bad of ['', 'soon', '0', '0s', '-1s', '10 days', '1e3', 'NaN']) expect(refused(() => parseDuration(bad, '--deadline'))).toMatch(/^--deadline: expected a duration/);
  });

  it('takes JSON when it parses and text otherwise, but refuses text that starts like JSON', () => {
    expect(parseJsonOrText('{"gpuHours":4}', '--item')).toEqual({ gpuHours: 4 });
    expect(parseJsonOrText('3', '--item')).toBe(3);
    expect(parseJsonOrText('true', '--item')).toBe(true);
    expect(parseJsonOrText('upgrade the cluster?', '--item')).toBe('upgrade the cluster?');
    expect(parseJsonOrText('"quoted"', '--item')).toBe('quoted');
    expect(refused(() => parseJsonOrText('{gpuHours: 4}', '--item'))).toMatch(/^--item: not valid JSON/);
    expect(refused(() => parseJsonOrText('[1, 2', '--item'))).toMatch(/^--item: not valid JSON/);
    expect(refused(() => parseJsonOrText('1e400', '--item'))).toMatch(/Infinity is not a finite number/);
  });

  it('reads weights as pairs or a JSON object, and parameters as key=value', () => {
    expect(parseWeights('a=3, b=1.5', '--weights')).toEqual({ a: 3, b: 1.5 });
    expect(parseWeights('{"a":3}', '--weights')).toEqual({ a: 3 });
    expect(refused(() => parseWeights('a=heavy', '--weights'))).toMatch(/^--weights a: expected a number, got "heavy"/);
    expect(refused(() => parseWeights('a', '--weights'))).toMatch(/expected name=weight pairs/);
    expect(refused(() => parseWeights('{"a":"x"}', '--weights'))).toMatch(/^--weights a: expected a number/);
    expect(parseParam('increment=5')).toEqual(['increment', 5]);
    expect(parseParam('mode=time-sharing')).toEqual(['mode', 'time-sharing']);
    expect(parseParam('items=["cpu","gpu"]')).toEqual(['items', ['cpu', 'gpu']]);
    expect(parseParam('note=a=b')).toEqual(['note', 'a=b']);
    expect(refused(() => parseParam('increment'))).toMatch(/^--param: expected key=value/);
    expect(refused(() => parseParam('=5'))).toMatch(/^--param: expected key=value/);
  });

  it('reads flags: lists split on commas and repeat, --param keys win over --params', () => {
    const { fields, labels } = parseFlags({ bidders: ['a,b', 'c'], params: '{"increment":1,"maxStages":9}', param: ['increment=2'], reservePrice: '4', deadline: '2s' });
    expect(fields).toEqual({ bidders: ['a', 'b', 'c'], parameters: { increment: 2, maxStages: 9 }, reservePrice: 4, deadlineMs: 2_000 });
    expect(labels.bidders).toBe('--bidders');
    expect(refused(() => parseFlags({ bidders: ['a,b,a'] }))).toBe('--bidders: names "a" twice');
    expect(refused(() => parseFlags({ voters: [','] }))).toMatch(/^--voters: names nobody/);
    expect(refused(() => parseFlags({ reservePrice: '-1' }))).toMatch(/^--reserve-price: expected a number of at least 0, got -1/);
    expect(refused(() => parseFlags({ quorum: '0' }))).toMatch(/^--quorum: expected a fraction in \(0, 1\], got 0/);
    expect(refused(() => parseFlags({ params: '[1]' }))).toMatch(/^--params: expected a JSON object/);
    expect(refused(() => parseFlags({ roundId: ' ' }))).toMatch(/^--round-id: a round id must not be empty/);
  });

  it('reads a round file, names its fields in messages, and lets flags override it', () => {
    const file = parseRoundFile(JSON.stringify({ protocol: 'first-price', item: { gpuHours: 2 }, bidders: ['a', 'b'], deadline: '3s', timeout: 9000, params: { maxAmount: 100, x: 1 } }), 'round.json');
    expect(file.fields).toEqual({ protocol: 'first-price', item: { gpuHours: 2 }, bidders: ['a', 'b'], deadlineMs: 3_000, timeoutMs: 9_000, parameters: { maxAmount: 100, x: 1 } });
    const merged = mergeFields(file, parseFlags({ protocol: 'vickrey', param: ['x=2'] }));
    expect(merged.fields).toMatchObject({ protocol: 'vickrey', bidders: ['a', 'b'], parameters: { maxAmount: 100, x: 2 } });
    expect(merged.labels).toMatchObject({ protocol: '--protocol', bidders: 'round.json: "bidders"' });
    expect(refused(() => parseRoundFile('{"protocol": "first-price",', 'round.json'))).toMatch(/^round\.json: not valid JSON/);
    expect(refused(() => parseRoundFile('[]', 'round.json'))).toMatch(/^round\.json: expected a JSON object/);
    expect(refused(() => parseRoundFile('{"parameters": {}}', 'round.json'))).toMatch(/^round\.json: unknown field "parameters" \(did you mean "params"\?\)/);
    expect(refused(() => parseRoundFile('{"reservePrice": "5"}', 'round.json'))).toMatch(/^round\.json: "reservePrice": expected a number, got "5"/);
    expect(refused(() => parseRoundFile('{"deadline": 0}', 'round.json'))).toMatch(/^round\.json: "deadline": expected a duration/);
    expect(refused(() => parseRoundFile('{"voters": [1]}', 'round.json'))).toMatch(/^round\.json: "voters": 1 is not a name/);
    // The kind check names the field where it came from.
    expect(refused(() => plan({}, { text: '{"protocol": "first-price", "voters": ["a"]}', path: 'round.json' }))).toMatch(/^round\.json: "voters" is for consensus rounds/);
  });
});

describe('round planning', () => {
  it('builds an auction as the coordinator will see it', () => {
    const p = plan({ protocol: 'vickrey', item: '{"gpuHours":4}', bidders: ['a,b,c'], capabilities: ['gpu'], reservePrice: '5', deadline: '20s', param: ['maxAmount=1000'], roundId: 'r-1' });
    expect(p.kind).toBe('auction');
    expect(p.roundId).toBe('r-1');
    expect(p.timeoutMs).toBe(50_000);
    expect(p.open).toMatchObject({
      type: 'open', roundId: 'r-1', protocol: 'vickrey', kind: 'auction', eventTime: now, deadline: now + 20_000, eligible: ['a', 'b', 'c'],
      reservePrice: 5, parameters: { maxAmount: 1000 }, stage: 0, subject: '{"gpuHours":4}', requiredCapabilities: ['gpu'],
    });
    expect(p.request).toMatchObject({ protocol: 'vickrey', item: { gpuHours: 4 }, bidders: ['a', 'b', 'c'], requiredCapabilities: ['gpu'], reservePrice: 5 });
  });

  it('builds a consensus with its voters, options, weights and quorum', () => {
    const p = plan({ protocol: 'quorum', subject: 'upgrade?', voters: ['a,b,c'], options: ['yes,no,later'], weights: 'a=2', quorum: '0.6', timeout: '1m' });
    expect(p.kind).toBe('consensus');
    expect(p.roundId).toMatch(/^consensus-[0-9a-f-]{36}$/);
    expect(p.deadlineMs).toBe(10_000);
    expect(p.timeoutMs).toBe(60_000);
    expect(p.open).toMatchObject({ kind: 'consensus', eligible: ['a', 'b', 'c'], options: ['yes', 'no', 'later'], weights: { a: 2 }, quorum: 0.6, subject: '"upgrade?"', reservePrice: null });
  });

  it('refuses an unknown protocol, naming the known ones', () => {
    const message = refused(() => plan({ protocol: 'cheapest' }));
    expect(message).toBe(`unknown protocol "cheapest"; known: ${registry.names().join(', ')} (add your own with --protocols <module>)`);
    expect(refused(() => plan({}))).toMatch(/^name the protocol with --protocol \(known: barrier, .*\)/);
  });

  it('refuses fields of the other kind, and a consensus without voters', () => {
    expect(refused(() => plan({ protocol: 'first-price', subject: 'x' }))).toMatch(/^--subject is for consensus rounds, and "first-price" is an auction/);
    expect(refused(() => plan({ protocol: 'majority', voters: ['a'], bidders: ['b'] }))).toMatch(/^--bidders is for auction rounds, and "majority" is a consensus/);
    expect(refused(() => plan({ protocol: 'majority', reservePrice: '3', voters: ['a'] }))).toMatch(/^--reserve-price is for auction rounds/);
    expect(refused(() => plan({ protocol: 'leader-election' }))).toBe('"leader-election" is a consensus: name its voters with --voters a,b,c');
  });

  it("asks the protocol's own validate()", () => {
    expect(refused(() => plan({ protocol: 'english', param: ['increment=0'] }))).toBe('"english" refuses this round: parameters.increment must be more than 0, not 0.');
    expect(refused(() => plan({ protocol: 'weighted', voters: ['a'], weights: 'a=-1' }))).toMatch(/^"weighted" refuses this round: Weights must be finite and not negative/);
    expect(plan({ protocol: 'english', param: ['increment=5', 'startPrice=10'] }).open.parameters).toEqual({ increment: 5, startPrice: 10 });
  });

  it('hands a protocol of the user the RoundOpen, and says when its validate() throws', () => {
    const seen: RoundOpen[] = [];
    const lowest: Protocol = {
      name: 'lowest', kind: 'auction', complete: () => false, decide: () => ({ status: 'no-decision', winners: [], price: null, value: null, reason: '', details: {} }),
      validate: (open) => {
        seen.push(open);
        if (open.parameters['explode']) throw new Error('boom');
        return open.eligible.length < 2 ? 'needs two bidders at least' : undefined;
      },
    };
    const mine = new ProtocolRegistry().register(lowest);
    expect(refused(() => roundPlan({ protocol: 'lowest', bidders: ['a'] }, mine))).toBe('"lowest" refuses this round: needs two bidders at least');
    expect(refused(() => roundPlan({ protocol: 'lowest', bidders: ['a,b'], param: ['explode=true'] }, mine))).toBe('"lowest" refuses this round: the protocol could not check the request: boom');
    expect(roundPlan({ protocol: 'lowest', bidders: ['a,b'] }, mine).kind).toBe('auction');
    expect(seen.at(-1)).toMatchObject({ eligible: ['a', 'b'], protocol: 'lowest', kind: 'auction' });
    // planRound takes already-parsed fields too.
    expect(planRound({ fields: { protocol: 'lowest', bidders: ['a', 'b'] }, labels: {} }, mine).roundId).toMatch(/^auction-/);
  });
});

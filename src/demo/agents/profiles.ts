import { MabeamError } from '../../errors.ts';

/** Who a demo agent is: what it can do and what a GPU hour is worth to it. */
export interface Profile {
  id: string;
  capabilities: string[];
  /** Its valuation of a GPU hour: its sealed bid, its limit in an English auction and on a GPU price. */
  valuation: number;
  /** How long it thinks over a big request (8 GPU hours or more). */
  deliberateMs: number;
}

export const profiles: readonly Profile[] = [
  { id: 'ada', capabilities: ['gpu', 'plan', 'evaluate'], valuation: 42, deliberateMs: 0 },
  { id: 'bo', capabilities: ['gpu', 'code', 'evaluate'], valuation: 35, deliberateMs: 0 },
  { id: 'cy', capabilities: ['gpu', 'code', 'plan', 'evaluate'], valuation: 28, deliberateMs: 0 },
  { id: 'dee', capabilities: ['gpu', 'evaluate'], valuation: 31, deliberateMs: 3_000 },
];

export const agentIds = profiles.map((p) => p.id);

export function profileOf(id: string | undefined): Profile {
  const profile = profiles.find((p) => p.id === id);
  if (!profile) throw new MabeamError('INVALID_OPTIONS', `DEMO_AGENT must be one of ${agentIds.join(', ')}, not ${id ?? '(unset)'}.`);
  return profile;
}

/**
 * A team's quality, to maximise: each member's skill, how pairs work
 * together, and a cost per member. The best team is ada + bo + dee (1.15).
 */
export function teamQuality(team: readonly string[]): number {
  const skill: Record<string, number> = { ada: 0.6, bo: 0.5, cy: 0.4, dee: 0.3 };
  const pairs: Record<string, number> = { 'ada+bo': 0.3, 'bo+dee': 0.2, 'ada+cy': -0.25, 'cy+dee': -0.1 };
  const members = [...new Set(team)].sort();
  let quality = members.reduce((sum, m) => sum + (skill[m] ?? 0), 0);
  for (let i = 0; i < members.length; i++) for (let j = i + 1; j < members.length; j++) quality += pairs[`${members[i]}+${members[j]}`] ?? 0;
  return Math.round((quality - 0.25 * members.length) * 1000) / 1000;
}

import type { RoundOpen } from './types.ts';

/** A number parameter of a request: its value, the fallback when absent, or undefined when it is not a finite number. */
export function numberParameter(open: RoundOpen, name: string, fallback?: number): number | undefined {
  const value = open.parameters[name];
  if (value === undefined || value === null) return fallback;
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Why a number parameter is unusable, or undefined: required (no fallback) and range checks in one place. */
export function checkNumber(open: RoundOpen, name: string, rule: { required?: boolean; min?: number; positive?: boolean; integer?: boolean }): string | undefined {
  const raw = open.parameters[name];
  if (raw === undefined || raw === null) return rule.required ? `parameters.${name} is required.` : undefined;
  if (typeof raw !== 'number' || !Number.isFinite(raw)) return `parameters.${name} must be a finite number, not ${JSON.stringify(raw)}.`;
  if (rule.positive && raw <= 0) return `parameters.${name} must be more than 0, not ${raw}.`;
  if (rule.min !== undefined && raw < rule.min) return `parameters.${name} must be at least ${rule.min}, not ${raw}.`;
  if (rule.integer && !Number.isInteger(raw)) return `parameters.${name} must be a whole number, not ${raw}.`;
  return undefined;
}

/** The first reason among several checks, or undefined. */
export const firstProblem = (...problems: Array<string | undefined>): string | undefined => problems.find((p) => p !== undefined);

import { z } from 'zod';
import { MabeamError } from '../errors.ts';
import type { AgentDefinition } from './types.ts';

const agentId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128');

const definitionSchema = z.object({
  id: agentId,
  role: z.string().min(1, 'must not be empty'),
  capabilities: z.array(z.string().min(1, 'a capability must not be empty')),
  resources: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  initialState: z.function().optional(),
  onBidRequest: z.function().optional(),
  onProposal: z.function().optional(),
  onDirective: z.function().optional(),
  onTrial: z.function().optional(),
  onStep: z.function().optional(),
  stepCost: z.function().optional(),
}).refine((d) => !d.stepCost || d.onStep, { path: ['stepCost'], message: 'a step cost needs onStep, the handler that runs the steps it bids for' });

/**
 * Checks an agent definition once, when it is made, and returns it frozen.
 * A bad definition fails with INVALID_AGENT naming each wrong field.
 */
export function defineAgent<S = Record<string, unknown>>(definition: AgentDefinition<S>): Readonly<AgentDefinition<S>> {
  const parsed = definitionSchema.safeParse(definition);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'definition'}: ${i.message}`).join('; ');
    const id = typeof (definition as { id?: unknown })?.id === 'string' ? ` "${definition.id}"` : '';
    throw new MabeamError('INVALID_AGENT', `Invalid agent${id}: ${problems}`);
  }
  return Object.freeze({ ...definition, capabilities: [...new Set(definition.capabilities)] });
}

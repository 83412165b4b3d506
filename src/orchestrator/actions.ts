/**
 * The closed list of directive actions. A Directive's `action` is one of
 * these; the orchestrator refuses to send anything else. `stop` and
 * `migrate` are carried out by the agent host itself; every other action
 * is handed to the agent's `onDirective`. `award` is what a decided auction
 * tells its winners.
 */
export const directiveActions = [
  'start',
  'stop',
  'reconfigure',
  'migrate',
  'scale_up',
  'scale_down',
  'change_role',
  'update_communication',
  'adjust_parameters',
  'activate',
  'deactivate',
  'allocate_resources',
  'award',
] as const;

export type DirectiveAction = (typeof directiveActions)[number];

export function isDirectiveAction(action: unknown): action is DirectiveAction {
  return typeof action === 'string' && (directiveActions as readonly string[]).includes(action);
}

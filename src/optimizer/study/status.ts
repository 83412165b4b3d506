/**
 * Where a study stands, as plain JSON: what `mabeam optimize status --json`
 * prints and the live view's study page shows.
 */
import { bestTrials } from './best.ts';
import type { StudyRun } from './run.ts';

export function statusJson(run: StudyRun): Record<string, unknown> {
  const counts: Record<string, number> = {};
  for (const t of run.trials) counts[t.state] = (counts[t.state] ?? 0) + 1;
  return {
    studyId: run.studyId, name: run.study.spec.name ?? null, searcher: run.study.spec.searcher.name, pruner: run.study.spec.pruner.name, seed: run.seed,
    objectives: run.study.spec.objectives, budget: run.study.spec.budget, parallelism: run.study.spec.parallelism,
    proposed: run.trials.length, finished: run.finished, states: counts, completed: run.completed ? { reason: run.completed.reason, applied: run.completed.applied } : null,
    best: bestTrials(run), diverged: run.verify ? run.diverged.length : null, createdAt: new Date(run.createdAt).toISOString(),
  };
}

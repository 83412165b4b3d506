"""Optuna's TPESampler on Branin and Hartmann-6, the reference rows of
bench/optimizer-quality.ts (which spawns this script and reads its JSON):

    python3 bench/optuna_tpe.py [--trials 100] [--seeds 0,1,...,9] [--parallel 8] [--modes sequential,batch,batch-multivariate]

Modes:
  sequential          ask, evaluate, tell, one trial at a time;
  batch               `parallel` trials running at once through ask/tell with
                      constant_liar=True: every trial finished (oldest first)
                      is replaced by one new ask, which sees the others running;
  batch-multivariate  the same with multivariate=True.
Every other option is TPESampler's default (univariate, n_startup_trials 10,
n_ei_candidates 24, default gamma and weights, prior weight 1, magic clip).

Prints one JSON object on stdout: the Optuna version and, per function, mode
and seed, the best value after 25, 50 and 100 trials (and the whole
best-so-far curve). Progress goes to stderr.
"""

import argparse
import collections
import json
import math
import sys
import time
import warnings

import optuna

BRANIN_MIN = 0.397887
HARTMANN6_MIN = -3.32237

H6_ALPHA = [1.0, 1.2, 3.0, 3.2]
H6_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
H6_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(p):
    x = [p[f"x{j}"] for j in range(1, 7)]
    total = 0.0
    for i in range(4):
        inner = sum(H6_A[i][j] * (x[j] - 1e-4 * H6_P[i][j]) ** 2 for j in range(6))
        total += H6_ALPHA[i] * math.exp(-inner)
    return -total


FUNCTIONS = {
    "branin": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, BRANIN_MIN),
    "hartmann6": (hartmann6, {f"x{j}": (0.0, 1.0) for j in range(1, 7)}, HARTMANN6_MIN),
}


def suggest(trial, bounds):
    # Sorted names: the same order the TypeScript searchers visit parameters in.
    return {name: trial.suggest_float(name, low, high) for name, (low, high) in sorted(bounds.items())}


def run(fn, bounds, seed, trials, parallel, multivariate):
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=parallel > 1, multivariate=multivariate)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    running = collections.deque()
    asked = 0
    curve = []
    best = math.inf
    while len(curve) < trials:
        while len(running) < parallel and asked < trials:
            trial = study.ask()
            running.append((trial, suggest(trial, bounds)))
            asked += 1
        trial, params = running.popleft()
        value = fn(params)
        study.tell(trial, value)
        best = min(best, value)
        curve.append(best)
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", default=",".join(str(s) for s in range(10)))
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--modes", default="sequential,batch")
    parser.add_argument("--functions", default="branin,hartmann6")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    checkpoints = [n for n in (25, 50, 100) if n <= args.trials]
    results = []
    for name in args.functions.split(","):
        fn, bounds, minimum = FUNCTIONS[name]
        for mode in args.modes.split(","):
            if mode not in ("sequential", "batch", "batch-multivariate"):
                parser.error(f"unknown mode {mode}: use sequential, batch or batch-multivariate")
            parallel = 1 if mode == "sequential" else args.parallel
            for seed in seeds:
                started = time.time()
                curve = run(fn, bounds, seed, args.trials, parallel, mode == "batch-multivariate")
                results.append(
                    {
                        "function": name,
                        "mode": mode,
                        "parallel": parallel,
                        "seed": seed,
                        "bestAt": {str(n): curve[n - 1] for n in checkpoints},
                        "curve": curve,
                    }
                )
                sys.stderr.write(
                    f"optuna {mode} {name} seed {seed}: best {curve[-1]:.6g} (regret {curve[-1] - minimum:.3g}) in {time.time() - started:.1f} s\n"
                )
    json.dump({"optuna": optuna.__version__, "trials": args.trials, "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

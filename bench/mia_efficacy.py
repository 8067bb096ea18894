"""The SVC MIA against the protocol it stands for, and what it costs: on models of the default experiment
(digits, forget class 0), the efficacy that `mia_efficacy` gives beside the literature's protocol with 20
seeded draws of members (its mean, spread and range), the literature's code's own draw (the first len(test)
retain samples), an SVC on every member with balanced class weights, and the previous definition (a
logistic regression on confidence and entropy, members drawn with a seed). Then seconds per call of the new
and the previous definition on one model's outputs. Writes bench/results/mia_efficacy.{json,md}.

`--scale` measures instead what the cap MIA_MAX_PER_SIDE does at CIFAR-10's size (40,000 retain samples against
9,000 test samples, 5,000 forget samples), on synthetic confidences: the capped `mia_efficacy` against the same
quantiles uncapped (as many as the smaller side) and the literature's random draws of members, with the seconds
of each. Writes bench/results/mia_efficacy_scale.{json,md}."""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from _common import RESULTS, save

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
from cup_core.data import load_unlearning_data
from cup_core.metrics import MIA_MAX_PER_SIDE, MIA_SVC, mia_efficacy, predict_proba, quantile_sample, true_class_confidence

GRIDS = {"cup": (0.0, 0.25, 0.5, 0.75, 0.9, 1.0), "ga": (1e-5, 3e-5, 1e-4), "ft": (1e-3,), "rl": (1e-4,)}
DRAWS = 20


def svc_share(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray, **options) -> float:
    from sklearn.svm import SVC

    x = np.concatenate([members, non_members]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    attacker = SVC(**MIA_SVC, **options).fit(x, y)
    return 100.0 * float((attacker.predict(targets.reshape(-1, 1)) == 0).mean())


def previous_definition(probs: dict, labels: dict, seed: int) -> float:
    """mia_efficacy before schema 2: logistic regression on (true-class probability, entropy), standardised,
    members subsampled with `seed` to the number of non-members."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(name):
        p = probs[name]
        entropy = -(p * p.clamp_min(1e-12).log()).sum(dim=1).double().numpy()
        return np.stack([true_class_confidence(p, labels[name]), entropy], axis=1)

    members, non_members, targets = features("retain"), features("test"), features("forget")
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non_members))
    members = members[rng.choice(len(members), n, replace=False)]
    non_members = non_members[rng.choice(len(non_members), n, replace=False)]
    attacker = make_pipeline(StandardScaler(), LogisticRegression())
    attacker.fit(np.concatenate([members, non_members]), np.concatenate([np.ones(n), np.zeros(n)]))
    return 100.0 * float((attacker.predict(targets) == 0).mean())


def seconds_per_call(call, repeats: int = 30) -> float:
    """Median seconds, on one thread for BLAS and torch (how a sweep evaluates a digits point)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    return float(np.median(times))


def main() -> None:
    rows, timing = [], {}
    with tempfile.TemporaryDirectory() as cache_dir:
        experiment = Experiment(default_config("digits"), cache_dir)
        run_sweep(experiment, SweepPlan(GRIDS, (0,)), resolve_device("cpu"))
        data = load_unlearning_data(experiment.config)
        models = [(m, v, experiment.load_model(m, v, 0)) for m, values in GRIDS.items() for v in values]
        models += [(role, None, experiment.load_reference_model(role)) for role in ("original", "oracle")]
        for method, value, model in models:
            sets = {name: getattr(data, name) for name in ("retain", "test", "forget")}
            probs = {name: predict_proba(model, part) for name, part in sets.items()}
            labels = {name: part.y for name, part in sets.items()}
            conf = {name: true_class_confidence(probs[name], labels[name]) for name in sets}
            members, non_members, targets = conf["retain"], conf["test"], conf["forget"]
            n = len(non_members)
            draws = np.array([svc_share(np.random.default_rng(seed).choice(members, n, replace=False), non_members,
                                        targets) for seed in range(DRAWS)])
            previous = np.array([previous_definition(probs, labels, seed) for seed in range(DRAWS)])
            rows.append({
                "model": method if value is None else f"{method} {value:g}",
                "mia_efficacy": mia_efficacy(members, non_members, targets),
                "draws_mean": float(draws.mean()), "draws_sd": float(draws.std()),
                "draws_min": float(draws.min()), "draws_max": float(draws.max()),
                "first_n": svc_share(members[:n], non_members, targets),
                "all_members_weighted": svc_share(members, non_members, targets, class_weight="balanced"),
                "previous_seed0": float(previous[0]), "previous_min": float(previous.min()),
                "previous_max": float(previous.max()),
            })
            if (method, value) == ("cup", 0.5):
                timing = {
                    "new_s": seconds_per_call(lambda: mia_efficacy(members, non_members, targets)),
                    "previous_s": seconds_per_call(lambda: previous_definition(probs, labels, 0)),
                    "all_members_weighted_s": seconds_per_call(
                        lambda: svc_share(members, non_members, targets, class_weight="balanced"), 10),
                    "sizes": {"members": len(members), "non_members": n, "targets": len(targets)},
                }
    worst = max(abs(r["mia_efficacy"] - r["draws_mean"]) for r in rows)
    lines = ["SVC MIA on the default experiment (digits, forget class 0), seed-0 models: `mia_efficacy` (members "
             "stood for by quantiles, no seed) against the literature's protocol with "
             f"{DRAWS} seeded draws of members, the literature code's first-n draw, every member with balanced "
             "class weights, and the previous definition (logistic regression, seeded draws).", "",
             "| model | mia_efficacy | draws: mean ± sd [min, max] | first n | all members, weighted | "
             "previous (seed 0) [min, max over seeds] |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['mia_efficacy']:.1f} | {r['draws_mean']:.1f} ± {r['draws_sd']:.1f} "
                     f"[{r['draws_min']:.1f}, {r['draws_max']:.1f}] | {r['first_n']:.1f} | "
                     f"{r['all_members_weighted']:.1f} | {r['previous_seed0']:.1f} [{r['previous_min']:.1f}, "
                     f"{r['previous_max']:.1f}] |")
    lines += ["", f"Largest distance of `mia_efficacy` from the draws' mean: {worst:.2f} points.",
              f"Seconds per call on the cup 0.5 model ({timing['sizes']['members']} members, "
              f"{timing['sizes']['non_members']} non-members, {timing['sizes']['targets']} targets), median of "
              f"30, one thread: new {timing['new_s'] * 1e3:.1f} ms, previous {timing['previous_s'] * 1e3:.1f} ms, every member "
              f"weighted {timing['all_members_weighted_s'] * 1e3:.1f} ms."]
    table = "\n".join(lines)
    print(table)
    (RESULTS / "mia_efficacy.md").write_text(table + "\n")
    save("mia_efficacy", {"rows": rows, "timing": timing, "largest_distance_from_draws_mean": worst})


# CIFAR-10-like sizes (class-wise forgetting of one class of 50,000 training samples; 9,000 test samples of the
# retained classes) and true-class confidences 1 − Beta(1, b): b large is a model sure of the sample.
SCALE_SIZES = {"members": 40_000, "non_members": 9_000, "targets": 5_000}
SCALE_CASES = {  # name: (b of members, of non-members, of the forget samples)
    "generalising (members b = 60, non-members 15, forget 30)": (60.0, 15.0, 30.0),
    "overfit (members b = 300, non-members 4, forget 20)": (300.0, 4.0, 20.0),
}
SCALE_DRAWS = 3  # seeded draws of 9,000 members: each fit on 18,000 samples takes tens of seconds


def at_scale() -> None:
    rows = []
    for name, (member_b, non_member_b, target_b) in SCALE_CASES.items():
        rng = np.random.default_rng(0)
        members = 1 - rng.beta(1, member_b, SCALE_SIZES["members"])
        non_members = 1 - rng.beta(1, non_member_b, SCALE_SIZES["non_members"])
        targets = 1 - rng.beta(1, target_b, SCALE_SIZES["targets"])
        n = len(non_members)

        def timed(call):
            start = time.perf_counter()
            value = call()
            return value, time.perf_counter() - start

        capped, capped_s = timed(lambda: mia_efficacy(members, non_members, targets))
        uncapped, uncapped_s = timed(lambda: svc_share(quantile_sample(members, n), non_members, targets))
        draws, draw_s = [], []
        for seed in range(SCALE_DRAWS):
            value, seconds = timed(lambda: svc_share(np.random.default_rng(seed).choice(members, n, replace=False),
                                                     non_members, targets))
            draws.append(value)
            draw_s.append(seconds)
        row = {"case": name, "capped": capped, "capped_s": capped_s, "uncapped": uncapped, "uncapped_s": uncapped_s,
               "draws": draws, "draws_mean": float(np.mean(draws)), "draws_s": float(np.mean(draw_s))}
        print(row, flush=True)
        rows.append(row)
    lines = [f"SVC MIA at CIFAR-10's size on synthetic true-class confidences (1 − Beta(1, b)): "
             f"{SCALE_SIZES['members']:,} members (retain), {SCALE_SIZES['non_members']:,} non-members (test), "
             f"{SCALE_SIZES['targets']:,} forget samples. `mia_efficacy` stands for each side by "
             f"MIA_MAX_PER_SIDE = {MIA_MAX_PER_SIDE:,} quantiles; uncapped: {SCALE_SIZES['non_members']:,} quantiles "
             f"of the members against every non-member; draws: the literature's protocol, {SCALE_DRAWS} seeded draws "
             "of as many members as non-members. Seconds: one fit and prediction, one core.", "",
             "| case | capped (mia_efficacy) | uncapped quantiles | draws: mean [values] | seconds: capped / "
             "uncapped / one draw |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['capped']:.1f} | {r['uncapped']:.1f} | {r['draws_mean']:.1f} "
                     f"[{', '.join(f'{v:.1f}' for v in r['draws'])}] | {r['capped_s']:.1f} / {r['uncapped_s']:.1f} / "
                     f"{r['draws_s']:.1f} |")
    worst = max(abs(r["capped"] - r["uncapped"]) for r in rows)
    lines += ["", f"Largest distance of the capped value from the uncapped one: {worst:.2f} points."]
    table = "\n".join(lines)
    print(table)
    (RESULTS / "mia_efficacy_scale.md").write_text(table + "\n")
    save("mia_efficacy_scale", {"sizes": SCALE_SIZES, "cases": SCALE_CASES, "rows": rows,
                                "largest_capped_uncapped_distance": worst})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="the cap at CIFAR-10's size instead of the digits models")
    at_scale() if parser.parse_args().scale else main()

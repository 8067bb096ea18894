"""From the results and references tables to frontier tables and per-method summaries (what `report` prints and
the app plots). Pure on tables: nothing here reads the cache; the callers read an experiment's tables once
(Experiment.results(), .references(), .facts; pool.read_summary does it for `report`) and hand them in."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from ._json import strict
from .config import SCHEMA_VERSION, UnlearnRecipe
from .experiment import ExperimentFacts
from .methods import METHODS
from .calibration import Criteria, budget, criteria, search
from .calibration import values as calibration_values
from .methods import get_method
from .pareto import (HV_SCALE, REFERENCE_POINT, Normalisation, exclusive_contributions, hypervolume, hypervolume_2d, knee,
                     non_dominated, normalisation, normalised_hypervolume, objective_names, objectives, seed_mean)

BOOTSTRAP_SAMPLES = 2000  # seed resamples behind each 95 % interval
BOOTSTRAP_SEED = 0  # the intervals are reproducible
BASELINE = "cup"  # the method every other is judged against


def oracle_forget_acc(references: pd.DataFrame) -> float | None:
    """The oracle's forget accuracy from the references table (indexed by role), None without an oracle."""
    if "oracle" not in references.index:
        return None
    return float(references.loc["oracle", "forget_acc"])


def frontier_table(results: pd.DataFrame, references: pd.DataFrame, forget_kind: str) -> pd.DataFrame:
    """Seed-averaged points of `results` with their two objectives (`objective_x`, `objective_y`, averaged over
    seeds, with `objective_x_std`, `objective_y_std`) and, per method, whether each point is non-dominated.
    `references` (indexed by role) gives the oracle's forget accuracy, which random-subset forgetting needs."""
    if results.empty:
        empty = {name: pd.Series(dtype=float) for name in
                 ("objective_x", "objective_y", "objective_x_std", "objective_y_std", "seeds", "diverged")}
        return results.assign(**empty, non_dominated=pd.Series(dtype=bool))
    points = objectives(results, forget_kind, oracle_forget_acc(references))
    results = results.assign(objective_x=points[:, 0], objective_y=points[:, 1],
                             diverged=results["diverged_at_step"].notna().astype(float))  # mean: share of seeds
    table = seed_mean(results, spread=("objective_x", "objective_y"))
    points, front = objective_points(table), np.zeros(len(table), dtype=bool)
    for rows in method_rows(table).values():  # on arrays: a groupby writing into the table cost more
        front[rows] = non_dominated(points[rows])
    return table.assign(non_dominated=front)


def reference_table(references: pd.DataFrame, forget_kind: str) -> pd.DataFrame:
    """The original's and the oracle's metrics, indexed by role, placed in the same objective space."""
    if references.empty:
        return references.assign(objective_x=pd.Series(dtype=float), objective_y=pd.Series(dtype=float))
    points = objectives(references, forget_kind, oracle_forget_acc(references))
    return references.assign(objective_x=points[:, 0], objective_y=points[:, 1])


def summary(results: pd.DataFrame, references: pd.DataFrame, facts: ExperimentFacts,
            frontier: pd.DataFrame | None = None, protocol: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `report --json` prints: references, and per method its hypervolumes with their intervals, its
    calibration, its verdict against CUP and its best points (see the README's "Comparing methods").

    `results` are the experiment's points, or some of them (the app compares equal grids); `references` its
    references table and `facts` what the report names it by. With `protocol` (pool.Pool.protocol()), the results
    are a pool's (pool.Pool.results(): an `lr` column; `references` and `facts` its first member's), each method's
    solution set the union of its points over the learning rates; without, the single recipe of `facts`' config.
    `frontier`: frontier_table(results, references, kind), where the caller has it already (the app: built once
    per view)."""
    from .pool import single_protocol

    pooled = protocol is not None
    kind = facts.config.forget.kind
    frontier = frontier_table(results, references, kind) if frontier is None else frontier
    oracle_forget = oracle_forget_acc(references)
    per_method = {name: rows for name, rows in frontier.groupby("method")}
    runs_of = {name: rows for name, rows in results.groupby("method")}  # each method's runs, in results' order
    intervals = max((len(rows) for rows in per_method.values()), default=1) - 1
    norm = normalisation([objective_points(rows) for rows in per_method.values()], intervals)
    seeds_of = {name: sorted(int(v) for v in runs_of[name]["seed"].unique()) for name in per_method}
    measure = _criteria(references, facts.num_classes)
    resampled: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def bootstrap(name: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """_bootstrap of a method's runs over `seeds`, once: the pairs against CUP mostly resample the seeds that
        each method's own interval did."""
        if (name, *seeds) not in resampled:
            resampled[name, *seeds] = _bootstrap(runs_of[name], seeds, kind, oracle_forget, norm)
        return resampled[name, *seeds]

    methods: dict[str, Any] = {}
    for name, rows in per_method.items():
        per_seed, per_seed_normalised = {}, {}
        own = runs_of[name]
        own_points, own_seeds = objectives(own, kind, oracle_forget), own["seed"].to_numpy()
        for seed in np.unique(own_seeds):
            points = own_points[own_seeds == seed]
            per_seed[int(seed)] = hypervolume(points)
            per_seed_normalised[int(seed)] = None if norm is None else normalised_hypervolume(points, norm)
        best = rows.loc[rows["avg_gap"].idxmin()] if rows["avg_gap"].notna().any() else None
        knee_at = knee(objective_points(rows))
        paper, normalised = (np.zeros(0), np.zeros(0)) if norm is None else bootstrap(name, seeds_of[name])
        methods[name] = {
            "label": METHODS[name].label if name in METHODS else name,
            "knob": rows["knob"].iloc[0],
            "points": len(rows),
            "seeds": sorted(per_seed),
            "hypervolume": hypervolume(objective_points(rows)),
            "hypervolume_ci95": _interval(paper),
            "hypervolume_normalised": None if norm is None else normalised_hypervolume(objective_points(rows), norm),
            "hypervolume_normalised_ci95": _interval(normalised),
            "hypervolume_mean": float(np.mean(list(per_seed.values()))),
            "hypervolume_std": float(np.std(list(per_seed.values()))),
            "hypervolume_per_seed": per_seed,
            "hypervolume_normalised_per_seed": per_seed_normalised,  # each seed's points in the normalised space
            "calibration": (_pooled_calibration(name, rows, own, measure) if pooled
                            else _calibration(name, rows, own, measure)),
            "moves": None if measure is None else _moves(rows, measure),
            "versus_cup": None,
            "controllability": controllability(rows, measure),
            "non_dominated_values": rows.loc[rows["non_dominated"], "value"].tolist(),
            "recommended_value": None if knee_at is None else float(rows["value"].iloc[knee_at]),
            **({"recommended_lr": None if knee_at is None else _lr(rows["lr"].iloc[knee_at])} if pooled else {}),
            "best_avg_gap": None if best is None else {"value": float(best["value"]), "avg_gap": float(best["avg_gap"]),
                                                       **({"lr": _lr(best["lr"])} if pooled else {})},
            "mean_seconds": float(rows["seconds"].mean()),
            "table": _records(rows),
        }
    if BASELINE in methods and norm is not None:
        for name, method in methods.items():
            if name == BASELINE:
                continue
            common = sorted(set(seeds_of[name]) & set(seeds_of[BASELINE]))  # paired: the same seeds resampled
            pair = [bootstrap(m, common)[1] for m in (name, BASELINE)]
            method["versus_cup"] = _versus(method, methods[BASELINE], *pair)
    return {
        "experiment": facts.id,
        "schema": SCHEMA_VERSION,  # of every metric below: results() holds only rows of this schema
        "folder": facts.folder,
        "protocol": single_protocol(facts.config) if protocol is None else protocol,
        "config": facts.config.to_dict(),
        "forget_set": facts.config.forget.describe(),
        "hypervolume": {"objectives": list(objective_names(kind)), "reference_point": list(REFERENCE_POINT),
                        "scale": "area / (100 · 100)", "over": "seed-averaged points",
                        "definition": "the paper's (spec §5): reference (0, 0), divided by 100 · 100"},
        "normalisation": None if norm is None else norm.to_dict(),
        "hypervolume_normalised": {
            "definition": "each objective normalised between the ideal (0) and the nadir (1) of the non-dominated "
                          "set of the union of the compared methods' seed-mean points; reference point 1 + 1/H in "
                          "each normalised coordinate, H = grid intervals (Ishibuchi et al. 2018); pymoo's HV",
            "intervals": intervals},
        "uncertainty": {"method": f"bootstrap over seeds, {BOOTSTRAP_SAMPLES} resamples, percentile 95 % interval; "
                                  "differences from CUP resample the same seeds for both (paired)",
                        "verdict": "win / loss: the method's normalised hypervolume is above / below CUP's with the "
                                   "95 % interval of the difference excluding 0; tie: it contains 0, or one seed "
                                   "gives no interval"},
        "references": {row["role"]: strict(row.drop("role").to_dict()) for _, row in references.iterrows()},
        "methods": methods,
    }


def objective_points(rows: pd.DataFrame) -> np.ndarray:
    """(N, 2): the rows' two objectives, column by column (selecting two columns of a wide frame costs pandas ten
    times more)."""
    return np.column_stack([rows["objective_x"].to_numpy(dtype=float), rows["objective_y"].to_numpy(dtype=float)])


def method_rows(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each method's row positions in `table`, in knob-value order, in one pass: `table[table["method"] == name]`
    per method costs pandas a text comparison and a take of every column (pyarrow text), most of a first build of
    Compare's view, figures and scrubber."""
    methods, order = table["method"].to_numpy(), np.argsort(table["value"].to_numpy(dtype=float), kind="stable")
    return {name: order[methods[order] == name] for name in pd.unique(methods)}


def contributions(frontier: pd.DataFrame, norm: dict[str, Any] | None) -> pd.Series:
    """Each seed-mean point's exclusive contribution to its method's normalised hypervolume (hover text)."""
    out = np.full(len(frontier), np.nan)
    if norm is not None:
        space = Normalisation(tuple(norm["ideal"]), tuple(norm["nadir"]), int(norm["intervals"]))
        points = objective_points(frontier)
        for rows in method_rows(frontier).values():
            out[rows] = exclusive_contributions(points[rows], space)
    return pd.Series(out, index=frontier.index)


def _bootstrap(results: pd.DataFrame, seeds: list[int], kind: str, oracle_forget: float | None,
               norm: Normalisation) -> tuple[np.ndarray, np.ndarray]:
    """The paper's and the normalised hypervolume of one method's seed-mean points over resamples of `seeds`
    (BOOTSTRAP_SAMPLES each; the resamples depend only on the number of seeds, so two methods bootstrapped over
    the same seeds are paired); empty arrays with fewer than 2 seeds."""
    if len(seeds) < 2 or results.empty:
        return np.zeros(0), np.zeros(0)
    points = objectives(results, kind, oracle_forget)
    keys = results[["value"]].to_numpy(dtype=float)
    if "lr" in results.columns:  # pooled: a point is a (learning rate, value); -1 stands for "none" (NaN)
        keys = np.column_stack([results["lr"].fillna(-1.0).to_numpy(dtype=float), keys])
    # (V, S, 2): each point's run per seed, NaN where a seed lacks the value (a pivot table, in numpy: pandas'
    # took most of the bootstrap's time)
    _, point = np.unique(keys, axis=0, return_inverse=True)
    point, seed = point.reshape(-1), pd.Index(seeds).get_indexer(results["seed"].to_numpy())
    taken = seed >= 0  # runs of other seeds are not resampled here
    totals, runs = np.zeros((point.max() + 1, len(seeds), 2)), np.zeros((point.max() + 1, len(seeds), 1))
    np.add.at(totals, (point[taken], seed[taken]), points[taken])
    np.add.at(runs, (point[taken], seed[taken]), 1.0)
    with np.errstate(invalid="ignore"):
        cube = totals / runs
    distinct, inverse = _resamples(len(seeds))
    present = np.isfinite(cube).all(axis=-1)  # (V, S)
    sums = np.einsum("ds,vsk->dvk", distinct, np.where(present[..., None], cube, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / (distinct @ present.T)[..., None]  # (D, V, 2), NaN where no resampled seed has the value
    reference = np.full(2, norm.reference_offset)
    paper = np.array([hypervolume_2d(-mean, np.zeros(2)) / HV_SCALE for mean in means])[inverse]
    normalised = np.array([hypervolume_2d(norm.minimised(mean), reference) for mean in means])[inverse]
    return paper, normalised


@functools.cache
def _resamples(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap's BOOTSTRAP_SAMPLES resamples of `count` seeds (they depend on nothing else, so every method
    and pair over that many seeds draws the same ones): the distinct draws as how many times each seed is drawn
    (D, count), at most C(2S-1, S) of them (126 for 5 seeds), and which of them each resample is (B,). A resample's
    hypervolumes depend only on its counts, so each distinct one is averaged and swept once."""
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, count, size=(BOOTSTRAP_SAMPLES, count))
    counts = (draws[:, :, None] == np.arange(count)).sum(axis=1).astype(float)  # times each seed is drawn
    distinct, inverse = np.unique(counts, axis=0, return_inverse=True)
    for array in (distinct, inverse):
        array.flags.writeable = False  # shared by every call
    return distinct, inverse.reshape(-1)


def _interval(samples: np.ndarray) -> list[float] | None:
    if len(samples) == 0:
        return None
    low, high = np.percentile(samples, [2.5, 97.5])
    return [float(low), float(high)]


def _versus(method: dict[str, Any], baseline: dict[str, Any], mine: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    """The method's normalised hypervolume against CUP's: the difference (method − CUP), its paired bootstrap
    interval and the verdict from the method's side (win: above CUP's)."""
    difference = method["hypervolume_normalised"] - baseline["hypervolume_normalised"]
    if len(mine) == 0:
        return {"difference": difference, "difference_ci95": None, "verdict": "tie",
                "why": "fewer than 2 seeds in common with CUP: no interval, so seed noise cannot be ruled out"}
    interval = _interval(mine - theirs)
    verdict = "win" if interval[0] > 0 else "loss" if interval[1] < 0 else "tie"
    found = {"difference": difference, "difference_ci95": interval, "verdict": verdict}
    if np.ptp(mine) == 0 and np.ptp(theirs) == 0:  # every resample the same: the seeds change nothing
        found["why"] = ("every seed gave the same points (the seed changes nothing here, e.g. full-batch steps), so "
                        "the interval has no width: the verdict compares two deterministic runs, where even one "
                        "sample's difference counts")
    return found


def _criteria(references: pd.DataFrame, num_classes: int) -> Criteria | None:
    if "original" not in references.index:
        return None
    oracle = references.loc["oracle"].to_dict() if "oracle" in references.index else None
    return criteria(references.loc["original"].to_dict(), oracle, num_classes)


def _moves(rows: pd.DataFrame, measure: Criteria) -> bool:
    """Whether any of the method's seed-mean points left the original (calibration.MOVE of the ua span)."""
    diverged = rows["diverged"].to_numpy() if "diverged" in rows.columns else np.zeros(len(rows))
    return any(measure.respond({"ua": ua, "retain_acc": retain}, bool(share > 0), 0.0).moved
               for ua, retain, share in zip(rows["ua"].tolist(), rows["retain_acc"].tolist(), diverged))


def _calibration(name: str, rows: pd.DataFrame, runs: pd.DataFrame,
                 measure: Criteria | None) -> dict[str, Any] | None:
    """None for a knob with an intrinsic range; else the search that found the grid, replayed on the method's
    `runs`, or a fixed grid's range (`status` "fixed": `--no-calibrate`, `--grid`, or an older sweep)."""
    method = get_method(name)
    if not method.calibrate:
        return None
    values = sorted(rows["value"])
    fixed = {"runs": 0, "seconds": 0.0, "range": [values[0], values[-1]], "status": "fixed"}
    if measure is None or len(values) < 2:
        return fixed
    seed = int(runs["seed"].min())
    runs = runs[runs["seed"] == seed]
    first_at: dict[float, int] = {}  # value -> its first run's position in `runs`
    for position, value in enumerate(runs["value"].tolist()):
        first_at.setdefault(value, position)

    def respond(value: float):
        if value not in first_at:
            return None
        row = runs.iloc[first_at[value]]
        return measure.respond(row.to_dict(), pd.notna(row["diverged_at_step"]), float(row["seconds"]))

    calibration = search(method, respond, budget(len(values)), seed)
    if calibration.status == "pending" or list(calibration_values(method, calibration, len(values))) != values:
        return fixed
    return calibration.to_dict()


def _lr(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _pooled_calibration(name: str, rows: pd.DataFrame, runs: pd.DataFrame,
                        measure: Criteria | None) -> dict[str, Any] | None:
    """A pooled method's calibration: each learning rate's (its member's search, replayed as `_calibration`),
    summed: runs and seconds added, the range the union of theirs, `per_lr` each one's."""
    if not get_method(name).calibrate:
        return None
    parts = {}
    for lr, lr_rows in rows.groupby(rows["lr"].fillna(-1.0), sort=False):
        parts[lr] = _calibration(name, lr_rows, runs[runs["lr"].fillna(-1.0) == lr], measure)
    statuses = {part["status"] for part in parts.values()}
    return {"runs": sum(part["runs"] for part in parts.values()),
            "seconds": sum(part["seconds"] for part in parts.values()),
            "range": [min(part["range"][0] for part in parts.values()), max(part["range"][1] for part in parts.values())],
            "status": statuses.pop() if len(statuses) == 1 else "mixed",
            "per_lr": [{"lr": None if lr == -1.0 else float(lr), **part} for lr, part in parts.items()]}


def controllability(rows: pd.DataFrame, measure: Criteria | None = None) -> dict[str, float | None]:
    """How the knob moves forgetting: Spearman's ρ between knob value and ua (±1: monotone), the span of ua
    (percentage points) that the grid covers and, given the references' criteria, that span's share of the
    span from the original's ua to the target's. ρ is None where ua or the knob does not vary."""
    from scipy.stats import spearmanr  # here: scipy.stats costs a quarter of the app's first import otherwise

    ua, value = rows["ua"].to_numpy(dtype=float), rows["value"].to_numpy(dtype=float)
    finite = np.isfinite(ua)
    ua, value = ua[finite], value[finite]
    span = float(ua.max() - ua.min()) if len(ua) else 0.0
    rho = None
    if len(ua) >= 2 and len(np.unique(ua)) > 1 and len(np.unique(value)) > 1:
        rho = float(spearmanr(value, ua).statistic)
    share = None if measure is None else span / measure.span
    return {"spearman_value_ua": rho, "ua_span": span, "ua_span_share": share}


REPORT_COLUMNS = ["value", "seeds", "forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua",
                  "mia_efficacy", "avg_gap", "seconds", "non_dominated"]


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The table's rows; a pooled table's have the learning rate first (null: a method that uses none)."""
    columns = (["lr"] if "lr" in rows.columns else []) + REPORT_COLUMNS
    # column by column (as Python values): a frame's to_dict boxes every cell, ten times slower
    return [strict(dict(zip(columns, values))) for values in zip(*(rows[column].tolist() for column in columns))]


# --- Picking a point, and tables for a paper --------------------------------------------------------------

def best_under_constraints(frontier: pd.DataFrame, min_retain_acc: float, min_test_acc: float) -> pd.Series | None:
    """"Retain accuracy at least x and test accuracy at least y: which point forgets most?" over every method's
    seed-mean points (`frontier_table`): the one with the highest forgetting objective (objective_y: UA, or for
    random-subset forgetting 100 − |forget acc − the oracle's|, so not over-forgetting), ties broken by retain
    then test accuracy. Runs that diverged in any seed are left out; None when no point qualifies."""
    if frontier.empty:
        return None
    diverged = frontier["diverged"].fillna(0.0) > 0 if "diverged" in frontier else False
    chosen = frontier[(frontier["retain_acc"] >= min_retain_acc) & (frontier["test_acc"] >= min_test_acc)
                      & np.isfinite(frontier["objective_y"]) & ~diverged]
    if chosen.empty:
        return None
    return chosen.sort_values(["objective_y", "retain_acc", "test_acc", "method", "value"],
                              ascending=[False, False, False, True, True]).iloc[0]


def run_settings(frontier: pd.DataFrame, results: pd.DataFrame, recipe: UnlearnRecipe) -> pd.DataFrame:
    """`frontier` with each point's run settings: the learning rate and epochs it ran with under the experiment's
    unlearning `recipe` (a learning-rate knob or a method's own rate replaces the recipe's) and its seeds as text
    ("0, 1") from `results`."""

    def lr(method: str, value: float) -> float:
        try:
            return float(get_method(method).setup(value, recipe)[1].lr)
        except ValueError:  # a method this version does not know, or a value outside its bounds
            return float("nan")

    if frontier.empty:
        return frontier.assign(seed_list=pd.Series(dtype=str), lr=pd.Series(dtype=float), epochs=recipe.epochs)
    seeds: dict[tuple[str, float], set[int]] = {}
    for method, value, seed in zip(results["method"], results["value"], results["seed"]):
        seeds.setdefault((method, value), set()).add(int(seed))
    points = list(zip(frontier["method"], frontier["value"]))  # columns, not rows: a row of a wide table is slow
    return frontier.assign(
        seed_list=pd.Series([", ".join(map(str, sorted(seeds[point]))) if point in seeds else None for point in points],
                            index=frontier.index, dtype=str),
        lr=[lr(method, value) for method, value in points], epochs=recipe.epochs)


HYPERVOLUME_COLUMNS = ["method", "label", "knob", "points", "seeds", "hypervolume", "hypervolume_low",
                       "hypervolume_high", "normalised", "normalised_low", "normalised_high", "verdict", "difference",
                       "difference_low", "difference_high", "calibration", "calibration_runs", "calibration_seconds"]


def hypervolume_rows(result: dict[str, Any]) -> pd.DataFrame:
    """`summary`'s hypervolumes as one row per method (best normalised first): both hypervolumes with their 95 %
    intervals, the verdict against CUP, and the calibration's status and cost. What the CSV and LaTeX tables hold."""
    rows = []
    for name, method in result["methods"].items():
        paper = method["hypervolume_ci95"] or [None, None]
        normalised = method["hypervolume_normalised_ci95"] or [None, None]
        versus = method["versus_cup"] or {}
        difference = versus.get("difference_ci95") or [None, None]
        calibration = method["calibration"]
        rows.append({
            "method": name, "label": method["label"], "knob": method["knob"], "points": method["points"],
            "seeds": len(method["seeds"]), "hypervolume": method["hypervolume"], "hypervolume_low": paper[0],
            "hypervolume_high": paper[1], "normalised": method["hypervolume_normalised"],
            "normalised_low": normalised[0], "normalised_high": normalised[1],
            "verdict": versus.get("verdict", "baseline" if name == BASELINE else ""),
            "difference": versus.get("difference"), "difference_low": difference[0],
            "difference_high": difference[1],
            "calibration": "none" if calibration is None else calibration["status"],
            "calibration_runs": 0 if calibration is None else calibration["runs"],
            "calibration_seconds": 0.0 if calibration is None else calibration["seconds"]})
    table = pd.DataFrame(rows, columns=HYPERVOLUME_COLUMNS)
    return table.sort_values("normalised", ascending=False, na_position="last", ignore_index=True, kind="stable")


def hypervolume_csv(result: dict[str, Any]) -> str:
    return hypervolume_rows(result).to_csv(index=False)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"β": r"$\beta$", "λ": r"$\lambda$", "γ": r"$\gamma$", "ℓ": r"$\ell$", "−": "-", "…": r"\ldots{}",
                  "·": r"$\cdot$", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    """`text` as LaTeX source that prints it: the ten special characters escaped, and the Greek letters and
    signs of method and knob names written in math mode (pdflatex without extra packages takes them)."""
    escaped = "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))
    return "".join(_LATEX_UNICODE.get(char, char) for char in escaped)


def _with_interval(value: float | None, low: float | None, high: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "---"
    text = f"{value:.{digits}f}"
    if low is None or high is None or np.isnan(low) or np.isnan(high):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def hypervolume_latex(result: dict[str, Any]) -> str:
    """The hypervolume table as a LaTeX booktabs table (needs \\usepackage{booktabs}): per method its knob, both
    hypervolumes with their bootstrap 95 % intervals, its verdict against CUP and what calibrating it cost."""
    table = hypervolume_rows(result)
    config = result["config"]
    seeds = sorted({seed for method in result["methods"].values() for seed in method["seeds"]})
    lines = [r"\begin{table}[t]", r"  \centering",
             "  \\caption{" + latex_escape(
                 f"Hypervolume of each method's set of seed-mean points: {config['dataset']}, forget "
                 f"{result['forget_set']}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''} (experiment "
                 f"{result['experiment']}). Paper's: reference (0, 0), divided by 100 · 100; normalised: "
                 "between the ideal and nadir of all methods' non-dominated points, reference 1 + 1/H. "
                 "Brackets: bootstrap 95 % intervals over seeds; vs CUP: win / loss when the paired interval of the "
                 "difference excludes 0, else tie.") + "}",
             "  \\label{tab:hypervolume-" + latex_escape(result["experiment"]) + "}",
             r"  \begin{tabular}{llllll}", r"    \toprule",
             r"    Method & Knob & Paper's HV [95\,\% CI] & Normalised HV [95\,\% CI] & vs CUP & Calibration \\",
             r"    \midrule"]
    for row in table.to_dict("records"):
        calibration = ("none (intrinsic range)" if row["calibration"] == "none" else
                       "fixed grid" if row["calibration"] == "fixed" else
                       f"{row['calibration_runs']} runs, {row['calibration_seconds']:.1f} s")
        cells = [row["label"], row["knob"],
                 _with_interval(row["hypervolume"], row["hypervolume_low"], row["hypervolume_high"], 4),
                 _with_interval(row["normalised"], row["normalised_low"], row["normalised_high"], 3),
                 "---" if row["verdict"] == "baseline" else row["verdict"], calibration]
        lines.append("    " + " & ".join(latex_escape(cell) for cell in cells) + r" \\")
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)

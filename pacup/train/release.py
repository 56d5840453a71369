"""Turn training runs into released weights and the model card's score tables.

A developer's tool (the dev sets are not part of the repository)::

    python -m pacup.train.release --runs runs --depth-data ../shared/data/depth/motorcycle \\
        --flow-data ../shared/data/flow/flyingchairs9 --json weights/scores.json [--write-weights]

For every task and factor with a run folder ``RUNS/<task>-x<f>-pac`` it evaluates, on the
task's dev set and with the task's protocol (B for depth, antialiased bilinear for flow),
the classical baselines, that run's model and the ablations trained beside it
(``RUNS/<task>-x<f>-k1``, ``RUNS/<task>-x<f>-concat``, where present), exactly as
``pacup eval`` does; prints one markdown table per task; writes every result as JSON; and,
with ``--write-weights``, copies the PAC model to ``weights/<task>-x<f>.safetensors`` with
clean metadata and prints the sha256 and scores that :mod:`pacup.models.registry` records.
The ablations go to ``weights/ablations/<task>-x<f>-<k1|concat>.safetensors``, listed with
their sha256 and scores in ``weights/ablations/index.json``: they are not part of the
package, but with them anyone can rerun the model card's comparisons with ``pacup eval``.

``--released`` scores ablation runs against the released model of their task and factor
(the registry's weights) where ``RUNS`` holds no PAC run: ablations retrained after the
model they are compared with shipped, or whose PAC run is gone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .evaluate import default_protocol, evaluate, primary_metric
from .folders import load_dataset

BASELINES = ("bicubic", "guided", "jbu")
ABLATION_RUNS = (("k1", "K = 1 ablation"), ("concat", "concat-CNN ablation"))
RELEASED_LABEL = "PacJointUpsample (released)"


def train_seconds(log: list[dict]) -> float:
    """Training time of a run from its log lines: the last ``seconds``, which counts every
    session of a resumed run. Logs written before checkpoints carried their time restart
    the clock at each ``--resume``; for those, each segment's last reading (a segment ends
    where the clock drops) is added up."""
    total, prev = 0.0, 0.0
    for x in log:
        s = float(x.get("seconds", prev))
        if s < prev:
            total += prev
        prev = s
    return total + prev


def _source_run(cfg: dict) -> Path | None:
    """The run folder a fine-tune started from: ``--init-from``'s folder when it holds a
    run's config and log (None for a registry name or a bare file). A relative path is read
    from the current folder, as the training run read it: run the release tool from there."""
    src = cfg.get("init_from")
    folder = Path(src).parent if src else None
    ok = folder is not None and (folder / "config.json").is_file() and (folder / "log.jsonl").is_file()
    return folder if ok else None


def _run_chain(run: Path) -> list[Path]:
    """``run`` and the runs it was fine-tuned from (:func:`_source_run`), first to last."""
    chain = [run]
    while (src := _source_run(json.loads((chain[0] / "config.json").read_text()))) is not None:
        chain.insert(0, src)
    return chain


def _run_summary(run: Path) -> dict:
    """A run's facts for the score rows; a fine-tune's also carry, under ``init_from``, those
    of the run it started from (and so on back), so that its steps and minutes are not read
    as the whole training."""
    cfg = json.loads((run / "config.json").read_text())
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    # A run with a moving average ships the average: its validation is the one to report.
    key = "ema_val_rel_rmse" if cfg.get("ema") else "val_rel_rmse"
    out = {"factor": cfg["factor"], "steps": log[-1]["step"] if log else 0,
           "minutes": round(train_seconds(log) / 60, 1),
           "batch": cfg["batch"], "crop": cfg["crop"], "lr": cfg["lr"], "loss": cfg["loss"],
           "ema": cfg.get("ema", 0.0), "val_rel_rmse": next((x[key] for x in reversed(log) if key in x), None)}
    src = _source_run(cfg)
    if src is not None:
        out["lr_schedule"] = cfg.get("lr_schedule", "cosine")
        out["init_from"] = _run_summary(src)
    return out


def _training_words(facts: dict) -> str:
    """'for 3000 steps (batch 2, 256-px crops), then fine-tuned for 500 steps (batch 2,
    256-px crops; MSE loss, constant learning rate 0.0002)' from a run summary
    (:func:`_run_summary`)."""
    def one(f, more=()):
        parts = [f"batch {f['batch']}", f"{f['crop']}-px crops"]
        if f.get("ema"):
            parts.append(f"moving average of the weights with decay {f['ema']}")
        return f"{f['steps']} steps ({', '.join(parts)}" + (f"; {', '.join(more)}" if more else "") + ")"

    if "init_from" not in facts:
        return f"for {one(facts)}"
    how = [f"{facts['loss'].upper()} loss"]
    if facts.get("lr_schedule") == "constant":
        how.append(f"constant learning rate {facts['lr']:g}")
    src = facts["init_from"]
    if src.get("factor", facts.get("factor")) != facts.get("factor"):
        if facts.get("lr_schedule") != "constant":
            how.append(f"peak learning rate {facts['lr']:g}")
        return (f"{_training_words(src)} at x{src['factor']}, then grown to x{facts['factor']} "
                f"(pacup.train.grow) and trained for {one(facts, how)}")
    return f"{_training_words(src)}, then fine-tuned for {one(facts, how)}"


def evaluate_runs(runs: Path, data: dict, factors=(4, 8, 16), released: bool = False) -> list[dict]:
    """One row per (task, factor, method): headline metric, its ratio to bicubic, run facts.

    ``released``: where there is no PAC run but there are ablation runs, the registered
    ``<task>-x<f>`` weights stand in for the PAC run (their rows carry no run facts)."""
    rows = []
    for task, spec in data.items():
        if spec is None:
            continue
        samples = load_dataset(str(spec), task)
        for f in factors:
            pac = runs / f"{task}-x{f}-pac"
            ablations = [(label, runs / f"{task}-x{f}-{kind}") for kind, label in ABLATION_RUNS]
            ablations = [(label, run) for label, run in ablations if (run / "model.safetensors").is_file()]
            if (pac / "model.safetensors").is_file():
                model, pac_run = str(pac / "model.safetensors"), pac
            elif released and ablations:
                model, pac_run = f"{task}-x{f}", None
            else:
                continue
            methods = [(b, b, None, False) for b in BASELINES]
            methods.append((RELEASED_LABEL, model, pac_run, False))
            methods.append((RELEASED_LABEL + " --ensemble", model, pac_run, True))
            methods += [(label, str(run / "model.safetensors"), run, False) for label, run in ablations]
            base = None
            for label, method, run, ensemble in methods:
                r = evaluate(method, samples, default_protocol(task), f, name=label, ensemble=ensemble)
                key = primary_metric(r)
                value = r["metrics"][key]
                base = value if label == "bicubic" else base
                row = {"task": task, "factor": f, "method": label, "metric": key, "value": value,
                       "vs_bicubic": value / base, "edge": r["metrics"].get(f"edge_{key}"),
                       "seconds_per_image": r["seconds"] / r["n_images"], "data": str(spec)}
                if run is not None:
                    row["run"] = _run_summary(run)
                rows.append(row)
                print(f"{task} x{f} {label}: {key} {value:.4f} ({value / base:.3f} x bicubic)", file=sys.stderr)
    return rows


def markdown(rows: list[dict]) -> str:
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        factors = sorted({r["factor"] for r in sub})
        key = sub[0]["metric"]
        out.append(f"| {task}: {key} (ratio to bicubic) | " + " | ".join(f"x{f}" for f in factors) + " |")
        out.append("|---|" + "---|" * len(factors))
        for method in dict.fromkeys(r["method"] for r in sub):
            cells = []
            for f in factors:
                r = next((r for r in sub if r["factor"] == f and r["method"] == method), None)
                cells.append("-" if r is None else f"{r['value']:.3f} ({r['vs_bicubic']:.2f})")
            out.append(f"| {method} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _ship(model, run: Path, r: dict, dest: Path, what: str, how: str = "") -> dict:
    """Save ``model`` (``run``'s) to ``dest`` with clean metadata (description, scores, the
    training configurations); returns ``{"sha256", "scores", "description"}``."""
    from ..models import save_model

    facts = r["run"]
    desc = (f"{what} x{r['factor']} ({r['task']}){how}; trained by `pacup train` {_training_words(facts)} on synthetic "
            f"{'RGB-D rooms' if r['task'] == 'depth' else 'FlyingChairs-style layers'} only.")
    scores = {f"{Path(r['data']).name}_{r['metric']}": round(r["value"], 4), "vs_bicubic": round(r["vs_bicubic"], 3)}
    meta = {"task": r["task"], "description": desc, "scores": scores}
    configs = [json.loads((x / "config.json").read_text()) for x in _run_chain(run)]
    meta["training"] = configs[-1]
    if len(configs) > 1:  # a fine-tune: the configurations of the runs it started from
        meta["training_sources"] = configs[:-1]
    sha = save_model(model, dest, meta)
    return {"sha256": sha, "scores": scores, "description": desc}


def write_weights(runs: Path, rows: list[dict], weights: Path) -> dict:
    """Copy each PAC run's model to ``weights/<task>-x<f>.safetensors`` and each ablation
    run's to ``weights/ablations/<task>-x<f>-<kind>.safetensors`` (listed in that folder's
    ``index.json``, merged with what is there); returns ``{name: {"sha256", "scores",
    "description", "variant"}}`` for the PAC models, for the registry (``variant``: the
    variant's name, or a dict of the network's options when it differs from that variant's
    defaults in more than its width, e.g. a leaky ReLU), and ``{"<name>-<kind>": {"sha256",
    "scores", "description"}}`` for the ablations. Rows without a run (the released model
    standing in, ``evaluate_runs(released=True)``) write nothing."""
    from ..models.registry import arch_words
    from .ablations import load_any_model

    out, index = {}, {}
    kinds = {label: kind for kind, label in ABLATION_RUNS}
    for r in rows:
        name = f"{r['task']}-x{r['factor']}"
        if r["method"] == RELEASED_LABEL and "run" in r:
            run = runs / f"{name}-pac"
            model = load_any_model(run / "model.safetensors")
            config = model.config
            # The options beyond the variant that the registry's table needs to rebuild the network.
            opts = {k: config[k] for k in ("negative_slope", "guide_pyramid") if config.get(k)}
            shipped = _ship(model, run, r, weights / f"{name}.safetensors", arch_words(config),
                            ", residual over bicubic")
            out[name] = dict(shipped, variant={"variant": config["variant"], **opts} if opts else config["variant"])
        elif r["method"] in kinds:
            kind = kinds[r["method"]]
            run = runs / f"{name}-{kind}"
            model = load_any_model(run / "model.safetensors")
            config = model.config
            matched = (arch_words({"variant": config["variant"], "negative_slope": config.get("negative_slope")})
                       if config.get("variant") else "its PAC network")
            (weights / "ablations").mkdir(exist_ok=True)
            index[f"{name}-{kind}"] = _ship(model, run, r, weights / "ablations" / f"{name}-{kind}.safetensors",
                                            f"{r['method']} ({config['arch']}) of {matched}")
    if index:
        path = weights / "ablations" / "index.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dict(sorted({**old, **index}.items())), indent=1) + "\n")
        tmp.replace(path)
    return {**out, **index}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pacup.train.release", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs")
    p.add_argument("--depth-data", default=None)
    p.add_argument("--flow-data", default=None)
    p.add_argument("--factor", type=int, action="append", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--write-weights", action="store_true")
    p.add_argument("--weights", default=str(Path(__file__).resolve().parents[2] / "weights"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--released", action="store_true",
                   help="score ablation runs against the released model where RUNS has no PAC run")
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    runs = Path(a.runs)
    rows = evaluate_runs(runs, {"depth": a.depth_data, "flow": a.flow_data}, tuple(a.factor or (4, 8, 16)),
                         a.released)
    print(markdown(rows))
    result = {"rows": rows}
    if a.write_weights:
        result["released"] = write_weights(runs, rows, Path(a.weights))
        print(json.dumps(result["released"], indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

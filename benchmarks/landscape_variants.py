"""Do the landscape notebook's runs keep their lessons on every student's subset? (Not a timing.)

Task 0 of the landscape notebook takes its 3,200 digits from an index of the student's own
(utils/variant.py, ``CHOICES["landscape"]``), and every demonstration run after it trains on
those digits. This runs the instructor notebook's training runs at their full sizes (the
landscapes themselves are left out: they draw, they decide nothing) once for the default subset
and once for every choice, and prints, per subset, the figures the written answers read and
whether each lesson the runs exist to show holds:

  zig-zag    full-batch GD on OneFCNet (lr 0.5) overshoots: the loss rises above its start
             within the first 15 steps, and it still ends below 0.6 (it settles in its bowl);
  plateau    full-batch GD on the CNN is still on its plateau after 6 steps (loss above 2.1);
  sgd slow   mini-batch SGD at 0.02 ends far above SGD with momentum (it leaves the plateau late);
  rms jump   RMSProp's first steps jump: its loss exceeds 10 (V starts at 0);
  decay      in the sweep of decay factors, d = 0.01 ends below d = 0.1 (a rate that decays too
             fast stalls) and at most 0.03 above the better of the smaller factors, 0 and 0.001
             (on the default subset it ends 0.004 above no decay, and lowest after epoch 4);
  swa        the averaged model has a lower validation loss than every epoch end it averages.

    .venv/bin/python benchmarks/landscape_variants.py [--first 0 800 ...]

One subset takes about 40 s of one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from utils.variant import CHOICES, DEFAULTS, LandscapeNumbers, Variant  # noqa: E402

NOTEBOOK = ROOT / "source" / "landscape" / "landscape.ipynb"


class _Figure:
    """Stands in for a figure: the runs are what this script looks at, not their pictures."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _no_figure(*args, **kwargs):
    return _Figure()


def run_notebook(first: int) -> dict:
    """The namespace of the instructor notebook run up to the bonus on the subset from ``first``,
    its figures replaced by stand-ins and its test cells left out."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace = {"__name__": "__main__",
                 "VARIANT": Variant("landscape", "check", "typed", 0, LandscapeNumbers(first)),
                 "STUDENT_ID": "check"}
    os.chdir(NOTEBOOK.parent)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Bonus"):
            break
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grading.get("grade") or "STUDENT_ID =" in cell.source:
            continue
        exec(compile(cell.source, f"cell {cell.get('id')}", "exec"), namespace)
        for name in ("plot_contour", "plot_surface", "plot_losses", "get_loss_grid"):
            if name in namespace:
                namespace[name] = _no_figure
    return namespace


def lessons(ns: dict) -> dict[str, bool]:
    runs, sweep = ns["runs"], {name: values[-1] for name, values in ns["decay_val_losses"].items()}
    fc, cnn = runs["GD, full batch, OneFCNet"], runs["GD, full batch, GarmentClassifier"]
    ends = ns["swa_val_losses"][ns["SWA_START"]:]
    return {
        "zig-zag": max(fc[:15]) > fc[0] and fc[-1] < 0.6,
        "plateau": cnn[5] > 2.1,
        "sgd slow": runs["SGD"][-1] > 2 * runs["SGD with momentum"][-1],
        "rms jump": max(runs["RMSProp"][:20]) > 10,
        "decay": sweep["d = 0.01"] < sweep["d = 0.1"] and sweep["d = 0.01"] <= min(sweep["d = 0.0"], sweep["d = 0.001"]) + 0.03,
        "swa": ns["swa_val_loss"] < min(ends),
    }


def figures(ns: dict) -> str:
    runs = ns["runs"]
    mini = {name: losses for name, losses in runs.items() if "full batch" not in name}
    last = {name: f"{sum(losses[-50:]) / 50:.2f}" for name, losses in mini.items()}
    sweep = {name: f"{values[-1]:.3f}" for name, values in ns["decay_val_losses"].items()}
    fc, cnn = runs["GD, full batch, OneFCNet"], runs["GD, full batch, GarmentClassifier"]
    return (f"  OneFCNet {fc[0]:.2f} -> max {max(fc[:15]):.2f} -> {fc[-1]:.2f}; CNN full batch {cnn[0]:.2f} -> "
            f"{cnn[5]:.2f} (6 steps) -> {cnn[-1]:.2f}\n"
            f"  mini-batch runs, mean training loss of the last epoch: {last}\n"
            f"  RMSProp's largest loss {max(runs['RMSProp'][:20]):.0f}; decay sweep, last validation loss: {sweep}\n"
            f"  SWA: epoch ends averaged {[round(v, 3) for v in ns['swa_val_losses'][ns['SWA_START']:]]}, "
            f"averaged model {ns['swa_val_loss']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, nargs="*",
                        default=[DEFAULTS["landscape"].first] + [c.first for c in CHOICES["landscape"]])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    held = True
    for first in args.first:
        start = time.process_time()
        ns = run_notebook(first)
        verdict = lessons(ns)
        held &= all(verdict.values())
        print(f"subset from digit {first} ({time.process_time() - start:.0f} s of CPU): "
              + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in verdict.items()))
        print(figures(ns), flush=True)
    print("every lesson holds on every subset" if held else "a lesson fails on some subset: see NO above")
    sys.exit(0 if held else 1)


if __name__ == "__main__":
    main()

"""The model card: one self-contained HTML page per model (plots embedded as PNG), written into
the model directory from the files training leaves there, so it can also be rebuilt later:
`python -m ml.card MODEL_DIR`.
"""

from __future__ import annotations

if not __package__:  # run as a script: make this folder the `ml` package
    import _standalone  # noqa: F401

import base64
import html
import io
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

CARD_FILE = "model_card.html"
INK = "#1f2933"
MUTED = "#7b8794"
BLUE = "#2f6fde"
ORANGE = "#e8833a"
GREEN = "#2f9e6b"
GRID = "#e4e7eb"


def _load(model_dir: Path, name: str) -> Any:
    path = model_dir / name
    return json.loads(path.read_text()) if path.is_file() else None


def _plot_curves(ax, xs: list, curves: dict[str, Any], series: tuple[tuple[str, str, str], ...]) -> None:
    """A line for each (key, colour, label) of `series` with values in `curves`."""
    for key, color, label in series:
        points = [(x, y) for x, y in zip(xs, curves.get(key) or []) if y is not None]
        if points:
            ax.plot(
                *zip(*points),
                color=color,
                linewidth=2,
                marker="o" if len(points) < 40 else None,
                markersize=3,
                label=label,
            )


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color(MUTED)
    ax.tick_params(colors=INK, labelsize=9)
    ax.grid(color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def plot_curves(curves: dict[str, Any]) -> str | None:
    x_key = "epoch" if "epoch" in curves else "iteration"
    xs = curves.get(x_key) or []
    if not xs:
        return None
    has_quality = any(v is not None for v in curves.get("roc_auc") or []) or any(
        v is not None for v in curves.get("accuracy") or []
    )
    fig, axes = plt.subplots(1, 2 if has_quality else 1, figsize=(9 if has_quality else 5.2, 3.2))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    _plot_curves(ax, xs, curves, (("train_loss", BLUE, "train loss"), ("val_loss", ORANGE, "validation loss")))
    ax.set_xlabel(x_key, color=INK)
    ax.set_ylabel("loss (log loss; squared error for a regression)", color=INK)
    ax.set_title("Loss", color=INK, fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=9)
    _style(ax)
    if has_quality:
        ax = axes[1]
        _plot_curves(
            ax, xs, curves, (("accuracy", GREEN, "accuracy"), ("roc_auc", BLUE, "ROC AUC"), ("f1", ORANGE, "F1"))
        )
        ax.set_xlabel(x_key, color=INK)
        ax.set_title("Validation quality", color=INK, fontsize=11, loc="left")
        ax.legend(frameon=False, fontsize=9)
        _style(ax)
    fig.tight_layout()
    return _png(fig)


def plot_confusion(matrix: list[list[int]], classes: list[Any]) -> str:
    table = np.asarray(matrix, dtype=float)
    shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    size = 1.1 + 0.75 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{int(table[i, j])}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shares[i, j] > 0.55 else INK,
            )
    ax.set_xticks(range(len(classes)), [str(c) for c in classes])
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("predicted", color=INK)
    ax.set_ylabel("true", color=INK)
    ax.set_title("Confusion matrix (validation)", color=INK, fontsize=11, loc="left")
    ax.tick_params(colors=INK, labelsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return _png(fig)


def plot_calibration(calibration: dict[str, Any] | None) -> str | None:
    if not calibration or not calibration.get("predicted"):
        return None
    predicted, observed, count = (np.asarray(calibration[k], dtype=float) for k in ("predicted", "observed", "count"))
    positive = calibration.get("kind") == "positive class"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.6, 4.4), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label="perfectly calibrated")
    top.plot(predicted, observed, color=BLUE, linewidth=2, marker="o", markersize=4, label="model")
    top.set_ylabel("observed positive rate" if positive else "accuracy", color=INK)
    top.set_title(
        "Calibration (" + ("P(positive)" if positive else "top label") + ")", color=INK, fontsize=11, loc="left"
    )
    top.legend(frameon=False, fontsize=9, loc="upper left")
    top.set_ylim(0, 1.02)
    _style(top)
    bottom.bar(predicted, count, width=0.06, color=BLUE, alpha=0.6)
    bottom.set_xlabel("predicted probability" if positive else "confidence", color=INK)
    bottom.set_ylabel("rows", color=INK)
    bottom.set_xlim(0, 1.02)
    _style(bottom)
    fig.tight_layout()
    return _png(fig)


def plot_importance(importance: dict[str, Any], limit: int = 20) -> str | None:
    rows = (importance or {}).get("features") or []
    if not rows:
        return None
    rows = rows[:limit][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.32 * len(rows)))
    values = [r["importance"] for r in rows]
    ax.barh(
        [r["feature"] for r in rows],
        values,
        xerr=[r["std"] for r in rows],
        color=[BLUE if v >= 0 else MUTED for v in values],
        error_kw={"ecolor": MUTED, "lw": 1},
    )
    ax.axvline(0, color=MUTED, linewidth=0.8)
    metric = importance.get("metric")
    ax.set_xlabel(
        "increase in log loss when shuffled" if metric == "log_loss" else f"drop in {metric} when shuffled", color=INK
    )
    ax.set_title("Permutation importance (validation)", color=INK, fontsize=11, loc="left")
    _style(ax)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return _png(fig)


def _residual_arrays(residuals: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted) of the validation rows evaluation.json keeps for a regression."""
    rows = residuals or {}
    return np.asarray(rows.get("actual") or [], dtype=float), np.asarray(rows.get("predicted") or [], dtype=float)


def plot_predicted_vs_actual(residuals: dict[str, Any] | None) -> str | None:
    actual, predicted = _residual_arrays(residuals)
    if not len(actual):
        return None
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], linestyle="--", color=MUTED, linewidth=1, label="perfect")
    ax.scatter(actual, predicted, s=10, color=BLUE, alpha=0.6, label="validation rows")
    ax.set_xlabel("actual", color=INK)
    ax.set_ylabel("predicted", color=INK)
    ax.set_title("Predicted vs actual (validation)", color=INK, fontsize=11, loc="left")
    ax.legend(frameon=False, fontsize=9, loc="upper left")
    _style(ax)
    fig.tight_layout()
    return _png(fig)


def plot_residuals(residuals: dict[str, Any] | None) -> str | None:
    actual, predicted = _residual_arrays(residuals)
    if not len(actual):
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.scatter(predicted, actual - predicted, s=10, color=BLUE, alpha=0.6)
    left.axhline(0, color=MUTED, linewidth=1, linestyle="--")
    left.set_xlabel("predicted", color=INK)
    left.set_ylabel("residual (actual - predicted)", color=INK)
    left.set_title("Residuals", color=INK, fontsize=11, loc="left")
    _style(left)
    right.hist(actual - predicted, bins=30, color=BLUE, alpha=0.7)
    right.set_xlabel("residual", color=INK)
    right.set_ylabel("rows", color=INK)
    right.set_title("Residual distribution", color=INK, fontsize=11, loc="left")
    _style(right)
    fig.tight_layout()
    return _png(fig)


def _img(data: str | None, alt: str) -> str:
    return (
        f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
        if data
        else f"<p class=muted>{html.escape(alt)}: not available</p>"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return html.escape(str(value))


def _num(value: Any) -> str:
    """A data value for people: 120, 18.5, 14,941.5, 0.0123."""
    if value is None:
        return "–"
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def _table(head: list[str] | None, rows: list[list[Any]]) -> str:
    out = [
        "<table>"
        + ("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>" if head else "")
        + "<tbody>"
    ]
    for row in rows:
        out.append(
            "<tr>"
            + "".join(f"<td>{_fmt(c) if not (isinstance(c, str) and c.startswith('<')) else c}</td>" for c in row)
            + "</tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2933;background:#f5f7fa;margin:0}
main{max-width:1040px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:18px;margin:0 0 12px}
.muted{color:#7b8794}.sub{color:#52606d;margin:0 0 22px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:18px 20px;margin:0 0 18px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;margin:0 0 18px}
.tile{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:12px 14px}
.tile .v{font-size:24px;font-weight:600}
.tile .k{color:#7b8794;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}
@media(max-width:800px){.grid2{grid-template-columns:1fr}}
img{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3;vertical-align:top}
th{color:#52606d;font-weight:600;background:#fafbfc}
td.num,th.num{text-align:right}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;background:#f0f3f7;padding:1px 4px;border-radius:4px;word-break:break-all}
.badge{display:inline-block;padding:2px 8px;border-radius:999px;font-size:12px;background:#e8f0fe;color:#2f6fde;margin-left:6px}
.warn{background:#fff4e5;color:#b25e09}
"""


def render(model_dir: str | Path) -> str:
    directory = Path(model_dir)
    meta = _load(directory, "model.json") or {}
    metrics = _load(directory, "metrics.json") or {}
    evaluation = _load(directory, "evaluation.json") or {}
    curves = _load(directory, "curves.json") or {}
    importance = _load(directory, "importance.json") or {}
    lineage = _load(directory, "lineage.json") or {}
    summary = _load(directory, "data_summary.json") or {}
    schema = _load(directory, "schema.json") or {}

    name = schema.get("name", "model")
    regression = (schema.get("task") or evaluation.get("task")) == "regression"
    architecture = (meta.get("architecture") or {}).get("class")
    title = f"{name} · {meta.get('family', '?')}" + (f" ({architecture}, {meta.get('kind')})" if architecture else "")
    git = lineage.get("git") or {}
    dirty = git.get("dirty")
    badges = ""
    if git.get("commit"):
        badges += f'<span class="badge">git {html.escape(str(git["commit"])[:12])}</span>'
    if dirty:
        badges += '<span class="badge warn">uncommitted changes</span>'

    tile_metrics = (
        (("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²"), ("mape", "MAPE"))
        if regression
        else (
            ("accuracy", "accuracy"),
            ("f1", "F1"),
            ("roc_auc", "ROC AUC"),
            ("log_loss", "log loss"),
            ("calibration_error", "calibration error"),
        )
    )
    tiles = "".join(
        f'<div class="tile"><div class="k">{label}</div><div class="v">{_fmt(metrics.get(key))}</div></div>'
        for key, label in tile_metrics
    )
    if regression:
        residuals = evaluation.get("residuals")
        error_panels = [
            f"<section><h2>Predicted vs actual</h2>{_img(plot_predicted_vs_actual(residuals), 'predicted vs actual')}</section>",
            f"<section><h2>Residuals</h2>{_img(plot_residuals(residuals), 'residual plot')}</section>",
        ]
    else:
        error_panels = [
            f"<section><h2>Errors</h2>{_img(plot_confusion(evaluation['confusion_matrix'], evaluation['classes']) if evaluation.get('confusion_matrix') else None, 'confusion matrix')}</section>",
            f"<section><h2>Calibration</h2>{_img(plot_calibration(evaluation.get('calibration')), 'calibration plot')}</section>",
        ]

    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
        "content='width=device-width,initial-scale=1'>"
        f"<title>Model card: {html.escape(name)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{html.escape(title)}{badges}</h1>",
        "<p class=sub>Trained "
        f"{html.escape(str((lineage.get('training') or {}).get('finished_at', lineage.get('created_at', ''))))}"
        f" · seed {_fmt(lineage.get('seed'))} · validated on {_fmt(metrics.get('n_rows'))} held-out rows"
        + (
            f" · regression of {html.escape(str((schema.get('label') or {}).get('name', '')))}</p>"
            if regression
            else f" · classes {html.escape(', '.join(map(str, meta.get('classes', []))))}</p>"
        ),
        f'<div class="tiles">{tiles}</div>',
        f"<section><h2>Training</h2>{_img(plot_curves(curves), 'training curves')}</section>",
        '<div class="grid2">',
        *error_panels,
        "</div>",
        f"<section><h2>What drives it</h2>{_img(plot_importance(importance), 'feature importance')}"
        "<p class=muted>Each bar: how much "
        f"{html.escape(str(importance.get('metric', 'the metric')))} worsens when that column of the validation data is shuffled "
        f"({_fmt(importance.get('repeats'))} repeats on {_fmt(importance.get('rows'))} rows); error "
        "bars are one standard deviation.</p></section>",
    ]

    # Data summary
    train, valid = summary.get("train") or {}, summary.get("validation") or {}
    class_rows = [
        [c, train.get("classes", {}).get(c), valid.get("classes", {}).get(c)] for c in (train.get("classes") or {})
    ]
    if regression:
        class_rows = [
            [part, _num((train.get("target") or {}).get(part)), _num((valid.get("target") or {}).get(part))]
            for part in ("min", "mean", "max", "std")
        ]
    feature_rows = []
    for f in train.get("features", []):
        if f["type"] == "numeric":
            detail = f"{_num(f.get('min'))} … {_num(f.get('max'))} (mean {_num(f.get('mean'))})"
        else:
            detail = f"{f.get('distinct')} values; most common {html.escape(str(f.get('top')))} ({f.get('top_share', 0):.0%})"
        feature_rows.append([f["name"], f["type"], detail, f.get("missing")])
    parts.append(
        "<section><h2>Data</h2>"
        f"<p>{_fmt(train.get('rows'))} training rows, {_fmt(valid.get('rows'))} validation rows.</p>"
        + _table(
            ["target", "train", "validation"] if regression else ["class", "train rows", "validation rows"], class_rows
        )
        + "<br>"
        + _table(["feature", "type", "training values", "missing"], feature_rows)
        + "</section>"
    )

    # Lineage
    data = lineage.get("data") or {}
    files = [
        [ch, f"<code>{html.escape(e['path'])}</code>", f"{e['bytes']:,}", f"<code>{e['sha256'][:16]}…</code>"]
        for ch, entries in (data.get("files") or {}).items()
        for e in entries
    ]
    training = lineage.get("training") or {}
    lineage_rows = [
        [
            "git commit",
            f"<code>{html.escape(str(git.get('commit')))}</code>"
            if git.get("commit")
            else "not given (MLOPS_GIT_COMMIT)",
        ],
        ["uncommitted changes", "unknown" if dirty is None else ("yes" if dirty else "no")],
        ["stack", lineage.get("stack") or "–"],
        ["image", f"<code>{html.escape(str(lineage['image_uri']))}</code>" if lineage.get("image_uri") else "–"],
        ["training job", (lineage.get("training_job") or {}).get("name") or "local run"],
        [
            "device",
            f"{training.get('device', '?')} × {training.get('world_size', 1)} on "
            f"{', '.join(training.get('hosts') or [])}",
        ],
        ["duration", f"{training.get('duration_s', '?')} s"],
        ["data manifest", "given" if data.get("manifest") else "none (local files only)"],
        ["libraries", ", ".join(f"{k} {v}" for k, v in (lineage.get("libraries") or {}).items())],
    ]
    hp_rows = [
        [k, json.dumps(v) if isinstance(v, (list, dict)) else v]
        for k, v in sorted((lineage.get("hyperparameters") or {}).items())
    ]
    model_files = [[k, f"<code>{v[:16]}…</code>"] for k, v in sorted((lineage.get("model_files") or {}).items())]
    parts.append(
        "<section><h2>Lineage</h2>"
        + _table(None, lineage_rows)
        + "<h3>Data files</h3>"
        + _table(["channel", "file", "bytes", "sha256"], files)
        + "<div class=grid2><div><h3>Hyperparameters</h3>"
        + _table(["name", "value"], hp_rows)
        + "</div><div><h3>Model files</h3>"
        + _table(["file", "sha256"], model_files)
        + "</div></div></section>"
    )
    parts.append(
        "<p class=muted>Generated by ml/card.py from the files in this model directory.</p></main></body></html>"
    )
    return "\n".join(parts)


def write_card(model_dir: str | Path) -> Path:
    path = Path(model_dir) / CARD_FILE
    path.write_text(render(model_dir))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m ml.card MODEL_DIR", file=sys.stderr)
        sys.exit(2)
    print(write_card(sys.argv[1]))

"""The report's plots: matplotlib (Agg), returned as small palette PNGs ready to embed.

Small multiples keep the page short: one figure per study holds one panel per spec. Seeds are
averaged (curves) or summed (confusion counts); weight distributions show the lowest seed.
`base` (imported first: it selects the Agg backend) holds what every plot shares.
"""

from harness.report.plots.base import (  # first: it selects the Agg backend
    DPI,
    MAX_MARKED_EPOCHS,
    MAX_NAMED_POINTS,
    MAX_WEIGHT_SAMPLES,
    PANEL,
    STYLE,
    Key,
    backend_color,
    grid,
    label,
    legend,
    plain_log,
    to_png,
)
from harness.report.plots.confusion import confusion_matrices, differing_keys
from harness.report.plots.curves import learning_curves, loss_curves
from harness.report.plots.latency import (
    NOT_LEARNED_AT_OR_BELOW,
    accuracy_vs_latency,
    did_not_learn,
    latency_by_provider,
    pareto_front,
    speedup_intervals,
    speedup_rows,
)
from harness.report.plots.weights import weight_distributions

__all__ = [
    "DPI", "MAX_MARKED_EPOCHS", "MAX_NAMED_POINTS", "MAX_WEIGHT_SAMPLES",
    "NOT_LEARNED_AT_OR_BELOW", "PANEL", "STYLE", "Key", "grid", "legend", "plain_log",
    "accuracy_vs_latency", "backend_color", "confusion_matrices", "did_not_learn",
    "differing_keys", "label", "latency_by_provider", "learning_curves", "loss_curves",
    "pareto_front", "speedup_intervals", "speedup_rows", "to_png", "weight_distributions",
]

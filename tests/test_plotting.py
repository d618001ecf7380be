import matplotlib.figure
import numpy as np
from sklearn.metrics import roc_curve

from kerasmed.metrics.roc import operating_point, roc_auc_ci, roc_sensitivity_band
from kerasmed.plotting import plot_paper_comparison, plot_roc


def make_curves():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    return {
        "good": (y, y * 2.0 + rng.normal(size=150)),
        "weak": (y, y * 0.5 + rng.normal(size=150)),
    }


def band_limits(collection, x_values):
    """Lowest and highest y of a fill_between polygon at each x."""
    vertices = np.concatenate([path.vertices for path in collection.get_paths()])
    lows, highs = [], []
    for x in x_values:
        ys = vertices[np.isclose(vertices[:, 0], x), 1]
        lows.append(ys.min())
        highs.append(ys.max())
    return np.array(lows), np.array(highs)


def test_plot_roc_lines_legend_and_bands(tmp_path):
    curves = make_curves()
    figure = plot_roc(curves, n_bootstraps=100, seed=3, target_sensitivity=0.98)
    assert isinstance(figure, matplotlib.figure.Figure)
    ax = figure.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    expected = []
    for name, (y, s) in curves.items():
        auc, low, high = roc_auc_ci(y, s)
        expected.append(f"{name}: AUC {auc:.2f} (95% CI {low:.2f}-{high:.2f})")
    assert texts == expected
    assert texts[0] != texts[1]

    lines = [line for line in ax.get_lines() if line.get_label() in expected]
    assert len(lines) == 2 and len(ax.collections) == 2
    for line, collection, (y, s) in zip(lines, ax.collections, curves.values()):
        fpr, tpr, _ = roc_curve(y, s)
        np.testing.assert_allclose(line.get_xdata(), fpr)
        np.testing.assert_allclose(line.get_ydata(), tpr)
        band = roc_sensitivity_band(y, s, n_resamples=100, seed=3)
        low, high = band_limits(collection, 1.0 - band.specificity)
        np.testing.assert_allclose(low, band.low)
        np.testing.assert_allclose(high, band.high)
        # The band contains the curve drawn (read at the band's specificities).
        curve = np.interp(1.0 - band.specificity, fpr, tpr)
        assert np.all(low - 1e-9 <= curve) and np.all(curve <= high + 1e-9)
        assert np.mean(high - low) > 0.02
        point = operating_point(y, s, 0.98)
        markers = [
            m
            for m in ax.get_lines()
            if m.get_marker() == "o"
            and np.allclose(m.get_xydata(), [[1 - point.specificity, point.sensitivity]])
        ]
        assert len(markers) == 1

    path = tmp_path / "roc.png"
    figure.savefig(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_plot_roc_into_given_axes_without_bands():
    figure = matplotlib.figure.Figure()
    ax = figure.add_subplot()
    y, s = make_curves()["good"]
    returned = plot_roc({"only": (y, s)}, ax=ax, ci_bands=False, confidence=0.9)
    assert returned is figure and len(ax.collections) == 0
    auc, low, high = roc_auc_ci(y, s, confidence=0.9)
    label = ax.get_legend().get_texts()[0].get_text()
    assert label == f"only: AUC {auc:.2f} (90% CI {low:.2f}-{high:.2f})"


def test_plot_paper_comparison_bars_for_plain_and_per_label_metrics():
    models = {"svm": {"auc": 0.8}, "lstm": {"auc": 0.7}}
    paper = {"svm": {"auc": 0.9}}
    ax = plot_paper_comparison(models, paper, metric="auc").axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[:2] == [0.8, 0.7]  # ours
    assert heights[2] == 0.9 and np.isnan(heights[3])  # the paper has no lstm row
    assert ax.get_ylabel() == "auc"
    per_label = {"m": {"f": {"a": 0.2, "avg": 0.4}}}
    ax = plot_paper_comparison(per_label, {"m": {"f": {"avg": 0.5}}}, metric="f").axes[0]
    assert [bar.get_height() for bar in ax.patches] == [0.4, 0.5]
    assert ax.get_ylabel() == "average f"

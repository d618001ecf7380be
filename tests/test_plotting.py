import matplotlib.figure
import numpy as np
import pytest
from sklearn.metrics import roc_curve

from kerasmed.experiments.common import figure_caption, write_figures
from kerasmed.metrics.roc import operating_point, roc_auc_ci, roc_sensitivity_band
from kerasmed.plotting import (
    plot_learning_curves,
    plot_mpa,
    plot_paper_comparison,
    plot_roc,
    plot_segmentation_sequence,
    plot_segmentations,
)


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
    assert ax.get_ylabel() == "auc" and ax.get_xlabel() == "model" and ax.get_title()
    (missing,) = ax.texts
    assert missing.get_text() == "no paper value" and missing.get_position()[0] == 1.2
    per_label = {"m": {"f": {"a": 0.2, "avg": 0.4}}}
    ax = plot_paper_comparison(per_label, {"m": {"f": {"avg": 0.5}}}, metric="f").axes[0]
    assert [bar.get_height() for bar in ax.patches] == [0.4, 0.5]
    assert ax.get_ylabel() == "average f"


def _mpa_reference(truth, prediction):
    """NumPy transcription of mPA: recall of each class present in `truth`, averaged."""
    classes = [c for c in np.unique(truth) if c >= 0]
    return np.mean([np.mean(prediction[truth == c] == c) for c in classes])


def test_plot_segmentations_rows_columns_and_mpa_titles():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 6, 6, 2))
    labels = rng.integers(0, 4, size=(4, 6, 6))
    noisy = np.where(rng.random(labels.shape) < 0.3, rng.integers(0, 4, labels.shape), labels)
    predictions = {"fcn": noisy, "perfect": labels}
    figure = plot_segmentations(images, labels, predictions, heldout=[False, True, False, True])
    axes = np.array(figure.axes).reshape(4, 3)  # input, truth, 2 models x 3 subjects
    for j in range(3):
        np.testing.assert_array_equal(axes[0, j].images[0].get_array(), images[j, ..., 0])
        np.testing.assert_array_equal(axes[1, j].images[0].get_array(), labels[j])
        expected = f"mPA {_mpa_reference(labels[j], noisy[j]):.3f}"
        assert axes[2, j].get_title() == expected
        assert axes[3, j].get_title() == "mPA 1.000"
    assert [ax.get_title() for ax in axes[0]] == ["subject 1", "subject 2 (held out)", "subject 3"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["input", "ground truth", "fcn", "perfect"]
    # the colour key names each class by the colour its label map shows
    (key,) = figure.legends
    names = [text.get_text() for text in key.get_texts()]
    assert names == ["background", "CSF", "GM", "WM", "unlabelled"]
    cmap = axes[1, 0].images[0].get_cmap()
    for c, patch in enumerate(key.legend_handles[:4]):
        np.testing.assert_allclose(patch.get_facecolor(), cmap(c))


def test_plot_segmentation_sequence_masks_unlabelled_pixels():
    images = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)
    labels = np.array([np.full((3, 3), 2), np.full((3, 3), -1)])
    labels[0, 0, 0] = 0
    figure = plot_segmentation_sequence(images, labels, ages=[[0.0, 12.0]], channel_names=["T1w"])
    axes = np.array(figure.axes).reshape(3, 2)  # 2 channels + labels, 2 time points
    for t in range(2):
        for c in range(2):
            np.testing.assert_array_equal(axes[c, t].images[0].get_array(), images[t, ..., c])
        shown = axes[2, t].images[0].get_array()
        np.testing.assert_array_equal(shown.mask, labels[t] < 0)
    assert axes[2, 0].images[0].get_array()[0, 0] == 0
    assert axes[0, 1].get_title() == "time point 2\n12.0 months"
    assert [axes[c, 0].get_ylabel() for c in range(3)] == ["T1w", "ch1", "labels"]
    # unlabelled pixels are blank: the colormap's classes are 0 ... 3, nothing for -1
    assert axes[2, 0].images[0].norm(np.array([0, 3])).tolist() == [0, 3]


def test_plot_mpa_bars_are_ours_and_the_papers():
    models = {"fcn": {"mpa": 0.80, "mpa_train": 0.90}, "new": {"mpa": 0.75, "mpa_train": 0.95}}
    paper = {"fcn": {"mpa": 0.85, "mpa_train": 0.92}}
    test_ax, train_ax = plot_mpa(models, paper).axes
    heights = [bar.get_height() for bar in test_ax.patches]
    assert heights[:3] == [0.80, 0.75, 0.85] and np.isnan(heights[3])
    assert [bar.get_height() for bar in train_ax.patches][:3] == [0.90, 0.95, 0.92]
    assert [t.get_text() for t in test_ax.texts] == ["0.800", "0.750", "no paper value"]
    assert test_ax.texts[-1].get_position()[0] == pytest.approx(1.2)  # where new's paper bar is
    for ax in (test_ax, train_ax):
        assert ax.get_xlabel() == "model" and ax.get_ylabel() == "mean pixel accuracy"
    assert test_ax.get_ylim() == pytest.approx((0.65, 1.0))  # lowest value 0.7 floor - 0.05


def _history(values, val=None):
    history = {"loss": list(values)}
    if val is not None:
        history["val_loss"] = list(val)
    return history


def test_learning_curves_give_a_dwarfing_model_its_own_panel():
    histories = {
        "single_image": _history([1.1, 1.5, 0.4], [1.1, 1.53, 0.35]),
        "lstm": _history([0.3, 0.2, 0.15], [0.32, 0.25, 0.2]),
        "tlstm_v1": _history([0.25, 0.15, 0.1], [0.3, 0.2, 0.12]),
    }
    figure = plot_learning_curves(histories)
    main, own = figure.axes
    assert own.get_title() == "loss per epoch: single_image"
    drawn = {line.get_label(): line for line in main.get_lines()}
    np.testing.assert_allclose(drawn["lstm"].get_ydata(), histories["lstm"]["loss"])
    assert "single_image" not in drawn
    assert max(main.get_ylim()) < 1.0  # the others are not squashed by the spike to 1.53
    np.testing.assert_allclose(own.get_lines()[1].get_ydata(), [1.1, 1.53, 0.35])
    for ax in figure.axes:
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
        legend = {t.get_text() for t in ax.get_legend().get_texts()}
        assert {"training (solid)", "validation (dashed)"} <= legend
    styles = [
        (line.get_color(), line.get_marker()) for ax in figure.axes for line in ax.get_lines()
        if not line.get_label().startswith("_")
    ]  # fmt: skip
    assert len(set(styles)) == len(styles) == 3
    # drawn into a given axes, the same histories get a log axis instead
    ax = matplotlib.figure.Figure().add_subplot()
    plot_learning_curves(histories, ax=ax)
    assert ax.get_yscale() == "log" and ax.get_title() == "loss per epoch (log scale)"
    # comparable curves share one panel, with a linear axis
    alone = plot_learning_curves({k: histories[k] for k in ("lstm", "tlstm_v1")})
    assert len(alone.axes) == 1 and alone.axes[0].get_yscale() == "linear"


def test_learning_curves_distinct_styles_for_many_models():
    histories = {f"m{i}": _history([1.0, 0.5]) for i in range(12)}
    lines = plot_learning_curves(histories, own_panel=()).axes[0].get_lines()
    styles = {(line.get_color(), line.get_marker()) for line in lines if line.get_label()[0] != "_"}
    assert len(styles) == 12
    with pytest.raises(ValueError, match="own_panel"):
        plot_learning_curves(histories, own_panel=("nosuch",))


def test_written_figures_carry_the_run_caption(tmp_path):
    titled = matplotlib.figure.Figure()
    titled.suptitle("ROC")
    plain = matplotlib.figure.Figure()
    with figure_caption("tlstm, quick preset, jax backend"):
        write_figures(tmp_path, {"a.png": titled, "b.png": plain})
    assert titled.get_suptitle() == "ROC\ntlstm, quick preset, jax backend"
    assert plain.get_suptitle() == "tlstm, quick preset, jax backend"
    write_figures(tmp_path, {"c.png": (outside := matplotlib.figure.Figure())})
    assert outside.get_suptitle() == "" and (tmp_path / "c.png").stat().st_size > 0

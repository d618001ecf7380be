"""Evaluation metrics on NumPy arrays (predictions in, numbers out)."""

from kerasmed.metrics._checks import DegenerateStatisticWarning  # noqa: F401
from kerasmed.metrics.binary import (  # noqa: F401
    binary_confusion,
    binary_report,
    macro_f1,
    sensitivity,
    specificity,
)
from kerasmed.metrics.classification import multilabel_report  # noqa: F401
from kerasmed.metrics.roc import (  # noqa: F401
    delong_test,
    operating_point,
    roc_auc_ci,
    roc_sensitivity_band,
)
from kerasmed.metrics.segmentation import (  # noqa: F401
    PixelAccuracy,
    dice_per_class,
    mean_pixel_accuracy,
    pixel_confusion_matrix,
    segmentation_report,
)

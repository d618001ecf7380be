"""Pure NumPy/OpenCV/SciPy preprocessing: ``verb_noun(array, ...) -> array``."""

from kerasmed.preprocessing.augmentation import (  # noqa: F401
    augment_paper,
    mirror_image,
    rotate_image,
    shift_image,
)
from kerasmed.preprocessing.ct import WINDOWS, max_filter_downsample, window_hu  # noqa: F401
from kerasmed.preprocessing.intensity import zscore_nonzero  # noqa: F401
from kerasmed.preprocessing.longitudinal import (  # noqa: F401
    encode_time_deltas,
    previous_labels,
    time_deltas,
    time_features_for,
)
from kerasmed.preprocessing.lung import (  # noqa: F401
    DEFAULT_LUNG_THRESHOLDS,
    LungAreaSteps,
    LungSliceSelection,
    lung_area_steps,
    select_lung_slices,
)
from kerasmed.preprocessing.resize import INTERPOLATIONS, resize_slices  # noqa: F401
from kerasmed.preprocessing.xray import (  # noqa: F401
    clahe,
    layer_channels,
    nl_means,
    pad_to_square,
    prepare_radiograph,
    rescale_to_uint,
    resize_image,
    to_grey,
)
from kerasmed.preprocessing.xray_files import (  # noqa: F401
    prepare_radiograph_file,
    read_cached_radiograph,
    source_stamp,
)

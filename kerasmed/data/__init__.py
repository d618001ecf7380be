"""``keras.utils.PyDataset`` classes (variable-length sequences, balanced samplers) and the
synthetic data sets."""

from kerasmed.data.chest_ct_phantom import (  # noqa: F401
    ChestCTPhantom,
    simulate_chest_ct,
    to_8bit_slices,
)
from kerasmed.data.exam_batches import ExamDataset, last_exam_rows, streams_images  # noqa: F401
from kerasmed.data.head_ct_phantom import HeadCTPhantom, simulate_head_ct  # noqa: F401
from kerasmed.data.imageclef import (  # noqa: F401
    ImageCLEFCache,
    ImageCLEFDataset,
    ImageCLEFEntries,
    imageclef_cache_key,
    imageclef_cache_settings,
    load_imageclef_arrays,
    prepare_imageclef_cache,
    write_imageclef_folder,
)
from kerasmed.data.infant_brain_phantom import (  # noqa: F401
    InfantBrainPhantom,
    simulate_infant_brain,
)
from kerasmed.data.longitudinal_digits import (  # noqa: F401
    allowed_next_digits,
    longitudinal_inputs,
    simulate_longitudinal_digits,
)
from kerasmed.data.radiograph_phantom import (  # noqa: F401
    RADIOGRAPH_CLASSES,
    RadiographPhantom,
    simulate_radiographs,
)
from kerasmed.data.samplers import BalancedSliceDataset, BalancedVolumeDataset  # noqa: F401
from kerasmed.data.segmentation_streaming import (  # noqa: F401
    SegmentationFrameDataset,
    SegmentationSequenceDataset,
    labelled_frames,
    sequence_frames,
)
from kerasmed.data.sequences import SequenceDataset, pad_to_batch  # noqa: F401
from kerasmed.data.slice_sampling import (  # noqa: F401
    EmbeddingSequenceDataset,
    WindowSliceDataset,
    as_slice_batch,
    sample_sequence_slices,
    sample_window_slices,
    window_bounds,
)
from kerasmed.data.streaming import (  # noqa: F401
    StreamedSequenceDataset,
    StreamedSliceDataset,
    StreamedVolumeDataset,
    VolumeFiles,
    VolumeIndex,
    read_volume_index,
    volume_dataset,
    volume_lengths,
)

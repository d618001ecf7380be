"""Reading medical image files: DICOM series (pydicom), NIfTI (nibabel), manifests."""

from kerasmed.io.dicom import Volume, read_dicom_series  # noqa: F401
from kerasmed.io.irma import (  # noqa: F401
    IRMA_AXES,
    ClassImbalanceReport,
    IrmaCode,
    IrmaLabelMap,
    class_imbalance_report,
    parse_irma_code,
)
from kerasmed.io.longitudinal_nifti import (  # noqa: F401
    SegmentationManifest,
    SegmentationSequences,
    load_segmentation_npz,
    load_segmentation_sequences,
    read_segmentation_manifest,
    save_segmentation_npz,
)
from kerasmed.io.manifest import (  # noqa: F401
    LongitudinalManifest,
    ManifestProblem,
    ManifestReport,
    load_manifest_images,
    read_exam_image,
    read_longitudinal_manifest,
)
from kerasmed.io.nifti import read_nifti  # noqa: F401
from kerasmed.io.sequences import (  # noqa: F401
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)
from kerasmed.io.volumes import (  # noqa: F401
    SkippedVolume,
    VolumeSet,
    VolumeSetWriter,
    from_phantom,
    load_volume_set,
    save_volume_set,
)

"""Reading medical image files: DICOM series (pydicom), NIfTI (nibabel), manifests.

Every reader that can skip an input returns a `LoadReport` (what it did not load, and why)
and follows one ``strict`` rule (`kerasmed.io.report`).
"""

from kerasmed.io.cov19_ct import (  # noqa: F401
    Cov19Dataset,
    Cov19Entry,
    Cov19Scan,
    index_cov19_ct,
    read_cov19_ct,
    read_cov19_scan,
)
from kerasmed.io.dicom import Volume, read_dicom_series  # noqa: F401
from kerasmed.io.imageclef import (  # noqa: F401
    ImageCLEFIndex,
    ImageCLEFReport,
    ImageCLEFSplit,
    index_imageclef,
    read_imageclef,
)
from kerasmed.io.irma import (  # noqa: F401
    IRMA_AXES,
    ClassImbalanceReport,
    IrmaCode,
    IrmaLabelMap,
    class_imbalance_report,
    parse_irma_code,
)
from kerasmed.io.longitudinal_nifti import load_segmentation_sequences  # noqa: F401
from kerasmed.io.manifest import (  # noqa: F401
    LongitudinalManifest,
    load_manifest_images,
    read_exam_image,
    read_longitudinal_manifest,
)
from kerasmed.io.nifti import read_nifti  # noqa: F401
from kerasmed.io.prep_runner import (  # noqa: F401
    PrepRun,
    PrepTask,
    add_prep_arguments,
    atomic_path,
    non_negative_int,
    positive_int,
    run_prep,
    run_script,
    save_npz_atomic,
    write_text_atomic,
)
from kerasmed.io.radiograph import read_radiograph  # noqa: F401
from kerasmed.io.report import LoadError, LoadProblem, LoadReport  # noqa: F401
from kerasmed.io.segmentation_manifest import (  # noqa: F401
    SegmentationManifest,
    read_segmentation_manifest,
)
from kerasmed.io.segmentation_sequences import (  # noqa: F401
    SegmentationSequences,
    load_segmentation_npz,
    save_segmentation_npz,
)
from kerasmed.io.sequences import (  # noqa: F401
    LongitudinalSequences,
    load_longitudinal_npz,
    save_longitudinal_npz,
)
from kerasmed.io.volume_writer import VolumeSetWriter, save_volume_set  # noqa: F401
from kerasmed.io.volumes import VolumeSet, load_volume_set  # noqa: F401

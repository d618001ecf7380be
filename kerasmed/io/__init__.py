"""Reading medical image files: DICOM series (pydicom), NIfTI (nibabel), manifests."""

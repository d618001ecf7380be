"""Writing small DICOM image files for the io tests (shared by test_dicom, test_radiograph and
test_hostile_dicom)."""

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def image_dataset(sop_class, modality, pixels, photometric="MONOCHROME2", bits_stored=None,
                  transfer_syntax=ExplicitVRLittleEndian):  # fmt: skip
    """A single-frame grey image dataset with its file meta, Image Pixel Module and PixelData
    (`pixels`' bytes, signed when its dtype is)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    pixels = np.asarray(pixels)
    bits = pixels.dtype.itemsize * 8
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    ds.PixelData = pixels.tobytes()
    return ds

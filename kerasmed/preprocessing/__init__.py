"""Pure NumPy/OpenCV/SciPy preprocessing: ``verb_noun(array, ...) -> array``."""

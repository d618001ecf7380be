"""``keras.utils.PyDataset`` classes for variable-length sequences and the synthetic data sets."""

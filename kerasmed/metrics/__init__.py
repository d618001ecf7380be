"""Evaluation metrics on NumPy arrays (predictions in, numbers out)."""

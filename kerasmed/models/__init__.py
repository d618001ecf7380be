"""Functional model builders ``build_*`` (one module per paper) and shared backbones."""

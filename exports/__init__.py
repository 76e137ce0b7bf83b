"""Exports of zoo models: SavedModels with named per-modality signatures in TF-Serving layout."""

from .serving import export_saved_model, input_signature, next_version, serving_outputs

__all__ = ["export_saved_model", "input_signature", "next_version", "serving_outputs"]

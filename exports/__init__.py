"""Exports of zoo models: SavedModels with named per-modality signatures in TF-Serving layout."""

from .serving import (WARMUP_FILE, example_request, export_saved_model, input_signature, next_version,
                      serving_outputs, warmup_records)

__all__ = ["WARMUP_FILE", "example_request", "export_saved_model", "input_signature", "next_version",
           "serving_outputs", "warmup_records"]

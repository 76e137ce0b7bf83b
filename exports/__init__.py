"""Exports of zoo models: SavedModels in TF-Serving layout that take raw inputs, and the pretrained zoo's presets."""

from .presets import (PresetError, list_presets, load_pretrained, publish, read_manifest, verify,
                      write_models_config)
from .serving import (WARMUP_FILE, example_request, export_saved_model, input_signature, next_version,
                      serving_outputs, warmup_records)

__all__ = ["WARMUP_FILE", "example_request", "export_saved_model", "input_signature", "next_version",
           "serving_outputs", "warmup_records", "PresetError", "list_presets", "load_pretrained", "publish",
           "read_manifest", "verify", "write_models_config"]

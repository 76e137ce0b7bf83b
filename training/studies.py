"""Studies that reproduce a paper's figure end to end: `multisensory study <name>`.

`fusion_depth` (Barnum, Talukder & Yue 2020, Fig. 1): train `clstm_av` at the three fusion depths on `av_mnist`
with training noise at audio SNR 0.5 and image SNR 0.25, evaluate each on an image x audio SNR grid, and write
the accuracy heatmaps and the differences initial minus second and initial minus fc.

At the paper's settings (64 filters, 90 audio frames, 87,516 training pairs) one training step costs about 94
GFLOP per example, more than 12 hours per epoch on 2 CPU cores; the arguments shrink it (fewer filters, the last
`max_frames` frames, fewer pairs, a smaller grid), and `study.json` records the settings next to the results.
"""

import os

from . import robustness, runs

FUSIONS = ("initial", "second", "fc")
TRAINING_NOISE = {"audio": 0.5, "image": 0.25}


def fusion_depth(out, data_dir=None, epochs=10, batch_size=32, train_pairs=None, test_pairs=None, filters=64,
                 max_frames=None, snrs=robustness.DEFAULT_SNRS, seed=0, verbose="auto"):
    """Runs the study; returns {fusion: test accuracy at the training noise} and writes into `out`:
    `<fusion>/` training runs, `<fusion>_snr_grid.{csv,png}`, `initial_minus_{second,fc}.{csv,png}`, `study.json`.
    """
    os.makedirs(out, exist_ok=True)
    config = {"filters": filters, "max_frames": max_frames}
    grids, accuracy = {}, {}
    for fusion in FUSIONS:
        metrics = runs.train("clstm_av", "av_mnist", os.path.join(out, fusion), data_dir=data_dir, epochs=epochs,
                             batch_size=batch_size, noise=TRAINING_NOISE, seed=seed,
                             config={"fusion": fusion, **config},
                             dataset_options={"num_pairs": train_pairs} if train_pairs else {}, verbose=verbose)
        accuracy[fusion] = metrics["accuracy"]
        model = runs.load_model(os.path.join(out, fusion, "model.keras"))
        grids[fusion] = robustness.snr_grid(model, "av_mnist", snrs=snrs, modalities=("image", "audio"),
                                            data_dir=data_dir, batch_size=batch_size, seed=seed,
                                            dataset_options={"num_pairs": test_pairs} if test_pairs else None)
        robustness.write_grid(grids[fusion], os.path.join(out, f"{fusion}_snr_grid"))
    for other in ("second", "fc"):
        robustness.write_grid(robustness.grid_difference(grids["initial"], grids[other]),
                              os.path.join(out, f"initial_minus_{other}"))
    settings = {"epochs": epochs, "batch_size": batch_size, "train_pairs": train_pairs or 87_516,
                "test_pairs": test_pairs or 10_939, "filters": filters, "max_frames": max_frames or 90,
                "snrs": [robustness.snr_label(s) for s in snrs], "training_noise": TRAINING_NOISE, "seed": seed}
    runs.write_json(os.path.join(out, "study.json"), {
        "study": "fusion_depth", "test_accuracy_at_training_noise": accuracy,
        "grid_mean_accuracy": {k: float(g["values"].mean()) for k, g in grids.items()}, "settings": settings})
    return accuracy

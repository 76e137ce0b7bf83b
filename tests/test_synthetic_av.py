"""`synthetic_av`: deterministic, each modality partly informative, fusion measurably better than either alone."""

import keras
import numpy as np

from multisensory import datasets, zoo
from multisensory.datasets.synthetic_av import generate


def test_generation_is_deterministic_and_seeded():
    a, b, c = generate(50, seed=[0, 0]), generate(50, seed=[0, 0]), generate(50, seed=[1, 0])
    for k in ("image", "audio"):
        np.testing.assert_array_equal(a[0][k], b[0][k])
        assert not np.array_equal(a[0][k], c[0][k])
    assert a[0]["image"].shape == (50, 16, 16, 1) and a[0]["audio"].shape == (50, 20, 32)
    info = datasets.info("synthetic_av")
    assert info.modality_names == ("image", "audio") and info.task.num_classes == 10


def test_fusion_beats_each_modality_alone():
    def accuracy(drop):
        keras.utils.set_random_seed(0)
        model = zoo.create("additive_fusion", "synthetic_av", width=32, hidden=(32,))
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        load = dict(num_examples=1500, batch_size=50, drop=drop)
        model.fit(datasets.load("synthetic_av", "train", **load), epochs=4, verbose=0)
        return model.evaluate(datasets.load("synthetic_av", "test", **load), return_dict=True, verbose=0)["accuracy"]

    fused, image_only, audio_only = accuracy(()), accuracy(("audio",)), accuracy(("image",))
    assert 0.5 < image_only < 0.8 and 0.5 < audio_only < 0.8, (image_only, audio_only)
    assert fused > max(image_only, audio_only) + 0.15, (fused, image_only, audio_only)

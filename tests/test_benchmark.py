"""`multisensory benchmark`: statistics against hand-computed values, and a small benchmark end to end (shared by
two workers, resumed, reported with both tests)."""

import json
import math
import os

import numpy as np
import pytest

from multisensory.training import benchmark, commands, statistics


def test_summary_and_tests_match_hand_computed_values():
    s = statistics.summary([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t_{0.975, 2} * std / sqrt(n), std = 1
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0) and s["interval"] == pytest.approx([2 - half, 2 + half])
    assert statistics.summary([0.7])["interval"] is None
    # d = [0.5, 0.2, 0.5]: mean 0.4, std sqrt(0.03), t = 0.4 / (sqrt(0.03) / sqrt(3)) = 4
    t = statistics.paired_t([1.0, 2.0, 3.5], [0.5, 1.8, 3.0])
    assert t["difference"] == pytest.approx(0.4) and t["t"] == pytest.approx(4.0)
    assert t["p"] == pytest.approx(0.05719, abs=1e-5)  # 2 * P(T_2 > 4) = 1 / sqrt(1 + 16 / 2) ... = 0.0572
    assert statistics.verdict(t["p"], t["difference"]) == "not distinguishable at 5%"
    assert statistics.paired_t([1, 2, 3], [1, 2, 3])["p"] == 1.0
    same = statistics.paired_bootstrap([1, 0, 1, 1] * 25, [1, 0, 1, 1] * 25)
    assert same["p"] == 1.0 and same["difference"] == 0.0
    apart = statistics.paired_bootstrap([1] * 80 + [0] * 20, [0] * 60 + [1] * 40)  # 0.8 against 0.4
    assert apart["difference"] == pytest.approx(0.4) and apart["p"] < 0.01
    assert apart["interval"][0] < 0.4 < apart["interval"][1]
    assert statistics.verdict(apart["p"], -apart["difference"]) == "worse"


def test_a_benchmark_shared_by_two_workers_resumes_and_reports(tmp_path, capsys):
    out = str(tmp_path / "bench")
    argv = ["benchmark", "--dataset", "synthetic_av", "--models", "late_fusion,additive_fusion", "--seeds", "3",
            "--epochs", "1", "--dataset-option", "num_examples=96", "--batch-size", "32", "--config",
            "late_fusion:width=8", "--config", "additive_fusion:width=8", "--out", out, "--quiet"]
    assert commands.main(argv + ["--worker", "0/2"]) == 0
    first = capsys.readouterr().out
    assert "run 1/6: late_fusion seed 0" in first and "run 3/6: late_fusion seed 1" in first
    assert "run 2/6" not in first and "3 of 6 runs finished" in first
    assert commands.main(argv + ["--worker", "1/2"]) == 0
    assert "6 of 6 runs finished" in capsys.readouterr().out
    model_file = os.path.join(out, "runs", "late_fusion", "seed-0", "model.keras")
    trained = os.path.getmtime(model_file)
    assert commands.main(argv + ["--json"]) == 0  # a rerun reuses every finished run
    report = json.loads(capsys.readouterr().out)
    assert os.path.getmtime(model_file) == trained
    assert report["finished"] == 6 and set(report["models"]) == {"late_fusion", "additive_fusion"}
    for model, row in report["models"].items():
        accuracies = [json.load(open(os.path.join(out, "runs", model, f"seed-{s}", "metrics.json")))["test"]
                      ["accuracy"] for s in range(3)]
        assert row["metric"]["mean"] == pytest.approx(np.mean(accuracies))
        assert row["metric"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
        assert row["parameters"] > 0 and row["seconds_per_epoch"] > 0 and row["latency_ms"]["32"] > 0
        assert row["robustness"]["snr_curve"]["snrs"] == ["original", "1", "0.25"]
        assert row["rank"] >= 1
    other = next(m for m in report["models"] if m != report["best"])
    against = report["models"][other]["against_best"]
    assert against["test"] == "paired t over seeds" and against["n"] == 3 and against["against"] == report["best"]
    assert report["models"]["late_fusion"]["against_baseline"] is None  # the baseline itself
    text = open(os.path.join(out, "report.md")).read()
    assert "| rank | model | accuracy |" in text and "late_fusion" in text and "additive_fusion" in text
    for name in ("metric.png", "robustness.png", "cost.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert os.listdir(os.path.join(out, "logs"))
    # with fewer than 3 common seeds, the comparison is a paired bootstrap over the test examples
    few = benchmark.report(out, "synthetic_av", ["late_fusion", "additive_fusion"], seeds=[0])
    against = few["models"]["additive_fusion"]["against_baseline"]
    assert against["test"] == "paired bootstrap over test examples" and 0 <= against["p"] <= 1
    assert against["n"] == 96  # the test split's examples (num_examples per split)
    repeated = list(argv)
    repeated[repeated.index("--models") + 1] = "late_fusion,late_fusion"
    assert commands.main(repeated) == 2 and "labels do not repeat" in capsys.readouterr().err
    assert commands.main(argv + ["--worker", "2/2"]) == 2


def test_a_benchmark_with_a_study_per_model_runs_its_seeds_at_the_best_trial(tmp_path):
    out = str(tmp_path / "bench")
    result = benchmark.benchmark("synthetic_av", ["fusion=additive_fusion"], out, seeds=[0], epochs=1,
                                 config={"fusion": {"width": 8}}, tune_trials=2, batch_size=32,
                                 dataset_options={"num_examples": 64}, verbose=0)
    best = json.load(open(os.path.join(out, "studies", "fusion", "best", "metrics.json")))
    settings = json.load(open(os.path.join(out, "runs", "fusion", "seed-0", "metrics.json")))["settings"]
    assert settings["learning_rate"] == best["hyperparameters"]["learning_rate"]
    assert settings["config"] == best["settings"]["config"] and settings["config"]["width"] == 8
    assert result["models"]["fusion"]["metric"]["n"] == 1 and result["best"] == "fusion"
    with pytest.raises(ValueError, match="Configurations for \\['tfn'\\], which are not among the models"):
        benchmark.benchmark("synthetic_av", ["fusion=additive_fusion"], out, config={"tfn": {}})

# `make demo` and `make test` set everything up in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install zoo clean gpu-check

$(STAMP): requirements.txt setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/multisensory compare --model additive_fusion --dataset synthetic_av --epochs 8 --out runs/demo

# The pretrained zoo: each preset trained by the command shown, then published (SavedModel, .keras, manifest with
# test metrics, robustness card and checksums) under $(ZOO). Reduced CPU settings, stated in each manifest's command.
# A finished run or a published preset is kept: rerun after `rm -rf runs/zoo $(ZOO)` to rebuild.
ZOO ?= pretrained
DATA ?= $(or $(MULTISENSORY_DATA),../shared/data)
define preset
	test -f runs/zoo/$(1)/metrics.json || $(BIN)/multisensory train --out runs/zoo/$(1) --data-dir $(DATA) $(2)
	test -f $(ZOO)/$(1)/1/manifest.json || $(BIN)/multisensory publish --run runs/zoo/$(1) --name $(1) --root $(ZOO) --data-dir $(DATA)
endef
AV_MNIST_CPU := --model clstm_av --dataset av_mnist --noise image=0.25,audio=0.5 --epochs 3 --config filters=16 \
	--config max_frames=15 --dataset-option num_pairs=4000

zoo: $(STAMP)
	$(call preset,synthetic_av-additive_fusion,--model additive_fusion --dataset synthetic_av --epochs 8)
	$(call preset,synthetic_av-late_fusion,--model late_fusion --dataset synthetic_av --epochs 8)
	$(call preset,synthetic_av-early_fusion,--model early_fusion --dataset synthetic_av --epochs 8)
	$(call preset,higgs-base,--model higgs_mlp --dataset higgs --config variant=base --epochs 10)
	$(call preset,higgs-add,--model higgs_mlp --dataset higgs --config variant=add --epochs 10)
	$(call preset,higgs-mul,--model higgs_mlp --dataset higgs --config variant=mul --epochs 10)
	$(call preset,higgs-mulmix,--model higgs_mlp --dataset higgs --config variant=mulmix --epochs 10)
	$(call preset,av_mnist-clstm-initial,$(AV_MNIST_CPU) --config fusion=initial)
	$(call preset,av_mnist-clstm-second,$(AV_MNIST_CPU) --config fusion=second)
	$(call preset,av_mnist-clstm-fc,$(AV_MNIST_CPU) --config fusion=fc)
	$(BIN)/multisensory zoo list --root $(ZOO)

# two pytest workers, one per core of the 2-core machines the suite's 20-minute budget is set for (tracing is
# single-threaded Python, so a second worker nearly halves the wall time)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal tests

# on a machine with GPUs: every model family trained, compared with float32 on CPU and served, per precision
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) runs *.egg-info

# experiment.mk - purchase intention on a Kaggle-format export as a
# Makefile experiment: every step is a file, every knob a variable, and a
# knob's value is kept in a file that changes only when the value does, so
# `make` re-runs exactly the steps that depend on what you changed.
#
#   make -f scripts/experiment.mk DATA=2019-Oct.csv            # all steps
#   make -f scripts/experiment.mk DATA=2019-Oct.csv            # nothing to do
#   make -f scripts/experiment.mk DATA=2019-Oct.csv EPOCHS=30  # retrain, re-evaluate
#   make -f scripts/experiment.mk DATA=2019-Oct.csv GAP=30m    # from the ingest on
#   make -f scripts/experiment.mk -q EPOCHS=30 || echo stale   # -n and -q tell the truth
#   make -f scripts/experiment.mk compare   # the model's metrics beside the baseline's
#   make -f scripts/experiment.mk plot      # $(W)/plots: the data and the training curves
#
# Results: $(W)/metrics.tsv (cs-eval), $(W)/baseline.tsv (counts baseline),
# $(W)/train.log (cs-train --log), $(W)/plots/*.png and .svg (cs-stats).

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
export PATH := $(TOP):$(PATH)
DATA ?= $(TOP)/../shared/data/kaggle-ecommerce-multicategory/2019-Oct_head17k.csv
W ?= experiment

# knobs
GAP ?= off
MIN_LEN ?= 2
VALID ?= 0.1
TEST ?= 0.1
SEED ?= 1
INPUTS ?= action
POOL ?= cls
HIDDEN ?= 64
EPOCHS ?= 10
LR ?= 0.001
POS_WEIGHT ?= 1

KNOBS := DATA GAP MIN_LEN VALID TEST SEED INPUTS POOL HIDDEN EPOCHS LR POS_WEIGHT
k = $(W)/.knob.$(1)

all: $(W)/metrics.tsv $(W)/baseline.tsv

# $(W)/.knob.NAME holds NAME's value; rewritten (new mtime) only on a change.
# They are written while make reads this file, not by rules, so that no
# target is remade on every run and `make -n` and `make -q` tell the truth;
# those two write nothing: a changed knob is then a target always remade.
changed = $(shell printf '%s\n' '$($(1))' | cmp -s - $(call k,$(1)) || echo yes)
ifeq ($(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS))),)
$(shell mkdir -p $(W))
$(foreach n,$(KNOBS),$(if $(call changed,$(n)),$(shell printf '%s\n' '$($(n))' > $(call k,$(n)))))
else
$(foreach n,$(KNOBS),$(if $(call changed,$(n)),$(eval $(call k,$(n)): FORCE ; @:)))
endif
FORCE:

$(W)/raw.cseq: $(DATA) $(call k,DATA) $(call k,GAP) $(call k,MIN_LEN)
	cs-ingest -q -p kaggle --by session $(if $(filter-out off,$(GAP)),--by user --gap $(GAP)) \
		--min-len $(MIN_LEN) -o $@ $(DATA)

$(W)/vocab.txt: $(W)/raw.cseq
	cs-vocab build -q -F item,action,category,brand -o $@ $<

$(W)/enc.cseq: $(W)/raw.cseq $(W)/vocab.txt
	cs-vocab encode -q -v $(W)/vocab.txt -o $@ $<

$(W)/r.train.cseq $(W)/r.valid.cseq $(W)/r.test.cseq &: $(W)/enc.cseq $(call k,VALID) $(call k,TEST) $(call k,SEED)
	cs-mask split -q --random $(VALID),$(TEST) --seed $(SEED) -o $(W)/r $<

$(W)/s.%.cseq: $(W)/r.%.cseq $(W)/vocab.txt
	cs-mask session -q --vocab $(W)/vocab.txt -o $@ $<

# The training log is written with the model.
$(W)/train.log: $(W)/model.bin ;
$(W)/model.bin: $(W)/s.train.cseq $(W)/s.valid.cseq $(foreach n,INPUTS POOL HIDDEN EPOCHS LR POS_WEIGHT SEED,$(call k,$(n)))
	cs-train -q -v $(W)/vocab.txt --head session --pool $(POOL) \
		$(if $(INPUTS),--inputs $(INPUTS)) --hidden $(HIDDEN) --epochs $(EPOCHS) --lr $(LR) \
		--pos-weight $(POS_WEIGHT) --seed $(SEED) --valid $(W)/s.valid.cseq \
		--log $(W)/train.log -o $(W)/model.bin $<
	rm -f $(W)/model.bin.ckpt

$(W)/metrics.tsv: $(W)/model.bin $(W)/s.test.cseq
	cs-eval -q -m $< $(W)/s.test.cseq > $@.tmp && mv $@.tmp $@

$(W)/baseline.tsv: $(W)/s.train.cseq $(W)/s.test.cseq
	/usr/bin/python3 $(TOP)/scripts/baseline.py --task session $^ | cs-eval --scores > $@.tmp
	mv $@.tmp $@

# The model's metrics beside the baseline's, on stdout.
compare: $(W)/metrics.tsv $(W)/baseline.tsv
	@awk -F'\t' -v OFS='\t' 'NR == FNR { b[$$1] = $$2; next } \
		FNR == 1 { print "metric", "model", "baseline"; next } \
		$$1 in b { print $$1, $$2, b[$$1] }' $(W)/baseline.tsv $(W)/metrics.tsv

# Plots of the data (cs-stats) and of the training (its log).
plot: $(W)/plots/funnel.png $(W)/plots/train.png

$(W)/plots/funnel.png: $(W)/raw.cseq
	cs-stats -q --plot $(W)/plots -o $(W)/plots/stats.tsv $<

$(W)/plots/train.png: $(W)/train.log
	cs-stats -q --plot $(W)/plots --train-log $<

clean:
	rm -rf $(W)

.PHONY: all clean compare plot FORCE
.DELETE_ON_ERROR:

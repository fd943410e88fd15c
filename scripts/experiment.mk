# experiment.mk - purchase intention on a Kaggle-format export as a
# Makefile experiment: every step is a file, every knob a variable, and a
# knob's value is kept in a file that changes only when the value does, so
# `make` re-runs exactly the steps that depend on what you changed.
#
#   make -f scripts/experiment.mk DATA=2019-Oct.csv            # all steps
#   make -f scripts/experiment.mk DATA=2019-Oct.csv            # nothing to do
#   make -f scripts/experiment.mk DATA=2019-Oct.csv EPOCHS=30  # retrain, re-evaluate
#   make -f scripts/experiment.mk DATA=2019-Oct.csv GAP=30m    # from the ingest on
#
# Results: $(W)/metrics.tsv (cs-eval), $(W)/baseline.tsv (counts baseline).

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
$(foreach n,$(KNOBS),$(call k,$(n))): FORCE
	@mkdir -p $(W)
	@printf '%s\n' '$($(patsubst .knob.%,%,$(notdir $@)))' | cmp -s - $@ || \
		printf '%s\n' '$($(patsubst .knob.%,%,$(notdir $@)))' > $@

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

$(W)/model.bin: $(W)/s.train.cseq $(W)/s.valid.cseq $(foreach n,INPUTS POOL HIDDEN EPOCHS LR POS_WEIGHT SEED,$(call k,$(n)))
	cs-train -q -v $(W)/vocab.txt --head session --pool $(POOL) \
		$(if $(INPUTS),--inputs $(INPUTS)) --hidden $(HIDDEN) --epochs $(EPOCHS) --lr $(LR) \
		--pos-weight $(POS_WEIGHT) --seed $(SEED) --valid $(W)/s.valid.cseq -o $@ $<

$(W)/metrics.tsv: $(W)/model.bin $(W)/s.test.cseq
	cs-eval -q -m $< $(W)/s.test.cseq > $@.tmp && mv $@.tmp $@

$(W)/baseline.tsv: $(W)/s.train.cseq $(W)/s.test.cseq
	/usr/bin/python3 $(TOP)/scripts/baseline.py --task session $^ | cs-eval --scores > $@.tmp
	mv $@.tmp $@

clean:
	rm -rf $(W)

.PHONY: all clean FORCE
.DELETE_ON_ERROR:

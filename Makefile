# The two entry points of the README. Both create the environment first (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: env demo test

# pip byte-compiles every file it installs on one core (16,000 files, about 95 s of CPU here); install without
# that and compile on every core instead. As pip does, skip the few files that are not valid Python for this
# interpreter (torch ships test helpers in 3.12 syntax): compile_dir's result is not an error.
$(BIN)/xstilts: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -c constraints.txt -e '.[cpu,dev]'
	$(BIN)/python -c 'import compileall, sys; compileall.compile_dir(sys.argv[1], quiet=2, workers=0)' $(VENV)/lib
	touch $@

env: $(BIN)/xstilts

## Set up and run the offline demo: synthetic mini-XTREME, tiny pretrained model, the whole grid.
## Ends by printing where the summary and the HTML report are.
demo: env
	export PATH="$(abspath $(BIN)):$$PATH"; \
	snakemake --profile profiles/local --cores $(CORES) --keep-going; rc=$$?; \
	results=$$($(BIN)/python -c 'from xstilts import grid; import yaml; \
	    print(grid.results_dir(yaml.safe_load(open("config/config.yaml"))))'); \
	snakemake summary --profile profiles/local --cores $(CORES) && \
	snakemake summary --profile profiles/local --cores $(CORES) --report "$$results/report.html" && \
	echo "summary: $$results/summary/ (transfer_matrix.md, transfer_delta.md, efficiency.csv, missing.csv)" && \
	echo "report:  $$results/report.html" && exit $$rc

## Set up and run the test suite (the 15 slowest tests are listed at the end: CI must stay under 40 minutes).
test: env
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q -rsx --durations=15

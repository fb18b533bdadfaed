# hb_beamr: `make test` installs what is missing, builds, and runs every check.
.PHONY: all setup build fixtures test rust-checks erlang-tests dialyzer docs integration spec cpu-check stress stress-long meter-fuzz asan bench clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	rebar3 compile

# Regenerates test/fixtures/*.wasm from test/fixtures/*.wat (and wasi/*.c).
fixtures: setup
	bash scripts/build-fixtures.sh

test: setup rust-checks erlang-tests dialyzer docs integration spec cpu-check stress asan

rust-checks:
	cargo fmt --all --check
	cargo clippy --locked --workspace --all-targets -- -D warnings
	cargo test --locked --workspace

erlang-tests:
	bash scripts/build-fixtures.sh --check
	bash scripts/reference-tests.sh
	rebar3 eunit
	HB_BEAMR_TEST_MODE=aot rebar3 eunit

dialyzer:
	rebar3 dialyzer

# API docs as EEP 48 doc chunks (doc/chunks/, git-ignored): `h(hb_beamr, call)'
# in erl, `h :hb_beamr.call' in iex. Fails if they do not build or are not found.
docs:
	bash scripts/docs.sh

# hb_beamr as a dependency of a new rebar3 project and a new mix project.
integration:
	bash scripts/integration-tests.sh

# The WebAssembly spec tests, both modes, both runners (docs/results/spec.md).
spec:
	bash scripts/spec.sh

# AOT code on emulated CPUs whose names imply AVX-512 and which have none.
cpu-check:
	bash scripts/cpu-check.sh

# Fuzzed modules, random arguments, concurrency and leak cycles (fast: CI).
stress:
	bash scripts/stress.sh fast
	bash scripts/nan-fuzz.sh fast

stress-long:
	bash scripts/stress.sh long
	bash scripts/nan-fuzz.sh long

# Metering's differential property test at length (docs/metering.md): wasm-smith
# modules metered, run in wasm, aot host and aot generic with three budgets,
# the same results and fuel in every mode. HB_BEAMR_METER_CASES modules
# (2,000 here; 40 in cargo test), HB_BEAMR_METER_SEED (default 1),
# HB_BEAMR_METER_FIRST (run from that module on; default 1).
meter-fuzz:
	cargo build --release --locked -p hb_beamr_aotc
	HB_BEAMR_METER_CASES=$${HB_BEAMR_METER_CASES:-2000} cargo test --release --locked \
		-p hb_beamr_meter --test fuel props::smith_modules_use_the_same_fuel_in_every_mode -- --nocapture

# Speed: one table, also written to docs/results/bench.md (see erlang/hb_beamr_bench.erl).
bench:
	bash scripts/bench.sh

# EUnit (both modes) and the fast stress run against an AddressSanitizer build.
asan:
	bash scripts/asan.sh

clean:
	rm -rf _build priv/*.so test/reference_examples doc
	cargo clean

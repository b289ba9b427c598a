# The two commands of the README. Both create or reuse .venv from requirements.txt and build the
# package with colcon into install/ first; nothing else is needed on the machine.
SHELL := /bin/bash

.PHONY: demo test bench lint clean

demo:
	@source scripts/setup_env.sh && python -m nn_one_node.tools.demo $(ARGS)

test:
	@source scripts/setup_env.sh && python -m pytest $(ARGS)

# The benchmarks of issue 5 (bench/README.md): about 10 minutes; ARGS=--quick for a smoke run.
bench:
	@source scripts/setup_env.sh && python bench/run_all.py $(ARGS)

lint:
	@source scripts/setup_env.sh && ruff check nn_one_node test launch bench

clean:
	rm -rf build install log artifacts

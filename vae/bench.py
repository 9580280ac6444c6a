"""`python -m vae.bench`: the benchmark harness lives in benchmarks/ beside the package (benchmarks/bench.py)."""

from benchmarks.bench import main

if __name__ == "__main__":
    main()

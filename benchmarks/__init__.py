"""The benchmark harness of vae-lab, `python -m vae.bench` (benchmarks/bench.py says what it measures):

    bench.py      the command line: the options, one call per measurement, the JSON and the table
    settings.py   the models, pipelines, rounds and goal it measures by
    data.py       MNIST or synthetic files, the composed configs, the tensors and torchvision's loaders
    loops.py      the plain PyTorch loop: batches, a step, an epoch, a dev pass
    callbacks.py  what the harness adds to a Trainer: epoch timer, interleaved plain steps, train.py's first step
    epochs.py     the epochs of the three pipelines (and the --variants) in rotating rounds
    measures.py   the paired steps, the IW evaluation's throughput, memory, the --sweep, the goal
    startup.py    fresh processes: train.py to its first step, the imports, the tools' --help; the machine
    whole.py      --whole: python train.py start to finished run directory against plain_script.py, by phase
    plain_script.py  the lab's default run in plain torch (no Lightning, no figures, checkpoints or logs)
    generation.py --generation: the cost of the generated pictures' measures
    table.py      the report as plain text

It lives beside the package, not in it: nothing in vae/ imports it but the forwarder vae/bench.py.
"""

"""The four command-line tools share one argument style and one way to fail: a bad argument is one line,
`error: python -m vae.<tool>: ... (python -m vae.<tool> --help lists the options)`, exit status 1."""

import pytest

from vae import bench
from vae.tools import compare, evaluate, plots

TOOLS = {"plots": plots.main, "evaluate": evaluate.main, "compare": compare.main, "bench": bench.main}
BAD = [
    ("plots", ["run", "--grid-size", "many"], "argument --grid-size: invalid int value: 'many'"),
    ("plots", ["run", "--colour", "red"], "unrecognized arguments: --colour red"),
    ("evaluate", ["run", "--iw-samples", "many"], "argument --iw-samples: invalid int value: 'many'"),
    ("evaluate", [], "the following arguments are required: run"),
    ("compare", [], "the following arguments are required: sweep_dir"),
    ("compare", ["sweep", "--pdf=yes"], "argument --pdf: ignored explicit argument 'yes'"),
    ("bench", ["--rounds", "two"], "argument --rounds: invalid int value: 'two'"),
    ("bench", ["--speed"], "unrecognized arguments: --speed"),
]


@pytest.mark.parametrize("tool,argv,message", BAD, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD)])
def test_a_bad_argument_is_one_line_in_the_same_format(tool, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        TOOLS[tool](argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.count("\n") == 1, err
    assert err == f"error: python -m vae.{tool}: {message} (python -m vae.{tool} --help lists the options)\n"


@pytest.mark.parametrize(
    "tool,argv,message",
    [
        (
            "plots",
            ["run", "--grid-size", "0"],
            "plots.grid_size=0 is not valid: plots.grid_size must be a positive integer",
        ),
        ("evaluate", ["run", "--split", "train"], "eval.split='train' is not valid: eval.split must be test or dev"),
    ],
)
def test_a_bad_setting_is_checked_by_the_configs_rules_before_the_run_is_read(tool, argv, message, capsys):
    with pytest.raises(SystemExit):
        TOOLS[tool](argv)
    assert capsys.readouterr().err == f"error: {message}\n"

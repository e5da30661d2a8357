"""The start-up script: its targets, its argument checks and the interpreter it starts."""

import os
from pathlib import Path

import pytest

import optbench
from optbench import startup

KEYS = {"import_s", "import_cpu_s", "first_calls_s", "first_calls_cpu_s"}


def test_import_target_measures_the_import_only(tmp_path):
    seconds = startup.measure("import", tmp_path)
    assert set(seconds) == KEYS
    assert 0 < seconds["import_s"] < 60 and seconds["import_cpu_s"] > 0
    assert seconds["first_calls_s"] == seconds["first_calls_cpu_s"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("target", ["optimizer:sgd", "layer:batch_norm"])
def test_first_calls_are_measured(target, tmp_path):
    seconds = startup.measure(target, tmp_path, sizes=[256], dtypes=["float32"])
    assert set(seconds) == KEYS and all(value > 0 for value in seconds.values())


def test_a_failure_in_the_new_interpreter_is_a_runtime_error(tmp_path):
    with pytest.raises(RuntimeError, match="startup script for optimizer:no_such_optimizer"):
        startup.measure("optimizer:no_such_optimizer", tmp_path)


def test_the_new_interpreter_imports_this_optbench(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "elsewhere")
    environment = startup._environment(tmp_path)
    source_root = str(Path(optbench.__file__).absolute().parent.parent)
    assert environment["PYTHONPATH"].split(os.pathsep) == [source_root, "elsewhere"]
    assert environment["NUMBA_CACHE_DIR"] == environment["OPTBENCH_CACHE_DIR"] == str(tmp_path)


@pytest.mark.parametrize(
    ("target", "options", "error", "match"),
    [
        ("compile", {}, ValueError, "target must be 'import', 'optimizer:NAME' or 'layer:NAME'"),
        ("optimizer:", {}, ValueError, "target must be"),
        (None, {}, ValueError, "target must be"),
        ("layer:softmax", {}, ValueError, "layer must be one of"),
        ("optimizer:sgd", {"sizes": [0]}, ValueError, r"sizes\[0\] must be an integer >= 1"),
        ("optimizer:sgd", {"sizes": [10, 1.5]}, TypeError, r"sizes\[1\] must be an integer"),
        ("optimizer:sgd", {"dtypes": ["float16"]}, ValueError, r"dtypes\[0\] must be one of"),
        ("optimizer:sgd", {"dispatch": "fast"}, ValueError, "dispatch must be one of"),
        ("layer:rms_norm", {"dispatch": "serial"}, ValueError, "dispatch applies to optimizers"),
        ("layer:rms_norm", {"sizes": [100]}, ValueError, r"sizes\[0\] must be a multiple of 64"),
    ],
)
def test_bad_requests_are_refused_before_starting_an_interpreter(
    target, options, error, match, tmp_path, monkeypatch
):
    def run(*args, **kwargs):
        raise AssertionError("an interpreter was started")

    monkeypatch.setattr(startup.subprocess, "run", run)
    with pytest.raises(error, match=match):
        startup.measure(target, tmp_path, **options)

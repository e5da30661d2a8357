"""Instruction counts under Valgrind (optbench.instructions): the callgrind dump parser, the
kernel count that leaves out the interpreter and the allocators, the benchmarks, and (where
Valgrind is installed) counts that are the same in every process."""

import pandas as pd
import pytest

from optbench import cli, instructions, registry

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
events: Ir
summary: 960

ob=(1) /opt/python/lib/libpython3.11.so.1.0
fl=(1) Python/ceval.c
fn=(1) _PyEval_EvalFrameDefault
10 100
cob=(2) ???
cfi=(2) ???
cfn=(2) 0x0000000005600190
calls=1 0
* 520
cob=(3) /usr/lib/x86_64-linux-gnu/libc.so.6
cfi=(3) ./string/memset-vec-unaligned-erms.S
cfn=(3) __memset_avx2_unaligned_erms
calls=1 0
* 40

ob=(2)
fl=(2)
fn=(2)
0 400
+2 60
cob=(3)
cfi=(3)
cfn=(3)
calls=2 0
* 60

ob=(3)
fl=(3)
fn=(3)
0 100
fl=(4) ./malloc/./malloc/malloc.c
fn=(4) _int_malloc
0 300
totals: 960
"""


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / "callgrind.out.1"
    path.write_text(DUMP)
    return instructions.parse_dump(path)


def test_a_dump_is_read_into_exclusive_costs_and_call_edges(dump):
    python = ("/opt/python/lib/libpython3.11.so.1.0", "Python/ceval.c", "_PyEval_EvalFrameDefault")
    jit = ("???", "???", "0x0000000005600190")
    libc = "/usr/lib/x86_64-linux-gnu/libc.so.6"
    memset = (libc, "./string/memset-vec-unaligned-erms.S", "__memset_avx2_unaligned_erms")
    malloc = (libc, "./malloc/./malloc/malloc.c", "_int_malloc")
    assert dump.costs == {python: 100, jit: 460, memset: 100, malloc: 300}
    assert dump.total == 960
    assert dump.calls == [(python, jit, 520), (python, memset, 40), (jit, memset, 60)]


def test_the_kernel_count_leaves_out_the_interpreter_and_the_allocator(dump):
    # the kernel's 460 and its own memset's 60; not the interpreter's 100, its memset's 40 or
    # the allocator's 300
    assert instructions.kernel_count(dump) == 520


def test_a_dump_that_does_not_add_up_is_refused(tmp_path):
    path = tmp_path / "bad.out"
    path.write_text(DUMP.replace("totals: 960", "totals: 961"))
    with pytest.raises(ValueError, match="do not add up"):
        instructions.parse_dump(path)
    path.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no totals line"):
        instructions.parse_dump(path)


def test_outside_valgrind_the_requests_answer_zero_and_the_body_runs():
    assert instructions.running_on_valgrind() == 0
    calls = []
    instructions.counted(lambda: calls.append(1), calls=4)
    assert len(calls) == 4


def test_every_optimizer_has_a_benchmark_in_both_dtypes():
    names = list(instructions.benchmarks())
    assert len(names) == len(set(names))
    for name in registry.names():
        for dtype in instructions.DTYPES:
            assert f"optimizer:{name} {dtype} n={instructions.OPTIMIZER_ELEMENTS}" in names
    assert instructions.select("training:") == [n for n in names if n.startswith("training:")]
    with pytest.raises(ValueError, match="matches none"):
        instructions.select("no such benchmark")
    with pytest.raises(ValueError, match="pattern"):
        instructions.select("(")


@pytest.mark.parametrize(
    "name",
    [
        "optimizer:adam float32 n=10000",
        "optimizer:muon float64 n=10000",
        "layer:batch_norm float32 32x256",
        "training:digits_mlp batch=32",
    ],
)
def test_a_benchmark_builds_and_its_body_runs(name):
    body = instructions.benchmarks()[name].make()
    body()
    body()


def test_measure_refuses_bad_arguments(monkeypatch):
    with pytest.raises(ValueError, match="unknown benchmark"):
        instructions.measure(["optimizer:nothing float32"])
    with pytest.raises(ValueError, match="calls"):
        instructions.measure(["optimizer:sgd float32 n=10000"], calls=0)
    monkeypatch.setattr(instructions, "valgrind_path", lambda: None)
    with pytest.raises(ValueError, match="valgrind is not installed"):
        instructions.measure(["optimizer:sgd float32 n=10000"])


def test_the_command_lists_the_benchmarks(capsys):
    assert cli.main(["instructions", "--list", "--benchmarks", "layer:"]) == 0
    assert capsys.readouterr().out.split("\n")[0].startswith("layer:")
    assert cli.main(["instructions", "--benchmarks", "("]) == 2


@pytest.mark.skipif(instructions.valgrind_path() is None, reason="valgrind is not installed")
def test_every_process_counts_the_same_kernel_instructions(tmp_path, capsys):
    out = tmp_path / "counts.csv"
    argv = ["instructions", "--benchmarks", "optimizer:(sgd|adam) float32", "--calls", "2"]
    assert cli.main([*argv, "--repeat", "2", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "kernel_distinct" in summary
    table = pd.read_csv(out)
    assert set(table["process"]) == {1, 2}
    for _, group in table.groupby("benchmark"):
        assert group["kernel_instructions"].nunique() == 1
        assert (group["instructions"] >= group["kernel_instructions"]).all()
    kernel = table.groupby("benchmark")["kernel_instructions"].first()
    assert kernel["optimizer:adam float32 n=10000"] > 2 * kernel["optimizer:sgd float32 n=10000"]

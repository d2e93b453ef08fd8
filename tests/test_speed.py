"""The ops benchmark runs and writes the fixed CSV schema (timings themselves are not asserted)."""

from __future__ import annotations

import csv
from dataclasses import fields
from pathlib import Path

import pytest
import torch

import learnact
from learnact.speed import OpRow, benchmark_ops, flops_per_element, markdown_table, write_csv


def test_benchmark_rows_and_csv(tmp_path: Path) -> None:
    rows = benchmark_ops(["hermite:degree=3", "tropical:degree=2"], shape=(4, 64, 32), runs=3,
                         warmup=1, backends=["eager"], threads=None, progress=False)
    assert [r.spec for r in rows] == ["hermite:degree=3", "tropical:degree=2"]
    for r in rows:
        assert r.fwd_ms_p50 > 0 and r.full_ms_p50 > 0 and r.gelu_full_ms_p50 > 0
        assert r.saved_ratio_to_input >= 1.0 and r.saved_ratio_to_input < 1.01
        assert r.flops_per_element == flops_per_element(learnact.create(r.spec))[0]
    # the analytic counts: Clenshaw 4 per step + 3 at the end, 3 per tropical line + 2
    assert [r.flops_per_element for r in rows] == [4 * 2 + 3, 3 * 3 + 2]
    path = write_csv(rows, tmp_path / "ops.csv")
    write_csv(rows[:1], path)  # appends without a second header
    with open(path) as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 3 and list(got[0]) == [f.name for f in fields(OpRow)]
    assert "hermite:degree=3" in markdown_table(rows)
    assert torch.get_num_threads() >= 1


def test_blocks_timing_and_csv_schema_migration(tmp_path: Path) -> None:
    rows = benchmark_ops(["hermite:degree=3"], shape=(4, 64, 32), runs=3, warmup=1,
                         backends=["eager"], threads=None, progress=False, timing="blocks")
    assert rows[0].timing == "blocks" and "eager (blocks)" in markdown_table(rows)
    old_names = [f.name for f in fields(OpRow) if f.name != "timing"]
    path = tmp_path / "ops.csv"
    with open(path, "w", newline="") as fh:  # a CSV written before the timing column existed
        w = csv.DictWriter(fh, fieldnames=old_names)
        w.writeheader()
        w.writerow({k: getattr(rows[0], k) for k in old_names})
    write_csv(rows, path)
    with open(path) as fh:
        got = list(csv.DictReader(fh))
    assert [r["timing"] for r in got] == ["interleaved", "blocks"]
    with pytest.raises(ValueError, match="timing"):
        benchmark_ops(["hermite:degree=3"], timing="alternating")


def test_step_params_moves_parameters_and_labels_rows() -> None:
    """--step-params: the op's parameters change before every timed run (so tables derived
    from them are rebuilt and timed) and the row says so; by default they stay fixed."""
    import learnact.speed as speed

    seen = []
    real_create = speed.create

    def create(spec):
        act = real_create(spec)
        seen.append((act, act.theta.detach().clone()))
        return act

    speed.create = create
    try:
        rows = benchmark_ops(["ditac:lut=16"], shape=(4, 8), runs=2, warmup=1,
                             backends=["eager"], threads=None, progress=False,
                             step_params=True)
        fixed = benchmark_ops(["ditac:lut=16"], shape=(4, 8), runs=2, warmup=1,
                              backends=["eager"], threads=None, progress=False)
    finally:
        speed.create = real_create
    assert rows[0].params == "stepped" and "params stepped" in markdown_table(rows)
    assert fixed[0].params == "fixed"
    (act, start), (act_fixed, start_fixed) = seen
    # every fwd and fwd+bwd run adds 1e-4: one warm-up pair and 2 interleaved timed pairs
    assert torch.allclose(act.theta.detach() - start, torch.full_like(start, 6e-4), atol=1e-6)
    assert torch.equal(act_fixed.theta.detach(), start_fixed)


def test_steady_malloc_reuses_memory_and_labels_rows() -> None:
    """malloc='steady': glibc keeps freed 12 MB blocks, so an alloc/free loop stops faulting
    in fresh pages; rows record the allocator setting; a bad value is refused."""
    import platform
    import resource

    from learnact.speed import steady_malloc

    applied = steady_malloc()
    assert applied == (platform.system() == "Linux")
    if applied:
        faults = []
        for _ in range(24):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            torch.empty(3 << 20).fill_(1.0)  # 12 MB: 3072 pages if freshly mapped
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        # the heap may grow during the first calls (seen: [2988, 0, 3072, 0, ...] and, in a
        # full CI run, [0, 1457, 3072, 3072, 3072, 0, ...]) and once more late (~2700 pages),
        # but then calls reuse pages: fresh pages would fault ~3072 times on every call
        late = faults[12:]
        assert sum(f > 1000 for f in late) <= 2, faults
        assert sorted(late)[len(late) // 2] < 300, faults
    rows = benchmark_ops(["ditac:lut=16"], shape=(4, 8), runs=2, warmup=1, backends=["eager"],
                         threads=None, progress=False, malloc="steady")
    assert rows[0].malloc == ("steady" if applied else "default")
    assert ("steady malloc" in markdown_table(rows)) == applied
    with pytest.raises(ValueError, match="malloc"):
        benchmark_ops(["ditac:lut=16"], malloc="jemalloc")


def test_backends_are_validated() -> None:
    """'both' means eager and compile; an unknown name is an error (it used to run eager under
    the label 'both')."""
    from learnact.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["bench", "ops", "--backends", "both"]).backends == ["eager", "compile"]
    assert parse(["bench", "ops", "--backends", "compile"]).backends == ["compile"]
    with pytest.raises(SystemExit):
        parse(["bench", "ops", "--backends", "banana"])
    with pytest.raises(ValueError, match="eager"):
        benchmark_ops(["relu"], backends=["both"], progress=False)


def test_results_section_goals_and_markers(tmp_path: Path) -> None:
    """The generated RESULTS.md block: issue #33's goal per row (met / by how much over), per
    channel against the shared row of the same run, written between the markers only."""
    from dataclasses import replace

    from learnact.speed import results_section, write_section

    base = benchmark_ops(["hermite:degree=3"], shape=(4, 64, 32), runs=3, warmup=1,
                         backends=["eager"], threads=None, progress=False)[0]

    def row(spec: str, full_ms: float, gelu_ms: float = 2.0) -> OpRow:
        return replace(base, spec=spec, full_ms_p50=full_ms, gelu_full_ms_p50=gelu_ms,
                       full_ratio_to_gelu=full_ms / gelu_ms)

    rows = [row("hermite:degree=8", 2.8), row("fourier:degree=4", 5.0),
            row("rational", 4.0), row("rational:channels=768,channel_dim=-1", 5.2, 2.0),
            row("pwlu", 9.0)]
    text = results_section(rows, "learnact bench ops --runs 3")
    lines = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| `")}
    assert lines["`hermite:degree=8`"].rstrip().endswith("<= 1.5x: met |")       # 1.4x
    assert lines["`fourier:degree=4`"].rstrip().endswith("<= 2.0x: 1.25x over |")  # 2.5x
    assert lines["`rational`"].rstrip().endswith("<= 1.5x: 1.33x over |")          # 2.0x
    assert "1.30x shared (<= 1.2x: 1.08x over)" in lines["`rational:channels=768,channel_dim=-1`"]
    assert lines["`pwlu`"].rstrip().endswith("|  |")
    assert text.startswith("Generated by `learnact bench ops --runs 3` on ")
    page = tmp_path / "RESULTS.md"
    page.write_text("# R\n<!-- ops-table:start -->\nold\n<!-- ops-table:end -->\nprose\n")
    write_section(page, "ops-table", "new table")
    assert page.read_text() == ("# R\n<!-- ops-table:start -->\nnew table\n"
                                "<!-- ops-table:end -->\nprose\n")
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="ops-table:start"):
        write_section(page, "ops-table", "x")
    assert page.read_text() == "no markers\n"

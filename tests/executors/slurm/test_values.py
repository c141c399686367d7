"""Single Slurm values: durations, times, memory, GRES, hostlists, exit codes, key=value lines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aifactory.executors.slurm.values import (
    ExitStatus,
    Gres,
    expand_hostlist,
    format_duration,
    format_time,
    gpus_by_model,
    parse_duration,
    parse_exit,
    parse_gres,
    parse_key_values,
    parse_memory_mb,
    parse_seconds,
    parse_time,
    parse_tres,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1:00", 60),  # squeue's TimeLimit for --time=1
        ("0:05", 5),
        ("00:01:27", 87),  # sacct's Elapsed
        ("2:03:04", 7384),
        ("1-02:04:00", 93840),
        ("1-02", 93600),  # the forms sbatch --time takes
        ("1-02:03", 93780),
        ("5", 300),
        ("00:03.294", 3.294),  # sacct's TotalCPU
        ("UNLIMITED", None),
        ("Partition_Limit", None),
        ("INVALID", None),
        ("N/A", None),
        ("", None),
    ],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["abc", "1:2:3:4", "-5", "1-"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=400 * 86400))
@settings(max_examples=300, deadline=None)
def test_durations_round_trip(seconds: int) -> None:
    assert parse_seconds(format_duration(seconds)) == seconds


def test_format_duration_writes_slurms_own_forms() -> None:
    assert [format_duration(s) for s in (5, 60, 7384, 93844)] == [
        "0:05",
        "1:00",
        "2:03:04",
        "1-02:04:04",
    ]
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


def test_times_are_read_as_utc() -> None:
    expected = datetime(2026, 11, 26, 18, 44, 35, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-26T18:44:35") == expected
    assert format_time(expected) == "2026-11-26T18:44:35"
    for nothing in ("Unknown", "None", "N/A", "NONE", ""):
        assert parse_time(nothing) is None


@given(st.integers(min_value=0, max_value=4_000_000_000))
def test_times_round_trip(seconds: int) -> None:
    assert parse_time(format_time(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("16000", 16000),
        ("16000M", 16000),
        ("2G", 2048),
        ("1.50G", 1536),
        ("219612K", 219612 / 1024),
        ("1T", 1024 * 1024),
        ("1000Mc", 1000),  # per CPU, as older scontrol prints MinMemoryCPU
        ("N/A", None),
    ],
)
def test_memory_sizes_in_mib(text: str, mb: float | None) -> None:
    assert parse_memory_mb(text) == pytest.approx(mb)


def test_a_malformed_memory_size_is_refused() -> None:
    with pytest.raises(ValueError, match="memory"):
        parse_memory_mb("lots")


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ("gpu:h100:4", [Gres("gpu", "h100", 4)]),
        ("gpu:h100:4(S:0)", [Gres("gpu", "h100", 4)]),
        ("gpu:4", [Gres("gpu", None, 4)]),
        ("gpu", [Gres("gpu", None, 1)]),
        ("gpu:h100:2(IDX:0-1)", [Gres("gpu", "h100", 2, (0, 1))]),
        ("gpu:h100:3(IDX:0,2-3)", [Gres("gpu", "h100", 3, (0, 2, 3))]),
        ("gpu:a100:2,gpu:h100:2", [Gres("gpu", "a100", 2), Gres("gpu", "h100", 2)]),
        ("gpu:h100:4(S:0-1),shard:8", [Gres("gpu", "h100", 4), Gres("shard", None, 8)]),
        ("gres:gpu:2", [Gres("gpu", None, 2)]),  # squeue's tres-per-node
        ("gres/gpu:h100=2", [Gres("gpu", "h100", 2)]),  # the TRES spelling
        ("(null)", []),
        ("N/A", []),
    ],
)
def test_gres(text: str, entries: list[Gres]) -> None:
    assert parse_gres(text) == entries


def test_gpus_by_model_adds_up_gpus_only() -> None:
    entries = parse_gres("gpu:a100:2,gpu:h100:2,gpu:h100:1,shard:8,gpu:3")
    assert gpus_by_model(entries) == {"a100": 2, "h100": 3, None: 3}


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("n1", ["n1"]),
        ("n[1-2]", ["n1", "n2"]),
        ("n[01-03,07],login1", ["n01", "n02", "n03", "n07", "login1"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("gpu[8-11]", ["gpu8", "gpu9", "gpu10", "gpu11"]),
        ("None assigned", []),
        ("", []),
    ],
)
def test_hostlists(text: str, hosts: list[str]) -> None:
    assert expand_hostlist(text) == hosts


@given(
    st.sampled_from(["n", "gpu-", "node"]),
    st.sets(st.integers(min_value=0, max_value=500), min_size=1, max_size=20),
    st.integers(min_value=1, max_value=4),
)
def test_a_compressed_hostlist_expands_to_its_hosts(
    prefix: str, numbers: set[int], width: int
) -> None:
    ordered = sorted(numbers)
    ranges, start = [], ordered[0]
    for previous, current in zip(ordered, [*ordered[1:], None], strict=True):
        if current != previous + 1:
            low, high = str(start).zfill(width), str(previous).zfill(width)
            ranges.append(low if start == previous else f"{low}-{high}")
            start = current if current is not None else start
    text = f"{prefix}[{','.join(ranges)}]"
    assert expand_hostlist(text) == [f"{prefix}{str(n).zfill(width)}" for n in ordered]


def test_exit_statuses() -> None:
    assert parse_exit("0:0") == ExitStatus(0, 0)
    assert parse_exit("3:0") == ExitStatus(3, 0)
    assert parse_exit("0:15") == ExitStatus(0, 15)
    assert parse_exit("0:15").returncode == -15  # type: ignore[union-attr]
    assert parse_exit("") is None
    assert ExitStatus.from_wait_status(768) == ExitStatus(3, 0)  # squeue's exit_code
    assert ExitStatus.from_wait_status(9).returncode == -9
    assert ExitStatus.from_wait_status(0).returncode == 0


def test_tres_in_their_units() -> None:
    assert parse_tres("billing=2,cpu=2,gres/gpu=2,mem=2G,node=1") == {
        "billing": 2,
        "cpu": 2,
        "gres/gpu": 2,
        "mem": 2048,
        "node": 1,
    }
    usage = parse_tres("cpu=00:00:03,energy=0,fs/disk=48338,mem=163056K,pages=3,vmem=170156K")
    assert usage["cpu"] == 3  # CPU time, in seconds
    assert usage["mem"] == pytest.approx(163056 / 1024)
    assert usage["fs/disk"] == 48338
    assert parse_tres("") == {}


def test_key_values_keep_values_with_spaces() -> None:
    line = (
        "NodeName=n1 OS=Linux 6.1 #1 SMP @0  RealMemory=16000 Reason=maintenance window "
        "[root@2026-11-26T19:15:30] TRES=cpu=1,mem=1000M"
    )
    fields = parse_key_values(line)
    assert fields["OS"] == "Linux 6.1 #1 SMP @0"
    assert fields["RealMemory"] == "16000"
    assert fields["Reason"] == "maintenance window [root@2026-11-26T19:15:30]"
    assert fields["TRES"] == "cpu=1,mem=1000M"

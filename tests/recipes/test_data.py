from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aifactory.recipes.dutch_gpt.data import (
    batch_at,
    decode,
    eval_batches,
    load_corpus,
    read_bytes,
)
from aifactory.recipes.dutch_gpt.run import SHIPPED_DATA, environment


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_files_are_read_as_bytes_in_name_order_without_licences(tmp_path: Path) -> None:
    folder = write(tmp_path, {"b.txt": "één", "a.txt": "ab", "LICENSE-x.txt": "no"})
    data = read_bytes(folder, "*.txt")
    assert data.dtype == torch.uint8
    assert bytes(data.tolist()) == "ab\néén".encode()
    assert decode(data) == "ab\néén"


def test_no_matching_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"\*-dev.txt"):
        read_bytes(write(tmp_path, {"x-test.txt": "t"}), "*-dev.txt")


def test_pretraining_reads_the_books_and_finetuning_the_dev_sentences(tmp_path: Path) -> None:
    books = write(tmp_path / "books", {"boek.txt": "oud"})
    sentences = write(tmp_path / "eval", {"x-dev.txt": "dev", "x-test.txt": "test"})
    pretrain = load_corpus("pretrain", books, sentences)
    finetune = load_corpus("finetune", books, sentences)
    assert decode(pretrain.train) == "oud"
    assert decode(finetune.train) == "dev"
    assert decode(pretrain.held_out) == decode(finetune.held_out) == "test"


def test_a_batch_depends_on_seed_step_and_rank_only() -> None:
    data = torch.arange(200, dtype=torch.uint8)
    a = batch_at(data, seed=1, step=5, rank=0, batch_size=4, block_size=8)
    again = batch_at(data, seed=1, step=5, rank=0, batch_size=4, block_size=8)
    assert all(torch.equal(u, v) for u, v in zip(a, again, strict=True))
    for other in ({"seed": 2, "step": 5, "rank": 0}, {"seed": 1, "step": 6, "rank": 0}):
        b = batch_at(data, **other, batch_size=4, block_size=8)
        assert not torch.equal(a[0], b[0])
    assert not torch.equal(
        a[0], batch_at(data, seed=1, step=5, rank=1, batch_size=4, block_size=8)[0]
    )


def test_targets_are_the_next_bytes() -> None:
    data = torch.arange(200, dtype=torch.uint8)
    x, y = batch_at(data, seed=0, step=0, rank=0, batch_size=3, block_size=16)
    assert x.shape == y.shape == (3, 16)
    assert x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(y[:, -1], x[:, -1] + 1)


def test_evaluation_windows_are_fixed_and_bounded() -> None:
    data = torch.arange(100, dtype=torch.uint8)
    batches = eval_batches(data, batches=10, batch_size=4, block_size=10)
    assert [len(x) for x, _ in batches] == [4, 4, 1]  # 9 windows fit in 100 bytes
    assert batches[0][0][1, 0].item() == 10
    assert len(eval_batches(data, batches=1, batch_size=4, block_size=10)) == 1


def test_the_facility_variables_win_over_the_command_line(tmp_path: Path) -> None:
    env = environment(
        {
            "AIFACTORY_DATASET_DUTCH_BOOKS": "/d/books",
            "AIFACTORY_DATASET_DUTCH_EVAL": "/d/eval",
            "AIFACTORY_CHECKPOINT_DIR": "/j/checkpoints",
            "AIFACTORY_PROGRESS_FILE": "/j/progress.jsonl",
            "AIFACTORY_ATTEMPT": "3",
            "AIFACTORY_GRACE_S": "30",
            "RANK": "1",
            "LOCAL_RANK": "1",
            "WORLD_SIZE": "2",
        },
        data=tmp_path,
        checkpoint_dir=tmp_path / "c",
        progress=tmp_path / "p",
    )
    assert (env.books, env.eval_set) == (Path("/d/books"), Path("/d/eval"))
    assert env.checkpoint_dir == Path("/j/checkpoints")
    assert env.progress_file == Path("/j/progress.jsonl")
    assert (env.attempt, env.grace_s, env.rank, env.local_rank, env.world_size) == (3, 30, 1, 1, 2)
    local = environment({}, data=tmp_path)
    assert local.books == tmp_path / "dutch-books"
    assert local.progress_file is None


def test_the_shipped_text_is_there_with_its_licences() -> None:
    books = sorted(p.name for p in (SHIPPED_DATA / "dutch-books").glob("*.txt"))
    eval_files = {p.name for p in (SHIPPED_DATA / "dutch-eval").iterdir()}
    assert len(books) == 8
    assert {"nl_alpino-ud-test.txt", "nl_lassysmall-ud-dev.txt"} <= eval_files
    assert "LICENSE-Alpino-CC-BY-SA-4.0.txt" in eval_files
    assert "CC BY-SA 4.0" in (SHIPPED_DATA / "README.md").read_text(encoding="utf-8")
    corpus = load_corpus("pretrain", SHIPPED_DATA / "dutch-books", SHIPPED_DATA / "dutch-eval")
    assert len(corpus.train) > 4_000_000
    assert "Genua" in decode(corpus.held_out[:2000])

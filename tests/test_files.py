"""Outputs written through temporary siblings get the permissions of any new file or folder."""

import hashlib
import os
import stat
from pathlib import Path

import pytest
from helpers import umask

from topoxai.files import atomic_dir, sha256_file, temp_sibling, write_text

MODES = [
    pytest.param(0o022, 0o644, 0o755, id="umask-022"),
    pytest.param(0o077, 0o600, 0o700, id="umask-077"),
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), MODES)
def test_write_text_gives_normal_file_permissions(tmp_path, mask, file_mode, dir_mode):
    out = tmp_path / "a" / "out.json"
    with umask(mask):
        write_text(out, "{}\n")
    assert out.read_text() == "{}\n"
    assert mode(out) == file_mode
    assert mode(out.parent) == dir_mode
    assert [p.name for p in out.parent.iterdir()] == ["out.json"]


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), MODES)
def test_atomic_dir_gives_normal_folder_permissions(tmp_path, mask, file_mode, dir_mode):
    out = tmp_path / "model"
    with umask(mask), atomic_dir(out) as tmp:
        write_text(tmp / "card.json", "{}\n")
    assert mode(out) == dir_mode
    assert mode(out / "card.json") == file_mode
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_dir_replaces_old_folder_and_removes_its_temporary_on_error(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old").write_text("")
    with pytest.raises(KeyError), atomic_dir(out) as tmp:
        (tmp / "new").write_text("")
        raise KeyError("fail")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in out.iterdir()] == ["old"]
    with atomic_dir(out) as tmp:
        (tmp / "new").write_text("")
    assert [p.name for p in out.iterdir()] == ["new"]


def test_temp_sibling_is_new_each_time_and_hidden_beside_its_target(tmp_path):
    target = tmp_path / "heart.csv"
    (fd1, one), (fd2, two) = temp_sibling(target), temp_sibling(target)
    with open(fd1, "wb"), open(fd2, "wb"):
        pass
    assert one != two
    for tmp in (one, two):
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".heart.csv.") and tmp.name.endswith(".part")
        assert tmp.stat().st_size == 0


def test_writing_never_sets_the_process_umask(tmp_path, monkeypatch):
    """Setting it, even for a moment, would change the permissions other threads' files get."""

    def forbidden(mask: int) -> int:
        raise AssertionError(f"os.umask({mask:#o}) called")

    monkeypatch.setattr(os, "umask", forbidden)
    write_text(tmp_path / "out.json", "{}\n")
    with atomic_dir(tmp_path / "model") as tmp:
        write_text(tmp / "card.json", "{}\n")
    assert (tmp_path / "model" / "card.json").is_file()


def test_sha256_file_known_answer_across_read_blocks(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"")
    assert sha256_file(path) == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of nothing
    )
    data = bytes(range(256)) * 1000  # larger than one read block
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()

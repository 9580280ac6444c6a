"""vae/files/classifier_cache.py: the cache of feature classifiers and of their reference numbers, keyed by the data's
content; files written whole and read without running code; a damaged or foreign file is one line naming it; the
cache beside the data, or under outputs/ where the data's folder cannot be written."""

import logging
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import vae.files.classifier_cache as cache
from vae.core.errors import Damaged, Refused
from vae.files.classifier_cache import (
    cache_folder,
    classifier_file,
    data_key,
    load,
    load_reference,
    reference_file,
    save,
    save_reference,
)


def images(seed: int = 0, n: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,), generator=generator)


KEY = data_key(*images())


def weights() -> dict:
    return nn.Linear(4, 3).state_dict()


class Touches:
    """A pickled object that, unpickled by a loader that runs code, makes a file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


def test_the_key_is_the_datas_content_and_the_recipe(monkeypatch):
    x, y = images()
    assert data_key(x.clone(), y.clone()) == KEY and len(KEY) == 64
    changed = x.clone()
    changed[3, 0, 5, 5] += 0.5
    assert data_key(changed, y) != KEY
    assert data_key(x, (y + 1) % 10) != KEY
    assert data_key(x.reshape(20, 784), y) != KEY  # the same bytes in another shape
    assert data_key(x, y, extra="test images") != KEY
    monkeypatch.setattr(cache, "CLASSIFIER_RECIPE", cache.CLASSIFIER_RECIPE + 1)
    assert data_key(x, y) != KEY  # a changed recipe trains again


def test_a_classifier_round_trips(tmp_path):
    state = weights()
    path = save(tmp_path, KEY, state, accuracy=0.99, seconds=12.5)
    assert path == classifier_file(tmp_path, KEY) == tmp_path / f"classifier-{KEY[:16]}.pt"
    saved = load(path, KEY)
    assert saved["key"] == KEY and saved["accuracy"] == 0.99 and saved["seconds"] == 12.5
    assert saved["recipe"] == cache.CLASSIFIER_RECIPE
    assert saved["state_dict"].keys() == state.keys()
    assert all(torch.equal(saved["state_dict"][name], state[name]) for name in state)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_a_new_folder_is_made_and_files_are_as_readable_as_the_umask_says(tmp_path):
    previous = os.umask(0o022)
    try:
        path = save(tmp_path / "new", KEY, weights(), 0.99, 1.0)
    finally:
        os.umask(previous)
    assert path.parent == tmp_path / "new" and path.stat().st_mode & 0o777 == 0o644  # others who read the data


def test_an_absent_classifier_is_none(tmp_path):
    assert load(classifier_file(tmp_path, KEY), KEY) is None


@pytest.mark.parametrize("content", [b"", b"not a torch file", "cut short"])
def test_a_damaged_classifier_is_one_line_naming_it(tmp_path, content):
    path = save(tmp_path, KEY, weights(), 0.99, 1.0)
    path.write_bytes(path.read_bytes()[:100] if content == "cut short" else content)
    with pytest.raises(Damaged) as damaged:
        load(path, KEY)
    message = str(damaged.value)
    assert str(path) in message and "trained again" in message and "\n" not in message


def test_a_foreign_classifier_is_damaged(tmp_path, monkeypatch):
    other = data_key(*images(seed=1))
    path = save(tmp_path, other, weights(), 0.99, 1.0)
    with pytest.raises(Damaged, match="belongs to other data or another recipe") as damaged:
        load(path, KEY)  # another data's file under this data's name
    assert str(path) in str(damaged.value) and "trained again" in str(damaged.value)
    monkeypatch.setattr(cache, "CLASSIFIER_RECIPE", cache.CLASSIFIER_RECIPE + 1)
    with pytest.raises(Damaged, match="recipe"):
        load(path, other)  # its own data's, by another recipe


def test_a_file_without_weights_or_numbers_is_damaged(tmp_path):
    path = classifier_file(tmp_path, KEY)
    torch.save({"key": KEY, "recipe": cache.CLASSIFIER_RECIPE, "state_dict": {"w": 1}}, path)
    with pytest.raises(Damaged, match="lacks its weights"):
        load(path, KEY)
    torch.save([1, 2], path)
    with pytest.raises(Damaged, match="not a dict"):
        load(path, KEY)


def test_loading_runs_no_code(tmp_path):
    marker, path = tmp_path / "code-ran", classifier_file(tmp_path, KEY)
    torch.save({"key": KEY, "recipe": cache.CLASSIFIER_RECIPE, "state_dict": {"w": Touches(marker)}}, path)
    with pytest.raises(Damaged) as damaged:
        load(path, KEY)
    assert not marker.exists()
    assert str(path) in str(damaged.value) and "objects other than tensors" in str(damaged.value)
    assert "\n" not in str(damaged.value)
    torch.load(path, weights_only=False)  # the file does run code where a loader lets it
    assert marker.exists()


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    path = save(tmp_path, KEY, weights(), 0.5, 1.0)

    def full_disk(contents, file):
        file.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        save(tmp_path, KEY, weights(), 0.99, 1.0)
    monkeypatch.undo()
    assert load(path, KEY)["accuracy"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_reference_round_trips(tmp_path):
    data = {"features": torch.randn(5, 3), "mean": torch.zeros(3), "fid_floor": 1.5, "n": 5}
    path = save_reference(tmp_path, KEY, 5, data)
    assert path == reference_file(tmp_path, KEY, 5) and path.name == f"reference-{KEY[:16]}-5.pt"
    loaded = load_reference(tmp_path, KEY, 5)
    assert loaded.keys() == data.keys() and torch.equal(loaded["features"], data["features"])
    assert loaded["fid_floor"] == 1.5 and loaded["n"] == 5
    assert load_reference(tmp_path, KEY, 6) is None  # another n: another file


def test_an_unusable_reference_is_none_with_a_warning(tmp_path, caplog):
    path = save_reference(tmp_path, KEY, 5, {"a": torch.ones(2)})
    other = save_reference(tmp_path, data_key(*images(seed=1)), 5, {"a": torch.ones(2)})
    for broken in ("damaged", "foreign", "another n"):
        if broken == "damaged":
            path.write_bytes(b"garbage")
        elif broken == "foreign":
            path.write_bytes(other.read_bytes())
        else:
            path.write_bytes(save_reference(tmp_path, KEY, 7, {"a": torch.ones(2)}).read_bytes())
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vae.files.classifier_cache"):
            assert load_reference(tmp_path, KEY, 5) is None
        assert len(caplog.records) == 1, broken
        assert str(path) in caplog.text and "computed again" in caplog.text


def test_a_reference_runs_no_code(tmp_path, caplog):
    marker, path = tmp_path / "code-ran", reference_file(tmp_path, KEY, 5)
    torch.save({"key": KEY, "recipe": cache.CLASSIFIER_RECIPE, "n": 5, "data": {"x": Touches(marker)}}, path)
    assert load_reference(tmp_path, KEY, 5) is None
    assert not marker.exists() and "objects other than tensors" in caplog.text


def test_the_cache_lives_beside_the_data(tmp_path):
    folder = cache_folder(tmp_path / "data")
    assert folder == tmp_path / "data" / "vae-lab-cache" and folder.is_dir()
    assert list(folder.iterdir()) == []  # the probe of writability leaves nothing


def test_the_cache_falls_back_to_outputs_where_the_data_cannot_be_written(tmp_path, monkeypatch):
    """A path under a regular file cannot be a folder (root ignores permissions: a file is what stops it)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    folder = cache_folder(tmp_path / "a-file" / "data")
    assert folder == Path("outputs") / "vae-lab-cache" and (tmp_path / "outputs" / "vae-lab-cache").is_dir()


def test_no_folder_at_all_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "outputs").write_text("not a folder either")
    with pytest.raises(Refused, match="the cache of feature classifiers") as refused:
        cache_folder(tmp_path / "a-file" / "data")
    assert "\n" not in str(refused.value)

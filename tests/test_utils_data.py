import hashlib

import pytest
import torch

from utils.data import DataFileError, download, load_tensor, md5sum


def test_load_tensor_roundtrip(tmp_path):
    t = torch.arange(6.0).reshape(2, 3)
    torch.save(t, tmp_path / "t.pt")
    assert torch.equal(load_tensor(tmp_path / "t.pt"), t)


def test_load_tensor_missing_file_says_where_and_what_to_do(tmp_path):
    with pytest.raises(DataFileError, match="not found.*setup cell"):
        load_tensor(tmp_path / "X.pt")


def test_load_tensor_damaged_or_not_a_tensor(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a tensor file")
    with pytest.raises(DataFileError, match="could not be read"):
        load_tensor(tmp_path / "bad.pt")
    torch.save({"a": 1}, tmp_path / "dict.pt")
    with pytest.raises(DataFileError, match="holds a dict"):
        load_tensor(tmp_path / "dict.pt")


def test_md5sum_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    (tmp_path / "f").write_bytes(data)
    assert md5sum(tmp_path / "f", chunk_size=1000) == hashlib.md5(data).hexdigest()


def test_download_verifies_checksum(tmp_path):
    payload = b"digits" * 1000
    src = tmp_path / "remote.bin"
    src.write_bytes(payload)
    good = hashlib.md5(payload).hexdigest()

    dest = tmp_path / "data" / "file.bin"
    assert download(src.as_uri(), dest, md5=good) == dest
    assert dest.read_bytes() == payload
    assert download("file:///nonexistent", dest, md5=good) == dest  # already there: no download

    bad_dest = tmp_path / "data" / "other.bin"
    with pytest.raises(DataFileError, match="discarded"):
        download(src.as_uri(), bad_dest, md5="0" * 32)
    assert not bad_dest.exists()
    assert not list((tmp_path / "data").glob("*.part")), "no partial file may be left behind"


def test_download_refuses_existing_file_with_wrong_checksum_and_reports_network_errors(tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    with pytest.raises(DataFileError, match="delete it"):
        download("file:///nonexistent", dest, md5="0" * 32)
    with pytest.raises(DataFileError, match="could not download"):
        download((tmp_path / "missing").as_uri(), tmp_path / "new.bin", md5="0" * 32)
    assert not list(tmp_path.glob("*.part"))

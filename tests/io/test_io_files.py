"""Error reporting and atomic writes shared by all readers/writers."""

import os

import numpy as np
import pytest

import pacup.io._files as files
from pacup.io import (
    SUPPORTED_DEPTH,
    SUPPORTED_FLOW,
    ReadError,
    WriteError,
    read_depth,
    read_flow,
    read_guide,
    write_depth,
    write_flow,
    write_image,
)

WRITERS = {
    "depth.png": lambda p: write_depth(p, np.ones((3, 4))),
    "depth.npy": lambda p: write_depth(p, np.ones((3, 4))),
    "depth.pfm": lambda p: write_depth(p, np.ones((3, 4))),
    "depth.tif": lambda p: write_depth(p, np.ones((3, 4))),
    "flow.flo": lambda p: write_flow(p, np.ones((3, 4, 2))),
    "flow.png": lambda p: write_flow(p, np.ones((3, 4, 2))),
    "vis.png": lambda p: write_image(p, np.zeros((3, 4, 3), np.uint8)),
    "vis.jpg": lambda p: write_image(p, np.zeros((3, 4, 3), np.uint8)),
}


def test_supported_extension_tuples():
    assert SUPPORTED_DEPTH == (".png", ".npy", ".pfm", ".tif", ".tiff")
    assert SUPPORTED_FLOW == (".flo", ".png", ".pfm", ".npy")


@pytest.mark.parametrize("reader, name", [(read_depth, "d.png"), (read_flow, "f.flo"), (read_guide, "g.jpg")])
def test_missing_file(tmp_path, reader, name, assert_one_line_error):
    path = tmp_path / name
    with pytest.raises(ReadError) as exc_info:
        reader(path)
    assert_one_line_error(exc_info, path, "not found")


def test_directory_instead_of_file(tmp_path, assert_one_line_error):
    path = tmp_path / "dir.npy"
    path.mkdir()
    with pytest.raises(ReadError) as exc_info:
        read_depth(path)
    assert_one_line_error(exc_info, path, "directory")


@pytest.mark.parametrize(
    "call, supported",
    [
        (lambda p: read_depth(p), SUPPORTED_DEPTH),
        (lambda p: read_flow(p), SUPPORTED_FLOW),
        (lambda p: write_depth(p, np.ones((2, 2))), SUPPORTED_DEPTH),
        (lambda p: write_flow(p, np.ones((2, 2, 2))), SUPPORTED_FLOW),
    ],
)
def test_unknown_extension_lists_supported(tmp_path, call, supported, assert_one_line_error):
    path = tmp_path / "x.exr"
    path.write_bytes(b"whatever")
    with pytest.raises((ReadError, WriteError)) as exc_info:
        call(path)
    assert_one_line_error(exc_info, path, "'.exr'", *supported)


def test_extension_is_case_insensitive(tmp_path):
    write_depth(tmp_path / "D.NPY", np.ones((2, 2)))
    assert read_depth(tmp_path / "D.NPY")[1].all()


def test_write_image_unknown_extension(tmp_path, assert_one_line_error):
    path = tmp_path / "vis.nope"
    with pytest.raises(WriteError) as exc_info:
        write_image(path, np.zeros((2, 2, 3), np.uint8))
    assert_one_line_error(exc_info, path, ".png")


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_missing_output_directory(tmp_path, name, assert_one_line_error):
    path = tmp_path / "no" / "such" / name
    with pytest.raises(WriteError) as exc_info:
        WRITERS[name](path)
    assert_one_line_error(exc_info, path, "does not exist")
    assert not (tmp_path / "no").exists()  # we do not create directories


def test_output_directory_is_a_file(tmp_path, assert_one_line_error):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "d.npy"
    with pytest.raises(WriteError) as exc_info:
        write_depth(path, np.ones((2, 2)))
    assert_one_line_error(exc_info, path, "not a directory")


def test_output_path_is_a_directory(tmp_path, assert_one_line_error):
    path = tmp_path / "out.png"
    path.mkdir()
    with pytest.raises(WriteError) as exc_info:
        write_depth(path, np.ones((2, 2)))
    assert_one_line_error(exc_info, path, "directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory(tmp_path, assert_one_line_error):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        path = locked / "d.png"
        with pytest.raises(WriteError) as exc_info:
            write_depth(path, np.ones((2, 2)))
        assert_one_line_error(exc_info, path, "not writable")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


def test_unwritable_directory_simulated(tmp_path, monkeypatch, assert_one_line_error):
    # Same check when running as root (CI containers), by making the create call fail.
    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.os, "open", deny)
    path = tmp_path / "d.png"
    with pytest.raises(WriteError) as exc_info:
        write_depth(path, np.ones((2, 2)))
    assert_one_line_error(exc_info, path, "not writable")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_successful_write_leaves_only_the_output(tmp_path, name):
    WRITERS[name](tmp_path / name)
    assert os.listdir(tmp_path) == [name]


def test_temp_file_keeps_extension_and_is_hidden(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    write_depth(tmp_path / "out.png", np.ones((2, 2)))
    (tmp_name,) = seen
    assert tmp_name.startswith(".out.tmp-") and tmp_name.endswith(".png")


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_removes_temp_and_keeps_old_file(tmp_path, monkeypatch, failing, assert_one_line_error):
    path = tmp_path / "d.npy"
    path.write_bytes(b"previous contents")

    def boom(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files.os, failing, boom)
    with pytest.raises(WriteError) as exc_info:
        write_depth(path, np.ones((2, 2)))
    assert_one_line_error(exc_info, path, "Input/output error")
    assert os.listdir(tmp_path) == ["d.npy"]
    assert path.read_bytes() == b"previous contents"


def test_failure_inside_the_encoder_leaves_nothing(tmp_path):
    def writer(fh):
        fh.write(b"partial")
        raise RuntimeError("encoder exploded")

    path = tmp_path / "x.png"
    with pytest.raises(WriteError, match="encoder exploded"):
        files.atomic_write(path, writer)
    assert os.listdir(tmp_path) == []


def test_interrupt_removes_temp_and_propagates(tmp_path):
    def writer(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(tmp_path / "x.png", writer)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_output_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_depth(tmp_path / "d.npy", np.ones((2, 2)))
    finally:
        os.umask(old)
    assert (tmp_path / "d.npy").stat().st_mode & 0o777 == 0o644


def test_garbage_png_is_a_read_error(tmp_path, assert_one_line_error):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    for reader in (read_depth, read_flow, read_guide):
        with pytest.raises(ReadError) as exc_info:
            reader(path)
        assert_one_line_error(exc_info, path)

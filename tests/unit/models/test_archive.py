"""Model archives: what is accepted, what is refused (and why), and how it is expanded."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from aorta.errors import ErrorCode, Invalid
from aorta.triton.archive import DEFAULT_LIMITS, ArchiveLimits, extract_archive, inspect_archive
from tests.unit.models.model_fakes import MODEL_PY, model_zip, zip_bytes

CONFIG = 'name: "seg"\nbackend: "python"\n'


def written(tmp_path: Path, data: bytes, name: str = "upload.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path, *, name: str = "seg", limits: ArchiveLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(Invalid) as caught:
        inspect_archive(path, name=name, limits=limits)
    assert caught.value.code in (ErrorCode.MODEL_ARCHIVE_INVALID, ErrorCode.MODEL_REQUEST_INVALID)
    return "\n".join(caught.value.messages)


@pytest.mark.parametrize("top", [True, False])
def test_a_model_folder_is_accepted_with_or_without_its_top_folder(
    tmp_path: Path, top: bool
) -> None:
    model = inspect_archive(written(tmp_path, model_zip("seg", top=top)), name="seg")
    assert model.name == "seg"
    assert model.root == ("seg/" if top else "")
    assert model.files == ("config.pbtxt", "1/model.py")
    assert model.versions == (1,)
    assert model.backend == "python"


def test_the_name_comes_from_the_upload_then_the_config_then_the_folder(tmp_path: Path) -> None:
    no_name = zip_bytes({"brain/config.pbtxt": 'backend: "python"', "brain/3/m.py": MODEL_PY})
    assert inspect_archive(written(tmp_path, no_name), name="").name == "brain"
    from_config = model_zip("liver", top=False)
    assert inspect_archive(written(tmp_path, from_config, "b.zip"), name="").name == "liver"


def test_nameless_everything_is_refused(tmp_path: Path) -> None:
    bare = zip_bytes({"config.pbtxt": 'backend: "python"', "1/model.py": MODEL_PY})
    assert "the model has no name" in refused(written(tmp_path, bare), name="")


def test_a_config_name_that_differs_from_the_model_name_is_refused(tmp_path: Path) -> None:
    text = refused(written(tmp_path, model_zip("other", top=False)), name="seg")
    assert "config.pbtxt names the model 'other', not 'seg'" in text


def test_a_top_folder_named_otherwise_is_refused(tmp_path: Path) -> None:
    archive = zip_bytes({"v2/config.pbtxt": CONFIG, "v2/1/model.py": MODEL_PY})
    text = refused(written(tmp_path, archive))
    assert "top folder 'v2' is not named after the model 'seg'" in text


def test_a_config_triton_cannot_parse_is_refused_with_line_and_column(tmp_path: Path) -> None:
    archive = zip_bytes({"config.pbtxt": 'name: "seg"\nbackend: "python"\nbogus: 1\n'})
    text = refused(written(tmp_path, archive))
    assert "config.pbtxt is not a valid Triton model configuration: line 3, column" in text
    assert "bogus" in text


def test_an_archive_without_a_version_folder_is_refused(tmp_path: Path) -> None:
    archive = zip_bytes(
        {"seg/config.pbtxt": CONFIG, "seg/weights/model.py": MODEL_PY, "seg/2/": ""}
    )
    assert "no numbered version folder" in refused(written(tmp_path, archive))


def test_an_archive_without_a_config_is_refused(tmp_path: Path) -> None:
    archive = zip_bytes({"seg/1/model.py": MODEL_PY})
    assert "no config.pbtxt" in refused(written(tmp_path, archive))


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.py", "'.' or '..' segment"),
        ("seg/1/../../evil.py", "'.' or '..' segment"),
        ("/etc/passwd", "absolute path"),
        ("C:/windows/evil.dll", "absolute path"),
        ("seg\\1\\evil.py", "uses '\\' in its path"),
        ("seg//1/evil.py", "empty, '.' or '..' segment"),
        ("seg/1/ev\x01il.py", "control character"),
    ],
)
def test_unsafe_member_paths_refuse_the_whole_archive(
    tmp_path: Path, member: str, problem: str
) -> None:
    archive = zip_bytes({"seg/config.pbtxt": CONFIG, "seg/1/model.py": MODEL_PY, member: b"x"})
    assert problem in refused(written(tmp_path, archive))


def test_symbolic_links_and_devices_are_refused(tmp_path: Path) -> None:
    archive = zip_bytes(
        {
            "seg/config.pbtxt": CONFIG,
            "seg/1/model.py": MODEL_PY,
            "seg/1/link.py": "/etc/passwd",
            "seg/1/null": b"",
        },
        modes={"seg/1/link.py": stat.S_IFLNK | 0o777, "seg/1/null": stat.S_IFCHR | 0o666},
    )
    text = refused(written(tmp_path, archive))
    assert "'seg/1/link.py' is a symbolic link" in text
    assert "'seg/1/null' is a device, FIFO or socket" in text


def test_a_zip_bomb_is_refused_before_anything_is_inflated(tmp_path: Path) -> None:
    bomb = zip_bytes(
        {"seg/config.pbtxt": CONFIG, "seg/1/model.py": MODEL_PY, "seg/1/zeros": bytes(4_000_000)}
    )
    path = written(tmp_path, bomb)
    assert path.stat().st_size < 20_000
    text = refused(path, limits=ArchiveLimits(max_uncompressed_bytes=1_000_000))
    assert "expands to" in text and "more than the 1000000 bytes allowed" in text


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    files = {f"seg/1/{i}.txt": b"" for i in range(20)}
    archive = zip_bytes({"seg/config.pbtxt": CONFIG, **files})
    text = refused(written(tmp_path, archive), limits=ArchiveLimits(max_members=10))
    assert "holds 21 members, more than the 10 allowed" in text


def test_a_damaged_member_is_refused(tmp_path: Path) -> None:
    files = {"config.pbtxt": CONFIG, "1/model.py": MODEL_PY}
    data = bytearray(zip_bytes(files, compression=zipfile.ZIP_STORED))
    data[data.index(b"class TritonPythonModel")] ^= 0xFF
    assert "'1/model.py' is damaged" in refused(written(tmp_path, bytes(data)))


def test_bytes_that_are_not_a_zip_and_empty_uploads_are_refused(tmp_path: Path) -> None:
    assert "not a readable ZIP archive" in refused(written(tmp_path, b"GIF89a not a zip"))
    assert "holds no bytes" in refused(written(tmp_path, b"", "empty.zip"))


def test_encrypted_members_are_refused(tmp_path: Path) -> None:
    data = bytearray(model_zip("seg", top=False))
    # Set the "encrypted" flag of every central directory entry.
    index = data.find(b"PK\x01\x02")
    while index != -1:
        data[index + 8] |= 0x1
        index = data.find(b"PK\x01\x02", index + 4)
    assert "is encrypted" in refused(written(tmp_path, bytes(data)))


def test_a_bad_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        inspect_archive(written(tmp_path, model_zip("seg")), name="../seg")
    assert caught.value.code == ErrorCode.MODEL_REQUEST_INVALID


def test_macos_side_folders_are_ignored(tmp_path: Path) -> None:
    archive = zip_bytes(
        {"seg/config.pbtxt": CONFIG, "seg/1/model.py": MODEL_PY, "__MACOSX/seg/._x": b"junk"}
    )
    path = written(tmp_path, archive)
    model = inspect_archive(path, name="seg")
    target = tmp_path / "out"
    extract_archive(path, model, target, ArchiveLimits())
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "1",
        "1/model.py",
        "config.pbtxt",
    ]


def test_extraction_writes_the_model_folder_without_its_top_folder(tmp_path: Path) -> None:
    path = written(tmp_path, model_zip("seg"))
    model = inspect_archive(path, name="seg")
    extract_archive(path, model, tmp_path / "seg", ArchiveLimits())
    assert (tmp_path / "seg" / "config.pbtxt").read_text().startswith('name: "seg"\n')
    assert (tmp_path / "seg" / "1" / "model.py").read_bytes() == MODEL_PY
    assert stat.S_IMODE((tmp_path / "seg" / "1" / "model.py").stat().st_mode) == 0o644


def test_extraction_checks_members_again(tmp_path: Path) -> None:
    path = written(tmp_path, model_zip("seg"))
    model = inspect_archive(path, name="seg")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("seg/../../escape.txt", b"x")
    with pytest.raises(Invalid):
        extract_archive(path, model, tmp_path / "seg", ArchiveLimits())
    assert not (tmp_path.parent / "escape.txt").exists()


def test_a_corrupt_compressed_stream_is_refused_not_crashed_on(tmp_path: Path) -> None:
    files = {"config.pbtxt": CONFIG, "1/model.py": MODEL_PY + b"# padding\n" * 400}
    data = bytearray(zip_bytes(files))
    start = data.index(b"1/model.py") + len("1/model.py")
    for offset in range(start + 5, start + 40):
        data[offset] ^= 0x5A
    assert "damaged" in refused(written(tmp_path, bytes(data)))

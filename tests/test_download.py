"""VOC downloader tests, all against a local HTTP server on 127.0.0.1 serving a tiny tar built here.

No test touches the internet: every call passes `mirrors=[...]` pointing at the local server (or at a closed
local port) and `md5=` of the tiny archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shutil
import socket
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from starter_code.data import download
from starter_code.data.download import (
    VOC_MD5,
    VOC_MIRRORS,
    VOC_RECORD_SUFFIX,
    VOC_TAR_NAME,
    DownloadError,
    UnsafeArchiveError,
    download_voc,
    md5sum,
    safe_extract,
    verify_archive,
)

TRAIN_TXT = b"2007_000032\n2007_000039\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + random.Random(0).randbytes(150_000) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + random.Random(1).randbytes(2_000)


# ------------------------------------------------------------------------------------------------- tar builders


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    return ti, data


def _dir(name: str) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o755
    return ti, None


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    return ti, None


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    return ti, None


def make_tar(extra: list | tuple = (), *, voc: bool = True, salt: bytes = b"") -> bytes:
    """A tiny VOCdevkit/VOC2012 tree (plus `extra` members) as tar bytes; `salt` changes the content."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    if voc:
        base = "VOCdevkit/VOC2012"
        members += [
            _dir("VOCdevkit"), _dir(base), _dir(f"{base}/ImageSets"), _dir(f"{base}/ImageSets/Segmentation"),
            _file(f"{base}/ImageSets/Segmentation/train.txt", TRAIN_TXT + salt),
            _file(f"{base}/ImageSets/Segmentation/val.txt", b"2007_000033\n"),
            _dir(f"{base}/JPEGImages"), _file(f"{base}/JPEGImages/2007_000032.jpg", JPEG),
            _dir(f"{base}/SegmentationClass"), _file(f"{base}/SegmentationClass/2007_000032.png", PNG),
        ]
    members += list(extra)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for ti, data in members:
            tf.addfile(ti, None if data is None else io.BytesIO(data))
    return buf.getvalue()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


GOOD_TAR = make_tar()
GOOD_MD5 = md5_of(GOOD_TAR)


# ---------------------------------------------------------------------------------------------------- the server


class ServerState:
    """What the local server serves and what it saw. `honor_range=False` answers 200 to Range requests;
    `drop_after=N` makes the first response stop after N body bytes (connection closed)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}  # path -> Location of a 301
        self.requests: list[dict] = []
        self.honor_range = True
        self.drop_after: int | None = None
        self.base = ""

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url(path)


def _handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            record = {"path": self.path, "headers": dict(self.headers)}
            state.requests.append(record)
            if self.path in state.redirects:
                record["status"] = 301
                self.send_response(301)
                self.send_header("Location", state.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = state.files.get(self.path)
            if data is None:
                record["status"] = 404
                self.send_error(404)
                return
            body, status = data, 200
            rng = self.headers.get("Range")
            if rng and state.honor_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    record["status"] = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, status = data[start:], 206
            record["status"] = status
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {len(data) - len(body)}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Type", "application/x-tar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.drop_after is not None:
                body, state.drop_after = body[: state.drop_after], None
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    return Handler


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment must not intercept requests to 127.0.0.1, nor a test hook redirect them."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    for var in ("KIT_TEST_VOC_URL", "KIT_TEST_VOC_MD5"):  # the Colab simulation's hook, never set here
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server():
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """ROOT one level below tmp_path, so anything written next to it (outside ROOT) can be seen."""
    return tmp_path / "root"


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{VOC_TAR_NAME}"


def get(root: Path, mirrors: list[str], md5: str = GOOD_MD5, **kw) -> Path:
    return download_voc(root, mirrors=mirrors, md5=md5, progress=False, timeout=5, **kw)


def assert_installed(root: Path, voc: Path) -> None:
    assert voc == root / "VOCdevkit" / "VOC2012"
    assert (voc / "ImageSets" / "Segmentation" / "train.txt").read_bytes() == TRAIN_TXT
    assert (voc / "JPEGImages" / "2007_000032.jpg").read_bytes() == JPEG
    assert (voc / "SegmentationClass" / "2007_000032.png").read_bytes() == PNG


def assert_no_leftovers(root: Path, tar_kept: bool = False) -> None:
    assert not (root / (VOC_TAR_NAME + ".part")).exists()
    assert (root / VOC_TAR_NAME).exists() == tar_kept
    assert (root / (VOC_TAR_NAME + VOC_RECORD_SUFFIX)).exists() == tar_kept
    assert not list(root.glob(".extract-*"))


def assert_nothing_installed(root: Path) -> None:
    assert not (root / "VOCdevkit").exists()
    assert not list(root.glob(".extract-*"))


# ------------------------------------------------------------------------------------------------------- tests


def test_mirror_list_starts_with_official_host() -> None:
    assert VOC_MIRRORS[0] == "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
    assert len(VOC_MIRRORS) >= 3 and all(u.endswith("/" + VOC_TAR_NAME) for u in VOC_MIRRORS)


def test_happy_path_downloads_verifies_extracts(root: Path, server: ServerState) -> None:
    url = server.serve("/voc.tar", GOOD_TAR)
    voc = download_voc(root, mirrors=[url], md5=GOOD_MD5, progress=True, timeout=5)
    assert_installed(root, voc)
    assert_no_leftovers(root)  # the .tar is deleted after a successful extraction (keep_tar=False)
    assert len(server.requests) == 1 and "Range" not in server.requests[0]["headers"]


def test_keep_tar_leaves_verified_archive(root: Path, server: ServerState) -> None:
    voc = get(root, [server.serve("/voc.tar", GOOD_TAR)], keep_tar=True)
    assert_installed(root, voc)
    assert_no_leftovers(root, tar_kept=True)
    assert md5sum(root / VOC_TAR_NAME) == GOOD_MD5


def test_already_installed_returns_without_network(root: Path, server: ServerState) -> None:
    url = server.serve("/voc.tar", GOOD_TAR)
    get(root, [url])
    n = len(server.requests)
    assert get(root, [url]) == root / "VOCdevkit" / "VOC2012"
    assert len(server.requests) == n


def test_checksum_mismatch_is_refused(root: Path, server: ServerState) -> None:
    other = make_tar(salt=b"tampered\n")
    url = server.serve("/voc.tar", other)
    with pytest.raises(DownloadError) as exc:
        get(root, [url])
    msg = str(exc.value)
    assert url in msg and GOOD_MD5 in msg and md5_of(other) in msg
    assert_nothing_installed(root)
    assert_no_leftovers(root)


@pytest.mark.parametrize("bad", ["404", "refused"])
def test_first_mirror_fails_second_works(root: Path, server: ServerState, bad: str) -> None:
    good = server.serve("/voc.tar", GOOD_TAR)
    first = server.url("/missing.tar") if bad == "404" else closed_port_url()
    assert_installed(root, get(root, [first, good]))
    assert_no_leftovers(root)
    if bad == "404":
        assert [r["status"] for r in server.requests] == [404, 200]


def test_checksum_mismatch_on_first_mirror_then_second_works(root: Path, server: ServerState) -> None:
    bad = server.serve("/bad.tar", make_tar(salt=b"x"))
    good = server.serve("/voc.tar", GOOD_TAR)
    assert_installed(root, get(root, [bad, good]))
    assert_no_leftovers(root)


EVIL_ABS = f"/tmp/voc-test-evil-{uuid.uuid4().hex}"


@pytest.mark.parametrize(("member", "name"), [
    (_file("../evil.txt", b"pwned"), "../evil.txt"),
    (_file(EVIL_ABS, b"pwned"), EVIL_ABS),
    (_link("VOCdevkit/VOC2012/escape", "../../../evil.txt"), "VOCdevkit/VOC2012/escape"),
], ids=["dotdot", "absolute", "symlink-outside"])
def test_malicious_member_is_refused(tmp_path: Path, root: Path, server: ServerState, member, name: str) -> None:
    evil = make_tar([member])
    with pytest.raises(UnsafeArchiveError) as exc:
        get(root, [server.serve("/voc.tar", evil)], md5=md5_of(evil))
    assert repr(name) in str(exc.value)
    assert isinstance(exc.value, DownloadError)
    assert_nothing_installed(root)
    assert not Path(EVIL_ABS).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing written next to ROOT
    # only the verified archive remains, with the record of its MD5
    assert sorted(p.name for p in root.iterdir()) == [VOC_TAR_NAME, VOC_TAR_NAME + VOC_RECORD_SUFFIX]


@pytest.mark.parametrize(("member", "name"), [
    (_link("VOCdevkit/hard", "../etc/passwd", tarfile.LNKTYPE), "VOCdevkit/hard"),
    (_link("VOCdevkit/abs-link", "/etc/passwd"), "VOCdevkit/abs-link"),
    (_special("VOCdevkit/VOC2012/tty", tarfile.CHRTYPE), "VOCdevkit/VOC2012/tty"),
    (_special("VOCdevkit/VOC2012/disk", tarfile.BLKTYPE), "VOCdevkit/VOC2012/disk"),
    (_special("VOCdevkit/VOC2012/fifo", tarfile.FIFOTYPE), "VOCdevkit/VOC2012/fifo"),
], ids=["hardlink-outside", "absolute-symlink", "char-device", "block-device", "fifo"])
def test_safe_extract_refuses(tmp_path: Path, root: Path, member, name: str) -> None:
    tar = tmp_path / "x.tar"
    tar.write_bytes(make_tar([member]))
    with pytest.raises(UnsafeArchiveError, match=re.escape(repr(name))):
        safe_extract(tar, root)
    assert_nothing_installed(root)


def test_safe_extract_refuses_writing_through_a_symlink(tmp_path: Path, root: Path) -> None:
    tar = tmp_path / "x.tar"
    # the link itself stays inside, but a later member is written through it
    tar.write_bytes(make_tar([_link("VOCdevkit/here", "."), _file("VOCdevkit/here/x.txt", b"x")]))
    with pytest.raises(UnsafeArchiveError, match="VOCdevkit/here/x.txt"):
        safe_extract(tar, root)
    assert_nothing_installed(root)


def test_safe_extract_allows_links_inside(tmp_path: Path, root: Path) -> None:
    tar = tmp_path / "x.tar"
    tar.write_bytes(make_tar([_link("VOCdevkit/VOC2012/alias.txt", "ImageSets/Segmentation/train.txt")]))
    voc = safe_extract(tar, root)
    assert (voc / "alias.txt").read_bytes() == TRAIN_TXT
    assert not list(root.glob(".extract-*"))


def test_safe_extract_needs_expected_folder(tmp_path: Path, root: Path) -> None:
    tar = tmp_path / "x.tar"
    tar.write_bytes(make_tar([_dir("other"), _file("other/a.txt", b"a")], voc=False))
    with pytest.raises(DownloadError, match="VOCdevkit/VOC2012"):
        safe_extract(tar, root)
    assert_nothing_installed(root)


def test_safe_extract_never_overwrites(tmp_path: Path, root: Path) -> None:
    tar = tmp_path / "x.tar"
    tar.write_bytes(GOOD_TAR)
    (root / "VOCdevkit" / "VOC2012").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        safe_extract(tar, root)
    assert list((root / "VOCdevkit" / "VOC2012").iterdir()) == []


def test_incomplete_existing_install_is_not_touched(root: Path, server: ServerState) -> None:
    (root / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="train.txt"):
        get(root, [server.serve("/voc.tar", GOOD_TAR)])
    assert server.requests == []


def test_partial_file_is_resumed_with_range(root: Path, server: ServerState) -> None:
    root.mkdir()
    half = len(GOOD_TAR) // 2
    (root / (VOC_TAR_NAME + ".part")).write_bytes(GOOD_TAR[:half])
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert [r["headers"].get("Range") for r in server.requests] == [f"bytes={half}-"]
    assert server.requests[0]["status"] == 206
    assert_no_leftovers(root)


def test_resume_survives_a_redirect(root: Path, server: ServerState) -> None:
    """The official host answers with a redirect; the Range header must reach the final server."""
    root.mkdir()
    (root / (VOC_TAR_NAME + ".part")).write_bytes(GOOD_TAR[:1234])
    target = server.serve("/moved/voc.tar", GOOD_TAR)
    server.redirects["/voc.tar"] = target
    assert_installed(root, get(root, [server.url("/voc.tar")]))
    assert [(r["status"], r["headers"].get("Range")) for r in server.requests] == [
        (301, "bytes=1234-"), (206, "bytes=1234-")]


def test_server_ignoring_range_still_gives_correct_file(root: Path, server: ServerState) -> None:
    root.mkdir()
    half = len(GOOD_TAR) // 2
    (root / (VOC_TAR_NAME + ".part")).write_bytes(GOOD_TAR[:half])
    server.honor_range = False
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)], keep_tar=True))
    assert server.requests[0]["headers"].get("Range") == f"bytes={half}-"
    assert server.requests[0]["status"] == 200
    assert md5sum(root / VOC_TAR_NAME) == GOOD_MD5


def test_dropped_connection_is_resumed(root: Path, server: ServerState) -> None:
    server.drop_after = 40_000
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert [r["headers"].get("Range") for r in server.requests] == [None, "bytes=40000-"]
    assert_no_leftovers(root)


def test_complete_partial_file_gets_416_and_verifies(root: Path, server: ServerState) -> None:
    root.mkdir()
    (root / (VOC_TAR_NAME + ".part")).write_bytes(GOOD_TAR)
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert [r["status"] for r in server.requests] == [416]


def test_corrupt_partial_file_is_downloaded_again(root: Path, server: ServerState) -> None:
    root.mkdir()
    (root / (VOC_TAR_NAME + ".part")).write_bytes(b"\0" * 1000)
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert [r["headers"].get("Range") for r in server.requests] == ["bytes=1000-", None]
    assert_no_leftovers(root)


def test_all_mirrors_fail_says_what_to_do(root: Path, server: ServerState) -> None:
    mirrors = [closed_port_url(), server.url("/missing.tar")]
    with pytest.raises(DownloadError) as exc:
        get(root, mirrors)
    msg = str(exc.value)
    assert isinstance(exc.value, RuntimeError)
    for url in mirrors:
        assert url in msg
    assert "404" in msg
    assert VOC_TAR_NAME in msg and GOOD_MD5 in msg and "1.9 GB" in msg
    assert str((root / VOC_TAR_NAME).resolve()) in msg
    assert_nothing_installed(root)


def test_tar_placed_by_hand_is_extracted_without_network(root: Path, server: ServerState) -> None:
    root.mkdir()
    (root / VOC_TAR_NAME).write_bytes(GOOD_TAR)
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert server.requests == []
    assert_no_leftovers(root)


def test_tar_placed_by_hand_with_wrong_md5_is_replaced(root: Path, server: ServerState) -> None:
    root.mkdir()
    (root / VOC_TAR_NAME).write_bytes(make_tar(salt=b"old"))
    assert_installed(root, get(root, [server.serve("/voc.tar", GOOD_TAR)]))
    assert server.requests[-1]["status"] == 200
    assert_no_leftovers(root)


def test_md5sum_streams_large_file(tmp_path: Path) -> None:
    data = random.Random(2).randbytes(3 * (1 << 20) + 17)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert md5sum(p) == md5_of(data)


# ------------------------------------------------------------------------------- an archive kept elsewhere (Drive)


@pytest.fixture
def md5_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the downloader hashes (download.md5sum, still computed for real)."""
    calls: list[Path] = []

    def counting(path):
        calls.append(Path(path))
        return md5sum(path)

    monkeypatch.setattr(download, "md5sum", counting)
    return calls


def test_archive_kept_in_tar_dir_is_downloaded_once_and_hashed_once(tmp_path: Path, server: ServerState,
                                                                     md5_calls: list[Path]) -> None:
    """Colab: the tar on Drive (tar_dir), extracted onto each VM's own disk (root)."""
    drive = tmp_path / "drive" / "data"
    url = server.serve("/voc.tar", GOOD_TAR)
    vm1 = tmp_path / "vm1" / "voc"
    assert_installed(vm1, get(vm1, [url], tar_dir=drive, keep_tar=True))
    assert sorted(p.name for p in drive.iterdir()) == [VOC_TAR_NAME, VOC_TAR_NAME + VOC_RECORD_SUFFIX]
    assert sorted(p.name for p in vm1.iterdir()) == ["VOCdevkit"]  # nothing but the data on the VM's disk
    record = json.loads((drive / (VOC_TAR_NAME + VOC_RECORD_SUFFIX)).read_text())
    assert record == {"file": VOC_TAR_NAME, "md5": GOOD_MD5, "bytes": len(GOOD_TAR)}
    assert md5_calls == [drive / (VOC_TAR_NAME + ".part")]  # the download's one check

    vm2 = tmp_path / "vm2" / "voc"  # a new VM: same Drive, empty disk
    assert_installed(vm2, get(vm2, [url], tar_dir=drive, keep_tar=True))
    assert len(server.requests) == 1 and len(md5_calls) == 1  # neither downloaded nor hashed again
    assert (drive / VOC_TAR_NAME).read_bytes() == GOOD_TAR


def test_archive_placed_by_hand_is_hashed_once(root: Path, server: ServerState, md5_calls: list[Path]) -> None:
    root.mkdir()
    (root / VOC_TAR_NAME).write_bytes(GOOD_TAR)
    assert verify_archive(root / VOC_TAR_NAME, GOOD_MD5) and verify_archive(root / VOC_TAR_NAME, GOOD_MD5)
    assert md5_calls == [root / VOC_TAR_NAME]
    assert not verify_archive(root / VOC_TAR_NAME, VOC_MD5)  # another expected MD5: hashed again, refused
    assert len(md5_calls) == 2 and not (root / (VOC_TAR_NAME + VOC_RECORD_SUFFIX)).exists()


def test_a_record_of_another_size_is_not_trusted(root: Path, server: ServerState, md5_calls: list[Path]) -> None:
    """The archive changed after it was verified (e.g. a truncated copy): hashed again and replaced."""
    url = server.serve("/voc.tar", GOOD_TAR)
    get(root, [url], keep_tar=True)
    with open(root / VOC_TAR_NAME, "r+b") as f:
        f.truncate(len(GOOD_TAR) // 2)
    shutil.rmtree(root / "VOCdevkit")
    assert_installed(root, get(root, [url], keep_tar=True))
    assert len(md5_calls) == 3  # the first download, the truncated file, the second download
    assert [r.get("headers", {}).get("Range") for r in server.requests] == [None, f"bytes={len(GOOD_TAR) // 2}-"]


def test_test_hook_replaces_only_the_defaults(root: Path, server: ServerState, monkeypatch) -> None:
    """KIT_TEST_VOC_URL/KIT_TEST_VOC_MD5 (the Colab simulation test's hook) point a default call at a local
    archive; explicit mirrors or md5 win, and one variable without the other is refused."""
    url = server.serve("/voc.tar", GOOD_TAR)
    monkeypatch.setenv("KIT_TEST_VOC_URL", url)
    with pytest.raises(DownloadError, match="must be set together"):
        download_voc(root, progress=False)
    monkeypatch.setenv("KIT_TEST_VOC_MD5", GOOD_MD5)
    assert_installed(root, download_voc(root, progress=False))
    assert len(server.requests) == 1
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download_voc(root.parent / "other", mirrors=[url], md5=VOC_MD5, progress=False)

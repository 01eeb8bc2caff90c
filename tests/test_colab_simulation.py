"""The Colab course path, end to end on CPU: notebooks 01-08 each executed on its own fresh simulated Colab VM.

What is real: the notebooks as committed (opened from the course's repository, as the README's "Open in Colab"
links do), their setup cell and `workspace.setup` (git clone of the course's repository, Drive mount, GPU check),
the VOC downloader (`data/download.py`, over HTTP, MD5 checked), training, resume and the results notebook.

What is simulated, and how:
- the course's repository: a git repository made from the CURRENT working tree (uncommitted code included), its
  notebooks' REPO_URL set by the instructor command (`workspace.set_repo_url`);
- a Colab VM: a fresh folder at one fixed path (KIT_COLAB_ROOT, Colab's /content), emptied between notebooks
  (moved aside, so each VM can be inspected), with its own IPython start-up that imports `google.colab`;
- `google.colab`: a stub package on the kernel's path whose `drive.mount` links the mount point to one shared
  temporary "Google Drive" folder;
- pip: not run (KIT_TEST_SKIP_PIP, a hook in workspace.install_kit): the kernels share the development venv, where
  installing the clone would replace the package under test; the setup cell puts the clone first on sys.path;
- the internet: VOC comes from a local HTTP server serving a tiny VOC-format tar built here from the synthetic
  generator (KIT_TEST_VOC_URL/KIT_TEST_VOC_MD5, a hook in data/download.py); every other request goes to a
  closed proxy port (so notebook 06 finds no ImageNet weights, as on a machine without them);
- a disconnect: the first VM of notebook 01 dies (SIGKILL from an audit hook in its IPython start-up) the moment
  the epoch-2 checkpoint is being moved into place; notebook 01 is then run again on a new VM.

CPU-sized parameters (the `offline` profile on real-VOC format: 64 px crops, 2 epochs, 32 + 12 images), one
intra-op thread per kernel. These executions replace the plain smoke-mode execution of notebooks 01-08.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import replace
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from starter_code.config import Config, expected_runs
from starter_code.data.download import VOC_RECORD_SUFFIX, VOC_TAR_NAME, md5sum
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.workspace import DRIVE_FOLDER, kernel_config, set_repo_url

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = [f"{n}.ipynb" for n in ("01_baseline_fcn", "02_cosine_annealing", "03_augmentation", "04_weighted_loss",
                                     "05_dropout_variant", "06_resnet34_transfer", "07_unet",
                                     "08_results_comparison")]
PARAMETERS = {"profile": "offline", "dataset": "voc", "epochs": 2, "image_size": 64, "batch_size": 8}
GIT = ["git", "-c", "user.name=kit", "-c", "user.email=kit@example.com", "-c", "init.defaultBranch=main"]

COLAB_STUB = '''"""Stand-in for Colab's google.colab: drive.mount links the mount point to the shared "Drive" folder."""
import os
from types import SimpleNamespace


def _mount(mountpoint, force_remount=False):
    if not os.path.exists(mountpoint):
        os.symlink({drive!r}, mountpoint, target_is_directory=True)
    print("Mounted at", mountpoint)


drive = SimpleNamespace(mount=_mount)
'''
STARTUP = "import google.colab  # Colab's kernel has it imported before the first cell\n"
DISCONNECT = '''
# This VM dies mid-training: SIGKILL the moment epoch 2's last.pt is being moved into place (a Colab disconnect).
import os, signal, sys
_last_pt = []
def _disconnect(event, args):
    if event == "os.rename" and os.fspath(args[1]).endswith(os.sep + "last.pt"):
        _last_pt.append(args[1])
        if len(_last_pt) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(_disconnect)
'''


# ------------------------------------------------------------------------------------------------- fixtures
SKIP_TOP = {".git", ".venv", "build", "runs", "data"}  # outputs, datasets, the venv: never in the repository
SKIP_ANY = {"__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}


def _tree_files(root: Path) -> list[str]:
    """The working tree's files as git would commit them now: tracked and untracked, minus ignored and deleted.
    Outside a git work tree (e.g. a student edition), every file but outputs, data and caches."""
    top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode == 0 and Path(top.stdout.strip()).resolve() == root.resolve():
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "-co", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout
        return sorted(f for f in set(out.split("\0")) if f and (root / f).is_file())
    files = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    return sorted(f.as_posix() for f in files if f.parts[0] not in SKIP_TOP and not SKIP_ANY.intersection(f.parts)
                  and not f.parts[0].endswith(".egg-info"))


def _course_repository(tmp: Path) -> Path:
    """The course's copy of the kit: the current working tree committed to a fresh repository, REPO_URL set."""
    origin = tmp / "course-kit.git"
    for f in _tree_files(REPO):
        (origin / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, origin / f)
    changed = set_repo_url(str(origin), origin)
    assert len([p for p in changed if p.suffix == ".ipynb"]) == 9
    subprocess.run([*GIT, "init", "-q", str(origin)], check=True)
    subprocess.run([*GIT, "-C", str(origin), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(origin), "commit", "-q", "-m", "course kit"], check=True)
    return origin


def _tiny_voc(tmp: Path) -> tuple[Path, Path]:
    """A small VOC-format tree (the synthetic generator's) and its tar, laid out as VOC's: VOCdevkit/VOC2012."""
    src = tmp / "voc-src"
    generate_synthetic_voc(src, n_train=32, n_val=12, size=64, progress=False)
    mirror = tmp / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / VOC_TAR_NAME, "w") as tar:
        tar.add(src / "VOCdevkit", arcname="VOCdevkit")
    return src, mirror / VOC_TAR_NAME


class _Mirror(ThreadingHTTPServer):
    """A static file server on 127.0.0.1 that counts the GET requests it answers."""

    def __init__(self, folder: Path) -> None:
        self.gets: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.gets.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.daemon_threads = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture
def mirror(tmp_path):
    src, tar = _tiny_voc(tmp_path)
    server = _Mirror(tar.parent)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, src, tar
    server.shutdown()
    server.server_close()
    thread.join(5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Colab:
    """Simulated Colab: one shared Drive, a fresh VM per notebook at the fixed path KIT_COLAB_ROOT."""

    def __init__(self, tmp: Path, origin: Path) -> None:
        self.tmp, self.origin = tmp, origin
        self.drive = tmp / "google-drive"
        (self.drive / "MyDrive").mkdir(parents=True)
        self.content = tmp / "content"  # Colab's /content
        self.vms: list[Path] = []
        self.executed = tmp / "executed"
        self.executed.mkdir()
        stub = tmp / "colab-stub" / "google" / "colab"
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text(COLAB_STUB.replace("{drive!r}", repr(str(self.drive))))
        self.stub_path = stub.parent.parent

    @property
    def workspace(self) -> Path:
        return self.drive / "MyDrive" / DRIVE_FOLDER

    def run(self, notebook: str, label: str, disconnect: bool = False) -> Path:
        """Execute the course repository's `notebook` on a new VM; returns the executed copy. The VM's folder is
        kept as vms/<label> afterwards."""
        import papermill as pm

        self.content.mkdir()
        startup = self.content / ".ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text(STARTUP + (DISCONNECT if disconnect else ""))
        out = self.executed / f"{label}.ipynb"
        env = {"KIT_COLAB_ROOT": str(self.content), "IPYTHONDIR": str(self.content / ".ipython")}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            pm.execute_notebook(str(self.origin / "notebooks" / notebook), str(out), parameters=PARAMETERS,
                                cwd=str(self.content), kernel_name="python3", progress_bar=False,
                                execution_timeout=600, config=kernel_config())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            vm = self.tmp / "vms" / label
            vm.parent.mkdir(exist_ok=True)
            self.content.rename(vm)  # the VM's disk is gone; kept here for inspection
            self.vms.append(vm)
        return out


@pytest.fixture
def colab(tmp_path, mirror, monkeypatch) -> Colab:
    server, _, tar = mirror
    origin = _course_repository(tmp_path)
    sim = Colab(tmp_path, origin)
    proxy = f"http://127.0.0.1:{_closed_port()}"
    for key, value in {
        "PYTHONPATH": str(sim.stub_path), "KIT_TEST_SKIP_PIP": "1",
        "KIT_TEST_VOC_URL": server.url(VOC_TAR_NAME), "KIT_TEST_VOC_MD5": md5sum(tar),
        "TORCH_HOME": str(tmp_path / "torch-home"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
        "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("PYTHONDONTWRITEBYTECODE", "KIT_SMOKE_DIR", "COLAB_RELEASE_TAG", "KIT_COLAB_ROOT"):
        monkeypatch.delenv(key, raising=False)
    return sim


# ---------------------------------------------------------------------------------------------------- checks
def _errors(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type == "error"]


def _cell_text(path: Path, marker: str) -> str:
    """Everything the first code cell containing `marker` printed or displayed (plain text)."""
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
    parts = []
    for o in cell.outputs:
        parts.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _finished_runs(runs: Path) -> dict[str, tuple[int, ...]]:
    """Finished run dir -> the modification times of its files: unchanged means not trained again."""
    return {d.name: tuple((d / f).stat().st_mtime_ns for f in ("metrics.json", "best.pt", "last.pt", "history.json"))
            for d in sorted(runs.iterdir()) if (d / "metrics.json").is_file()} if runs.is_dir() else {}


def _comparable(history: dict) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history["history"]]


# ------------------------------------------------------------------------------------------------------ test
@pytest.mark.slow
def test_colab_course_on_fresh_vms_with_a_disconnect(colab: Colab, mirror, torch_single_thread) -> None:
    server, voc_src, tar = mirror
    runs = colab.workspace / "runs"
    baseline = runs / "baseline-voc"
    t0 = time.perf_counter()

    # notebook 01, first VM: the session dies during epoch 2
    with pytest.raises(Exception, match="(?i)dead|died"):
        colab.run(NOTEBOOKS[0], "01-disconnected", disconnect=True)
    assert (baseline / "last.pt").is_file() and (baseline / "config.json").is_file()
    assert not (baseline / "metrics.json").exists(), "the disconnect came too late: the run had finished"
    killed = json.loads((baseline / "history.json").read_text())
    assert [r["epoch"] for r in killed["history"]] == [1]

    # every notebook on its own new VM; 01 again first, which resumes the baseline from the Drive
    finished: dict[str, tuple[int, ...]] = {}
    for notebook in NOTEBOOKS:
        executed = colab.run(notebook, notebook[:2])
        assert not _errors(executed), (notebook, _errors(executed))
        now = _finished_runs(runs)
        assert {k: now.get(k) for k in finished} == finished, f"{notebook} trained a finished run again"
        finished = now
    seconds = time.perf_counter() - t0

    # the resumed baseline continued epoch 1 of the dead VM and ended as an uninterrupted run does
    resumed = json.loads((baseline / "history.json").read_text())
    assert resumed["history"][0] == killed["history"][0]  # the dead VM's epoch (its wall time too): not retrained
    assert len(resumed["history"]) == 2 and not [p for p in baseline.iterdir() if p.name.startswith(".")]
    from starter_code.engine import fit

    cfg = Config.from_dict(json.loads((baseline / "config.json").read_text()))
    reference = fit(replace(cfg, data_root=str(voc_src)), colab.tmp / "uninterrupted" / "baseline-voc",
                    progress=False)
    same = functools.partial(json.dumps, sort_keys=True, default=float)  # NaN (absent classes) compares equal
    assert same(json.loads((baseline / "metrics.json").read_text())) == same(reference.metrics)
    assert _comparable(resumed) == _comparable({"history": reference.history})
    assert resumed["best_epoch"] == reference.best_epoch

    # notebook 08, on a fresh VM, shows every run notebooks 01-07 trained, each trained once on the Drive
    course = expected_runs(pretrained=False, cpu=True)  # 06 finds no ImageNet weights; CPU profile
    folders = sorted(d.name for d in runs.iterdir())
    assert {f"{name}-voc" for name in course} <= set(folders) and sorted(finished) == folders
    results = colab.executed / "08.ipynb"
    listing = _cell_text(results, "list_runs(")
    assert f"{len(folders)} runs on voc in {colab.content / 'drive' / 'MyDrive' / DRIVE_FOLDER / 'runs'}" in listing
    assert "missing:" not in listing
    table = _cell_text(results, "results_table(runs)")
    rows = {line.split()[0] for line in table.splitlines()[1:] if line.strip()}
    assert set(course) <= rows, table
    assert (colab.workspace / "docs" / "results" / "voc.md").is_file()  # 08's report, on the Drive
    assert (colab.workspace / "figures" / "comparison_voc_miou_curves.png").is_file()

    # VOC: downloaded once into the Drive, its MD5 recorded there, extracted on every VM's own disk
    assert server.gets == [f"/{VOC_TAR_NAME}"]
    data = colab.workspace / "data"
    assert sorted(p.name for p in data.iterdir()) == [VOC_TAR_NAME, VOC_TAR_NAME + VOC_RECORD_SUFFIX]
    assert json.loads((data / (VOC_TAR_NAME + VOC_RECORD_SUFFIX)).read_text())["md5"] == md5sum(tar)
    for vm in colab.vms:
        assert (vm / "data" / "voc" / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "train.txt").is_file()
        assert not list(vm.rglob(VOC_TAR_NAME)), f"{vm}: the archive belongs on the Drive"
        # the kernel imported the VM's clone of the course repository, not the development tree
        assert (vm / "kit" / ".git").is_dir() and list((vm / "kit" / "starter_code" / "__pycache__").glob("*.pyc"))
    print(f"\nColab simulation: {len(colab.vms)} VMs, notebooks executed in {seconds:.0f} s", file=sys.stderr)

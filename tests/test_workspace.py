"""workspace: profiles -> configs, where files go locally, and the Colab path simulated on CPU.

The Colab tests put a stub `google.colab` in sys.modules whose `drive.mount` links the mount point to a shared
temporary "Drive" folder, move the VM's /content to a temporary folder (KIT_COLAB_ROOT) and fetch the kit from a
local git repository. pip is never run for real (it would reinstall the package under test).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

from starter_code import workspace
from starter_code.workspace import SetupError, settings, setup

NOTEBOOK_01 = Path(__file__).resolve().parents[1] / "notebooks" / "01_baseline_fcn.ipynb"
GIT = ["git", "-c", "user.name=kit", "-c", "user.email=kit@example.com"]


# ------------------------------------------------------------------------------------------------- locally
def test_profiles_resolve_to_configs() -> None:
    colab = settings(profile="colab", quiet=True)
    cfg = colab.config("cosine")
    assert (cfg.dataset, cfg.epochs, cfg.image_size, cfg.batch_size) == ("voc", 30, 224, 16)
    assert cfg.cache and cfg.scheduler == "cosine"  # Colab decodes once into memory; the experiment's diff kept
    offline = settings(profile="offline", quiet=True)
    assert not offline.config().cache and offline.config().dataset == "synthetic"
    smoke = settings(profile="smoke", quiet=True)
    assert (smoke.config().epochs, smoke.config().limit_train) == (1, 32)
    assert smoke.config("unet_cpu").model_kwargs == {"base_width": 16}


def test_profile_sets_only_environment_and_budget() -> None:
    camvid = settings(profile="offline", dataset="camvid", data_root="/data/camvid", quiet=True)
    with pytest.warns(UserWarning) as warned:
        cfg = camvid.config("camvid_fast")
    assert any("keeps its own epochs=55" in str(w.message) for w in warned)
    assert cfg.cache and cfg.epochs == 55 and cfg.image_size == 224  # the recipe's own values are kept
    assert cfg.data_root == "/data/camvid"
    with pytest.raises(ValueError, match="camvid recipe"):
        settings(profile="offline", quiet=True).config("camvid_fast")
    assert settings(profile="offline", quiet=True).config("cosine", epochs=2).epochs == 2  # an explicit override
    with pytest.raises(ValueError, match="unknown profile"):
        settings(profile="gpu", quiet=True)


def test_local_workspace_is_the_repository(monkeypatch, tmp_path) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root / "notebooks")
    monkeypatch.delenv("KIT_SMOKE_DIR", raising=False)
    s = settings(quiet=True)
    assert not s.colab and s.profile == "offline"
    assert (s.runs_dir, s.figures_dir, s.docs_dir) == (root / "runs", root / "figures", root / "docs")
    assert s.data_root == root / "data" / "synthetic"
    smoke = settings(smoke=True, quiet=True)
    assert smoke.runs_dir == root / "build" / "smoke" / "runs" and smoke.data_root == root / "data" / "synthetic-smoke"
    monkeypatch.setenv("KIT_SMOKE_DIR", str(tmp_path))
    assert settings(smoke=True, quiet=True).figures_dir == tmp_path / "figures"


def test_notebook_paths_in_course_order() -> None:
    names = [p.name[:2] for p in workspace.notebook_paths()]
    assert names == sorted(names) and names[:2] == ["00", "01"]
    assert [p.name for p in workspace.notebook_paths(["08"])] == ["08_results_comparison.ipynb"]


# ----------------------------------------------------------------------------------------- simulated Colab
@pytest.fixture
def origin(tmp_path) -> Path:
    """A local git repository standing in for the course's copy of the kit."""
    repo = tmp_path / "origin"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "README.md").write_text("notebooks\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", "kit"], check=True)
    return repo


@pytest.fixture
def drive(tmp_path) -> Path:
    """The student's Google Drive, shared by every simulated VM."""
    d = tmp_path / "google-drive"
    (d / "MyDrive").mkdir(parents=True)
    return d


@pytest.fixture
def colab(tmp_path, monkeypatch, drive):
    """A fresh simulated Colab VM: its /content in a temp folder, google.colab stubbed, pip recorded not run.
    Returns a function making the next VM (same Drive, new disk) and the list of commands run."""
    commands: list[list[str]] = []
    real_run = workspace._run

    def run(cmd, what, cwd=None):
        commands.append(list(cmd))
        if cmd[:3] == [sys.executable, "-m", "pip"]:
            return subprocess.CompletedProcess(cmd, 0, "", "")
        return real_run(cmd, what, cwd)

    def mount(mountpoint: str) -> None:  # like Colab's: mounting again is a no-op
        if not Path(mountpoint).exists():
            Path(mountpoint).symlink_to(drive, target_is_directory=True)

    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    google.colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google.colab)
    monkeypatch.setattr(workspace, "_run", run)
    monkeypatch.delenv("KIT_SMOKE_DIR", raising=False)
    monkeypatch.delenv("KIT_TEST_SKIP_PIP", raising=False)
    monkeypatch.chdir(tmp_path)  # setup() moves into the kit's notebooks/; restored after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    vms = iter(range(100))

    def new_vm() -> Path:
        vm = tmp_path / f"vm{next(vms)}"
        vm.mkdir()
        monkeypatch.setenv("KIT_COLAB_ROOT", str(vm))
        return vm

    new_vm()
    return new_vm, commands


def test_setup_on_colab_puts_the_workspace_on_drive(colab, origin, drive) -> None:
    new_vm, commands = colab
    vm = Path(workspace.colab_root())
    s = setup(str(origin), profile="offline", prepare=False, quiet=True)
    kit = vm / "kit"
    assert (kit / "notebooks" / "README.md").is_file() and Path.cwd() == kit / "notebooks"
    assert str(kit) in sys.path and workspace.project_root() == kit
    pip = [c for c in commands if "pip" in c]
    assert pip == [[sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(kit)]]
    ws = drive / "MyDrive" / workspace.DRIVE_FOLDER
    assert s.colab and (s.runs_dir, s.figures_dir, s.docs_dir) == (vm / "drive" / "MyDrive" / "voc-kit" / "runs",
                                                                  vm / "drive" / "MyDrive" / "voc-kit" / "figures",
                                                                  vm / "drive" / "MyDrive" / "voc-kit" / "docs")
    assert s.data_root == vm / "data" / "synthetic"  # datasets on the VM's own disk
    s.runs_dir.mkdir(parents=True)
    (s.runs_dir / "baseline-synthetic").mkdir()
    assert (ws / "runs" / "baseline-synthetic").is_dir()  # really on the Drive

    vm2 = new_vm()  # a new VM for the next notebook: a fresh disk, the same Drive
    s2 = setup(str(origin), profile="offline", prepare=False, quiet=True)
    assert (vm2 / "kit" / ".git").is_dir() and s2.runs_dir.resolve() == s.runs_dir.resolve()
    assert [p.name for p in s2.runs_dir.iterdir()] == ["baseline-synthetic"]


def test_setup_updates_the_kit_and_installs_once_per_vm(colab, origin) -> None:
    _, commands = colab
    setup(str(origin), profile="offline", prepare=False, quiet=True)
    (origin / "NEW.md").write_text("a fix\n")
    subprocess.run([*GIT, "-C", str(origin), "add", "."], check=True)
    subprocess.run([*GIT, "-C", str(origin), "commit", "-q", "-m", "fix"], check=True)
    setup(str(origin), profile="offline", prepare=False, quiet=True)  # the notebook run again on the same VM
    assert (workspace.colab_root() / "kit" / "NEW.md").is_file()
    assert sum("pip" in c for c in commands) == 1
    assert [c[-3:] for c in commands if "pull" in c] == [["pull", "--ff-only", "-q"]]


def test_placeholder_url_fails_in_one_line_before_git(colab) -> None:
    _, commands = colab
    with pytest.raises(SetupError) as e:
        setup("https://github.com/YOUR-COURSE/voc-segmentation-kit", profile="offline", prepare=False, quiet=True)
    assert "set REPO_URL in the notebook's first cell" in str(e.value) and "\n" not in str(e.value)
    assert commands == []
    with pytest.raises(SetupError, match="REPO_URL is None"):
        workspace.install_kit(None)


def test_a_bad_url_fails_in_one_line(colab, tmp_path) -> None:
    with pytest.raises(SetupError, match=r"^git clone .*/nowhere failed: ") as e:
        setup(str(tmp_path / "nowhere"), profile="offline", prepare=False, quiet=True)
    assert "\n" not in str(e.value)


def test_no_gpu_needs_an_explicit_cpu_profile(colab, origin, monkeypatch, capsys) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SetupError, match=r"no GPU .*Runtime > Change runtime type.*profile = \"offline\""):
        setup(str(origin), prepare=False, quiet=True)  # the default on Colab: the GPU profile
    s = setup(str(origin), profile="offline", prepare=False, quiet=True)
    assert s.profile == "offline" and "no GPU: training on the CPU" in capsys.readouterr().out
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert setup(str(origin), prepare=False, quiet=True).profile == "colab"


# ---------------------------------------------------------------------------------------- the setup cell
def _cell(index: int) -> str:
    nb = nbformat.read(NOTEBOOK_01, as_version=4)
    return nb.cells[index].source


def _run_setup_cell(repo_url: str | None = None) -> dict:
    """Execute notebook 01's parameters and setup cells as IPython would (magics turned into calls), with
    `repo_url` in place of the committed REPO_URL when given."""
    from IPython.core.inputtransformer2 import TransformerManager

    ns: dict = {"get_ipython": lambda: types.SimpleNamespace(run_line_magic=lambda *a: None)}
    exec(_cell(0), ns)
    ns.update(profile="offline", **({"REPO_URL": repo_url} if repo_url else {}))
    exec(TransformerManager().transform_cell(_cell(2)), ns)
    return ns


def test_setup_cell_on_colab_clones_then_calls_setup(colab, origin, monkeypatch) -> None:
    monkeypatch.setattr(workspace, "prepare_data", lambda s: s.data_root)
    ns = _run_setup_cell(str(origin))
    kit = workspace.colab_root() / "kit"
    assert ns["KIT"] == str(kit) and sys.path[0] == str(kit) and (kit / ".git").is_dir()
    assert ns["S"].colab and ns["S"].runs_dir.parent.name == workspace.DRIVE_FOLDER


def test_setup_cell_placeholder_stops_before_git(colab) -> None:
    _, commands = colab
    with pytest.raises(SystemExit, match="set REPO_URL in the first cell"):
        _run_setup_cell()  # the notebook as committed, REPO_URL still the placeholder
    assert not (workspace.colab_root() / "kit").exists() and commands == []


# ----------------------------------------------------------------------------------- data on a Colab VM
def test_voc_archive_is_kept_in_the_drive_workspace(colab, origin, monkeypatch) -> None:
    """On Colab VOC's tar goes to MyDrive/voc-kit/data (downloaded and verified once for the course) and is
    extracted onto the VM's disk; locally the archive is deleted once extracted, as before."""
    from starter_code.data import download

    calls = []
    monkeypatch.setattr(download, "download_voc", lambda root, **kw: calls.append((Path(root), kw)))
    s = setup(str(origin), profile="offline", dataset="voc", quiet=True)
    vm, ws = workspace.colab_root(), workspace.workspace()
    assert calls == [(vm / "data" / "voc", {"progress": True, "tar_dir": ws.root / "data", "keep_tar": True})]
    assert s.archive_dir == ws.root / "data" and ws.root == vm / "drive" / "MyDrive" / workspace.DRIVE_FOLDER
    monkeypatch.delitem(sys.modules, "google.colab")
    local = settings(profile="offline", dataset="voc", quiet=True)
    workspace.prepare_data(local)
    assert local.archive_dir is None and calls[-1][1] == {"progress": True, "tar_dir": None, "keep_tar": False}


def test_a_new_vm_regenerates_the_synthetic_set_and_reuses_finished_runs(colab, origin, tmp_path, monkeypatch,
                                                                          capsys, torch_single_thread) -> None:
    """The synthetic set is written again on every VM's disk (the same bytes: it is seeded), newer than the runs
    on the Drive; a run finished on an earlier VM is still reused, never trained again."""
    import starter_code.notebook as nb

    content = tmp_path / "content"  # Colab's /content: the same path on every VM
    monkeypatch.setenv("KIT_COLAB_ROOT", str(content))
    content.mkdir()
    s = setup(str(origin), profile="smoke", quiet=True)
    run = nb.train_or_load(s.config("baseline"), s, progress=False)
    first = (run.run_dir / "metrics.json").read_bytes()
    monkeypatch.chdir(tmp_path)
    content.rename(tmp_path / "vm-before")  # that VM is gone; a new one starts with an empty disk

    content.mkdir()
    s2 = setup(str(origin), profile="smoke", quiet=True)
    listing = sorted((s2.data_root / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation").iterdir())
    assert listing and all(p.stat().st_mtime > (run.run_dir / "metrics.json").stat().st_mtime for p in listing)
    monkeypatch.setattr(nb, "fit", lambda *a, **k: pytest.fail("a finished run was trained again on a new VM"))
    again = nb.train_or_load(s2.config("baseline"), s2, progress=False)
    assert "reusing the finished run" in capsys.readouterr().out
    assert again.run_dir == run.run_dir and (again.run_dir / "metrics.json").read_bytes() == first


# ------------------------------------------------------------------------------- the instructor command
def _kit_copy(tmp_path: Path) -> Path:
    """The notebooks and README of this repository, copied: what `course set-url` edits."""
    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "kit"
    (copy / "notebooks").mkdir(parents=True)
    for path in (root / "notebooks").glob("*.ipynb"):
        shutil.copy2(path, copy / "notebooks" / path.name)
    shutil.copy2(root / "README.md", copy / "README.md")
    return copy


def _badges(readme: Path) -> list[str]:
    return re.findall(r"\(https://colab\.research\.google\.com/github/([^)\s]+)\)", readme.read_text())


def test_set_url_writes_every_notebook_and_the_readme_badges(tmp_path, capsys) -> None:
    from starter_code.cli import main

    kit = _kit_copy(tmp_path)
    before = {p.name: p.read_text() for p in (kit / "notebooks").glob("*.ipynb")}
    assert main(["course", "set-url", "https://github.com/uni-ml/seg-course.git", "--root", str(kit)]) == 0
    printed = capsys.readouterr().out
    for path in sorted((kit / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert '\nREPO_URL = "https://github.com/uni-ml/seg-course.git"  # Colab:' in nb.cells[0].source
        assert f"updated {path}" in printed
        changed = [a for a, b in zip(before[path.name].splitlines(), path.read_text().splitlines()) if a != b]
        assert len(changed) == 1 and "REPO_URL" in changed[0]  # one line of the file, nothing else reformatted
    # the README opens every notebook of the course's repository in Colab
    badges = _badges(kit / "README.md")
    assert sorted(badges) == sorted(f"uni-ml/seg-course/blob/main/notebooks/{p.name}"
                                    for p in (kit / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    # the setup cell no longer stops at the placeholder
    assert workspace.check_repo_url(_params(kit)["REPO_URL"]) == "https://github.com/uni-ml/seg-course.git"
    assert main(["course", "set-url", "https://github.com/uni-ml/seg-course.git", "--root", str(kit)]) == 0
    assert "nothing changed" in capsys.readouterr().out


def test_set_url_other_hosts_branches_and_bad_urls(tmp_path, capsys) -> None:
    from starter_code.cli import main

    kit = _kit_copy(tmp_path)
    link = "https://colab.research.google.com/github/YOUR-COURSE/voc-segmentation-kit/blob/main/notebooks/07_unet.ipynb"
    (kit / "README.md").write_text(f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                                   f"({link})\n[doc](https://colab.research.google.com/github/a/b/blob/main/docs/x.md)\n")
    changed = workspace.set_repo_url("git@github.com:uni-ml/seg-course.git", kit, branch="spring-2027")
    assert kit / "README.md" in changed and _badges(kit / "README.md") == [
        "uni-ml/seg-course/blob/spring-2027/notebooks/07_unet.ipynb", "a/b/blob/main/docs/x.md"]
    readme = (kit / "README.md").read_text()
    assert main(["course", "set-url", "https://gitlab.com/uni/kit.git", "--root", str(kit)]) == 0
    assert "only open GitHub repositories" in capsys.readouterr().out
    assert (kit / "README.md").read_text() == readme and _params(kit)["REPO_URL"] == "https://gitlab.com/uni/kit.git"
    for bad in ("", "https://github.com/YOUR-COURSE/kit", 'https://x.org/a"b'):
        with pytest.raises(ValueError, match="not the course's repository URL"):
            workspace.set_repo_url(bad, kit)
    assert main(["course", "set-url", "https://github.com/YOUR-COURSE/kit", "--root", str(kit)]) == 2
    assert "error: " in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no numbered notebooks"):
        workspace.set_repo_url("https://github.com/a/b", tmp_path / "empty")


def _params(kit: Path) -> dict:
    """The parameters cell of notebook 01 in `kit`, executed."""
    ns: dict = {}
    exec(nbformat.read(kit / "notebooks" / "01_baseline_fcn.ipynb", as_version=4).cells[0].source, ns)
    return ns


# ------------------------------------------------------------------------------------- executing notebooks
def test_notebook_kernels_wait_for_replies_in_short_slices(monkeypatch) -> None:
    """nbclient can miss a reply's arrival on the shell socket while it answers an ipywidgets Output widget there
    (notebook 08's explorer); one poll as long as the cell's timeout then stalls the notebook for that long. The
    kernel client `execute_notebooks` uses polls in slices of at most half a second, each ending with a real
    check, so a missed notification costs half a second; the cell's timeout still ends the wait."""
    import asyncio
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    config = workspace.kernel_config()
    manager = config.NotebookClient.kernel_manager_class(config=config)
    channel_class = manager.client().shell_channel_class
    polls: list[float] = []

    def poll_until(ready_at: int):
        async def get_msg(self, timeout=None):
            polls.append(timeout)
            if len(polls) < ready_at:
                raise Empty  # the notification was missed: nothing seen in this slice
            return {"msg_type": "execute_reply"}
        return get_msg

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", poll_until(5))
    channel = object.__new__(channel_class)
    assert asyncio.run(channel.get_msg(timeout=600)) == {"msg_type": "execute_reply"}
    assert len(polls) == 5 and all(0 < t <= 0.5 for t in polls)
    polls.clear()
    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", poll_until(10**6))
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.2))  # never ready: Empty once the timeout has passed
    assert polls and all(t <= 0.2 for t in polls)


def test_executing_a_notebook_leaves_its_folder_alone(tmp_path) -> None:
    """The kernel's sockets (IPC: no ports) live in Jupyter's runtime folder, never beside the notebook."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(sorted(os.listdir()))")]
    nbformat.write(nb, folder / "99_probe.ipynb")
    workspace.execute_notebooks([folder / "99_probe.ipynb"], tmp_path / "out", timeout=120)
    executed = nbformat.read(tmp_path / "out" / "99_probe.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "['99_probe.ipynb']\n"  # seen by the running kernel
    assert sorted(p.name for p in folder.iterdir()) == ["99_probe.ipynb"]

"""`python -m starter_code data|train|evaluate ...`: the notebooks' calls, from a terminal.

Building the parser imports no torch (so `--help` is instant); each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Config

DATASETS = ("synthetic", "voc", "camvid")


def _data_parser(sub: Any) -> None:
    p = sub.add_parser("data", help="get, generate, check or describe a dataset")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    s = dsub.add_parser("synthetic", help="write the offline synthetic VOC-format dataset")
    s.add_argument("--root", required=True, help="folder that will contain VOCdevkit/")
    s.add_argument("--train", type=int, default=600)
    s.add_argument("--val", type=int, default=200)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    d = dsub.add_parser("download-voc", help="download and extract PASCAL VOC 2012 (tries several mirrors)")
    d.add_argument("--root", required=True, help="folder that will contain VOCdevkit/")
    for name, helptext in (("check", "scan a dataset for bad files"), ("stats", "class pixel/image counts")):
        c = dsub.add_parser(name, help=helptext)
        c.add_argument("--dataset", choices=DATASETS, required=True)
        c.add_argument("--data-root", required=True)
        c.add_argument("--split", default=None, help="default: train and val")


def _train_parser(sub: Any) -> None:
    from .config import EXPERIMENTS

    p = sub.add_parser("train", help="train a named experiment",
                       description="Train a named experiment (starter_code/config.py). The flags below and "
                                   "--set change the experiment's settings; the run's config.json records them all.")
    p.add_argument("--experiment", default="baseline", choices=sorted(EXPERIMENTS))
    p.add_argument("--dataset", choices=DATASETS)
    p.add_argument("--data-root")
    p.add_argument("--out", help="run directory (default runs/<experiment>-<dataset>)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--limit-train", type=int, help="use only the first N training images (smoke runs)")
    p.add_argument("--limit-val", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field, typed and checked (repeatable), e.g. --set scheduler=cosine "
                        "--set model_kwargs='{\"base_width\": 32}'")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--checkpoint-dir", help="where last.pt lives (e.g. a Google Drive folder); default: --out")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _eval_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained run at native resolution")
    p.add_argument("--run", required=True, help="run directory holding best.pt")
    p.add_argument("--dataset", choices=DATASETS)
    p.add_argument("--data-root")
    p.add_argument("--split", default="val")
    p.add_argument("--save-predictions", metavar="DIR", help="write one class-index PNG per image")
    p.add_argument("--json", metavar="FILE", help="write the metrics as JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")


def _predict_parser(sub: Any) -> None:
    p = sub.add_parser("predict", help="segment your own images with a trained run",
                       description="Writes <name>.png (class indices), <name>_overlay.png and <name>_legend.png "
                                   "per image.")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory holding best.pt")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (anything PIL reads)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs (created if missing)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")


def _notebooks_parser(sub: Any) -> None:
    p = sub.add_parser("notebooks", help="execute the numbered notebooks top to bottom (papermill)")
    p.add_argument("--smoke", action="store_true", help="tiny data, one epoch (what the tests run)")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 00 01")
    p.add_argument("--out", default="build/notebooks", help="where executed copies go")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="override a parameters-cell value (parsed as JSON when possible)")


def _report_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="summarise finished runs (pixel acc, mean class acc, mIoU)")
    p.add_argument("--runs", default="runs", help="folder of run directories")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    p.add_argument("--section", nargs=2, metavar=("RUN_DIR", "FILE"),
                   help="write a docs/results/ section for one run (e.g. a recipe) and rebuild docs/RESULTS.md")
    p.add_argument("--title", default=None, help="the section's title (default: the run's name)")
    p.add_argument("--intro", default="", help="a paragraph under the section's title")


def _course_parser(sub: Any) -> None:
    p = sub.add_parser("course", help="instructors: point the kit at the course's copy of it")
    csub = p.add_subparsers(dest="course_cmd", required=True)
    u = csub.add_parser("set-url", help="write the repository URL into every notebook (REPO_URL) and the README's "
                                        "Open in Colab links")
    u.add_argument("url", help="the git URL students clone, e.g. https://github.com/ORG/voc-segmentation-kit")
    u.add_argument("--branch", default="main", help="the branch the Open in Colab links open (default main)")
    u.add_argument("--root", default=None, help="the kit's folder (default: this repository)")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m starter_code", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    _data_parser(sub)
    _train_parser(sub)
    _eval_parser(sub)
    _notebooks_parser(sub)
    _report_parser(sub)
    _predict_parser(sub)
    _course_parser(sub)
    from .classroom import add_classroom_parser

    add_classroom_parser(sub)
    return parser


# ------------------------------------------------------------------------------------------------- commands
def cmd_data(args: argparse.Namespace) -> int:
    if args.data_cmd == "synthetic":
        from .data.synthetic import generate_synthetic_voc

        out = generate_synthetic_voc(args.root, n_train=args.train, n_val=args.val, size=args.size, seed=args.seed,
                                     overwrite=args.overwrite)
        print(f"synthetic VOC-format dataset ready at {out}")
        return 0
    if args.data_cmd == "download-voc":
        import logging

        from .data.download import download_voc

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        out = download_voc(args.root)
        print(f"PASCAL VOC 2012 ready at {out}")
        return 0
    from .data import build_dataset
    from .data.stats import class_stats

    splits = [args.split] if args.split else ["train", "val"]
    for split in splits:
        ds = build_dataset(args.dataset, args.data_root, split, "eval", None)
        if args.data_cmd == "stats":
            st = class_stats(ds)
            labelled = sum(st["pixels"])
            print(f"{split}: {st['num_masks']} masks, {st['total_pixels']} pixels, void {st['void_pixels']}")
            for name, px, im in zip(st["classes"], st["pixels"], st["images"]):
                print(f"  {name:>14s} {px:>12d} px {100 * px / max(labelled, 1):6.2f}% of labelled {im:>6d} images")
        else:
            from .data.check import check_dataset

            problems = check_dataset(ds)
            print(f"{split}: {len(ds)} pairs checked, {len(problems)} problem(s)")
            for p in problems:
                print(f"  {p}")
            if problems:
                return 1
    return 0


def train_config(args: argparse.Namespace) -> Config:
    """The config `train` runs: the experiment on --dataset/--device/... (its environment), with --epochs,
    --batch-size, --image-size, --lr, --seed (shorthands for --set) and then --set applied last."""
    from .config import make_config

    if args.dataset and not args.data_root:
        raise ValueError(f"--dataset {args.dataset} needs --data-root (the folder holding the data)")
    env = {"dataset": args.dataset, "data_root": args.data_root, "device": args.device, "workers": args.workers,
           "limit_train": args.limit_train, "limit_val": args.limit_val}
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "image_size": args.image_size, "lr": args.lr,
             "seed": args.seed}
    settings = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return make_config(args.experiment, env=env, overrides=[*settings, *args.set])


def stop_note(run: Any) -> str:
    """Which epoch the run kept and why it stopped, in words: an early stop and a spent time budget differ."""
    return f"{'last' if run.config.keep == 'last' else 'best'} epoch {run.best_epoch} kept; {run.stop_words}"


def cmd_train(args: argparse.Namespace) -> int:
    from .runs import run_dir_for

    cfg = train_config(args)
    run_dir = Path(args.out) if args.out else run_dir_for(cfg)
    from .data import build_datasets
    from .data.check import quick_check
    from .engine import fit

    train_ds, val_ds = build_datasets(cfg)
    quick_check(train_ds)
    quick_check(val_ds)
    run = fit(cfg, run_dir, resume=args.resume, progress=not args.quiet, datasets=(train_ds, val_ds),
              checkpoint_dir=args.checkpoint_dir)
    from .distributed import current

    if not current().is_main:  # under torchrun only rank 0 reports and draws
        return 0
    from .report import save_run_figures

    save_run_figures(run, val_ds, run_dir / "figures")
    m = run.metrics
    print(f"run saved to {run_dir} ({stop_note(run)})")
    print(f"val mIoU {m['miou']:.4f}  pixel acc {m['pixel_acc']:.4f}  mean class acc {m['mean_class_acc']:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from .data import build_dataset, eval_size
    from .engine import eval_batch_size, evaluate, make_loader, resolve_device
    from .predict import save_index_png
    from .runs import load_model

    device = resolve_device(args.device)
    model, cfg, ckpt = load_model(args.run, device=device)
    dataset, root = args.dataset or cfg.dataset, args.data_root or cfg.data_root
    ds = build_dataset(dataset, root, args.split, "eval", eval_size(cfg))
    if len(ds.info.classes) != len(ckpt["classes"]):
        raise SystemExit(f"error: {args.run} was trained on {len(ckpt['classes'])} classes but {dataset} has "
                         f"{ds.info.num_classes}; evaluate on the dataset it was trained on")
    loader = make_loader(ds, eval_batch_size(ds, cfg.batch_size), False, device, 0)
    m = evaluate(model, loader, ds.info.num_classes, device, progress=not args.quiet, desc=f"evaluate {args.split}")
    named = {"split": args.split, "dataset": dataset, "run": str(args.run), "num_images": len(ds),
             "pixel_acc": m["pixel_acc"], "mean_class_acc": m["mean_class_acc"], "miou": m["miou"],
             "fw_iou": m["fw_iou"], "iou": dict(zip(ds.info.classes, m["iou"])), "tta": cfg.tta}
    if args.save_predictions:
        out = Path(args.save_predictions)
        out.mkdir(parents=True, exist_ok=True)
        from tqdm.auto import tqdm

        from .engine import forward_logits

        with torch.no_grad():
            for i in tqdm(range(len(ds)), desc="save predictions", disable=args.quiet):
                img, mask = ds[i]
                pred = forward_logits(model, img[None].to(device), mask.shape[-2:]).argmax(1)[0]
                save_index_png(pred.cpu().numpy(), out / f"{ds.ids[i]}.png", ds.info)
        named["predictions"] = str(out)
    print(f"{dataset} {args.split} ({len(ds)} images): mIoU {m['miou']:.4f}  pixel acc {m['pixel_acc']:.4f}  "
          f"mean class acc {m['mean_class_acc']:.4f}  fw IoU {m['fw_iou']:.4f}" +
          (f"  (test-time augmentation: {cfg.tta}, as the run was trained)" if cfg.tta else ""))
    for name, v in named["iou"].items():
        print(f"  {name:>14s} IoU {v:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(named, indent=2))
    return 0


def cmd_notebooks(args: argparse.Namespace) -> int:
    import time

    from .workspace import execute_notebooks, notebook_paths

    params: dict[str, Any] = {"smoke": True} if args.smoke else {}
    for name, value in args.param:
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            params[name] = value
    if isinstance(params.get("data_root"), str):  # notebooks execute in notebooks/: a path typed here means here
        params["data_root"] = str(Path(params["data_root"]).expanduser().resolve())
    paths = notebook_paths(args.only)
    if not paths:
        raise ValueError(f"no notebooks match {args.only}")
    t0 = time.perf_counter()
    results = execute_notebooks(paths, args.out, params)
    total = time.perf_counter() - t0
    for r in results:
        print(f"{r['notebook']:<36s} {r['seconds']:8.1f} s")
    print(f"{len(results)} notebooks executed in {total / 60:.1f} min; executed copies in {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .runs import list_runs, results_markdown

    runs = list_runs(args.runs)
    if not runs:
        raise FileNotFoundError(f"{args.runs}: no finished runs (folders with metrics.json) found")
    table = results_markdown(runs)
    print(f"Results of {len(runs)} runs in {args.runs} (validation split, best epoch by val mIoU):")
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.section:
        from .report import assemble_results, run_section

        run_dir, path = Path(args.section[0]), Path(args.section[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_section(run_dir, args.title or run_dir.name, args.intro))
        print(f"wrote {path}; rebuilt {assemble_results(path.parent.parent)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import cmd_predict as run

    return run(args)


def cmd_classroom(args: argparse.Namespace) -> int:
    from .classroom import cmd_classroom as run

    return run(args)


def cmd_course(args: argparse.Namespace) -> int:
    from .workspace import github_repo, set_repo_url

    changed = set_repo_url(args.url, args.root, args.branch)
    print("\n".join(f"updated {p}" for p in changed) or f"REPO_URL is already {args.url}: nothing changed")
    if github_repo(args.url) is None:
        print("note: Open in Colab links can only open GitHub repositories; README.md's links were left as they are")
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "evaluate": cmd_evaluate, "notebooks": cmd_notebooks,
            "report": cmd_report, "predict": cmd_predict, "classroom": cmd_classroom,
            "course": cmd_course}


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors about data, checkpoints or training end in one line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    from .checkpoint import TrainingError
    from .data import DataError
    from .data.download import DownloadError
    from .models import PretrainedWeightsUnavailable
    from .workspace import NotebookError

    try:
        return COMMANDS[args.cmd](args)
    except (DataError, TrainingError, DownloadError, NotebookError, PretrainedWeightsUnavailable, FileNotFoundError,
            KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; last.pt holds the last finished epoch (resume with --resume)", file=sys.stderr)
        return 130
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

"""The graded parts: where each one lives in the kit, its points, and its named checks.

Shipped in the student edition (STUDENT.md and the `make test` summary are built from it); no torch import, so the
CLI parser stays light. The checks themselves (and the reference they compare with) stay with the instructor.
"""

from __future__ import annotations

from dataclasses import dataclass

# Short name -> "module:qualified name" of everything the grader calls, in the submission and in the reference.
# The one place to update when code moves to another module.
LOCATIONS: dict[str, str] = {
    "ConfusionMatrix": "starter_code.metrics:ConfusionMatrix",
    "train_one_epoch": "starter_code.engine:train_one_epoch",
    "evaluate": "starter_code.engine:evaluate",
    "build_criterion": "starter_code.engine:build_criterion",
    "BASELINE": "starter_code.config:BASELINE",
    "class_weights": "starter_code.data.stats:class_weights",
    "build_transform": "starter_code.data.transforms:build_transform",
    "to_tv": "starter_code.data.transforms:to_tv",
    "load_mask": "starter_code.data.dataset:load_mask",
    "SegmentationDataset": "starter_code.data.dataset:SegmentationDataset",
    "DatasetInfo": "starter_code.data.classes:DatasetInfo",
    "double_conv": "starter_code.models.unet:double_conv",
    "UNet": "starter_code.models.unet:UNet",
}


@dataclass(frozen=True)
class Check:
    """One property of a part, worth `points`."""

    name: str
    points: int


@dataclass(frozen=True)
class Part:
    """A graded exercise: the function(s) a student writes (`where`, `functions` as LOCATIONS keys or
    "Class.method"), its checks, and the public test file tests/classroom/test_part_<name>.py."""

    name: str
    title: str
    where: str
    functions: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def test_file(self) -> str:
        return f"tests/classroom/test_part_{self.name}.py"


def _checks(*pairs: tuple[str, int]) -> tuple[Check, ...]:
    return tuple(Check(name, points) for name, points in pairs)


# In the order STUDENT.md suggests: data first, then loss and metrics, then the loops, then a model block.
PARTS: tuple[Part, ...] = (
    Part("load_mask", "Read a VOC mask as class indices, void kept",
         "starter_code/data/dataset.py: load_mask", ("load_mask",),
         _checks(("palette mask: indices read as they are", 3),
                 ("void (255) stays 255, never mapped to background", 3),
                 ("greyscale (L) mask", 2),
                 ("RGB mask mapped through the palette, uint8 H x W", 2))),
    Part("dataset_epochs", "A dataset item drawn afresh every epoch",
         "starter_code/data/dataset.py: SegmentationDataset.__getitem__", ("SegmentationDataset.__getitem__",),
         _checks(("eval item: normalised float32 C x H x W image, int64 H x W mask with void 255", 3),
                 ("augmentation drawn on every read (two epochs of one item differ)", 3),
                 ("with cache=True the decoded pair is cached, the augmentation still drawn per read", 2),
                 ("image and mask go through one joint transform", 2))),
    Part("transforms", "The 'paper' and 'strong' augmentation pipelines",
         "starter_code/data/transforms.py: build_transform", ("build_transform",),
         _checks(("paper: size x size output, image and mask aligned, labels kept", 2),
                 ("paper: random-resized crop on about 30% of samples, centre crop otherwise", 2),
                 ("paper: crop scale (area 90-100%) and aspect ratio (3/4-4/3) statistics", 3),
                 ("paper: horizontal flip on about 30% of samples", 2),
                 ("strong: size x size output, aligned, mask padded with void 255", 2),
                 ("strong: scale jitter from 0.5x to 2x the size", 2),
                 ("strong: flip on about half, mild colour jitter of the image only", 2))),
    Part("class_weights", "Class weights from pixel counts",
         "starter_code/data/stats.py: class_weights", ("class_weights",),
         _checks(("inverse frequency, normalised to mean 1 over present classes", 4),
                 ("median-frequency balancing", 4),
                 ("absent classes weigh 0, clip caps the weights, plain floats", 2))),
    Part("criterion", "The loss: class weights and void ignored",
         "starter_code/engine.py: build_criterion", ("build_criterion",),
         _checks(("void pixels (255) are ignored", 3),
                 ("no class weights when cfg.class_weights is None", 2),
                 ("class weights of the training set reach the loss", 3),
                 ("weights from class_stats(train_ds) and class_weights(stats, method, clip)", 2))),
    Part("metrics_update", "Accumulate a confusion matrix",
         "starter_code/metrics.py: ConfusionMatrix.update", ("ConfusionMatrix.update",),
         _checks(("rows are ground truth, columns prediction", 5),
                 ("void pixels (ignore_index) are skipped", 4),
                 ("batches accumulate into one matrix", 4),
                 ("int64 counts, num_classes x num_classes", 2))),
    Part("metrics_compute", "Metrics from the confusion matrix",
         "starter_code/metrics.py: ConfusionMatrix.compute", ("ConfusionMatrix.compute",),
         _checks(("pixel accuracy", 2),
                 ("per-class IoU = tp / (tp + fp + fn)", 3),
                 ("IoU of a class absent from prediction and target is NaN (left out of mIoU)", 2),
                 ("mIoU = mean IoU over the classes present", 2),
                 ("class accuracy and mean class accuracy", 2),
                 ("frequency-weighted IoU", 2),
                 ("plain Python values (float, list, int)", 2))),
    Part("train_step", "One training step per batch",
         "starter_code/engine.py: train_one_epoch (forward + loss, backward + step)", ("train_one_epoch",),
         _checks(("returns the mean training loss over the epoch's samples", 2),
                 ("one SGD step per batch: zero_grad, backward, step", 4),
                 ("forward under torch.autocast exactly when AMP is on", 1),
                 ("under AMP: backward and step through the GradScaler (scale, step, update)", 3))),
    Part("evaluate", "Evaluate a whole split with one confusion matrix",
         "starter_code/engine.py: evaluate", ("evaluate",),
         _checks(("one confusion matrix over the split (not a mean of per-batch metrics)", 5),
                 ("every non-void pixel counted once, at the mask's resolution", 3),
                 ("mean loss weighted by batch size", 3),
                 ("model in eval mode", 2),
                 ("without a criterion: loss is NaN, metrics still computed", 2))),
    Part("double_conv", "U-Net's double convolution block",
         "starter_code/models/unet.py: double_conv", ("double_conv",),
         _checks(("two 3x3 convs without bias and two BatchNorm2d (parameter names and shapes)", 3),
                 ("forward in training mode", 3),
                 ("forward in eval mode (running statistics)", 2),
                 ("the U-Net built from it", 2))),
)

PART_NAMES: tuple[str, ...] = tuple(p.name for p in PARTS)
TOTAL_POINTS: int = sum(p.points for p in PARTS)


def get_part(name: str) -> Part:
    """The part called `name`; ValueError listing the parts otherwise."""
    for p in PARTS:
        if p.name == name:
            return p
    raise ValueError(f"unknown part {name!r}; parts: {', '.join(PART_NAMES)}")

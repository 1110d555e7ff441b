"""kitdata: the data that ships with the kit, and sample-quality metrics.

Import name ``kitdata`` (the folder is ``datasets/kitdata``; the name never shadows Hugging
Face's ``datasets``). Submodules (imported on first use, so ``import kitdata`` is cheap):

* ``kitdata.digits``   scikit-learn's 8x8 digits with the kit's fixed train / held-out split
* ``kitdata.toy2d``    2-D sources with exact sampling and exact log-density (ring8, grid25, moons, spiral)
* ``kitdata.labelled2d``  a labelled 2-D mixture with exact class-conditionals and Bayes error
* ``kitdata.planted``  noise images with a class pattern at a recorded place (ground truth for CAM)
* ``kitdata.mnist``    MNIST / Fashion-MNIST through torchvision, only when present locally
* ``kitdata.mnist_features``  FID-lite on MNIST: an extractor built once from the local files
* ``kitdata.features`` the shipped small digit classifier used as FID-lite's feature extractor
* ``kitdata.variants`` hidden variants of the data above, drawn by a judge from the grading's secret
* ``kitdata.metrics``  FID-lite, KID, precision / recall, density / coverage, memorisation,
                       mode coverage, mean log-density
* ``python -m kitdata.build_features``  rebuild the shipped feature-extractor weights
* ``python -m kitdata.calibrate``       regenerate ``datasets/CALIBRATION.md``
"""
import importlib

_SUBMODULES = ("digits", "toy2d", "mnist", "mnist_features", "features", "metrics", "text", "labelled2d", "planted",
               "variants")
__all__ = list(_SUBMODULES)


def heldout_sources() -> list[str]:
    """Paths a grader's worker must never read: where held-out splits can be read from."""
    from kitdata import digits

    return digits.heldout_sources()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

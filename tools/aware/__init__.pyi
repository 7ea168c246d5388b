# Type stubs of the package aware (tools/aware/__init__.py): what editors complete and type checkers check.
from os import PathLike
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

Path = Union[str, PathLike[str]]
Scores = npt.ArrayLike  # (N,) or (N, classes)
Config = Union[Path, Mapping[str, Any]]
Overrides = Union[str, Mapping[str, Any], Iterable[str]]

CHUNK: int

class Error(ValueError):
    """An error a user can cause (a file, an option, an input): the command line's message."""

class Model:
    def __init__(self, path: Path, device: str = "", threads: int = 0, precision: str = "", conv: str = "",
                 batch: int = 0) -> None: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def event_shape(self) -> Tuple[int, ...]: ...
    @property
    def backend(self) -> str: ...
    def score(self, events: npt.ArrayLike, chunk: int = ..., progress: bool = False) -> npt.NDArray[np.float32]: ...

def load(path: Path, device: str = "", threads: int = 0, precision: str = "", conv: str = "",
         batch: int = 0) -> Model: ...
def jet_images(pt: npt.ArrayLike, eta: npt.ArrayLike, phi: npt.ArrayLike, offsets: npt.ArrayLike,
               jet_eta: Optional[npt.ArrayLike] = None, jet_phi: Optional[npt.ArrayLike] = None, pixels: int = 25,
               half_width: float = 1.0, centre: str = "axis", rotate: bool = False, flip: bool = False,
               normalise: bool = False, out: Optional[npt.NDArray[np.float32]] = None) -> npt.NDArray[np.float32]: ...
def scan(anomaly: Scores, backgrounds: Mapping[str, Tuple[Scores, float]], column: int = 0, bins: int = 1000,
         min_background: int = 100, min_width: float = 0.02, widths: Sequence[float] = ...,
         luminosities: Sequence[float] = ..., device: str = "auto") -> dict[str, Any]: ...
def lee(anomaly: Scores, backgrounds: Mapping[str, Tuple[Scores, float]], toys: int, column: int = 0,
        bins: int = 1000, min_background: int = 100, min_width: float = 0.02, injected_toys: int = 200,
        luminosity: float = 3000.0, seed: int = 1, inject_fb: Sequence[float] = (),
        window: Optional[Tuple[float, float]] = None, observed: Optional[Sequence[int]] = None,
        device: str = "auto") -> dict[str, Any]: ...
def roc(positive: Scores, negative: Scores, max_points: int = 500, column: int = 0) -> dict[str, Any]: ...
def auc(positive: Scores, negative: Scores, column: int = 0) -> float: ...
def run(config: Config, out: Path = "out", set: Overrides = (), resume: bool = False, prior: Optional[Path] = None,
        progress: bool = False) -> dict[str, Any]: ...
def train(config: Config, stage: str = "prior", out: Path = "out", init: Optional[Path] = None, resume: bool = False,
          epochs: int = -1, set: Overrides = (), progress: bool = False) -> list[dict[str, Any]]: ...

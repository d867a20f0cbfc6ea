"""What a model family's environment is: pip requirements, build steps and a smoke check, hashed into a key.

The key covers everything that changes what gets installed (specs, constraints incl. the project's
constraints.txt, build steps and their environment variables, the Python version); a changed spec is a new
environment directory, never an in-place upgrade.

A torch family has two variants: the default CPU one (``torch==2.13.0+cpu`` through constraints.txt: what CI
and every test use) and, on request (``mlffbench env build NAME --cuda``, ``EnvSpec.cuda_variant()``), a CUDA one
named ``<name>-cuda`` with its own key and directory: the same packages on ``torch==2.13.0`` from PyPI's default
index (the CUDA build on Linux x86_64), pinned by the arbitrary-equality constraint ``torch===2.13.0`` so that no
``+cpu`` wheel on any configured index can satisfy it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

#: Bumped when the way environments are built changes (forces rebuilds of every family).
FORMAT_VERSION = 1

#: What the worker needs to import ``mlffbench.engine.jobs`` inside a family environment (mlffbench itself is
#: put on the path by a launcher, not installed; see envs.build). Kept in step with pyproject's light deps.
WORKER_REQUIREMENTS = ("numpy>=1.26,<2.4", "scipy>=1.11", "ase>=3.29,<3.30", "pyyaml>=6")

#: The torch every torch family env gets (CPU build by default, PyPI's CUDA build in a ``-cuda`` variant).
TORCH_VERSION = "2.13.0"

#: Name suffix of the CUDA variant of a torch family env (``mace-cuda``).
CUDA_SUFFIX = "-cuda"

#: Used when the package runs outside a source checkout (no constraints.txt beside src/).
_DEFAULT_CONSTRAINTS = "torch==2.13.0+cpu\nnumpy<2.4\n"


#: The source checkout this package runs from (holds constraints.txt and scripts/ when not a wheel install).
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def project_constraints() -> str:
    """Text of the project's constraints.txt (torch==2.13.0+cpu, numpy<2.4): applied to every pip call."""
    path = PROJECT_ROOT / "constraints.txt"
    return path.read_text() if path.is_file() else _DEFAULT_CONSTRAINTS


@dataclass(frozen=True)
class EnvSpec:
    """A family environment.

    ``packages`` are pip requirement strings installed in one resolve after ``torch==2.13.0`` (when ``torch``)
    and the worker's requirements; ``constraints`` are added to the project's constraints file;
    ``steps`` are extra commands (argv lists, ``{python}`` and ``{env}`` substituted) run after the install
    with ``step_env`` set; ``smoke`` is Python code that must run without error for the build to count.
    """

    name: str
    packages: tuple[str, ...]
    smoke: str
    torch: bool = True
    constraints: tuple[str, ...] = ()
    steps: tuple[tuple[str, ...], ...] = ()
    step_env: tuple[tuple[str, str], ...] = ()
    pip_env: tuple[tuple[str, str], ...] = ()  # environment for the pip install itself (e.g. CMAKE_ARGS)
    #: False for a bare tool env: no worker requirements, no mlffbench import in the smoke check
    worker: bool = True
    #: the CUDA variant (``cuda_variant()``): torch==2.13.0 from PyPI's default index instead of the CPU wheel
    cuda: bool = False
    description: str = ""
    #: excluded from the key: documentation only
    notes: tuple[str, ...] = field(default=(), compare=False)

    def key(self) -> str:
        """sha256 over everything that determines the built environment."""
        blob = asdict(self)
        blob.pop("description")
        blob.pop("notes")
        if not blob["cuda"]:  # the CPU envs keep the keys they had before CUDA variants existed (no rebuilds)
            blob.pop("cuda")
        blob.update(format=FORMAT_VERSION, worker=WORKER_REQUIREMENTS if self.worker else (),
                    project_constraints=project_constraints(),
                    python=list(sys.version_info[:2]))
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()

    def dirname(self) -> str:
        return f"{self.name}-{self.key()[:12]}"

    def constraints_text(self) -> str:
        """PIP_CONSTRAINT of every pip call of the build: the project's constraints (for a CUDA variant without
        its torch pin, replaced by ``torch===2.13.0``: the plain PyPI build, never a ``+cpu`` one) + the spec's."""
        base = project_constraints()
        if self.cuda:
            base = "".join(line + "\n" for line in base.splitlines() if not _pins_torch(line))
            base += f"torch==={TORCH_VERSION}\n"
        return base.rstrip("\n") + "\n" + "".join(c + "\n" for c in self.constraints)

    @property
    def base_name(self) -> str:
        """The family env this one is a variant of (``mace`` for ``mace-cuda``)."""
        return self.name[:-len(CUDA_SUFFIX)] if self.cuda and self.name.endswith(CUDA_SUFFIX) else self.name

    def cuda_variant(self) -> "EnvSpec":
        """The CUDA variant of a torch family env: name ``<name>-cuda``, its own key and directory, everything
        else the same. ValueError for an env without torch (nothing to swap)."""
        if self.cuda:
            return self
        if not self.torch:
            raise ValueError(f"environment '{self.name}' installs no torch: it has no CUDA variant "
                             "(--cuda applies to the torch families)")
        return replace(self, name=self.name + CUDA_SUFFIX, cuda=True,
                       description=f"{self.description} [CUDA: torch=={TORCH_VERSION} from PyPI]")


def _pins_torch(line: str) -> bool:
    """Whether a constraints line constrains torch itself (``torch==2.13.0+cpu``), not e.g. torchvision."""
    text = line.split("#", 1)[0].strip().lower()
    if not text.startswith("torch"):
        return False
    rest = text[len("torch"):].lstrip()
    return rest == "" or rest[0] in "=<>!~;[ @"

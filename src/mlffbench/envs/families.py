"""The declared environment of every model family that does not run in the main venv.

Versions are the ones measured to install and run on these machines (../shared/notes/ENVIRONMENT.md); torch is
always 2.13.0+cpu through the project's constraints.txt. A model class names its env by ``Model.env``.
"""

from __future__ import annotations

from mlffbench.envs.spec import EnvSpec
from mlffbench.errors import ConfigError

SPECS: dict[str, EnvSpec] = {}


def _declare(spec: EnvSpec) -> EnvSpec:
    SPECS[spec.name] = spec
    return spec


MACE = _declare(EnvSpec(
    name="mace",
    description="MACE 0.3.16 (e3nn 0.4.4): mace, mace_ms25",
    packages=("mace-torch==0.3.16", "e3nn==0.4.4"),
    smoke=("import e3nn, mace\nfrom mace.calculators import MACECalculator\n"
           "assert e3nn.__version__ == '0.4.4', e3nn.__version__\n"
           "import mlffbench.models.adapters.mace\n"),
))

NEQUIP = _declare(EnvSpec(
    name="nequip",
    description="NequIP 0.19.1 + Allegro 0.8.3 (e3nn 0.6.x): nequip, allegro",
    packages=("nequip==0.19.1", "nequip-allegro==0.8.3", "e3nn>=0.6,<0.7"),
    smoke=("import e3nn, nequip, allegro\nfrom nequip.ase import NequIPCalculator\n"
           "assert e3nn.__version__.startswith('0.6'), e3nn.__version__\n"
           "import mlffbench.models.adapters.nequip\n"),
))

CHGNET = _declare(EnvSpec(
    name="chgnet",
    description="CHGNet 0.4.2 (pretrained weights in the wheel): chgnet",
    packages=("chgnet==0.4.2",),
    smoke="from chgnet.model import CHGNet\nCHGNet.load(verbose=False)\n",
))

SEVENN = _declare(EnvSpec(
    name="sevenn",
    description="SevenNet 0.13.0 (SevenNet-0 weights in the wheel): sevennet",
    packages=("sevenn==0.13.0",),
    smoke="from sevenn.calculator import SevenNetCalculator\nSevenNetCalculator('7net-0', device='cpu')\n",
))

GAP = _declare(EnvSpec(
    name="gap",
    description="GAP via quippy-ase 0.10.3 (gap_fit binary in the wheel; numpy>=2): gap",
    torch=False,
    packages=("quippy-ase==0.10.3", "numpy>=2,<2.4"),
    smoke="import os, sys\nfrom quippy.potential import Potential\n"
          "assert os.path.exists(os.path.join(os.path.dirname(sys.executable), 'gap_fit'))\n",
))

DEEPMD = _declare(EnvSpec(
    name="deepmd",
    description="DeePMD-kit 3.2.0 PyTorch backend, built from source against torch 2.13 (~140 s): deepmd",
    packages=("--no-binary=deepmd-kit", "deepmd-kit==3.2.0", "vesin[torch]", "e3nn"),
    pip_env=(("CMAKE_ARGS", "-DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON"), ("DP_ENABLE_TENSORFLOW", "0"),
             ("DP_ENABLE_PYTORCH", "1")),
    smoke="import deepmd.pt\nfrom deepmd.calculator import DP\nimport mlffbench.models.adapters.deepmd\n",
    notes=("the PyPI wheel's PyTorch backend is built for torch 2.11 and fails on 2.13",),
))

SGDML = _declare(EnvSpec(
    name="sgdml",
    description="sGDML 1.0.3 (numpy<2.4: it uses np.in1d): sgdml",
    torch=False,
    packages=("sgdml==1.0.3", "numpy<2.4"),
    smoke="from sgdml.train import GDMLTrain\nfrom sgdml.predict import GDMLPredict\nimport mlffbench.models.adapters.sgdml\n",
))

TORCHANI = _declare(EnvSpec(
    name="torchani",
    description="TorchANI 2.9.0 (periodic AEVs, custom per-species networks): torchani",
    packages=("torchani==2.9.0",),
    smoke="import torchani\nimport mlffbench.models.adapters.torchani\n",
))

CALORINE = _declare(EnvSpec(
    name="calorine",
    description="calorine 4.1 (CPU NEP inference of a user-supplied nep.txt): nep_model",
    torch=False,
    packages=("calorine==4.1",),
    smoke="from calorine.calculators import CPUNEP\n",
))


def get_spec(name: str) -> EnvSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown environment '{name}' (known: {', '.join(sorted(SPECS))})") from None

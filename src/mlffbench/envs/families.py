"""The declared environment of every model family that does not run in the main venv.

Versions are the ones measured to install and run on these machines (../shared/notes/ENVIRONMENT.md); torch is
always 2.13.0+cpu through the project's constraints.txt. A model class names its env by ``Model.env``.
"""

from __future__ import annotations

from mlffbench.envs.spec import PROJECT_ROOT, EnvSpec
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
    description="calorine 4.1 (NEP: GPUMD nep.in/train.xyz for `nep` training, CPU inference of nep.txt): nep_model, nep",
    torch=False,
    packages=("calorine==4.1",),
    smoke="from calorine.calculators import CPUNEP\n",
))

GRACE = _declare(EnvSpec(
    name="grace",
    description="GRACE via tensorpotential 0.6.2.1 on tensorflow-cpu 2.20.0 + tf_keras: grace",
    torch=False,
    # tensorpotential asks for tensorflow[and-cuda] (GBs of CUDA wheels) and tf_keras for the full tensorflow
    # wheel: both go in with --no-deps on top of tensorflow-cpu and tensorpotential's other requirements
    packages=("tensorflow-cpu==2.20.0", "matscipy", "sympy", "pandas<3", "tqdm", "requests", "questionary>=2.0",
              "rich>=13", "scikit-learn>=1.1"),
    steps=(("{pip}", "install", "--quiet", "--no-deps", "tf_keras==2.20.1", "tensorpotential==0.6.2.1"),),
    smoke=("import tensorpotential, tensorflow, tf_keras\nfrom tensorpotential.calculator import TPCalculator\n"
           "assert tensorflow.__version__ == '2.20.0', tensorflow.__version__\nimport mlffbench.models.adapters.grace\n"),
))


def _flare_build_script_sha() -> str:
    """sha256 of scripts/build_flare_env.sh: puts the script's content (not its path) into the env key."""
    import hashlib

    path = PROJECT_ROOT / "scripts" / "build_flare_env.sh"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


FLARE = _declare(EnvSpec(
    name="flare",
    description="FLARE (mir-flare 1.4.0 sdist, built offline from Debian/PyPI sources, ~3 min): flare, cross-checks",
    torch=False,
    packages=("numpy>=2,<2.4",),
    # the script reuses the venv at DEST (bootstraps pip there) and builds + installs the wheel into it
    steps=(("bash", "{project}/scripts/build_flare_env.sh", "{env}"),),
    step_env=(("MLFFBENCH_FLARE_BUILD_SHA256", _flare_build_script_sha()),),
    smoke=("import numpy as np\nfrom ase.build import bulk\nfrom flare.bffs.sgp import _C_flare\n"
           "import flare.utils\nfrom flare.bffs.sgp import SGP_Wrapper\n"
           "a = bulk('Cu', 'fcc', a=3.6, cubic=True)\n"
           "d = _C_flare.B2('chebyshev', 'quadratic', [0.0, 4.0], [], [1, 3, 2])\n"
           "k = _C_flare.NormalizedDotProduct(2.0, 2.0)\n"
           "s = _C_flare.Structure(np.array(a.cell), [0] * len(a), a.positions, 4.0, [d])\n"
           "s.energy = np.array([[-14.0]]); s.forces = np.zeros(12); s.stresses = np.zeros(6)\n"
           "gp = _C_flare.SparseGP([k], 0.01, 0.05, 0.005)\n"
           "gp.add_training_structure(s); gp.add_all_environments(s); gp.update_matrices_QR()\n"
           "gp.predict_mean(s)\nassert abs(s.mean_efs[0] + 14.0) < 0.1, s.mean_efs[0]\n"
           "import mlffbench.models.adapters.flare\n"),
    notes=("pip cannot install mir-flare offline (numpy<1.23 / ase==3.22 pins, GitHub downloads in CMake): "
           "scripts/build_flare_env.sh builds the wheel from Debian + PyPI sources",),
))


def get_spec(name: str) -> EnvSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown environment '{name}' (known: {', '.join(sorted(SPECS))})") from None

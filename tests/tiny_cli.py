"""The command line with the loaders set to the tiny network sizes of the fake models:
``python tests/tiny_cli.py render ditto ...`` runs exactly ``python -m pipelines render
ditto ...`` (same code, same files, same exit codes) on tests/fake_models.py's folder."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pipelines.app import cli, models  # noqa: E402
from pipelines.ditto.lmdm import TINY  # noqa: E402
from pipelines.liveportrait import render  # noqa: E402
from pipelines.liveportrait.loader import TINY_RENDERER  # noqa: E402
from pipelines.musetalk.models import TINY_CONFIGS  # noqa: E402

models.SIZES.update(liveportrait=TINY_RENDERER, ditto=TINY, musetalk=TINY_CONFIGS)
# one frame per CPU pass keeps a full-size stop under a second; tiny networks finish a
# whole batch far sooner, and per-pass overhead would dominate these renders
render.CPU_FRAMES_PER_PASS = 64
sys.exit(cli.main())

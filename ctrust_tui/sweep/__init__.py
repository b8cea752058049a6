"""`ctrust sweep`: a grid of runs (models x specs x seeds) on this machine or on a Ray cluster.

`grid` (what to run, pure Python), `run` (cells through the Runner, nothing done twice),
`display` (terminal progress), `ray_engine` (imported only by `--engine ray`).
"""

from .grid import Cell, Grid, build_grid, read_grid_file
from .run import CellOutcome, CellStatus, LocalEngine, check_models, finished_run, run_sweep

__all__ = ["Cell", "CellOutcome", "CellStatus", "Grid", "LocalEngine", "build_grid", "check_models", "finished_run",
           "read_grid_file", "run_sweep"]

"""Engine: the Runner set-up of the tools, held-out evaluation, hooks and atomic file writes (torch + mmengine)."""
from .checkpoint import export_upsampler_from_checkpoint, runner_checkpoint_globals, runner_checkpoint_loading
from .fileio import AtomicLocalBackend, atomic_write_bytes
from .heldout import feature_errors, format_errors_table, heldout_errors, save_pca_figure
from .hooks import *  # noqa: F401,F403
from .runner import LAUNCHERS, build_runner, init_cpu_distributed, load_config, run_test, run_train, setup_runner_cfg

__all__ = [
    'export_upsampler_from_checkpoint', 'runner_checkpoint_globals', 'runner_checkpoint_loading', 'AtomicLocalBackend',
    'atomic_write_bytes', 'feature_errors', 'format_errors_table', 'heldout_errors', 'save_pca_figure', 'LAUNCHERS',
    'build_runner', 'init_cpu_distributed', 'load_config', 'run_test', 'run_train', 'setup_runner_cfg'
]

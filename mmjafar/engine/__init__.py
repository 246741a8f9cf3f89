"""Engine: pretraining set-up, held-out evaluation, hooks and atomic file writes (torch + mmengine only)."""
from .checkpoint import export_upsampler_from_checkpoint, runner_checkpoint_globals, runner_checkpoint_loading
from .fileio import AtomicLocalBackend, atomic_write_bytes
from .heldout import feature_errors, format_errors_table, heldout_errors, save_pca_figure
from .hooks import *  # noqa: F401,F403
from .pretrain import cfg_from_args, init_cpu_distributed, runner_arg_parser, setup_pretrain_cfg

__all__ = [
    'export_upsampler_from_checkpoint', 'runner_checkpoint_globals', 'runner_checkpoint_loading', 'AtomicLocalBackend', 'atomic_write_bytes',
    'feature_errors', 'format_errors_table', 'heldout_errors', 'save_pca_figure', 'init_cpu_distributed',
    'setup_pretrain_cfg', 'runner_arg_parser', 'cfg_from_args'
]

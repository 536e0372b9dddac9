"""Training: the restoration trainer, its schedule, checkpoints, logs and distributed set-up,
and the degradation sensor's training."""

from pip_adapter._extras import needs_extra

with needs_extra("train", "pip_adapter.training"):
    from pip_adapter.training.checkpoint import load_checkpoint, save_checkpoint
    from pip_adapter.training.distributed import DistributedContext, setup_distributed
    from pip_adapter.training.report import JsonLinesLog, format_metrics_table, plot_curves
    from pip_adapter.training.schedule import warmup_cosine
    from pip_adapter.training.sensor import calibrate_sensor, fit_temperature, train_sensor
    from pip_adapter.training.strength import (
        STRENGTH_OBJECTIVES,
        calibrate_blur_strength,
        calibrate_output_strength,
        fit_blur_strength,
        fit_output_strength,
        fit_output_strengths,
    )
    from pip_adapter.training.trainer import (
        TrainConfig,
        Trainer,
        TrainingDiverged,
        psnr_fft_loss,
        psnr_loss,
        psnr_no_harm_loss,
        relative_l1_loss,
    )

__all__ = [
    "STRENGTH_OBJECTIVES",
    "DistributedContext",
    "JsonLinesLog",
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "calibrate_blur_strength",
    "calibrate_output_strength",
    "calibrate_sensor",
    "fit_blur_strength",
    "fit_output_strength",
    "fit_output_strengths",
    "fit_temperature",
    "format_metrics_table",
    "load_checkpoint",
    "plot_curves",
    "psnr_fft_loss",
    "psnr_loss",
    "psnr_no_harm_loss",
    "relative_l1_loss",
    "save_checkpoint",
    "setup_distributed",
    "train_sensor",
    "warmup_cosine",
]

"""The trainer, its resumable state, lockstep families, torchrun and devices."""

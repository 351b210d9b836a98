"""The shared core below every model family: errors, the values passed between stages,
the run context, media and audio I/O, the weights registry and safe checkpoint loading.
Nothing here imports a family or the app layer."""

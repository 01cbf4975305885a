"""tfs-compat: TF Serving's REST and gRPC predict/status/metadata APIs on the real TF SavedModel runtime.

Used as the local TF Serving when `tensorflow_model_server` is not on PATH. Start it like the real
one: `python -m serving.tfs_compat --port=8500 --rest_api_port=8501 --model_name=linear
--model_base_path=/abs/artifacts/tfserving/linear [--enable_batching --batching_parameters_file=F]`.
Importing this package does not import TensorFlow; the submodules that need it do.
"""

KIND = "tfs-compat"  # the TF Serving kind recorded in results

__all__ = ["KIND"]

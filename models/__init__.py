"""The linear classifier, its NumPy reference, exporters (SavedModel, .mar) and the in-process floor.

TensorFlow and torch are imported only inside the exporter and floor functions, so importing this
package stays cheap.
"""

from models.artifacts import ArtifactLayout, ArtifactsMissingError
from models.linear import LinearSpec, make_inputs, predict, scores

__all__ = ["ArtifactLayout", "ArtifactsMissingError", "LinearSpec", "make_inputs", "predict", "scores"]

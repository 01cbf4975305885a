# The inferload CLI, for the in-cluster Job (deploy/kubernetes/inferload-job/) that runs a matrix
# against the cluster's Services as an `external` target. The whole project at its pyproject.toml
# pins; torch from PyTorch's CPU wheel index first, so pip does not pull the multi-GB CUDA build
# (2.13.0+cpu satisfies the ==2.13.0 pin). Build context: the repository root.
#   docker build -f deploy/docker/inferload.Dockerfile -t inferload/inferload:0.1.0 .
FROM python:3.11-slim
RUN python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models/ models/
COPY serving/ serving/
COPY loadtest/ loadtest/
COPY analysis/ analysis/
COPY inferload/ inferload/
COPY inferload_protos/ inferload_protos/
COPY experiments/ experiments/
# The stubs are generated into the installed package (from / so that -m does not find ./inferload_protos).
RUN python -m pip install --no-cache-dir . \
 && cd / && python -m inferload_protos \
 && python -c "import inferload_protos as protos; protos.load('inference_pb2')" \
 && inferload --help >/dev/null
RUN useradd --create-home --uid 10001 inferload && mkdir -p /work && chown inferload /work
USER 10001
WORKDIR /work

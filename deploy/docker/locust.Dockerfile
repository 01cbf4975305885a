# Locust with what our users in loadtest/ import, at the versions pinned in pyproject.toml, and the
# gRPC stubs they encode requests with (inferload_protos). loadtest/ itself is not in the image: the
# Deployments mount it from the `loadtest` ConfigMap (kustomization.yaml), so the cluster always
# runs the repository's current users. tests/deploy checks these pins against pyproject.toml.
# Build context: the repository root.
#   docker build -f deploy/docker/locust.Dockerfile -t inferload/locust:2.47.0 .

# The stubs are generated exactly as `make setup` does: TorchServe's protos come out of the
# torchserve package's frontend jar, TF Serving's subset from inferload_protos/.
FROM python:3.11-slim AS stubs
RUN python -m pip install --no-cache-dir torchserve==0.12.0 grpcio-tools==1.85.1 protobuf==7.36.2
WORKDIR /src
COPY inferload_protos/__init__.py inferload_protos/__main__.py inferload_protos/tfserving_predict.proto inferload_protos/
RUN python -m inferload_protos && ls inferload_protos/inference_pb2.py inferload_protos/tfserving_predict_pb2.py

FROM locustio/locust:2.47.0
USER root
RUN python -m pip install --no-cache-dir \
      gevent==26.9.0 \
      geventhttpclient==2.6.1 \
      grpcio==1.85.1 \
      protobuf==7.36.2 \
      numpy==2.4.6 \
      orjson==3.13.0 \
      pydantic==2.14.3 \
      psutil==7.2.2 \
      uvloop==0.23.0 \
      locust==2.47.0
# Only the stubs package, next to the other installed packages.
COPY --from=stubs /src/inferload_protos /opt/inferload/inferload_protos
RUN python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'inferload-stubs.pth').write_text('/opt/inferload\n')" \
 && python -c "import inferload_protos as protos; protos.load('inference_pb2'); protos.load('tfserving_predict_pb2')"
USER locust

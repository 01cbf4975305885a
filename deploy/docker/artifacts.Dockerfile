# The exported model as an image: the init containers of the server Deployments copy their part
# (tfserving/linear/<version>/, torchserve/linear.mar, triton/linear/) out of it. Why an image and not a volume: it
# is immutable and versioned by tag or digest, every node pulls it from the registry it already
# trusts, it needs no ReadWriteMany storage class, and every server gets byte-for-byte the same
# export. Build context: the artifacts folder written by `inferload export`.
#   inferload export --out artifacts [--classes 64 --features 262144 --seed 0]
#   docker build -f deploy/docker/artifacts.Dockerfile -t inferload/model-artifacts:linear-64x262144-seed0 artifacts/
FROM busybox:1.37.0
COPY model.json /artifacts/model.json
COPY tfserving/ /artifacts/tfserving/
COPY torchserve/ /artifacts/torchserve/
COPY triton/ /artifacts/triton/
# Fail the build, not the pod, when the export is incomplete.
RUN test -f /artifacts/tfserving/linear/1/saved_model.pb && test -f /artifacts/torchserve/linear.mar \
    && test -f /artifacts/triton/linear/config.pbtxt && test -f /artifacts/triton/linear/1/model.py
USER 65534

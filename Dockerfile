# Light My Cells: transmitted-light image -> nucleus, mitochondria, tubulin and actin images.
# Grand-challenge algorithm container: reads /input/images/organelles-transmitted-light-ome-tiff/,
# writes /output/images/<organelle>-fluorescence-ome-tiff/. Build with ./build.sh, prove with ./test.sh.
#
# BASE_IMAGE must provide `python` (3.11) with torch TORCH_VERSION installed, like the pytorch/pytorch
# images. Without registry access, make one locally: scripts/build_base_image.sh (Debian + CPU torch
# 2.13.0) and build with BASE_IMAGE=<its tag> ./build.sh.
# TORCH_VERSION is the torch the tests ran (scripts/setup_env.sh pins the same; test/test_packaging.py
# checks they agree): a base image with another torch stops the build instead of shipping untested code.
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
ARG TORCH_VERSION=2.13.0

# ---- stage 1: Python dependencies, installed with the CA bundle that build.sh puts in the context.
# A separate stage so the bundle (needed behind TLS-inspecting proxies) never reaches the final image.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${BASE_IMAGE} AS deps
ARG TORCH_VERSION
# An http(s) PyPI mirror, when the default index is not reachable from the build.
ARG PIP_INDEX_URL=https://pypi.org/simple
# A fixed numeric id: platforms that enforce a non-root user check the number, not the name.
RUN groupadd -g 1001 user && useradd -m --no-log-init -u 1001 -g user user
USER 1001:1001
WORKDIR /opt/app
COPY --chown=user:user build/docker/ca-bundle.crt /tmp/ca-bundle.crt
COPY --chown=user:user requirements.txt /opt/app/
# requirements.txt never lists torch: the base image's torch is the only one.
# An empty bundle file means "use pip's own certificates".
RUN if [ -s /tmp/ca-bundle.crt ]; then export PIP_CERT=/tmp/ca-bundle.crt; fi \
    && python -m pip install --user --no-cache-dir --no-color --disable-pip-version-check --no-warn-script-location \
       --requirement /opt/app/requirements.txt \
    && python -c "import numpy, scipy, tifffile, imagecodecs, skimage, PIL, onnx, onnxruntime, torch; print('torch', torch.__version__)" \
    && python -c "import sys, torch; v = torch.__version__.split('+')[0]; \
sys.exit(0 if v == '${TORCH_VERSION}' else f'base image torch {v}, but the tests ran torch ${TORCH_VERSION}: use a base image with it (scripts/build_base_image.sh) or rebuild with --build-arg TORCH_VERSION={v} after running the tests with it')"

# ---- stage 2: the algorithm.
# hadolint ignore=DL3029
FROM --platform=linux/amd64 ${BASE_IMAGE}
# glibc keeps freed buffers up to 1 GiB mapped instead of re-faulting each window batch
# (inference/allocator.py: 1.75x faster on this CPU).
# No LMC_WEIGHTS: process.py then prefers the platform's /opt/ml/model (an uploaded model tarball,
# export.sh --model) over the weights baked in at /opt/app/weights.
# LMC_BACKEND=auto: ONNX Runtime on the CPU (1.3-1.8x faster per image), torch on a GPU; the
# exports are made below at build time into LMC_ONNX_CACHE, so no job pays for them.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LMC_BACKEND=auto \
    LMC_ONNX_CACHE=/opt/app/onnx_cache \
    MALLOC_MMAP_THRESHOLD_=1073741824 \
    MALLOC_TRIM_THRESHOLD_=1073741824
# /output owned by the user: an empty volume mounted there takes this ownership, so the non-root
# process can write to it.
RUN groupadd -g 1001 user && useradd -m --no-log-init -u 1001 -g user user \
    && mkdir -p /opt/app /input /output \
    && chown user:user /opt/app /input /output
USER 1001:1001
ENV PATH="/home/user/.local/bin:${PATH}"
WORKDIR /opt/app
COPY --from=deps --chown=user:user /home/user/.local /home/user/.local
# Only what inference needs: no tests, data, training or scoring code.
COPY --chown=user:user weights /opt/app/weights
COPY --chown=user:user preprocessing /opt/app/preprocessing
COPY --chown=user:user models /opt/app/models
COPY --chown=user:user inference /opt/app/inference
COPY --chown=user:user process.py /opt/app/
RUN python -m inference.onnx_backend --weights /opt/app/weights --cache /opt/app/onnx_cache
ENTRYPOINT ["python", "process.py"]

# The diffusers worker (Worker/README.md) on a CUDA runtime image, serving the worker protocol on
# port 9000. The weights are not in the image: mount a folder at /models holding them and a models
# file (Worker/models.example.yaml; relative sources are relative to it).
#
#   docker build -f Docker/worker.Dockerfile -t sdgate-worker .
#   docker run --gpus 1 --network sdgate -e SDGATE_WORKER_TOKEN -v /srv/models:/models:ro sdgate-worker
#
# It answers only requests carrying SDGATE_WORKER_TOKEN (give the gateway the same value through
# local.remote_worker_token_env), and refuses to start without one. Publish its port only on a network
# that the gateway alone shares: whoever reaches it uses the team's GPU.
#
# PyPI's torch brings its own CUDA libraries; the base image gives the CUDA user-space layout the
# NVIDIA container runtime expects. PYTHON names the interpreter package of the base image's
# distribution (the worker's stack is pinned for Python 3.11).
ARG CUDA_IMAGE=docker.io/nvidia/cuda:13.0.2-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}
ARG PYTHON=python3.11

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates ${PYTHON} ${PYTHON}-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ${PYTHON} -m venv /opt/venv \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin worker
ENV PATH=/opt/venv/bin:$PATH
COPY Worker/requirements.txt /opt/worker/requirements.txt
# uv resolves and installs the pinned stack much faster than pip; byte-compiling at build time makes
# each start's `import torch, diffusers` seconds faster. Both trust the distribution's CA store (and
# so a CA the base image adds for a TLS-intercepting proxy), not the CA bundles they carry.
RUN export PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
 && python -m pip install --no-cache-dir uv \
 && UV_COMPILE_BYTECODE=1 uv pip install --no-cache --python /opt/venv/bin/python -r /opt/worker/requirements.txt \
 && python -m pip uninstall -y uv
COPY Worker/sdgate_worker /opt/worker/sdgate_worker

WORKDIR /opt/worker
USER worker
ENV HF_HOME=/home/worker/.cache/huggingface PYTHONUNBUFFERED=1
VOLUME /models
EXPOSE 9000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/health', timeout=4)" || exit 1
ENTRYPOINT ["python", "-m", "sdgate_worker"]
CMD ["--models", "/models/models.yaml", "--listen", "0.0.0.0:9000"]
